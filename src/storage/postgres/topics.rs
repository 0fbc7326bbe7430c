//! [`TopicStore`] on Postgres: the shared SQL of [`crate::storage::topics`].
//! A topic delete ends under the log-head lock, so it is ordered with every
//! node's publishes. Nodes may prune at once: each step deletes what is
//! still there and marks only raise, so running twice is harmless.

use sqlx::Postgres;

use super::{PgStore, err};
use crate::domain::{Position, Timestamp, TopicName};
use crate::storage::StoreError;
use crate::storage::topics::{self as sql, PruneBounds, PruneCandidate, TopicStore};

#[async_trait::async_trait]
impl TopicStore for PgStore {
    async fn put_topic_config(
        &self,
        name: &TopicName,
        config: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sql::put_config(&self.pool, name.as_str(), config, now.0)
            .await
            .map_err(err)
    }

    async fn topic_config(&self, name: &str) -> Result<Option<String>, StoreError> {
        sql::config_of(&self.pool, name).await.map_err(err)
    }

    async fn limited_topics(&self) -> Result<Vec<(String, String)>, StoreError> {
        sql::limited(&self.pool).await.map_err(err)
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<bool, StoreError> {
        let topic = name.as_str();
        let Some(last) = sql::last_seq(&self.pool, topic).await.map_err(err)? else {
            return Ok(false);
        };
        let bounds = PruneBounds {
            before: None,
            through_seq: Some(last),
        };
        while self.prune_topic(topic, bounds).await? > 0 {}
        let mut tx = self.writer.begin().await.map_err(err)?;
        sqlx::query("SELECT head FROM log_head WHERE id = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let found = sql::finish_delete::<Postgres>(&mut tx, topic)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(found)
    }

    async fn retention_marks(&self, after: Position) -> Result<Vec<(String, i64)>, StoreError> {
        sql::marks_after(&self.pool, after.0).await.map_err(err)
    }

    async fn oldest_retained(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let oldest = sql::oldest_of(&self.pool, name).await.map_err(err)?;
        Ok(oldest.map(Position))
    }

    async fn prune_candidates(&self) -> Result<Vec<PruneCandidate>, StoreError> {
        sql::candidates(&self.pool).await.map_err(err)
    }

    async fn prune_topic(&self, topic: &str, bounds: PruneBounds) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let n = sql::prune_step::<Postgres>(&mut tx, topic, bounds)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(n)
    }

    async fn prune_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let n = sql::delete_expired::<Postgres>(&mut tx, now.0)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(n)
    }

    async fn reclaim_space(&self) -> Result<(), StoreError> {
        // Autovacuum makes deleted rows' space reusable; the files keep
        // their size, as is usual for Postgres.
        Ok(())
    }
}
