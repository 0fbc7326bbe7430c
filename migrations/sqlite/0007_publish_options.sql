-- Publish options: a message's priority (1-5, default 3) and ordering key.
ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 3;
ALTER TABLE messages ADD COLUMN msg_key TEXT;

-- Idempotency-Key records: written in the same transaction as what they
-- answer (messages, or schedules), so a retry after a crash between commit
-- and answer still finds them. `response` is the original answer's body.
-- WITHOUT ROWID: the rows live in the primary key's b-tree, one b-tree
-- fewer to write per keyed publish.
CREATE TABLE idempotency_keys (
    topic       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    -- A publish that meets a live record of its key sets -1 here (see
    -- storage/sqlite/append.rs), so the CHECK fails its transaction.
    status      INTEGER NOT NULL CONSTRAINT idempotency_key_live CHECK (status > 0),
    response    TEXT    NOT NULL,
    created_us  INTEGER NOT NULL,
    PRIMARY KEY (topic, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);

-- Scheduled publishes: appended to the log (and deleted here) in one
-- transaction at or after `deliver_at_us`.
CREATE TABLE scheduled (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    topic         TEXT    NOT NULL,
    event         TEXT    NOT NULL,
    is_json       INTEGER NOT NULL,
    payload       TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    ttl_ms        INTEGER,
    priority      INTEGER NOT NULL,
    msg_key       TEXT,
    deliver_at_us INTEGER NOT NULL,
    created_us    INTEGER NOT NULL
);
CREATE INDEX scheduled_due ON scheduled (deliver_at_us, id);
CREATE INDEX scheduled_topic ON scheduled (topic, id);
