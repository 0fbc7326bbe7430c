//! Pull subscriptions on the webhook ledger. The same cursor and dispatch
//! that queue webhook deliveries fill `retries` for a pull subscription;
//! a consumer then *leases* due rows: `attempts + 1`, and `leased_until` =
//! `next_attempt_us` = the lease's end. An ack deletes a row still leased
//! with the same attempt; a nack or the end of a lease makes it due again
//! (redelivered with `attempt + 1`); a due row whose attempts reached
//! `max_attempts` becomes a dead letter.
//!
//! [`PullStore`] is implemented once, for every [`SqlBackend`]. Postgres
//! adds `FOR UPDATE SKIP LOCKED` to the claims, so consumers on several
//! nodes never lease one row twice at the same time.

use std::collections::HashMap;

use sqlx::{Database, Executor, FromRow, Pool, Transaction};

use super::topics::Binds;
use super::webhooks::Start;
use super::{MessageRow, SqlBackend, StoreError};
use crate::domain::{AckId, Message, Timestamp};

/// Dead-letter reason: leased `max_attempts` times without an ack.
pub const REASON_MAX_ATTEMPTS: &str = "max_attempts";
/// Dead-letter reason: the message was gone (retention) before a lease.
pub const REASON_RETENTION: &str = "retention";
/// Most rows buried per lease transaction.
const BURY_PAGE: i64 = 1000;

/// A delivery leased to a consumer.
#[derive(Debug, Clone)]
pub struct Leased {
    pub ack_id: AckId,
    /// The message envelope (JSON).
    pub envelope: String,
    /// Its event type, for the SSE `event:` line.
    pub event: String,
}

/// What one lease did.
#[derive(Debug, Default)]
pub struct LeaseOutcome {
    pub leased: Vec<Leased>,
    /// Rows claimed but dropped instead (message expired or no longer
    /// retained): more may be due.
    pub dropped: usize,
}

/// A pull subscription's ledger now.
#[derive(Debug, Clone, Default, FromRow)]
pub struct PullStats {
    /// Rows not leased now: due, or waiting out a nack's delay.
    pub backlog: i64,
    /// Rows leased now.
    pub in_flight: i64,
    /// Commit time of the oldest message not acked yet.
    pub oldest_us: Option<i64>,
}

/// Pull-subscription storage. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait PullStore: Send + Sync {
    /// In one transaction: buries due rows that reached `max_attempts`,
    /// then leases up to `n` due rows in position order until `until`.
    async fn lease(
        &self,
        sub: i64,
        now: Timestamp,
        until: Timestamp,
        n: u32,
        max_attempts: i32,
    ) -> Result<LeaseOutcome, StoreError>;
    /// Deletes the rows still leased under these ids and counts them as
    /// delivered; returns the ids acked.
    async fn ack(&self, sub: i64, ids: &[AckId], now: Timestamp) -> Result<Vec<AckId>, StoreError>;
    /// Moves rows still leased under these ids to `next`: still leased
    /// until then (`keep_lease`, an extend) or due then (a nack). Returns
    /// the ids changed.
    async fn relet(
        &self,
        sub: i64,
        ids: &[(AckId, Timestamp)],
        keep_lease: bool,
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError>;
    /// Those of `ids` still leased now.
    async fn still_leased(
        &self,
        sub: i64,
        ids: &[AckId],
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError>;
    /// Drops the subscription's pending rows and moves its cursor; false
    /// if it does not exist.
    async fn seek(&self, sub: i64, to: Start, now: Timestamp) -> Result<bool, StoreError>;
    async fn pull_stats(&self, sub: i64, now: Timestamp) -> Result<PullStats, StoreError>;
    /// When the next row of the subscription becomes due (or is due).
    async fn next_due(&self, sub: i64) -> Result<Option<Timestamp>, StoreError>;
}

/// A row claimed or buried.
#[derive(Debug, FromRow)]
struct Row {
    position: i64,
    topic: String,
    attempts: i32,
    first_attempt_us: Option<i64>,
    envelope: Option<String>,
}

const ROW: &str = "position, topic, attempts, first_attempt_us, envelope";

/// `$first, $first+1, …` (n of them).
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shorthand for the row types this module decodes.
trait Rows<DB: Database>: for<'r> FromRow<'r, DB::Row> + Send + Unpin {}
impl<DB: Database, T: for<'r> FromRow<'r, DB::Row> + Send + Unpin> Rows<DB> for T {}

#[async_trait::async_trait]
impl<T> PullStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    MessageRow: Rows<T::DB>,
    PullStats: Rows<T::DB>,
    Row: Rows<T::DB>,
    (i64,): Rows<T::DB>,
    (i64, i32): Rows<T::DB>,
    (Option<i64>,): Rows<T::DB>,
{
    async fn lease(
        &self,
        sub: i64,
        now: Timestamp,
        until: Timestamp,
        n: u32,
        max_attempts: i32,
    ) -> Result<LeaseOutcome, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let buried: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "DELETE FROM retries WHERE subscription_id = $1 AND position IN \
             (SELECT position FROM retries WHERE subscription_id = $1 AND next_attempt_us <= $2 \
             AND attempts >= $3 ORDER BY position LIMIT $4 {}) RETURNING {ROW}",
            T::CLAIM_LOCK
        )))
        .bind(sub)
        .bind(now.0)
        .bind(max_attempts)
        .bind(BURY_PAGE)
        .fetch_all(&mut *tx)
        .await
        .map_err(T::err)?;
        let error = format!("leased {max_attempts} times without an ack");
        let messages = messages_in::<T>(&mut tx, &buried).await?;
        for row in &buried {
            let envelope = envelope_of(row, &messages).map(|(e, _)| e);
            bury::<T>(
                &mut tx,
                sub,
                row,
                &error,
                REASON_MAX_ATTEMPTS,
                envelope,
                now,
            )
            .await?;
        }
        let mut claimed: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE retries SET attempts = attempts + 1, leased_until = $3, next_attempt_us = $3, \
             first_attempt_us = COALESCE(first_attempt_us, $2), last_attempt_us = $2 \
             WHERE subscription_id = $1 AND position IN \
             (SELECT position FROM retries WHERE subscription_id = $1 AND next_attempt_us <= $2 \
             AND attempts < $5 ORDER BY position LIMIT $4 {}) RETURNING {ROW}",
            T::CLAIM_LOCK
        )))
        .bind(sub)
        .bind(now.0)
        .bind(until.0)
        .bind(i64::from(n))
        .bind(max_attempts)
        .fetch_all(&mut *tx)
        .await
        .map_err(T::err)?;
        claimed.sort_by_key(|r| r.position);
        let messages = messages_in::<T>(&mut tx, &claimed).await?;
        let mut out = LeaseOutcome::default();
        for row in claimed {
            if messages
                .get(&row.position)
                .is_some_and(|m| m.is_expired(now))
            {
                // Expired before it was handed out: dropped and counted,
                // never sent, and not a dead letter (as for webhooks).
                drop_expired::<T>(&mut tx, sub, row.position).await?;
                out.dropped += 1;
                continue;
            }
            match envelope_of(&row, &messages) {
                Some((envelope, event)) => out.leased.push(Leased {
                    ack_id: AckId {
                        position: row.position,
                        attempt: row.attempts,
                    },
                    envelope,
                    event,
                }),
                None => {
                    sqlx::query("DELETE FROM retries WHERE subscription_id = $1 AND position = $2")
                        .bind(sub)
                        .bind(row.position)
                        .execute(&mut *tx)
                        .await
                        .map_err(T::err)?;
                    let error = "the message is no longer retained";
                    bury::<T>(&mut tx, sub, &row, error, REASON_RETENTION, None, now).await?;
                    out.dropped += 1;
                }
            }
        }
        tx.commit().await.map_err(T::err)?;
        Ok(out)
    }

    async fn ack(&self, sub: i64, ids: &[AckId], now: Timestamp) -> Result<Vec<AckId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let n = ids.len();
        // Row values pin each position to its attempt; the plain `IN`
        // beside them lets the primary key find the rows.
        let pairs: Vec<String> = (0..n)
            .map(|i| format!("(${}, ${})", 3 + i, 3 + n + i))
            .collect();
        let sql = format!(
            "DELETE FROM retries WHERE subscription_id = $1 AND leased_until > $2 \
             AND position IN ({}) AND (position, attempts) IN (VALUES {}) \
             RETURNING position, attempts",
            placeholders(3, n),
            pairs.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(sub)
            .bind(now.0);
        for id in ids {
            q = q.bind(id.position);
        }
        for id in ids {
            q = q.bind(id.attempt);
        }
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let done: Vec<(i64, i32)> = q.fetch_all(&mut *tx).await.map_err(T::err)?;
        if !done.is_empty() {
            sqlx::query("UPDATE subscriptions SET delivered = delivered + $2 WHERE id = $1")
                .bind(sub)
                .bind(done.len() as i64)
                .execute(&mut *tx)
                .await
                .map_err(T::err)?;
        }
        tx.commit().await.map_err(T::err)?;
        Ok(done
            .into_iter()
            .map(|(position, attempt)| AckId { position, attempt })
            .collect())
    }

    async fn relet(
        &self,
        sub: i64,
        ids: &[(AckId, Timestamp)],
        keep_lease: bool,
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let mut done = Vec::new();
        for (id, next) in ids {
            let changed: Option<(i64,)> = sqlx::query_as(
                "UPDATE retries SET next_attempt_us = $5, leased_until = $6 \
                 WHERE subscription_id = $1 AND position = $2 AND attempts = $3 \
                 AND leased_until > $4 RETURNING position",
            )
            .bind(sub)
            .bind(id.position)
            .bind(id.attempt)
            .bind(now.0)
            .bind(next.0)
            .bind(keep_lease.then_some(next.0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(T::err)?;
            if changed.is_some() {
                done.push(*id);
            }
        }
        tx.commit().await.map_err(T::err)?;
        Ok(done)
    }

    async fn still_leased(
        &self,
        sub: i64,
        ids: &[AckId],
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT position, attempts FROM retries WHERE subscription_id = $1 \
             AND leased_until > $2 AND position IN ({})",
            placeholders(3, ids.len())
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(sub)
            .bind(now.0);
        for id in ids {
            q = q.bind(id.position);
        }
        let rows: Vec<(i64, i32)> = q.fetch_all(self.reads()).await.map_err(T::err)?;
        let held: std::collections::HashSet<AckId> = rows
            .into_iter()
            .map(|(position, attempt)| AckId { position, attempt })
            .collect();
        Ok(ids.iter().copied().filter(|id| held.contains(id)).collect())
    }

    async fn seek(&self, sub: i64, to: Start, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let cursor = match to {
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
        sqlx::query("DELETE FROM retries WHERE subscription_id = $1")
            .bind(sub)
            .execute(&mut *tx)
            .await
            .map_err(T::err)?;
        let moved: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET cursor = $2, updated_us = $3 WHERE id = $1 RETURNING id",
        )
        .bind(sub)
        .bind(cursor)
        .bind(now.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(T::err)?;
        tx.commit().await.map_err(T::err)?;
        Ok(moved.is_some())
    }

    async fn pull_stats(&self, sub: i64, now: Timestamp) -> Result<PullStats, StoreError> {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM retries WHERE subscription_id = $1 \
             AND (leased_until IS NULL OR leased_until <= $2)) AS backlog, \
             (SELECT COUNT(*) FROM retries WHERE subscription_id = $1 AND leased_until > $2) \
             AS in_flight, \
             (SELECT MIN(m.time_us) FROM retries r JOIN messages m ON m.position = r.position \
             WHERE r.subscription_id = $1) AS oldest_us",
        )
        .bind(sub)
        .bind(now.0)
        .fetch_one(self.reads())
        .await
        .map_err(T::err)
    }

    async fn next_due(&self, sub: i64) -> Result<Option<Timestamp>, StoreError> {
        let (next,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(next_attempt_us) FROM retries WHERE subscription_id = $1")
                .bind(sub)
                .fetch_one(self.reads())
                .await
                .map_err(T::err)?;
        Ok(next.map(Timestamp))
    }
}

/// The envelope and event type of a row: its message's, or the copy a
/// redriven dead letter brought back.
fn envelope_of(row: &Row, messages: &HashMap<i64, Message>) -> Option<(String, String)> {
    if let Some(m) = messages.get(&row.position) {
        let envelope = String::from_utf8_lossy(&m.envelope()).into_owned();
        return Some((envelope, m.event.as_str().to_owned()));
    }
    let kept = row.envelope.clone()?;
    let event = serde_json::from_str::<serde_json::Value>(&kept)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "message".to_owned());
    Some((kept, event))
}

/// The messages of these rows that are still stored, by position.
async fn messages_in<T>(
    tx: &mut Transaction<'static, T::DB>,
    rows: &[Row],
) -> Result<HashMap<i64, Message>, StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    i64: Binds<T::DB>,
    MessageRow: Rows<T::DB>,
{
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT position, topic, seq, event, is_json, payload, content_type, time_us, expires_us \
         FROM messages WHERE position IN ({})",
        placeholders(1, rows.len())
    );
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for r in rows {
        q = q.bind(r.position);
    }
    let found: Vec<MessageRow> = q.fetch_all(&mut **tx).await.map_err(T::err)?;
    found
        .into_iter()
        .map(|r| Message::try_from(r).map(|m| (m.position.0, m)))
        .collect()
}

/// A dead letter for a row already deleted from `retries`.
#[allow(clippy::too_many_arguments)]
async fn bury<T>(
    tx: &mut Transaction<'static, T::DB>,
    sub: i64,
    row: &Row,
    error: &str,
    reason: &str,
    envelope: Option<String>,
    now: Timestamp,
) -> Result<(), StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
{
    sqlx::query(
        "INSERT INTO dead_letters (subscription_id, position, topic, attempts, last_error, \
         first_attempt_us, last_attempt_us, created_us, envelope, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
    )
    .bind(sub)
    .bind(row.position)
    .bind(row.topic.clone())
    .bind(row.attempts)
    .bind(error.to_owned())
    .bind(row.first_attempt_us.unwrap_or(now.0))
    .bind(now.0)
    .bind(envelope.or_else(|| row.envelope.clone()))
    .bind(reason.to_owned())
    .execute(&mut **tx)
    .await
    .map_err(T::err)
    .map(drop)
}

/// Drops a row whose message expired and counts it.
async fn drop_expired<T>(
    tx: &mut Transaction<'static, T::DB>,
    sub: i64,
    position: i64,
) -> Result<(), StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    i64: Binds<T::DB>,
{
    sqlx::query("DELETE FROM retries WHERE subscription_id = $1 AND position = $2")
        .bind(sub)
        .bind(position)
        .execute(&mut **tx)
        .await
        .map_err(T::err)?;
    sqlx::query("UPDATE subscriptions SET expired = expired + 1 WHERE id = $1")
        .bind(sub)
        .execute(&mut **tx)
        .await
        .map_err(T::err)
        .map(drop)
}
