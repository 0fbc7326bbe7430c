-- One row that `GET /readyz` updates, in a transaction of its own: a
-- database that refuses writes (read-only, locked, full) fails it, where a
-- read would still succeed.
CREATE TABLE readiness (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_us BIGINT  NOT NULL
);
INSERT INTO readiness (id, probed_us) VALUES (1, 0);
