//! The parts of a lease that look past `retries`: dead letters for rows
//! whose attempts are used up, and the envelopes of the rows handed out
//! (or why a row cannot be).

use std::collections::HashMap;

use sqlx::{Database, Executor, Transaction};

use super::super::{DeadLettered, LeaseOutcome, Leased, REASON_MAX_ATTEMPTS, REASON_RETENTION};
use super::{ROW, Row, placeholders};
use crate::domain::{AckId, Message, Timestamp};
use crate::storage::topics::Binds;
use crate::storage::topics::Rows;
use crate::storage::webhooks::{Burial, insert_dead_letter};
use crate::storage::{MessageRow, SqlBackend, StoreError};

/// Most rows buried per lease transaction.
const BURY_PAGE: i64 = 1000;

/// Moves due rows whose attempts are used up to the dead letters, with
/// their envelopes.
pub(super) async fn bury_exhausted<T>(
    tx: &mut Transaction<'static, T::DB>,
    sub: i64,
    now: Timestamp,
    max_attempts: i32,
) -> Result<Vec<DeadLettered>, StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    MessageRow: Rows<T::DB>,
    Row: Rows<T::DB>,
    (i64,): Rows<T::DB>,
{
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
    .fetch_all(&mut **tx)
    .await
    .map_err(T::err)?;
    let messages = messages_in::<T>(tx, &buried).await?;
    let mut out = Vec::with_capacity(buried.len());
    for row in &buried {
        let envelope = envelope_of(row, &messages).map(|(e, _)| e);
        let error = exhausted(row.attempts, row.nacks);
        out.push(bury::<T>(tx, sub, row, &error, REASON_MAX_ATTEMPTS, envelope, now).await?);
    }
    Ok(out)
}

/// The claimed rows as leases, highest priority first, then in position
/// order (as they were claimed); those whose message
/// expired are dropped and counted, and those whose message is gone (and
/// kept no copy) become dead letters.
pub(super) async fn hand_out<T>(
    tx: &mut Transaction<'static, T::DB>,
    sub: i64,
    mut claimed: Vec<Row>,
    now: Timestamp,
) -> Result<LeaseOutcome, StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    MessageRow: Rows<T::DB>,
    (i64,): Rows<T::DB>,
{
    claimed.sort_by_key(|r| (std::cmp::Reverse(r.priority), r.position));
    let messages = messages_in::<T>(tx, &claimed).await?;
    let mut out = LeaseOutcome::default();
    for row in claimed {
        let expired = messages
            .get(&row.position)
            .is_some_and(|m| m.is_expired(now));
        let found = (!expired).then(|| envelope_of(&row, &messages)).flatten();
        let Some((envelope, event)) = found else {
            sqlx::query("DELETE FROM retries WHERE subscription_id = $1 AND position = $2")
                .bind(sub)
                .bind(row.position)
                .execute(&mut **tx)
                .await
                .map_err(T::err)?;
            if expired {
                // Dropped and counted, never sent, and not a dead letter
                // (as for webhooks).
                sqlx::query("UPDATE subscriptions SET expired = expired + 1 WHERE id = $1")
                    .bind(sub)
                    .execute(&mut **tx)
                    .await
                    .map_err(T::err)?;
            } else {
                let error = "the message is no longer retained";
                let buried = bury::<T>(tx, sub, &row, error, REASON_RETENTION, None, now).await?;
                out.dead_lettered.push(buried);
            }
            out.dropped += 1;
            continue;
        };
        let ack_id = AckId {
            position: row.position,
            attempt: row.attempts,
        };
        out.leased.push(Leased {
            ack_id,
            envelope,
            event,
        });
    }
    Ok(out)
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
        "SELECT position, topic, seq, event, is_json, payload, content_type, time_us, expires_us, priority, msg_key \
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
    reason: &'static str,
    envelope: Option<String>,
    now: Timestamp,
) -> Result<DeadLettered, StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    (i64,): Rows<T::DB>,
{
    let burial = Burial {
        subscription: sub,
        position: row.position,
        topic: &row.topic,
        attempts: row.attempts,
        status: None,
        error,
        first_attempt_us: row.first_attempt_us,
        envelope: envelope.or_else(|| row.envelope.clone()),
        reason,
    };
    let id = insert_dead_letter::<T::DB>(tx, &burial, now)
        .await
        .map_err(T::err)?;
    Ok(DeadLettered {
        id,
        position: row.position,
        topic: row.topic.clone(),
        reason,
        attempts: row.attempts,
        error: error.to_owned(),
    })
}

/// What happened to a delivery's `attempts` leases, `nacks` of which
/// ended in a nack: "nacked 3 times", "lease expired 3 times", or both.
pub(super) fn exhausted(attempts: i32, nacks: i32) -> String {
    let times = |n: i32| match n {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    };
    let nacks = nacks.clamp(0, attempts);
    let expired = attempts - nacks;
    match (nacks, expired) {
        (0, e) => format!("lease expired {}", times(e)),
        (n, 0) => format!("nacked {}", times(n)),
        (n, e) => format!("nacked {}, lease expired {}", times(n), times(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::exhausted;

    #[test]
    fn a_dead_letter_says_what_happened_to_its_leases() {
        assert_eq!(exhausted(3, 3), "nacked 3 times");
        assert_eq!(exhausted(3, 0), "lease expired 3 times");
        assert_eq!(exhausted(3, 1), "nacked once, lease expired 2 times");
        assert_eq!(exhausted(1, 0), "lease expired once");
    }
}
