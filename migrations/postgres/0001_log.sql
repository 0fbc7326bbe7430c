-- The single commit-ordered log. Every publish transaction, on every node,
-- locks the one `log_head` row while it assigns positions, so positions
-- become visible in order (a BIGSERIAL would not).
CREATE TABLE log_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    head BIGINT  NOT NULL
);
INSERT INTO log_head (id, head) VALUES (1, 0);

CREATE TABLE topics (
    name              TEXT PRIMARY KEY,
    last_seq          BIGINT NOT NULL DEFAULT 0,
    message_count     BIGINT NOT NULL DEFAULT 0,
    created_us        BIGINT NOT NULL,
    last_published_us BIGINT
);

CREATE TABLE messages (
    position     BIGINT  PRIMARY KEY,
    topic        TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    event        TEXT    NOT NULL,
    is_json      BOOLEAN NOT NULL,
    payload      TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    time_us      BIGINT  NOT NULL,
    UNIQUE (topic, seq)
);
CREATE INDEX messages_topic_position ON messages (topic, position);
