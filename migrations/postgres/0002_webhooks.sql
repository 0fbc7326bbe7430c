-- Webhook subscriptions. `cursor` is the last log position the dispatcher
-- has looked at for this subscription; every matching message up to it has
-- a row in `retries` (waiting for an attempt), has been delivered
-- (`delivered` counts them), or sits in `dead_letters`.
CREATE TABLE subscriptions (
    id             BIGSERIAL PRIMARY KEY,
    topic          TEXT    NOT NULL,
    filter         TEXT,
    url            TEXT    NOT NULL,
    secret         TEXT    NOT NULL,
    max_attempts   INTEGER NOT NULL,
    min_backoff_ms BIGINT  NOT NULL,
    max_backoff_ms BIGINT  NOT NULL,
    timeout_ms     BIGINT  NOT NULL,
    paused         BOOLEAN NOT NULL,
    cursor         BIGINT  NOT NULL,
    delivered      BIGINT  NOT NULL DEFAULT 0,
    created_us     BIGINT  NOT NULL,
    updated_us     BIGINT  NOT NULL
);

-- Deliveries waiting for their next attempt (the first one included).
-- A node that claims a row moves next_attempt_us past the attempt's
-- timeout (a lease), so no other node attempts it meanwhile.
CREATE TABLE retries (
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    position         BIGINT NOT NULL,
    topic            TEXT   NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_us  BIGINT NOT NULL,
    first_attempt_us BIGINT,
    last_attempt_us  BIGINT,
    last_status      INTEGER,
    last_error       TEXT,
    PRIMARY KEY (subscription_id, position)
);
CREATE INDEX retries_due ON retries (subscription_id, next_attempt_us);
CREATE INDEX retries_next ON retries (next_attempt_us);

-- Deliveries that exhausted their attempts, until deleted or redriven.
CREATE TABLE dead_letters (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    position         BIGINT NOT NULL,
    topic            TEXT   NOT NULL,
    attempts         INTEGER NOT NULL,
    last_status      INTEGER,
    last_error       TEXT,
    first_attempt_us BIGINT NOT NULL,
    last_attempt_us  BIGINT NOT NULL,
    created_us       BIGINT NOT NULL
);
CREATE INDEX dead_letters_subscription ON dead_letters (subscription_id, id);
