-- Ordering keys and priorities in the delivery ledger (issue 13).
-- `ordered`: messages of one key are delivered one at a time, in log order.
ALTER TABLE subscriptions ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT FALSE;

-- Each pending delivery keeps its message's priority and key (copied at
-- dispatch), so a lease or a push can order by them without the message.
ALTER TABLE retries ADD COLUMN priority SMALLINT NOT NULL DEFAULT 3;
ALTER TABLE retries ADD COLUMN msg_key TEXT;

-- Claims walk a subscription's deliveries highest priority first, then in
-- log order, and stop after the page.
CREATE INDEX retries_priority ON retries (subscription_id, priority DESC, position);
-- An ordered claim skips a delivery whose key has an earlier one pending.
CREATE INDEX retries_key ON retries (subscription_id, msg_key, position) WHERE msg_key IS NOT NULL;
