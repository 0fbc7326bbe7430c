//! [`DeadLetterStore`] once for both backends, and the one way a delivery
//! becomes a dead letter ([`insert_dead_letter`]), shared by webhooks and
//! pull subscriptions.

use sqlx::{Database, Executor, Pool};

use super::{DeadLetter, DeadLetterQuery, DeadLetterStore};
use crate::domain::Timestamp;
use crate::storage::topics::{Binds, Rows};
use crate::storage::{SqlBackend, StoreError};

#[async_trait::async_trait]
impl<T> DeadLetterStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    DeadLetter: Rows<T::DB>,
    (i64,): Rows<T::DB>,
    (i64, i64, String, Option<String>): Rows<T::DB>,
    (Option<i64>,): Rows<T::DB>,
{
    async fn dead_letters(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetter>, StoreError> {
        sqlx::query_as(
            "SELECT * FROM dead_letters WHERE id > $1 \
             AND (CAST($2 AS BIGINT) IS NULL OR subscription_id = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR topic = $3) ORDER BY id LIMIT $4",
        )
        .bind(q.after)
        .bind(q.subscription)
        .bind(q.topic.clone())
        .bind(i64::from(q.limit))
        .fetch_all(self.reads())
        .await
        .map_err(T::err)
    }

    async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        sqlx::query_as("SELECT * FROM dead_letters WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reads())
            .await
            .map_err(T::err)
    }

    async fn delete_dead_letter(&self, id: i64) -> Result<bool, StoreError> {
        let done: Option<(i64,)> =
            sqlx::query_as("DELETE FROM dead_letters WHERE id = $1 RETURNING id")
                .bind(id)
                .fetch_optional(self.writes())
                .await
                .map_err(T::err)?;
        Ok(done.is_some())
    }

    async fn redrive(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let row: Option<(i64, i64, String, Option<String>)> = sqlx::query_as(
            "DELETE FROM dead_letters WHERE id = $1 RETURNING subscription_id, position, topic, envelope",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(T::err)?;
        let Some(row) = row else {
            return Ok(false);
        };
        requeue::<T>(&mut tx, &[row], now).await?;
        tx.commit().await.map_err(T::err)?;
        Ok(true)
    }

    async fn redrive_all(
        &self,
        subscription: i64,
        topic: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        // Each page is moved by one DELETE … RETURNING whose rows are then
        // inserted: a dead letter another transaction commits meanwhile is
        // either in the page (deleted and copied) or not (left in place).
        // An INSERT … SELECT followed by a DELETE of the same predicate lost
        // those, under Postgres's READ COMMITTED. Pages stop at the newest
        // dead letter there was when the redrive began, so a subscription
        // that keeps failing cannot keep it going.
        let (last,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(id) FROM dead_letters WHERE subscription_id = $1 \
             AND (CAST($2 AS TEXT) IS NULL OR topic = $2)",
        )
        .bind(subscription)
        .bind(topic.map(str::to_owned))
        .fetch_one(self.writes())
        .await
        .map_err(T::err)?;
        let Some(last) = last else { return Ok(0) };
        let mut moved = 0u64;
        loop {
            let mut tx = self.writes().begin().await.map_err(T::err)?;
            let page: Vec<(i64, i64, String, Option<String>)> = sqlx::query_as(
                "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters \
                 WHERE subscription_id = $1 AND (CAST($2 AS TEXT) IS NULL OR topic = $2) \
                 AND id <= $3 ORDER BY id LIMIT $4) \
                 RETURNING subscription_id, position, topic, envelope",
            )
            .bind(subscription)
            .bind(topic.map(str::to_owned))
            .bind(last)
            .bind(REDRIVE_PAGE)
            .fetch_all(&mut *tx)
            .await
            .map_err(T::err)?;
            requeue::<T>(&mut tx, &page, now).await?;
            tx.commit().await.map_err(T::err)?;
            moved += page.len() as u64;
            if page.len() < REDRIVE_PAGE as usize {
                return Ok(moved);
            }
        }
    }
}

/// Dead letters a bulk redrive moves per transaction.
const REDRIVE_PAGE: i64 = 500;

/// Queues redriven dead letters (subscription, position, topic, envelope)
/// for delivery at `now`, in one statement; a delivery of the same message
/// that is queued already stays as it is.
async fn requeue<T>(
    tx: &mut sqlx::Transaction<'static, T::DB>,
    rows: &[(i64, i64, String, Option<String>)],
    now: Timestamp,
) -> Result<(), StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::<T::DB>::new(
        "INSERT INTO retries (subscription_id, position, topic, next_attempt_us, envelope) ",
    );
    q.push_values(
        rows,
        |mut row, (subscription, position, topic, envelope)| {
            row.push_bind(*subscription)
                .push_bind(*position)
                .push_bind(topic.clone())
                .push_bind(now.0)
                .push_bind(envelope.clone());
        },
    );
    q.push(" ON CONFLICT (subscription_id, position) DO NOTHING");
    q.build().execute(&mut **tx).await.map_err(T::err)?;
    Ok(())
}

/// A delivery on its way to the dead letters, push or pull: the one shape
/// of a dead letter, written by [`insert_dead_letter`].
pub(crate) struct Burial<'a> {
    pub subscription: i64,
    pub position: i64,
    pub topic: &'a str,
    pub attempts: i32,
    /// HTTP status of the last attempt (push only).
    pub status: Option<i32>,
    pub error: &'a str,
    pub first_attempt_us: Option<i64>,
    pub envelope: Option<String>,
    /// `max_attempts`, `retention` …
    pub reason: &'a str,
}

/// Writes a dead letter in the caller's transaction (its row in `retries`
/// is already gone); returns its id.
pub(crate) async fn insert_dead_letter<DB>(
    conn: &mut DB::Connection,
    b: &Burial<'_>,
    now: Timestamp,
) -> Result<i64, sqlx::Error>
where
    DB: crate::storage::topics::Sql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    String: Binds<DB>,
    Option<String>: Binds<DB>,
    i64: Binds<DB>,
    i32: Binds<DB>,
    Option<i32>: Binds<DB>,
    (i64,): Rows<DB>,
{
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO dead_letters (subscription_id, position, topic, attempts, last_status, \
         last_error, first_attempt_us, last_attempt_us, created_us, envelope, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) RETURNING id",
    )
    .bind(b.subscription)
    .bind(b.position)
    .bind(b.topic.to_owned())
    .bind(b.attempts)
    .bind(b.status)
    .bind(b.error.to_owned())
    .bind(b.first_attempt_us.unwrap_or(now.0))
    .bind(now.0)
    .bind(b.envelope.clone())
    .bind(b.reason.to_owned())
    .fetch_one(conn)
    .await?;
    Ok(id)
}
