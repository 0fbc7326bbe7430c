-- Webhook subscriptions. `cursor` is the last log position the dispatcher
-- has looked at for this subscription; every matching message up to it has
-- a row in `retries` (waiting for an attempt), has been delivered
-- (`delivered` counts them), or sits in `dead_letters`.
CREATE TABLE subscriptions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    topic          TEXT    NOT NULL,
    filter         TEXT,
    url            TEXT    NOT NULL,
    secret         TEXT    NOT NULL,
    max_attempts   INTEGER NOT NULL,
    min_backoff_ms INTEGER  NOT NULL,
    max_backoff_ms INTEGER  NOT NULL,
    timeout_ms     INTEGER  NOT NULL,
    paused         INTEGER NOT NULL,
    cursor         INTEGER  NOT NULL,
    delivered      INTEGER  NOT NULL DEFAULT 0,
    created_us     INTEGER  NOT NULL,
    updated_us     INTEGER  NOT NULL
);

-- Deliveries waiting for their next attempt (the first one included).
-- A node that claims a row moves next_attempt_us past the attempt's
-- timeout (a lease), so no other node attempts it meanwhile.
CREATE TABLE retries (
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    topic            TEXT   NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_us  INTEGER NOT NULL,
    first_attempt_us INTEGER,
    last_attempt_us  INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    PRIMARY KEY (subscription_id, position)
);
CREATE INDEX retries_due ON retries (subscription_id, next_attempt_us);
CREATE INDEX retries_next ON retries (next_attempt_us);

-- Deliveries that exhausted their attempts, until deleted or redriven.
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    topic            TEXT   NOT NULL,
    attempts         INTEGER NOT NULL,
    last_status      INTEGER,
    last_error       TEXT,
    first_attempt_us INTEGER NOT NULL,
    last_attempt_us  INTEGER NOT NULL,
    created_us       INTEGER NOT NULL
);
CREATE INDEX dead_letters_subscription ON dead_letters (subscription_id, id);
