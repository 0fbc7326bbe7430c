-- Presence across nodes (issue 16). Each node keeps its live streams here
-- and renews its lease; rows of a node whose lease lapsed are ignored by
-- every reader and removed by whichever node notices first.
CREATE TABLE nodes (
    node TEXT PRIMARY KEY,
    started_us BIGINT NOT NULL,
    lease_until_us BIGINT NOT NULL
);

-- One row per live stream: its topics are the patterns it selects,
-- separated by commas (names and patterns have no commas).
CREATE TABLE presence (
    connection TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    client TEXT NOT NULL,
    topics TEXT NOT NULL,
    since_us BIGINT NOT NULL
);
CREATE INDEX presence_node ON presence (node);
