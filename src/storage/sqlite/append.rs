//! One group commit on SQLite's single writer connection, and what the
//! writer remembers between commits ([`Committed`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use tokio::time::{Instant, timeout_at};

use super::{INSERT_CHUNK, MESSAGE_COLUMNS, err};
use crate::domain::idempotency::published_body;
use crate::domain::{Message, NewMessage, Position, Timestamp};
use crate::storage::scheduled::{ScheduledRow, due_rows};
use crate::storage::{Keyed, StoreError, assign, distinct_topics, out_of_time, shorter_lock_wait};

/// What one append commits.
pub(super) enum Job {
    /// Publishes, with the idempotency keys to record beside them.
    Publish(Vec<NewMessage>, Vec<Keyed>),
    /// Up to `limit` scheduled messages due at `now`: appended, and their
    /// schedules deleted, in the one transaction.
    Due { now: Timestamp, limit: u32 },
}

/// Appends `batch`, giving up once `within` has passed (to the lock-wait
/// slack): waiting for the writer and its connection counts, and the
/// write lock is awaited only as long as is left (`busy_timeout` lowered
/// for this transaction from `default`, then restored).
///
/// In a task of its own: if the caller goes away mid-way, the append still
/// ends with a COMMIT or a ROLLBACK, never with a transaction left open on
/// the writer connection.
pub(super) async fn append(
    writer: SqlitePool,
    committed: Arc<tokio::sync::Mutex<Committed>>,
    job: Job,
    within: Duration,
    default: Duration,
) -> Result<Vec<Message>, StoreError> {
    let deadline = Instant::now() + within;
    let append = tokio::spawn(async move {
        let mut committed = timeout_at(deadline, committed.lock_owned())
            .await
            .map_err(|_| out_of_time())?;
        let mut conn = timeout_at(deadline, writer.acquire())
            .await
            .map_err(|_| out_of_time())?
            .map_err(err)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let busy = shorter_lock_wait(left, default).map(|wait| BusyWait { wait, default });
        let result = match job {
            Job::Publish(batch, keys) => {
                append_on(&mut conn, &mut committed, batch, &keys, &[], busy).await
            }
            // The writer connection is held throughout, so nothing (no
            // cancellation) changes the due rows between read and commit.
            Job::Due { now, limit } => {
                match due_rows(&mut *conn, now, limit, "").await.map_err(err) {
                    Ok(rows) if rows.is_empty() => Ok(Vec::new()),
                    Ok(rows) => {
                        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                        match rows.into_iter().map(ScheduledRow::into_message).collect() {
                            Ok(batch) => {
                                append_on(&mut conn, &mut committed, batch, &[], &ids, busy).await
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if result.is_err() {
            // Forget what we knew, and end a transaction the failed
            // statement may have left open (an error here means none was).
            *committed = Committed::default();
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            if let Some(busy) = busy {
                let _ = sqlx::query(sqlx::AssertSqlSafe(busy.restore()))
                    .execute(&mut *conn)
                    .await;
            }
        }
        result
    });
    match append.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
    }
}

/// A write-lock wait shorter than the connection's `busy_timeout`.
#[derive(Debug, Clone, Copy)]
struct BusyWait {
    wait: Duration,
    default: Duration,
}

impl BusyWait {
    fn set(self) -> String {
        format!("PRAGMA busy_timeout = {}; ", self.wait.as_millis())
    }

    fn restore(self) -> String {
        format!("PRAGMA busy_timeout = {}", self.default.as_millis())
    }
}

/// What the last append committed: the log head and topics' last seqs.
///
/// herald is the only writer of its SQLite file, so once read these need no
/// query, and a group commit is one round trip to SQLite's thread instead of
/// seven. Any failed append forgets them. A stale value cannot number a
/// message wrongly: the primary key on `position` and `UNIQUE (topic, seq)`
/// fail the append (it rolls back), and the next one reads afresh.
#[derive(Default)]
pub(super) struct Committed {
    pub(super) head: Option<i64>,
    pub(super) last_seqs: HashMap<String, i64>,
}

/// Topics remembered in [`Committed`]; past this it starts over.
pub(super) const COMMITTED_TOPICS: usize = 100_000;

/// One group commit on the writer connection: read what [`Committed`]
/// lacks, then insert the messages, upsert their topics and advance the
/// head in one multi-statement transaction.
async fn append_on(
    conn: &mut SqliteConnection,
    committed: &mut Committed,
    batch: Vec<NewMessage>,
    keys: &[Keyed],
    scheduled: &[i64],
    busy: Option<BusyWait>,
) -> Result<Vec<Message>, StoreError> {
    let time = Timestamp::now();
    let head = match committed.head {
        Some(head) => head,
        None => sqlx::query_scalar("SELECT head FROM log_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?,
    };
    let topics: Vec<String> = distinct_topics(&batch)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if committed.last_seqs.len() + topics.len() > COMMITTED_TOPICS {
        committed.last_seqs.clear();
    }
    let unknown: Vec<&str> = topics
        .iter()
        .map(String::as_str)
        .filter(|t| !committed.last_seqs.contains_key(*t))
        .collect();
    for chunk in unknown.chunks(INSERT_CHUNK) {
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT name, last_seq FROM topics WHERE name IN (");
        let mut list = q.separated(", ");
        for t in chunk {
            list.push_bind(*t);
        }
        q.push(")");
        let rows: Vec<(String, i64)> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
        committed.last_seqs.extend(rows);
    }
    // `committed` keeps each topic's seq before this batch until the end.
    let before = |t: &str| committed.last_seqs.get(t).copied().unwrap_or(0);
    let mut last_seqs: HashMap<String, i64> =
        topics.iter().map(|t| (t.clone(), before(t))).collect();
    let messages = assign(batch, Position(head), time, &mut last_seqs);
    let new_head = head + messages.len() as i64;

    // IMMEDIATE takes the write lock up front, so a busy database fails
    // here, after the busy timeout, instead of half-way through.
    let mut q = QueryBuilder::<Sqlite>::new(busy.map(BusyWait::set).unwrap_or_default());
    q.push("BEGIN IMMEDIATE; ");
    for chunk in messages.chunks(INSERT_CHUNK) {
        q.push(format_args!("INSERT INTO messages ({MESSAGE_COLUMNS}) "));
        q.push_values(chunk, |mut row, m| {
            row.push_bind(m.position.0)
                .push_bind(m.topic.as_str())
                .push_bind(m.seq)
                .push_bind(m.event.as_str())
                .push_bind(m.payload.is_json())
                .push_bind(m.payload.as_str())
                .push_bind(m.content_type.as_str())
                .push_bind(m.time.0)
                .push_bind(m.expires.map(|e| e.0))
                .push_bind(i16::from(m.priority.get()))
                .push_bind(m.key.as_ref().map(|k| k.as_str().to_owned()));
        });
        q.push("; ");
    }
    push_keys(&mut q, keys, &messages, time);
    for chunk in scheduled.chunks(INSERT_CHUNK) {
        q.push("DELETE FROM scheduled WHERE id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push("); ");
    }
    // One upsert creates new topics and advances existing ones.
    for chunk in topics.chunks(INSERT_CHUNK) {
        q.push(
            "INSERT INTO topics (name, last_seq, message_count, created_us, last_published_us) ",
        );
        q.push_values(chunk, |mut row, t| {
            let last = last_seqs[t];
            row.push_bind(t.as_str())
                .push_bind(last)
                .push_bind(last - before(t))
                .push_bind(time.0)
                .push_bind(time.0);
        });
        q.push(
            " ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, \
             message_count = topics.message_count + excluded.message_count, \
             last_published_us = excluded.last_published_us; ",
        );
    }
    q.push("UPDATE log_head SET head = ");
    q.push_bind(new_head);
    q.push(" WHERE id = 1; COMMIT");
    if let Some(busy) = busy {
        q.push("; ").push(busy.restore());
    }
    q.build().execute(&mut *conn).await.map_err(err)?;
    committed.head = Some(new_head);
    committed.last_seqs.extend(last_seqs);
    Ok(messages)
}

/// Records the idempotency keys with their answers in one upsert of this
/// round trip: a record past the window is replaced; a live one gets
/// status -1, which its CHECK refuses (`idempotency_key_live`), failing
/// the whole transaction ([`crate::storage::StoreError::DuplicateKey`]).
/// A plain SQL statement cannot fail on a count, and a DELETE of stale
/// records first cost a lookup per key in every commit.
fn push_keys(q: &mut QueryBuilder<Sqlite>, keys: &[Keyed], messages: &[Message], time: Timestamp) {
    let Some(stale_before) = keys.iter().map(|k| k.claim.stale_before.0).min() else {
        return;
    };
    q.push("INSERT INTO idempotency_keys (topic, key, fingerprint, status, response, created_us) ");
    q.push_values(keys, |mut row, k| {
        let c = &k.claim;
        row.push_bind(c.topic.as_str().to_owned())
            .push_bind(c.key.as_str().to_owned())
            .push_bind(c.fingerprint.clone())
            .push_bind(201)
            .push_bind(published_body(&messages[k.range.clone()], c.batch))
            .push_bind(time.0);
    });
    q.push(
        " ON CONFLICT (topic, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         response = excluded.response, created_us = excluded.created_us, \
         status = CASE WHEN idempotency_keys.created_us < ",
    )
    .push_bind(stale_before)
    .push(" THEN excluded.status ELSE -1 END; ");
}
