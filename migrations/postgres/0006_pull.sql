-- Pull subscriptions (consumer groups with acks) share the webhook ledger:
-- the same cursor fills `retries`, and a pull leases rows from it.
-- `mode` is `push` (a webhook, the server's own consumer) or `pull`; a pull
-- subscription has an empty `url` and `secret`.
ALTER TABLE subscriptions ADD COLUMN mode TEXT NOT NULL DEFAULT 'push';
ALTER TABLE subscriptions ADD COLUMN ack_deadline_ms BIGINT NOT NULL DEFAULT 30000;

-- When a pull lease runs out (NULL: not leased). A leased row also has
-- `next_attempt_us` = `leased_until`, so an expired lease is simply due
-- again; an ack must come before `leased_until`.
ALTER TABLE retries ADD COLUMN leased_until BIGINT;

-- Why a delivery became a dead letter: `max_attempts`, `retention` (the
-- message was gone before it could be delivered); NULL reads as
-- `max_attempts`.
ALTER TABLE dead_letters ADD COLUMN reason TEXT;

-- Finds the few deliveries that used up their attempts without scanning
-- every due one (the lease buries those before it claims).
CREATE INDEX retries_attempts ON retries (subscription_id, attempts);
