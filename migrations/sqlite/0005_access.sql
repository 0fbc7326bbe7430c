-- API tokens. Only a SHA-256 hash of each token's secret is kept; the
-- token itself is shown once, when it is created. A revoked token keeps
-- its row (with `revoked_us`) so that every node's revocation poll sees it.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    subject    TEXT    NOT NULL,
    publish    TEXT    NOT NULL,  -- JSON array of patterns
    subscribe  TEXT    NOT NULL,  -- JSON array of patterns
    admin      BOOLEAN NOT NULL,
    hash       TEXT    NOT NULL,  -- hex SHA-256 of the secret
    created_us INTEGER NOT NULL,
    expires_us INTEGER,
    revoked_us INTEGER
);
CREATE INDEX api_tokens_revoked ON api_tokens (revoked_us);

-- Who created each subscription (`token:ID` or `jwt:SUBJECT`); NULL for
-- those made while access control was off, or by an admin without a
-- subject (only admins manage those). A webhook delivers only while its
-- owner's token is valid: until `owner_expires_us`, and a revoked API
-- token pauses its subscriptions.
ALTER TABLE subscriptions ADD COLUMN owner TEXT;
ALTER TABLE subscriptions ADD COLUMN owner_expires_us INTEGER;
CREATE INDEX subscriptions_owner ON subscriptions (owner, id);
