-- Webhooks, second part (issue 14).

-- Deliver only messages whose `event` is one of these (a JSON array of
-- names; NULL: every event). A message without an event is `message`.
ALTER TABLE subscriptions ADD COLUMN event_types TEXT;

-- Deliveries per second (NULL: unlimited), shared by every node: a node
-- takes tokens from the current one-second window before it claims.
ALTER TABLE subscriptions ADD COLUMN rate_limit INTEGER;
ALTER TABLE subscriptions ADD COLUMN rate_second BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN rate_used INTEGER NOT NULL DEFAULT 0;

-- Secret rotation: the secret before the last rotation also signs every
-- delivery until `previous_secret_until_us`.
ALTER TABLE subscriptions ADD COLUMN previous_secret TEXT;
ALTER TABLE subscriptions ADD COLUMN previous_secret_until_us BIGINT;

-- The circuit breaker: `closed`, `open` (nothing is attempted until
-- `circuit_until_us`) or `half_open` (one probe in flight until then).
ALTER TABLE subscriptions ADD COLUMN circuit TEXT NOT NULL DEFAULT 'closed';
ALTER TABLE subscriptions ADD COLUMN circuit_until_us BIGINT;

-- Since when every attempt has failed (NULL: the last one succeeded);
-- past --webhook-disable-after the subscription is paused, with a reason.
ALTER TABLE subscriptions ADD COLUMN failing_since_us BIGINT;
ALTER TABLE subscriptions ADD COLUMN disabled_reason TEXT;

-- Every webhook attempt: when, its outcome, and the start of the answer.
CREATE TABLE attempts (
    id              BIGSERIAL PRIMARY KEY,
    subscription_id BIGINT NOT NULL,
    position        BIGINT  NOT NULL,
    time_us         BIGINT  NOT NULL,
    status          INTEGER,
    error           TEXT,
    duration_ms     BIGINT  NOT NULL,
    response        TEXT
);
-- Newest first per subscription, optionally of one message. Pruning walks
-- the oldest ids (attempts are logged in time order), so no time index.
CREATE INDEX attempts_subscription ON attempts (subscription_id, id);
CREATE INDEX attempts_message ON attempts (subscription_id, position, id);
