//! What an attempt leaves in the ledger, for both backends: a delivery
//! settled (delivered, or dropped as expired), rescheduled after a
//! failure, or buried as a dead letter.

use sqlx::{Database, Executor};

use super::dead_letters::{Burial, insert_dead_letter};
use super::{Due, Failure};
use crate::domain::Timestamp;
use crate::storage::topics::{Binds, Rows};
use crate::storage::{SqlBackend, StoreError};

/// Reschedules a delivery whose attempt failed.
pub(super) async fn failed<T>(
    store: &T,
    due: &Due,
    failure: &Failure,
    next: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    (i64,): Rows<T::DB>,
    (Option<i64>, Option<String>): Rows<T::DB>,
{
    let mut tx = store.writes().begin().await.map_err(T::err)?;
    sqlx::query(
        "UPDATE retries SET attempts = $3, next_attempt_us = $4, \
         first_attempt_us = COALESCE(first_attempt_us, $5), last_attempt_us = $5, \
         last_status = $6, last_error = $7 WHERE subscription_id = $1 AND position = $2",
    )
    .bind(due.subscription_id)
    .bind(due.position)
    .bind(due.attempts + 1)
    .bind(next.0)
    .bind(now.0)
    .bind(failure.status)
    .bind(failure.error.clone())
    .execute(&mut *tx)
    .await
    .map_err(T::err)?;
    tx.commit().await.map_err(T::err)
}

/// Moves a delivery to the dead letters; returns the dead letter's id, or
/// None if the delivery was gone already.
pub(super) async fn bury<T>(
    store: &T,
    due: &Due,
    failure: &Failure,
    (envelope, reason): (Option<&str>, &'static str),
    now: Timestamp,
) -> Result<Option<i64>, StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    (i64,): Rows<T::DB>,
    (Option<i64>, Option<String>): Rows<T::DB>,
{
    let mut tx = store.writes().begin().await.map_err(T::err)?;
    let gone: Option<(Option<i64>, Option<String>)> = sqlx::query_as(
        "DELETE FROM retries WHERE subscription_id = $1 AND position = $2 \
         RETURNING first_attempt_us, envelope",
    )
    .bind(due.subscription_id)
    .bind(due.position)
    .fetch_optional(&mut *tx)
    .await
    .map_err(T::err)?;
    // Gone already (subscription deleted, or redriven twice).
    let Some((first, kept)) = gone else {
        return Ok(None);
    };
    let burial = Burial {
        subscription: due.subscription_id,
        position: due.position,
        topic: &due.topic,
        attempts: due.attempts + 1,
        status: failure.status,
        error: &failure.error,
        first_attempt_us: first,
        envelope: envelope.map(str::to_owned).or(kept),
        reason,
    };
    let id = insert_dead_letter::<T::DB>(&mut tx, &burial, now)
        .await
        .map_err(T::err)?;
    tx.commit().await.map_err(T::err)?;
    Ok(Some(id))
}

/// Ends a pending delivery and counts it in the subscription's `counter`
/// column (`delivered` or `expired`), once: a delivery already gone counts
/// nothing.
pub(super) async fn settle<T>(store: &T, due: &Due, counter: &str) -> Result<(), StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    i64: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    (i64,): Rows<T::DB>,
{
    let (id, position) = (due.subscription_id, due.position);
    let mut tx = store.writes().begin().await.map_err(T::err)?;
    let gone: Option<(i64,)> = sqlx::query_as(
        "DELETE FROM retries WHERE subscription_id = $1 AND position = $2 RETURNING position",
    )
    .bind(id)
    .bind(position)
    .fetch_optional(&mut *tx)
    .await
    .map_err(T::err)?;
    if gone.is_some() {
        let sql = format!("UPDATE subscriptions SET {counter} = {counter} + 1 WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(T::err)?;
    }
    tx.commit().await.map_err(T::err)
}
