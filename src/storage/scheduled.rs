//! Publish options that storage keeps: scheduled messages (waiting for
//! their time, then appended by [`super::Store::publish_due`]) and
//! idempotency-key records (written beside what they answer for).
//!
//! The SQL is the same on both backends: [`ScheduleStore`] is implemented
//! once for every [`SqlBackend`].

use std::time::Duration;

use sqlx::{Database, Executor, FromRow, Pool, QueryBuilder};

use super::topics::{Binds, Rows};
use super::{SqlBackend, StoreError};
use crate::domain::idempotency::{KeyClaim, Recorded, scheduled_body};
use crate::domain::{NewMessage, Timestamp};

/// A scheduled message as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ScheduledRow {
    pub id: i64,
    pub topic: String,
    pub event: String,
    pub is_json: bool,
    pub payload: String,
    pub content_type: String,
    pub ttl_ms: Option<i64>,
    pub priority: i16,
    pub msg_key: Option<String>,
    pub deliver_at_us: i64,
    pub created_us: i64,
}

const COLUMNS: &str = "id, topic, event, is_json, payload, content_type, ttl_ms, priority, \
     msg_key, deliver_at_us, created_us";

/// Rows per multi-row INSERT of schedules.
const INSERT_CHUNK: usize = 500;

impl ScheduledRow {
    /// The message to append.
    pub fn into_message(self) -> Result<NewMessage, StoreError> {
        let id = self.id;
        let f = super::StoredFields::check(
            &self.topic,
            &self.event,
            self.is_json,
            self.payload,
            self.priority,
            self.msg_key,
        )
        .map_err(|e| StoreError::Corrupt(format!("schedule {id}: {e}")))?;
        Ok(NewMessage {
            topic: f.topic,
            event: f.event,
            payload: f.payload,
            content_type: self.content_type,
            ttl: self
                .ttl_ms
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            priority: f.priority,
            key: f.key,
        })
    }
}

/// Scheduled messages and idempotency keys. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait ScheduleStore: Send + Sync {
    /// The live record of `key` on `topic` (created at or after
    /// `fresh_after`), if any.
    async fn recorded_key(
        &self,
        topic: &str,
        key: &str,
        fresh_after: Timestamp,
    ) -> Result<Option<Recorded>, StoreError>;
    /// Removes records created before `before`; returns how many.
    async fn prune_keys(&self, before: Timestamp) -> Result<u64, StoreError>;
    /// Stores `messages` to be appended at `deliver_at`, and records the
    /// key (with the `202` answer) in the same transaction. Returns the
    /// schedules' ids, in order.
    async fn schedule(
        &self,
        messages: Vec<NewMessage>,
        deliver_at: Timestamp,
        key: Option<KeyClaim>,
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError>;
    /// Schedules by id after `after` (of `topic` only, if given).
    async fn scheduled(
        &self,
        topic: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ScheduledRow>, StoreError>;
    async fn scheduled_one(&self, id: i64) -> Result<Option<ScheduledRow>, StoreError>;
    /// Deletes a schedule that has not been appended; false if there is
    /// none (unknown, cancelled, or appended already).
    async fn cancel_scheduled(&self, id: i64) -> Result<bool, StoreError>;
    /// When the next schedule is due, if any.
    async fn next_schedule_due(&self) -> Result<Option<Timestamp>, StoreError>;
}

#[async_trait::async_trait]
impl<T> ScheduleStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    for<'q> &'q str: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    i16: Binds<T::DB>,
    bool: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    ScheduledRow: Rows<T::DB>,
    (i64,): Rows<T::DB>,
    (Option<i64>,): Rows<T::DB>,
    (String, i32, String): Rows<T::DB>,
{
    async fn recorded_key(
        &self,
        topic: &str,
        key: &str,
        fresh_after: Timestamp,
    ) -> Result<Option<Recorded>, StoreError> {
        let row: Option<(String, i32, String)> = sqlx::query_as(
            "SELECT fingerprint, status, response FROM idempotency_keys \
             WHERE topic = $1 AND key = $2 AND created_us >= $3",
        )
        .bind(topic)
        .bind(key)
        .bind(fresh_after.0)
        // A reader: on SQLite the writer connection is the group commit's.
        .fetch_optional(self.reads())
        .await
        .map_err(T::err)?;
        Ok(row.map(|(fingerprint, status, body)| Recorded {
            fingerprint,
            status: u16::try_from(status).unwrap_or(500),
            body,
        }))
    }

    async fn prune_keys(&self, before: Timestamp) -> Result<u64, StoreError> {
        // Generic over the database, which has no common rows-affected.
        let gone: Vec<(i64,)> = sqlx::query_as(
            "DELETE FROM idempotency_keys WHERE created_us < $1 RETURNING created_us",
        )
        .bind(before.0)
        .fetch_all(self.writes())
        .await
        .map_err(T::err)?;
        Ok(gone.len() as u64)
    }

    async fn schedule(
        &self,
        messages: Vec<NewMessage>,
        deliver_at: Timestamp,
        key: Option<KeyClaim>,
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let mut ids = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<T::DB>::new(
                "INSERT INTO scheduled (topic, event, is_json, payload, content_type, ttl_ms, \
                 priority, msg_key, deliver_at_us, created_us) ",
            );
            q.push_values(chunk, |mut row, m| {
                row.push_bind(m.topic.as_str().to_owned())
                    .push_bind(m.event.as_str().to_owned())
                    .push_bind(m.payload.is_json())
                    .push_bind(m.payload.as_str().to_owned())
                    .push_bind(m.content_type.clone())
                    .push_bind(m.ttl.map(|t| t.as_millis() as i64))
                    .push_bind(i16::from(m.priority.get()))
                    .push_bind(m.key.as_ref().map(|k| k.as_str().to_owned()))
                    .push_bind(deliver_at.0)
                    .push_bind(now.0);
            });
            q.push(" RETURNING id");
            let rows: Vec<(i64,)> = q
                .build_query_as()
                .fetch_all(&mut *tx)
                .await
                .map_err(T::err)?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        // Ids come back in insertion order on both backends; sorting makes
        // sure of it (one transaction's ids ascend).
        ids.sort_unstable();
        if let (Some(claim), Some(first)) = (&key, messages.first()) {
            let body = scheduled_body(&ids, &first.topic, deliver_at, claim.batch);
            record_key::<T::DB>(&mut *tx, claim, 202, &body, now)
                .await
                .map_err(T::err)?;
        }
        tx.commit().await.map_err(T::err)?;
        Ok(ids)
    }

    async fn scheduled(
        &self,
        topic: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ScheduledRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM scheduled WHERE id > $1 AND ($2 = '' OR topic = $2) \
             ORDER BY id LIMIT $3"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(topic.unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(T::err)
    }

    async fn scheduled_one(&self, id: i64) -> Result<Option<ScheduledRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM scheduled WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.reads())
            .await
            .map_err(T::err)
    }

    async fn cancel_scheduled(&self, id: i64) -> Result<bool, StoreError> {
        // On the writer: on SQLite it waits for an append of due schedules
        // to commit, on Postgres for its row lock. Either the schedule is
        // cancelled here or it was appended, never both.
        let gone: Option<(i64,)> =
            sqlx::query_as("DELETE FROM scheduled WHERE id = $1 RETURNING id")
                .bind(id)
                .fetch_optional(self.writes())
                .await
                .map_err(T::err)?;
        Ok(gone.is_some())
    }

    async fn next_schedule_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let (next,): (Option<i64>,) = sqlx::query_as("SELECT MIN(deliver_at_us) FROM scheduled")
            .fetch_one(self.reads())
            .await
            .map_err(T::err)?;
        Ok(next.map(Timestamp))
    }
}

/// Up to `limit` schedules due at `now`, oldest due first (then in order
/// of scheduling). On Postgres, rows other transactions hold are skipped
/// and the rest stay locked until the caller's transaction ends.
pub(crate) async fn due_rows<'c, DB, E>(
    ex: E,
    now: Timestamp,
    limit: u32,
    claim_lock: &str,
) -> Result<Vec<ScheduledRow>, sqlx::Error>
where
    DB: super::topics::Sql,
    E: Executor<'c, Database = DB>,
    i64: Binds<DB>,
    ScheduledRow: Rows<DB>,
{
    let sql = format!(
        "SELECT {COLUMNS} FROM scheduled WHERE deliver_at_us <= $1 \
         ORDER BY deliver_at_us, id LIMIT $2 {claim_lock}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(ex)
        .await
}

/// Records an idempotency key and its answer inside the caller's
/// transaction. A record past the window is replaced; a live one makes the
/// INSERT fail (a unique violation: [`StoreError::DuplicateKey`]).
pub(crate) async fn record_key<DB>(
    conn: &mut DB::Connection,
    claim: &KeyClaim,
    status: i32,
    body: &str,
    now: Timestamp,
) -> Result<(), sqlx::Error>
where
    DB: super::topics::Sql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    i64: Binds<DB>,
    i32: Binds<DB>,
{
    sqlx::query("DELETE FROM idempotency_keys WHERE topic = $1 AND key = $2 AND created_us < $3")
        .bind(claim.topic.as_str())
        .bind(claim.key.as_str())
        .bind(claim.stale_before.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (topic, key, fingerprint, status, response, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(claim.topic.as_str())
    .bind(claim.key.as_str())
    .bind(claim.fingerprint.as_str())
    .bind(status)
    .bind(body)
    .bind(now.0)
    .execute(&mut *conn)
    .await
    .map(drop)
}
