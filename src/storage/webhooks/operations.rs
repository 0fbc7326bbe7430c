//! [`WebhookOpsStore`] once for both backends: the attempt log (written
//! in batches, see [`crate::delivery::attempt_log`]), the
//! circuit breaker's and auto-disable's state, secret rotation and the
//! token windows of shared rate limits. Every transition is a
//! compare-and-set, so of several nodes exactly one makes each.

use sqlx::{Database, Executor, Pool};

use super::{Attempt, AttemptLog, AttemptQuery, WebhookOpsStore};
use crate::domain::Timestamp;
use crate::storage::topics::{Binds, Rows};
use crate::storage::{SqlBackend, StoreError};

/// Rows per multi-row INSERT of logged attempts (7 parameters each).
const LOG_INSERT_CHUNK: usize = 500;

#[async_trait::async_trait]
impl<T> WebhookOpsStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    Attempt: Rows<T::DB>,
    (i64,): Rows<T::DB>,
    (i64, i32): Rows<T::DB>,
{
    async fn log_attempts(&self, attempts: &[AttemptLog]) -> Result<(), StoreError> {
        for chunk in attempts.chunks(LOG_INSERT_CHUNK) {
            let mut q = sqlx::QueryBuilder::<T::DB>::new(
                "INSERT INTO attempts (subscription_id, position, time_us, status, error, \
                 duration_ms, response) ",
            );
            q.push_values(chunk, |mut row, a| {
                row.push_bind(a.subscription_id)
                    .push_bind(a.position)
                    .push_bind(a.time.0)
                    .push_bind(a.status)
                    .push_bind(a.error.clone())
                    .push_bind(a.duration_ms)
                    .push_bind(a.response.clone());
            });
            q.build().execute(self.writes()).await.map_err(T::err)?;
        }
        Ok(())
    }

    async fn attempts(&self, q: &AttemptQuery) -> Result<Vec<Attempt>, StoreError> {
        sqlx::query_as(
            "SELECT * FROM attempts WHERE subscription_id = $1 \
             AND (CAST($2 AS BIGINT) IS NULL OR position = $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(q.subscription)
        .bind(q.position)
        .bind(q.before)
        .bind(i64::from(q.limit))
        .fetch_all(self.reads())
        .await
        .map_err(T::err)
    }

    async fn prune_attempts(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        // The oldest ids, by the primary key: attempts are logged in time
        // order (to the clocks of the nodes), so the old ones come first and
        // the walk stops at the first that is still kept.
        let gone: Vec<(i64,)> = sqlx::query_as(
            "DELETE FROM attempts WHERE id IN (SELECT id FROM \
             (SELECT id, time_us FROM attempts ORDER BY id LIMIT $2) oldest WHERE time_us < $1) \
             RETURNING id",
        )
        .bind(before.0)
        .bind(i64::from(limit))
        .fetch_all(self.writes())
        .await
        .map_err(T::err)?;
        Ok(gone.len() as u64)
    }

    async fn set_circuit(
        &self,
        id: i64,
        from: &str,
        to: &str,
        until: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let moved: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET circuit = $3, circuit_until_us = $4 \
             WHERE id = $1 AND circuit = $2 RETURNING id",
        )
        .bind(id)
        .bind(from.to_owned())
        .bind(to.to_owned())
        .bind(until.map(|t| t.0))
        .fetch_optional(self.writes())
        .await
        .map_err(T::err)?;
        Ok(moved.is_some())
    }

    async fn set_failing_since(&self, id: i64, since: Option<Timestamp>) -> Result<(), StoreError> {
        let q = match since {
            Some(t) => sqlx::query(
                "UPDATE subscriptions SET failing_since_us = $2 \
                 WHERE id = $1 AND failing_since_us IS NULL",
            )
            .bind(id)
            .bind(t.0),
            None => sqlx::query(
                "UPDATE subscriptions SET failing_since_us = NULL \
                 WHERE id = $1 AND failing_since_us IS NOT NULL",
            )
            .bind(id),
        };
        q.execute(self.writes()).await.map_err(T::err).map(drop)
    }

    async fn start_probe(
        &self,
        id: i64,
        from: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let moved: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET circuit = 'half_open', circuit_until_us = $4 \
             WHERE id = $1 AND circuit = $2 AND COALESCE(circuit_until_us, 0) <= $3 RETURNING id",
        )
        .bind(id)
        .bind(from.to_owned())
        .bind(now.0)
        .bind(lease_until.0)
        .fetch_optional(self.writes())
        .await
        .map_err(T::err)?;
        Ok(moved.is_some())
    }

    async fn disable(
        &self,
        id: i64,
        reason: &str,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET paused = TRUE, disabled_reason = $2, updated_us = $3 \
             WHERE id = $1 AND paused = FALSE AND failing_since_us <= $4 RETURNING id",
        )
        .bind(id)
        .bind(reason.to_owned())
        .bind(now.0)
        .bind(cutoff.0)
        .fetch_optional(self.writes())
        .await
        .map_err(T::err)?;
        Ok(done.is_some())
    }

    async fn reset_health(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE subscriptions SET disabled_reason = NULL, failing_since_us = NULL, \
             circuit = 'closed', circuit_until_us = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(self.writes())
        .await
        .map_err(T::err)
        .map(drop)
    }

    async fn rotate_secret(
        &self,
        id: i64,
        secret: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET previous_secret = secret, previous_secret_until_us = $3, \
             secret = $2, updated_us = $4 WHERE id = $1 RETURNING id",
        )
        .bind(id)
        .bind(secret.to_owned())
        .bind(until.0)
        .bind(now.0)
        .fetch_optional(self.writes())
        .await
        .map_err(T::err)?;
        Ok(done.is_some())
    }

    async fn take_tokens(
        &self,
        id: i64,
        second: i64,
        want: u32,
        limit: u32,
    ) -> Result<u32, StoreError> {
        let Some((at, used)): Option<(i64, i32)> =
            sqlx::query_as("SELECT rate_second, rate_used FROM subscriptions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.writes())
                .await
                .map_err(T::err)?
        else {
            return Ok(0);
        };
        // Another node whose clock is ahead opened a later window: this
        // node waits for it rather than reopening an earlier one.
        if at > second {
            return Ok(0);
        }
        let used_now = if at == second { used.max(0) as u32 } else { 0 };
        let grant = want.min(limit.saturating_sub(used_now));
        if grant == 0 {
            return Ok(0);
        }
        // Compare-and-set on what was read: a node that lost the race
        // takes nothing this pass and tries again on the next.
        let taken: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET rate_second = $2, rate_used = $3 \
             WHERE id = $1 AND rate_second = $4 AND rate_used = $5 RETURNING id",
        )
        .bind(id)
        .bind(second)
        .bind((used_now + grant) as i32)
        .bind(at)
        .bind(used)
        .fetch_optional(self.writes())
        .await
        .map_err(T::err)?;
        Ok(if taken.is_some() { grant } else { 0 })
    }

    async fn return_tokens(&self, id: i64, second: i64, unused: u32) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE subscriptions SET rate_used = rate_used - $3 \
             WHERE id = $1 AND rate_second = $2 AND rate_used >= $3",
        )
        .bind(id)
        .bind(second)
        .bind(unused as i32)
        .execute(self.writes())
        .await
        .map_err(T::err)
        .map(drop)
    }
}
