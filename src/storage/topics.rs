//! Topic configuration and retention: the configuration row, deleting a
//! topic, the pruner's bounded deletes, and the per-topic retention marks
//! that make gaps exact.
//!
//! The SQL is the same on both backends, so it is written once, in plain
//! functions generic over the sqlx database; [`super::sqlite`] and
//! [`super::postgres`] call them with their pools and add what only they
//! need (the SQLite writer's memory of topics, the Postgres log lock).

use sqlx::{Database, Encode, Executor, FromRow, Type};

use super::StoreError;
use crate::domain::{Position, Timestamp, TopicName};

/// Rows one prune or delete statement removes at most, so a pass never
/// holds SQLite's writer or Postgres locks for long.
pub const PRUNE_BATCH: u32 = 1000;

/// A topic as the pruner sees it.
#[derive(Debug, Clone, FromRow)]
pub struct PruneCandidate {
    pub name: String,
    pub last_seq: i64,
    pub config: Option<String>,
    /// Commit time and seq of its oldest retained message, if any.
    pub oldest_us: Option<i64>,
    pub oldest_seq: Option<i64>,
}

/// What one prune statement may remove of a topic: messages committed
/// before `before`, or numbered up to `through_seq`.
#[derive(Debug, Clone, Copy)]
pub struct PruneBounds {
    pub before: Option<Timestamp>,
    pub through_seq: Option<i64>,
}

/// Topic configuration and retention. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait TopicStore: Send + Sync {
    /// Sets a topic's configuration (JSON text), creating the topic.
    async fn put_topic_config(
        &self,
        name: &TopicName,
        config: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The stored configuration text, if the topic exists and has one.
    async fn topic_config(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Every topic whose configuration sets `max_subscribers`, with that
    /// configuration's text.
    async fn limited_topics(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Deletes the topic, its messages and its pending deliveries, and
    /// marks its messages as gone for resuming readers. False if unknown.
    async fn delete_topic(&self, name: &TopicName) -> Result<bool, StoreError>;
    /// The topics that lost messages after `after`: (topic, highest
    /// position removed).
    async fn retention_marks(&self, after: Position) -> Result<Vec<(String, i64)>, StoreError>;
    /// The topic's oldest retained message, if it has any.
    async fn oldest_retained(&self, name: &str) -> Result<Option<Position>, StoreError>;
    async fn prune_candidates(&self) -> Result<Vec<PruneCandidate>, StoreError>;
    /// Removes up to [`PRUNE_BATCH`] of the topic's oldest messages within
    /// `bounds` and advances its mark, in one transaction. Returns how many.
    async fn prune_topic(&self, topic: &str, bounds: PruneBounds) -> Result<u64, StoreError>;
    /// Removes up to [`PRUNE_BATCH`] expired messages with their pending
    /// deliveries (counted as expired). Returns how many messages.
    async fn prune_expired(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Gives freed pages back to the file system where the backend can.
    async fn reclaim_space(&self) -> Result<(), StoreError>;
}

/// A database the shared SQL runs on (its arguments can be sent).
pub trait Sql: Database<Arguments: sqlx::IntoArguments<Self>> {}
impl<DB: Database<Arguments: sqlx::IntoArguments<DB>>> Sql for DB {}

/// `for<'q> T: Encode + Type` for every value herald binds.
pub trait Binds<DB: Database>: for<'q> Encode<'q, DB> + Type<DB> + Send {}
impl<DB: Database, T: for<'q> Encode<'q, DB> + Type<DB> + Send> Binds<DB> for T {}

/// A row type the shared SQL decodes: `for<'r> T: FromRow`, sendable.
pub trait Rows<DB: Database>: for<'r> FromRow<'r, DB::Row> + Send + Unpin {}
impl<DB: Database, T: for<'r> FromRow<'r, DB::Row> + Send + Unpin> Rows<DB> for T {}

pub(super) async fn put_config<'c, DB, E>(
    ex: E,
    name: &str,
    config: &str,
    now: i64,
) -> Result<(), sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    i64: Binds<DB>,
{
    sqlx::query(
        "INSERT INTO topics (name, created_us, config, config_updated_us) VALUES ($1, $2, $3, $2) \
         ON CONFLICT (name) DO UPDATE SET config = excluded.config, \
         config_updated_us = excluded.config_updated_us",
    )
    .bind(name)
    .bind(now)
    .bind(config)
    .execute(ex)
    .await
    .map(drop)
}

pub(super) async fn config_of<'c, DB, E>(ex: E, name: &str) -> Result<Option<String>, sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    (Option<String>,): for<'r> FromRow<'r, DB::Row>,
{
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT config FROM topics WHERE name = $1")
            .bind(name)
            .fetch_optional(ex)
            .await?;
    Ok(row.and_then(|(c,)| c))
}

/// Topics whose configuration text names `max_subscribers` (the caller
/// parses it).
pub(super) async fn limited<'c, DB, E>(ex: E) -> Result<Vec<(String, String)>, sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    (String, String): for<'r> FromRow<'r, DB::Row>,
{
    sqlx::query_as(
        "SELECT name, config FROM topics WHERE config LIKE '%\"max\\_subscribers\"%' ESCAPE '\\'",
    )
    .fetch_all(ex)
    .await
}

pub(super) async fn marks_after<'c, DB, E>(
    ex: E,
    after: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    i64: Binds<DB>,
    (String, i64): for<'r> FromRow<'r, DB::Row>,
{
    sqlx::query_as("SELECT topic, through FROM retention_marks WHERE through > $1")
        .bind(after)
        .fetch_all(ex)
        .await
}

/// The topic's last seq, if the topic exists.
pub(super) async fn last_seq<'c, DB, E>(ex: E, name: &str) -> Result<Option<i64>, sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let row: Option<(i64,)> = sqlx::query_as("SELECT last_seq FROM topics WHERE name = $1")
        .bind(name)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|(s,)| s))
}

pub(super) async fn oldest_of<'c, DB, E>(ex: E, name: &str) -> Result<Option<i64>, sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT position FROM messages WHERE topic = $1 ORDER BY position LIMIT 1")
            .bind(name)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|(p,)| p))
}

pub(super) async fn candidates<'c, DB, E>(ex: E) -> Result<Vec<PruneCandidate>, sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    PruneCandidate: for<'r> FromRow<'r, DB::Row>,
{
    sqlx::query_as(
        "SELECT t.name, t.last_seq, t.config, \
         (SELECT m.time_us FROM messages m WHERE m.topic = t.name ORDER BY m.position LIMIT 1) AS oldest_us, \
         (SELECT m.seq FROM messages m WHERE m.topic = t.name ORDER BY m.position LIMIT 1) AS oldest_seq \
         FROM topics t",
    )
    .fetch_all(ex)
    .await
}

/// One prune step in the caller's transaction: delete a batch within
/// `bounds` and raise the topic's mark to what went, together, so a reader
/// that misses a message always finds the mark. Returns how many went.
pub(super) async fn prune_step<DB>(
    conn: &mut DB::Connection,
    topic: &str,
    bounds: PruneBounds,
) -> Result<u64, sqlx::Error>
where
    DB: Sql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    i64: Binds<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let deleted: Vec<(i64,)> = sqlx::query_as(
        "DELETE FROM messages WHERE position IN (SELECT position FROM messages \
         WHERE topic = $1 AND (time_us < $2 OR seq <= $3) ORDER BY position LIMIT $4) \
         RETURNING position",
    )
    .bind(topic)
    .bind(bounds.before.map_or(i64::MIN, |t| t.0))
    .bind(bounds.through_seq.unwrap_or(0))
    .bind(i64::from(PRUNE_BATCH))
    .fetch_all(&mut *conn)
    .await?;
    if let Some(through) = deleted.iter().map(|(p,)| *p).max() {
        raise_mark(&mut *conn, topic, through).await?;
    }
    Ok(deleted.len() as u64)
}

/// Raises `topic`'s mark to `through` (never lowers it).
pub(super) async fn raise_mark<'c, DB, E>(
    ex: E,
    topic: &str,
    through: i64,
) -> Result<(), sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    i64: Binds<DB>,
{
    sqlx::query(
        "INSERT INTO retention_marks (topic, through) VALUES ($1, $2) \
         ON CONFLICT (topic) DO UPDATE SET through = CASE \
         WHEN excluded.through > retention_marks.through THEN excluded.through \
         ELSE retention_marks.through END",
    )
    .bind(topic)
    .bind(through)
    .execute(ex)
    .await
    .map(drop)
}

/// The last step of a topic delete, inside the caller's transaction (which
/// holds whatever orders it with publishes): the messages published since
/// the batches, the pending deliveries, scheduled messages and idempotency
/// keys, the row, and the mark.
pub(super) async fn finish_delete<DB>(
    conn: &mut DB::Connection,
    topic: &str,
) -> Result<bool, sqlx::Error>
where
    DB: Sql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    i64: Binds<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    (Option<i64>,): for<'r> FromRow<'r, DB::Row>,
{
    let (last,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(position) FROM messages WHERE topic = $1")
            .bind(topic)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query("DELETE FROM messages WHERE topic = $1")
        .bind(topic)
        .execute(&mut *conn)
        .await?;
    // Its pending deliveries, scheduled messages, and idempotency keys (a
    // replay must not answer for messages that are gone).
    for sql in [
        "DELETE FROM retries WHERE topic = $1",
        "DELETE FROM scheduled WHERE topic = $1",
        "DELETE FROM idempotency_keys WHERE topic = $1",
    ] {
        sqlx::query(sql).bind(topic).execute(&mut *conn).await?;
    }
    let gone: Vec<(i64,)> = sqlx::query_as("DELETE FROM topics WHERE name = $1 RETURNING last_seq")
        .bind(topic)
        .fetch_all(&mut *conn)
        .await?;
    if let Some(last) = last {
        raise_mark(&mut *conn, topic, last).await?;
    }
    Ok(!gone.is_empty())
}

/// Deletes one batch of expired messages with their pending deliveries,
/// counting those as expired on their subscriptions. Returns how many
/// messages.
pub(super) async fn delete_expired<DB>(
    conn: &mut DB::Connection,
    now: i64,
) -> Result<u64, sqlx::Error>
where
    DB: Sql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    i64: Binds<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let gone: Vec<(i64,)> = sqlx::query_as(
        "DELETE FROM messages WHERE position IN (SELECT position FROM messages \
         WHERE expires_us IS NOT NULL AND expires_us <= $1 LIMIT $2) RETURNING position",
    )
    .bind(now)
    .bind(i64::from(PRUNE_BATCH))
    .fetch_all(&mut *conn)
    .await?;
    if gone.is_empty() {
        return Ok(0);
    }
    let (low, high) = gone.iter().fold((i64::MAX, i64::MIN), |(lo, hi), (p,)| {
        (lo.min(*p), hi.max(*p))
    });
    // Deliveries whose message no longer exists in the range just pruned.
    sqlx::query(
        "UPDATE subscriptions SET expired = expired + (SELECT COUNT(*) FROM retries r \
         WHERE r.subscription_id = subscriptions.id AND r.position BETWEEN $1 AND $2 \
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.position = r.position)) \
         WHERE id IN (SELECT subscription_id FROM retries WHERE position BETWEEN $1 AND $2)",
    )
    .bind(low)
    .bind(high)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM retries WHERE position BETWEEN $1 AND $2 \
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.position = retries.position)",
    )
    .bind(low)
    .bind(high)
    .execute(&mut *conn)
    .await?;
    Ok(gone.len() as u64)
}
