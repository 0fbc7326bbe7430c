-- The single commit-ordered log. `log_head` holds the last assigned
-- position; topics hold their last seq. Both are updated in the same
-- transaction that inserts the messages.
CREATE TABLE log_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    head INTEGER NOT NULL
);
INSERT INTO log_head (id, head) VALUES (1, 0);

CREATE TABLE topics (
    name              TEXT PRIMARY KEY,
    last_seq          INTEGER NOT NULL DEFAULT 0,
    message_count     INTEGER NOT NULL DEFAULT 0,
    created_us        INTEGER NOT NULL,
    last_published_us INTEGER
);

CREATE TABLE messages (
    position     INTEGER PRIMARY KEY,
    topic        TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    is_json      INTEGER NOT NULL,
    payload      TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    time_us      INTEGER NOT NULL,
    UNIQUE (topic, seq)
);
CREATE INDEX messages_topic_position ON messages (topic, position);
