-- Topic configuration (JSON text of domain::TopicConfig; NULL: defaults).
ALTER TABLE topics ADD COLUMN config TEXT;
ALTER TABLE topics ADD COLUMN config_updated_us BIGINT;

-- When a message stops being sent (?ttl= or the topic's message_ttl).
ALTER TABLE messages ADD COLUMN expires_us BIGINT;
CREATE INDEX messages_expires ON messages (expires_us) WHERE expires_us IS NOT NULL;

-- Per topic, the highest position that retention (or a topic delete) has
-- removed. A reader resumed from before it gets an explicit gap. Kept when
-- the topic itself is deleted, so a resumer still learns of the loss.
CREATE TABLE retention_marks (
    topic   TEXT PRIMARY KEY,
    through BIGINT NOT NULL
);
CREATE INDEX retention_marks_through ON retention_marks (through);

-- A dead letter keeps its message's envelope, so retention, expiry or a
-- topic delete never leaves it without its payload.
ALTER TABLE dead_letters ADD COLUMN envelope TEXT;

-- Pending deliveries dropped because their message expired first.
ALTER TABLE subscriptions ADD COLUMN expired BIGINT NOT NULL DEFAULT 0;

-- A redriven dead letter's envelope goes back with it, so a delivery whose
-- message retention has removed can still be made.
ALTER TABLE retries ADD COLUMN envelope TEXT;
