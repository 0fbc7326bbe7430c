//! Webhook subscriptions, pending deliveries (`retries`) and dead letters.
//!
//! The SQL is the same on both backends (numbered `$N` parameters work in
//! sqlx's SQLite driver too), so [`webhook_store!`] writes the
//! implementation once for each. Postgres adds `FOR UPDATE SKIP LOCKED`,
//! which is what lets several nodes share the work without doing it twice.

use crate::domain::{Message, Timestamp};

use super::StoreError;

/// A subscription's cursor is written when messages matched, or at least
/// this many were scanned without a match.
pub const CURSOR_WRITE_EVERY: usize = 100;

/// Decides which messages a subscription wants.
pub type MessagePredicate = dyn for<'m> Fn(&'m Message) -> bool + Send + Sync;

/// Where a new subscription starts reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only messages published after it is created.
    Head,
    /// Everything retained.
    Earliest,
    /// After this position.
    After(i64),
}

/// A subscription as created.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub topic: String,
    pub filter: Option<String>,
    pub url: String,
    pub secret: String,
    pub max_attempts: i32,
    pub min_backoff_ms: i64,
    pub max_backoff_ms: i64,
    pub timeout_ms: i64,
    pub paused: bool,
}

/// A stored subscription.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscription {
    pub id: i64,
    pub topic: String,
    pub filter: Option<String>,
    pub url: String,
    pub secret: String,
    pub max_attempts: i32,
    pub min_backoff_ms: i64,
    pub max_backoff_ms: i64,
    pub timeout_ms: i64,
    pub paused: bool,
    pub cursor: i64,
    pub delivered: i64,
    pub created_us: i64,
    pub updated_us: i64,
}

/// Deliveries of a subscription by state.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DeliveryCounts {
    /// Waiting for their first attempt.
    pub pending: i64,
    /// Failed at least once, waiting for another attempt.
    pub retrying: i64,
    pub dead_lettered: i64,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub subscription_id: i64,
    pub position: i64,
    pub topic: String,
    /// Failed attempts so far.
    pub attempts: i32,
}

/// The outcome of a failed attempt, as recorded.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Option<i32>,
    pub error: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub subscription_id: i64,
    pub position: i64,
    pub topic: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub first_attempt_us: i64,
    pub last_attempt_us: i64,
    pub created_us: i64,
}

/// Which dead letters to list: oldest first, after the id `after`.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterQuery {
    pub subscription: Option<i64>,
    pub topic: Option<String>,
    pub after: i64,
    pub limit: u32,
}

/// Webhook storage. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_subscription(
        &self,
        s: NewSubscription,
        start: Start,
        now: Timestamp,
    ) -> Result<Subscription, StoreError>;
    /// Subscriptions with an id above `after`, by id.
    async fn subscriptions(&self, after: i64, limit: u32) -> Result<Vec<Subscription>, StoreError>;
    async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError>;
    async fn delivery_counts(&self, id: i64) -> Result<DeliveryCounts, StoreError>;
    /// Writes every mutable field of `s` (read, changed, written back).
    async fn update_subscription(
        &self,
        s: &Subscription,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Deletes the subscription with its pending deliveries and dead letters.
    async fn delete_subscription(&self, id: i64) -> Result<bool, StoreError>;
    async fn active_subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;

    /// Queues the subscription's matching messages after `cursor` (at most
    /// `limit` read) and advances its cursor, in one transaction, if the
    /// cursor is still `cursor`. Returns how many messages were read; 0
    /// when another node moved first, when there is nothing new, or when
    /// nothing matched and the cursor write was deferred.
    #[allow(clippy::too_many_arguments)]
    async fn dispatch(
        &self,
        id: i64,
        cursor: i64,
        topics: Option<&[&str]>,
        limit: u32,
        matches: &MessagePredicate,
        now: Timestamp,
    ) -> Result<usize, StoreError>;

    /// Deliveries waiting for an attempt, and dead letters, in all.
    async fn webhook_backlog(&self) -> Result<(i64, i64), StoreError>;

    /// Subscriptions that have deliveries due now.
    async fn due_subscriptions(&self, now: Timestamp) -> Result<Vec<i64>, StoreError>;

    /// Claims up to `limit` due deliveries of a subscription, leasing each
    /// until `lease_until`.
    async fn claim_due(
        &self,
        id: i64,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Due>, StoreError>;
    async fn delivered(&self, id: i64, position: i64) -> Result<(), StoreError>;
    async fn failed(
        &self,
        due: &Due,
        failure: &Failure,
        next: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Moves the delivery to the dead letters.
    async fn bury(&self, due: &Due, failure: &Failure, now: Timestamp) -> Result<(), StoreError>;

    async fn dead_letters(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetter>, StoreError>;
    async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError>;
    async fn delete_dead_letter(&self, id: i64) -> Result<bool, StoreError>;
    /// Puts the dead letter back in line for a fresh set of attempts.
    async fn redrive(&self, id: i64, now: Timestamp) -> Result<bool, StoreError>;
    /// Redrives a subscription's dead letters (of one topic, if given).
    async fn redrive_all(
        &self,
        subscription: i64,
        topic: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
}

/// Implements [`WebhookStore`] for a backend: `$store` with a `$pool`
/// field for writes and a `$readers` field for plain reads, of database
/// `$db`, and `$lock` appended to row-claiming selects.
/// The calling module provides `err(sqlx::Error) -> StoreError` and
/// `read_in(executor, after, topics, limit)` for reading the log.
macro_rules! webhook_store {
    ($store:ty, $db:ty, $pool:ident, $readers:ident, $lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::storage::webhooks::WebhookStore for $store {
            async fn create_subscription(
                &self,
                s: $crate::storage::webhooks::NewSubscription,
                start: $crate::storage::webhooks::Start,
                now: $crate::domain::Timestamp,
            ) -> Result<$crate::storage::webhooks::Subscription, $crate::storage::StoreError> {
                use $crate::storage::webhooks::Start;
                let mut tx = self.$pool.begin().await.map_err(err)?;
                let cursor: i64 = match start {
                    Start::Head => sqlx::query_scalar("SELECT head FROM log_head WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(err)?,
                    Start::Earliest => 0,
                    Start::After(p) => p,
                };
                let created = sqlx::query_as(concat!(
                    "INSERT INTO subscriptions (topic, filter, url, secret, max_attempts, min_backoff_ms, ",
                    "max_backoff_ms, timeout_ms, paused, cursor, created_us, updated_us) ",
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING *"
                ))
                .bind(&s.topic)
                .bind(&s.filter)
                .bind(&s.url)
                .bind(&s.secret)
                .bind(s.max_attempts)
                .bind(s.min_backoff_ms)
                .bind(s.max_backoff_ms)
                .bind(s.timeout_ms)
                .bind(s.paused)
                .bind(cursor)
                .bind(now.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
                tx.commit().await.map_err(err)?;
                Ok(created)
            }

            async fn subscriptions(&self, after: i64, limit: u32) -> Result<Vec<$crate::storage::webhooks::Subscription>, $crate::storage::StoreError> {
                sqlx::query_as("SELECT * FROM subscriptions WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$readers)
                    .await
                    .map_err(err)
            }

            async fn subscription(&self, id: i64) -> Result<Option<$crate::storage::webhooks::Subscription>, $crate::storage::StoreError> {
                sqlx::query_as("SELECT * FROM subscriptions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$readers)
                    .await
                    .map_err(err)
            }

            async fn delivery_counts(&self, id: i64) -> Result<$crate::storage::webhooks::DeliveryCounts, $crate::storage::StoreError> {
                sqlx::query_as(concat!(
                    "SELECT (SELECT COUNT(*) FROM retries WHERE subscription_id = $1 AND attempts = 0) AS pending, ",
                    "(SELECT COUNT(*) FROM retries WHERE subscription_id = $1 AND attempts > 0) AS retrying, ",
                    "(SELECT COUNT(*) FROM dead_letters WHERE subscription_id = $1) AS dead_lettered"
                ))
                .bind(id)
                .fetch_one(&self.$readers)
                .await
                .map_err(err)
            }

            async fn update_subscription(&self, s: &$crate::storage::webhooks::Subscription, now: $crate::domain::Timestamp) -> Result<bool, $crate::storage::StoreError> {
                let done = sqlx::query(concat!(
                    "UPDATE subscriptions SET filter = $2, url = $3, max_attempts = $4, min_backoff_ms = $5, ",
                    "max_backoff_ms = $6, timeout_ms = $7, paused = $8, updated_us = $9 WHERE id = $1"
                ))
                .bind(s.id)
                .bind(&s.filter)
                .bind(&s.url)
                .bind(s.max_attempts)
                .bind(s.min_backoff_ms)
                .bind(s.max_backoff_ms)
                .bind(s.timeout_ms)
                .bind(s.paused)
                .bind(now.0)
                .execute(&self.$pool)
                .await
                .map_err(err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_subscription(&self, id: i64) -> Result<bool, $crate::storage::StoreError> {
                let mut tx = self.$pool.begin().await.map_err(err)?;
                for sql in [
                    "DELETE FROM retries WHERE subscription_id = $1",
                    "DELETE FROM dead_letters WHERE subscription_id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(err)?;
                }
                let done = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn active_subscriptions(&self) -> Result<Vec<$crate::storage::webhooks::Subscription>, $crate::storage::StoreError> {
                sqlx::query_as("SELECT * FROM subscriptions WHERE paused = FALSE ORDER BY id")
                    .fetch_all(&self.$readers)
                    .await
                    .map_err(err)
            }

            async fn dispatch(
                &self,
                id: i64,
                cursor: i64,
                topics: Option<&[&str]>,
                limit: u32,
                matches: &$crate::storage::webhooks::MessagePredicate,
                now: $crate::domain::Timestamp,
            ) -> Result<usize, $crate::storage::StoreError> {
                // Read and match without holding any lock: most passes find
                // nothing for most subscriptions and should cost no write.
                let page = {
                    let mut conn = self.$readers.acquire().await.map_err(err)?;
                    read_in(&mut conn, cursor, topics, limit).await?
                };
                let Some(last) = page.last().map(|m| m.position.0) else { return Ok(0) };
                let matched: Vec<&$crate::domain::Message> = page.iter().filter(|m| matches(*m)).collect();
                if matched.is_empty() && page.len() < $crate::storage::webhooks::CURSOR_WRITE_EVERY {
                    // The cursor moves on later, with the next match or
                    // once enough has been scanned: no fsync per publish.
                    return Ok(0);
                }
                let mut tx = self.$pool.begin().await.map_err(err)?;
                // Compare-and-set: if another node moved the cursor since
                // our read, it queued these messages; ours rolls back.
                let moved = sqlx::query(
                    "UPDATE subscriptions SET cursor = $3 WHERE id = $1 AND cursor = $2 AND paused = FALSE",
                )
                .bind(id)
                .bind(cursor)
                .bind(last)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                if moved.rows_affected() != 1 {
                    return Ok(0);
                }
                for m in matched {
                    sqlx::query(concat!(
                        "INSERT INTO retries (subscription_id, position, topic, next_attempt_us) ",
                        "VALUES ($1, $2, $3, $4) ON CONFLICT (subscription_id, position) DO NOTHING"
                    ))
                    .bind(id)
                    .bind(m.position.0)
                    .bind(m.topic.as_str())
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                }
                tx.commit().await.map_err(err)?;
                Ok(page.len())
            }

            async fn webhook_backlog(&self) -> Result<(i64, i64), $crate::storage::StoreError> {
                sqlx::query_as("SELECT (SELECT COUNT(*) FROM retries), (SELECT COUNT(*) FROM dead_letters)")
                    .fetch_one(&self.$readers)
                    .await
                    .map_err(err)
            }

            async fn due_subscriptions(&self, now: $crate::domain::Timestamp) -> Result<Vec<i64>, $crate::storage::StoreError> {
                sqlx::query_scalar("SELECT DISTINCT subscription_id FROM retries WHERE next_attempt_us <= $1")
                    .bind(now.0)
                    .fetch_all(&self.$readers)
                    .await
                    .map_err(err)
            }

            async fn claim_due(
                &self,
                id: i64,
                now: $crate::domain::Timestamp,
                lease_until: $crate::domain::Timestamp,
                limit: u32,
            ) -> Result<Vec<$crate::storage::webhooks::Due>, $crate::storage::StoreError> {
                sqlx::query_as(concat!(
                    "UPDATE retries SET next_attempt_us = $3 WHERE subscription_id = $1 AND position IN ",
                    "(SELECT position FROM retries WHERE subscription_id = $1 AND next_attempt_us <= $2 ",
                    "ORDER BY next_attempt_us, position LIMIT $4 ", $lock, ") ",
                    "RETURNING subscription_id, position, topic, attempts"
                ))
                .bind(id)
                .bind(now.0)
                .bind(lease_until.0)
                .bind(i64::from(limit))
                .fetch_all(&self.$pool)
                .await
                .map_err(err)
            }

            async fn delivered(&self, id: i64, position: i64) -> Result<(), $crate::storage::StoreError> {
                let mut tx = self.$pool.begin().await.map_err(err)?;
                let done = sqlx::query("DELETE FROM retries WHERE subscription_id = $1 AND position = $2")
                    .bind(id)
                    .bind(position)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                if done.rows_affected() == 1 {
                    sqlx::query("UPDATE subscriptions SET delivered = delivered + 1 WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
                tx.commit().await.map_err(err)
            }

            async fn failed(
                &self,
                due: &$crate::storage::webhooks::Due,
                failure: &$crate::storage::webhooks::Failure,
                next: $crate::domain::Timestamp,
                now: $crate::domain::Timestamp,
            ) -> Result<(), $crate::storage::StoreError> {
                sqlx::query(concat!(
                    "UPDATE retries SET attempts = $3, next_attempt_us = $4, ",
                    "first_attempt_us = COALESCE(first_attempt_us, $5), last_attempt_us = $5, ",
                    "last_status = $6, last_error = $7 WHERE subscription_id = $1 AND position = $2"
                ))
                .bind(due.subscription_id)
                .bind(due.position)
                .bind(due.attempts + 1)
                .bind(next.0)
                .bind(now.0)
                .bind(failure.status)
                .bind(&failure.error)
                .execute(&self.$pool)
                .await
                .map_err(err)
                .map(drop)
            }

            async fn bury(
                &self,
                due: &$crate::storage::webhooks::Due,
                failure: &$crate::storage::webhooks::Failure,
                now: $crate::domain::Timestamp,
            ) -> Result<(), $crate::storage::StoreError> {
                let mut tx = self.$pool.begin().await.map_err(err)?;
                let first: Option<Option<i64>> = sqlx::query_scalar(
                    "DELETE FROM retries WHERE subscription_id = $1 AND position = $2 RETURNING first_attempt_us",
                )
                .bind(due.subscription_id)
                .bind(due.position)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
                // Gone already (subscription deleted, or redriven twice).
                let Some(first) = first else { return Ok(()) };
                sqlx::query(concat!(
                    "INSERT INTO dead_letters (subscription_id, position, topic, attempts, last_status, ",
                    "last_error, first_attempt_us, last_attempt_us, created_us) ",
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
                ))
                .bind(due.subscription_id)
                .bind(due.position)
                .bind(&due.topic)
                .bind(due.attempts + 1)
                .bind(failure.status)
                .bind(&failure.error)
                .bind(first.unwrap_or(now.0))
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                tx.commit().await.map_err(err)
            }

            async fn dead_letters(&self, q: &$crate::storage::webhooks::DeadLetterQuery) -> Result<Vec<$crate::storage::webhooks::DeadLetter>, $crate::storage::StoreError> {
                sqlx::query_as(concat!(
                    "SELECT * FROM dead_letters WHERE id > $1 ",
                    "AND (CAST($2 AS BIGINT) IS NULL OR subscription_id = $2) ",
                    "AND (CAST($3 AS TEXT) IS NULL OR topic = $3) ORDER BY id LIMIT $4"
                ))
                .bind(q.after)
                .bind(q.subscription)
                .bind(&q.topic)
                .bind(i64::from(q.limit))
                .fetch_all(&self.$readers)
                .await
                .map_err(err)
            }

            async fn dead_letter(&self, id: i64) -> Result<Option<$crate::storage::webhooks::DeadLetter>, $crate::storage::StoreError> {
                sqlx::query_as("SELECT * FROM dead_letters WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$readers)
                    .await
                    .map_err(err)
            }

            async fn delete_dead_letter(&self, id: i64) -> Result<bool, $crate::storage::StoreError> {
                let done = sqlx::query("DELETE FROM dead_letters WHERE id = $1")
                    .bind(id)
                    .execute(&self.$pool)
                    .await
                    .map_err(err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn redrive(&self, id: i64, now: $crate::domain::Timestamp) -> Result<bool, $crate::storage::StoreError> {
                let mut tx = self.$pool.begin().await.map_err(err)?;
                let row: Option<(i64, i64, String)> = sqlx::query_as(
                    "DELETE FROM dead_letters WHERE id = $1 RETURNING subscription_id, position, topic",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
                let Some((subscription, position, topic)) = row else { return Ok(false) };
                sqlx::query(concat!(
                    "INSERT INTO retries (subscription_id, position, topic, next_attempt_us) ",
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (subscription_id, position) DO NOTHING"
                ))
                .bind(subscription)
                .bind(position)
                .bind(topic)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                tx.commit().await.map_err(err)?;
                Ok(true)
            }

            async fn redrive_all(&self, subscription: i64, topic: Option<&str>, now: $crate::domain::Timestamp) -> Result<u64, $crate::storage::StoreError> {
                let mut tx = self.$pool.begin().await.map_err(err)?;
                sqlx::query(concat!(
                    "INSERT INTO retries (subscription_id, position, topic, next_attempt_us) ",
                    "SELECT subscription_id, position, topic, $3 FROM dead_letters ",
                    "WHERE subscription_id = $1 AND (CAST($2 AS TEXT) IS NULL OR topic = $2) ",
                    "ON CONFLICT (subscription_id, position) DO NOTHING"
                ))
                .bind(subscription)
                .bind(topic)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                let done = sqlx::query(
                    "DELETE FROM dead_letters WHERE subscription_id = $1 AND (CAST($2 AS TEXT) IS NULL OR topic = $2)",
                )
                .bind(subscription)
                .bind(topic)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                tx.commit().await.map_err(err)?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use webhook_store;
