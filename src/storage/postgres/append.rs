//! One publish transaction on Postgres: lock the log head, number the
//! messages, insert them (with their idempotency keys), advance the head
//! and notify every node.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};

use super::{CHANNEL, err};
use crate::domain::idempotency::published_body;
use crate::domain::{Message, NewMessage, Position, Timestamp};
use crate::storage::{Keyed, StoreError, assign, distinct_topics};

/// A transaction whose lock waits end by `within` (to the lock-wait slack).
pub(super) async fn begin(
    pool: &PgPool,
    within: Duration,
    lock_timeout: Duration,
) -> Result<Transaction<'static, Postgres>, StoreError> {
    let deadline = tokio::time::Instant::now() + within;
    let mut tx = tokio::time::timeout_at(deadline, pool.begin())
        .await
        .map_err(|_| crate::storage::out_of_time())?
        .map_err(err)?;
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if let Some(wait) = crate::storage::shorter_lock_wait(left, lock_timeout) {
        // 0 would mean no limit.
        let ms = wait.as_millis().max(1);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = {ms}"
        )))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    }
    Ok(tx)
}

/// Appends `batch` and records `keys` inside `tx` (not committed here).
pub(super) async fn append_in(
    tx: &mut Transaction<'static, Postgres>,
    batch: Vec<NewMessage>,
    keys: &[Keyed],
) -> Result<Vec<Message>, StoreError> {
    let time = Timestamp::now();
    // The one lock that orders every publish of every node.
    let head: i64 = sqlx::query_scalar("SELECT head FROM log_head WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut **tx)
        .await
        .map_err(err)?;
    let topics: Vec<String> = distinct_topics(&batch)
        .into_iter()
        .map(str::to_owned)
        .collect();
    sqlx::query(
        "INSERT INTO topics (name, created_us) SELECT unnest($1::text[]), $2 \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&topics)
    .bind(time.0)
    .execute(&mut **tx)
    .await
    .map_err(err)?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, last_seq FROM topics WHERE name = ANY($1)")
            .bind(&topics)
            .fetch_all(&mut **tx)
            .await
            .map_err(err)?;
    let mut last_seqs: HashMap<String, i64> = rows.into_iter().collect();
    let before = last_seqs.clone();
    let messages = assign(batch, Position(head), time, &mut last_seqs);
    insert_messages(tx, &messages, time).await?;
    insert_keys(tx, keys, &messages, time).await?;

    let counts: Vec<i64> = topics
        .iter()
        .map(|t| last_seqs[t] - before.get(t).copied().unwrap_or(0))
        .collect();
    let lasts: Vec<i64> = topics.iter().map(|t| last_seqs[t]).collect();
    sqlx::query(
        "UPDATE topics SET last_seq = u.last_seq, message_count = topics.message_count + u.n, \
         last_published_us = $4 FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) \
         AS u(name, last_seq, n) WHERE topics.name = u.name",
    )
    .bind(&topics)
    .bind(&lasts)
    .bind(&counts)
    .bind(time.0)
    .execute(&mut **tx)
    .await
    .map_err(err)?;

    let new_head = head + messages.len() as i64;
    sqlx::query("UPDATE log_head SET head = $1 WHERE id = 1")
        .bind(new_head)
        .execute(&mut **tx)
        .await
        .map_err(err)?;
    // Delivered to every listening node when (and only if) we commit.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(new_head.to_string())
        .execute(&mut **tx)
        .await
        .map_err(err)?;
    Ok(messages)
}

async fn insert_messages(
    tx: &mut Transaction<'static, Postgres>,
    messages: &[Message],
    time: Timestamp,
) -> Result<(), StoreError> {
    let n = messages.len();
    let (mut positions, mut names, mut seqs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut events, mut is_json, mut payloads) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut content_types = Vec::with_capacity(n);
    let mut expires: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut priorities: Vec<i16> = Vec::with_capacity(n);
    let mut keys: Vec<Option<&str>> = Vec::with_capacity(n);
    for m in messages {
        positions.push(m.position.0);
        names.push(m.topic.as_str());
        seqs.push(m.seq);
        events.push(m.event.as_str());
        is_json.push(m.payload.is_json());
        payloads.push(m.payload.as_str());
        content_types.push(m.content_type.as_str());
        expires.push(m.expires.map(|e| e.0));
        priorities.push(i16::from(m.priority.get()));
        keys.push(m.key.as_ref().map(|k| k.as_str()));
    }
    sqlx::query(
        "INSERT INTO messages (position, topic, seq, event, is_json, payload, content_type, \
         time_us, expires_us, priority, msg_key) \
         SELECT p, t, s, e, j, d, c, $8, x, r, k FROM UNNEST($1::bigint[], $2::text[], \
         $3::bigint[], $4::text[], $5::bool[], $6::text[], $7::text[], $9::bigint[], \
         $10::smallint[], $11::text[]) AS u(p, t, s, e, j, d, c, x, r, k)",
    )
    .bind(&positions)
    .bind(&names)
    .bind(&seqs)
    .bind(&events)
    .bind(&is_json)
    .bind(&payloads)
    .bind(&content_types)
    .bind(time.0)
    .bind(&expires)
    .bind(&priorities)
    .bind(&keys)
    .execute(&mut **tx)
    .await
    .map_err(err)
    .map(drop)
}

/// Records the idempotency keys with their answers in one upsert: a
/// record past the window is replaced; a live one (even one another node
/// is committing right now: the insert waits for it) is left alone, and
/// then fewer rows come back than were sent: [`StoreError::DuplicateKey`],
/// and the transaction is dropped.
async fn insert_keys(
    tx: &mut Transaction<'static, Postgres>,
    keys: &[Keyed],
    messages: &[Message],
    time: Timestamp,
) -> Result<(), StoreError> {
    let Some(stale_before) = keys.iter().map(|k| k.claim.stale_before.0).min() else {
        return Ok(());
    };
    let topics: Vec<&str> = keys.iter().map(|k| k.claim.topic.as_str()).collect();
    let names: Vec<&str> = keys.iter().map(|k| k.claim.key.as_str()).collect();
    let prints: Vec<&str> = keys.iter().map(|k| k.claim.fingerprint.as_str()).collect();
    let bodies: Vec<String> = keys
        .iter()
        .map(|k| published_body(&messages[k.range.clone()], k.claim.batch))
        .collect();
    let recorded: Vec<(i32,)> = sqlx::query_as(
        "INSERT INTO idempotency_keys (topic, key, fingerprint, status, response, created_us) \
         SELECT t, n, f, 201, r, $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
         AS u(t, n, f, r) \
         ON CONFLICT (topic, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         status = excluded.status, response = excluded.response, created_us = excluded.created_us \
         WHERE idempotency_keys.created_us < $6 RETURNING status",
    )
    .bind(&topics)
    .bind(&names)
    .bind(&prints)
    .bind(&bodies)
    .bind(time.0)
    .bind(stale_before)
    .fetch_all(&mut **tx)
    .await
    .map_err(err)?;
    if recorded.len() < keys.len() {
        return Err(StoreError::DuplicateKey);
    }
    Ok(())
}
