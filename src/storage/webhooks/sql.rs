//! [`WebhookStore`] once for both backends: plain functions of SQL that
//! runs on SQLite and Postgres alike, generic over the sqlx database of a
//! [`SqlBackend`]. Row counts come from `RETURNING`, which both have.

use sqlx::{Database, Executor, Pool};

use super::outcomes;
use super::{
    DeliveryCounts, Dispatched, Due, Failure, MessagePredicate, NewSubscription, Start,
    Subscription, WebhookStore,
};
use crate::domain::{Message, Position, Timestamp};
use crate::storage::topics::{Binds, Rows};
use crate::storage::{SqlBackend, StoreError};

/// Rows per multi-row INSERT of dispatched deliveries (6 parameters each).
const DISPATCH_INSERT_CHUNK: usize = 250;

#[async_trait::async_trait]
impl<T> WebhookStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    bool: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    Subscription: Rows<T::DB>,
    DeliveryCounts: Rows<T::DB>,
    Due: Rows<T::DB>,
    (i64,): Rows<T::DB>,
    (i64, i64): Rows<T::DB>,
    (Option<i64>, Option<String>): Rows<T::DB>,
    (i64, i64, String, Option<String>): Rows<T::DB>,
{
    async fn create_subscription(
        &self,
        s: NewSubscription,
        start: Start,
        now: Timestamp,
    ) -> Result<Subscription, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let cursor: i64 = match start {
            Start::Head => {
                let (head,): (i64,) = sqlx::query_as("SELECT head FROM log_head WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(T::err)?;
                head
            }
            Start::Earliest => 0,
            Start::After(p) => p,
        };
        let created = sqlx::query_as(
            "INSERT INTO subscriptions (topic, filter, url, secret, max_attempts, min_backoff_ms, \
             max_backoff_ms, timeout_ms, paused, cursor, created_us, updated_us, owner, \
             owner_expires_us, mode, ack_deadline_ms, ordered, event_types, rate_limit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16, \
             $17, $18) RETURNING *",
        )
        .bind(s.topic.clone())
        .bind(s.filter.clone())
        .bind(s.url.clone())
        .bind(s.secret.clone())
        .bind(s.max_attempts)
        .bind(s.min_backoff_ms)
        .bind(s.max_backoff_ms)
        .bind(s.timeout_ms)
        .bind(s.paused)
        .bind(cursor)
        .bind(now.0)
        .bind(s.owner.clone())
        .bind(s.owner_expires_us)
        .bind(s.mode.clone())
        .bind(s.ack_deadline_ms)
        .bind(s.ordered)
        .bind(s.event_types.clone())
        .bind(s.rate_limit)
        .fetch_one(&mut *tx)
        .await
        .map_err(T::err)?;
        tx.commit().await.map_err(T::err)?;
        Ok(created)
    }

    async fn subscriptions(
        &self,
        after: i64,
        limit: u32,
        owner: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        sqlx::query_as(
            "SELECT * FROM subscriptions WHERE id > $1 AND ($3 IS NULL OR owner = $3) \
             ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .bind(owner.map(str::to_owned))
        .fetch_all(self.reads())
        .await
        .map_err(T::err)
    }

    async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError> {
        sqlx::query_as("SELECT * FROM subscriptions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reads())
            .await
            .map_err(T::err)
    }

    async fn delivery_counts(&self, id: i64) -> Result<DeliveryCounts, StoreError> {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM retries WHERE subscription_id = $1 AND attempts = 0) AS pending, \
             (SELECT COUNT(*) FROM retries WHERE subscription_id = $1 AND attempts > 0) AS retrying, \
             (SELECT COUNT(*) FROM dead_letters WHERE subscription_id = $1) AS dead_lettered",
        )
        .bind(id)
        .fetch_one(self.reads())
        .await
        .map_err(T::err)
    }

    async fn update_subscription(
        &self,
        s: &Subscription,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET filter = $2, url = $3, max_attempts = $4, min_backoff_ms = $5, \
             max_backoff_ms = $6, timeout_ms = $7, paused = $8, updated_us = $9, \
             owner_expires_us = $10, ack_deadline_ms = $11, event_types = $12, rate_limit = $13 \
             WHERE id = $1 RETURNING id",
        )
        .bind(s.id)
        .bind(s.filter.clone())
        .bind(s.url.clone())
        .bind(s.max_attempts)
        .bind(s.min_backoff_ms)
        .bind(s.max_backoff_ms)
        .bind(s.timeout_ms)
        .bind(s.paused)
        .bind(now.0)
        .bind(s.owner_expires_us)
        .bind(s.ack_deadline_ms)
        .bind(s.event_types.clone())
        .bind(s.rate_limit)
        .fetch_optional(self.writes())
        .await
        .map_err(T::err)?;
        Ok(done.is_some())
    }

    async fn delete_subscription(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        for sql in [
            "DELETE FROM retries WHERE subscription_id = $1",
            "DELETE FROM dead_letters WHERE subscription_id = $1",
            "DELETE FROM attempts WHERE subscription_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(T::err)?;
        }
        let done: Option<(i64,)> =
            sqlx::query_as("DELETE FROM subscriptions WHERE id = $1 RETURNING id")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(T::err)?;
        tx.commit().await.map_err(T::err)?;
        Ok(done.is_some())
    }

    async fn active_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        sqlx::query_as("SELECT * FROM subscriptions WHERE paused = FALSE ORDER BY id")
            .fetch_all(self.reads())
            .await
            .map_err(T::err)
    }

    async fn count_subscriptions(&self, owner: Option<&str>) -> Result<i64, StoreError> {
        let q = match owner {
            Some(owner) => sqlx::query_as("SELECT COUNT(*) FROM subscriptions WHERE owner = $1")
                .bind(owner.to_owned()),
            None => sqlx::query_as("SELECT COUNT(*) FROM subscriptions WHERE owner IS NULL"),
        };
        let (n,): (i64,) = q.fetch_one(self.reads()).await.map_err(T::err)?;
        Ok(n)
    }

    async fn active_subscriptions_in(&self, ids: &[i64]) -> Result<Vec<Subscription>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = sqlx::QueryBuilder::<T::DB>::new(
                "SELECT * FROM subscriptions WHERE paused = FALSE AND id IN (",
            );
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(") ORDER BY id");
            let rows: Vec<Subscription> = q
                .build_query_as()
                .fetch_all(self.reads())
                .await
                .map_err(T::err)?;
            found.extend(rows);
        }
        Ok(found)
    }

    async fn dispatch(
        &self,
        id: i64,
        cursor: i64,
        topics: Option<&[&str]>,
        limit: u32,
        matches: &MessagePredicate,
        now: Timestamp,
    ) -> Result<Dispatched, StoreError> {
        // Read and match without holding any lock: most passes find
        // nothing for most subscriptions and should cost no write.
        let page = self.read_log(Position(cursor), topics, limit).await?;
        let Some(last) = page.last().map(|m| m.position.0) else {
            return Ok(Dispatched::Unmatched);
        };
        let matched: Vec<&Message> = page.iter().filter(|m| matches(m)).collect();
        if matched.is_empty() && page.len() < super::CURSOR_WRITE_EVERY {
            // The cursor moves on later, with the next match or once
            // enough has been scanned: no fsync per publish.
            return Ok(Dispatched::Unmatched);
        }
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        // Multi-row INSERTs: one statement per chunk, not per message (a
        // statement is a round trip to SQLite's thread).
        for chunk in matched.chunks(DISPATCH_INSERT_CHUNK) {
            let mut q = sqlx::QueryBuilder::<T::DB>::new(
                "INSERT INTO retries (subscription_id, position, topic, next_attempt_us, priority, \
                 msg_key) ",
            );
            q.push_values(chunk, |mut row, m| {
                row.push_bind(id)
                    .push_bind(m.position.0)
                    .push_bind(m.topic.as_str().to_owned())
                    .push_bind(now.0)
                    .push_bind(i32::from(m.priority.get()))
                    .push_bind(m.key.as_ref().map(|k| k.as_str().to_owned()));
            });
            q.push(" ON CONFLICT (subscription_id, position) DO NOTHING");
            q.build().execute(&mut *tx).await.map_err(T::err)?;
        }
        // Compare-and-set, last: if another node or consumer moved the
        // cursor since our read, it queued these messages, and ours roll
        // back. Last, because it locks the subscription's row, which
        // consumers' acks update too: held only until the commit.
        let moved: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET cursor = $3 WHERE id = $1 AND cursor = $2 AND paused = FALSE \
             RETURNING id",
        )
        .bind(id)
        .bind(cursor)
        .bind(last)
        .fetch_optional(&mut *tx)
        .await
        .map_err(T::err)?;
        if moved.is_none() {
            // At once, not when the connection is next used: until then
            // our rows' locks would hold up the dispatch that won.
            tx.rollback().await.map_err(T::err)?;
            return Ok(Dispatched::Lost);
        }
        tx.commit().await.map_err(T::err)?;
        self.queued(matched.len());
        Ok(Dispatched::Moved(page.len()))
    }

    async fn webhook_backlog(&self) -> Result<(i64, i64), StoreError> {
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM retries), (SELECT COUNT(*) FROM dead_letters)")
            .fetch_one(self.reads())
            .await
            .map_err(T::err)
    }

    async fn due_subscriptions(&self, now: Timestamp) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT subscription_id FROM retries WHERE next_attempt_us <= $1",
        )
        .bind(now.0)
        .fetch_all(self.reads())
        .await
        .map_err(T::err)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn claim_due(
        &self,
        id: i64,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Due>, StoreError> {
        // Higher priority first, then in log order; in an ordered
        // subscription, only the oldest pending delivery of each key (one
        // in flight per key). The `+` makes SQLite walk `retries_priority`
        // and stop after the page instead of sorting every due delivery.
        let sql = format!(
            "UPDATE retries SET next_attempt_us = $3 WHERE subscription_id = $1 AND position IN \
             (SELECT position FROM retries r WHERE subscription_id = $1 AND +next_attempt_us <= $2 \
             AND {} ORDER BY priority DESC, position LIMIT $4 {}) \
             RETURNING subscription_id, position, topic, attempts, envelope",
            crate::storage::pull::OLDEST_OF_ITS_KEY,
            T::CLAIM_LOCK
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(now.0)
            .bind(lease_until.0)
            .bind(i64::from(limit))
            .fetch_all(self.writes())
            .await
            .map_err(T::err)
    }

    async fn delivered(&self, due: &Due) -> Result<(), StoreError> {
        outcomes::settle(self, due, "delivered").await
    }

    async fn failed(
        &self,
        due: &Due,
        failure: &Failure,
        next: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        outcomes::failed(self, due, failure, next, now).await
    }

    async fn bury(
        &self,
        due: &Due,
        failure: &Failure,
        envelope: Option<&str>,
        reason: &'static str,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        outcomes::bury(self, due, failure, (envelope, reason), now).await
    }

    async fn expire(&self, due: &Due) -> Result<(), StoreError> {
        outcomes::settle(self, due, "expired").await
    }
}
