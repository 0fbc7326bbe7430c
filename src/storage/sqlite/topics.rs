//! [`TopicStore`] on SQLite: the shared SQL of [`crate::storage::topics`]
//! on the writer connection (every change) or the readers. A topic delete
//! also makes the writer forget the topic's last seq.

use sqlx::Sqlite;

use super::{SqliteStore, err};
use crate::domain::{Position, Timestamp, TopicName};
use crate::storage::StoreError;
use crate::storage::topics::{self as sql, PruneBounds, PruneCandidate, TopicStore};

/// Pages one reclaim gives back at most (4 KiB each), so it stays short.
const RECLAIM_PAGES: u32 = 4096;

#[async_trait::async_trait]
impl TopicStore for SqliteStore {
    async fn put_topic_config(
        &self,
        name: &TopicName,
        config: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sql::put_config(&self.writer, name.as_str(), config, now.0)
            .await
            .map_err(err)
    }

    async fn topic_config(&self, name: &str) -> Result<Option<String>, StoreError> {
        sql::config_of(&self.readers, name).await.map_err(err)
    }

    async fn limited_topics(&self) -> Result<Vec<(String, String)>, StoreError> {
        sql::limited(&self.readers).await.map_err(err)
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<bool, StoreError> {
        let topic = name.as_str();
        let Some(last) = sql::last_seq(&self.readers, topic).await.map_err(err)? else {
            return Ok(false);
        };
        // Most of it in bounded batches beside publishes, then the rest.
        let bounds = PruneBounds {
            before: None,
            through_seq: Some(last),
        };
        while self.prune_topic(topic, bounds).await? > 0 {}
        let mut committed = self.committed.lock().await;
        let mut tx = self.writer.begin().await.map_err(err)?;
        let found = sql::finish_delete::<Sqlite>(&mut tx, topic)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        committed.last_seqs.remove(topic);
        Ok(found)
    }

    async fn retention_marks(&self, after: Position) -> Result<Vec<(String, i64)>, StoreError> {
        sql::marks_after(&self.readers, after.0).await.map_err(err)
    }

    async fn oldest_retained(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let oldest = sql::oldest_of(&self.readers, name).await.map_err(err)?;
        Ok(oldest.map(Position))
    }

    async fn prune_candidates(&self) -> Result<Vec<PruneCandidate>, StoreError> {
        sql::candidates(&self.readers).await.map_err(err)
    }

    async fn prune_topic(&self, topic: &str, bounds: PruneBounds) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await.map_err(err)?;
        let n = sql::prune_step::<Sqlite>(&mut tx, topic, bounds)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(n)
    }

    async fn prune_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await.map_err(err)?;
        let n = sql::delete_expired::<Sqlite>(&mut tx, now.0)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(n)
    }

    async fn reclaim_space(&self) -> Result<(), StoreError> {
        // Frees pages only in a file created with auto_vacuum=INCREMENTAL
        // (herald creates them so); elsewhere it does nothing.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA incremental_vacuum({RECLAIM_PAGES})"
        )))
        .execute(&self.writer)
        .await
        .map_err(err)?;
        // The file shrinks when the WAL is checkpointed; a quiet database
        // may not reach the automatic checkpoint for a long time.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.writer)
            .await
            .map(drop)
            .map_err(err)
    }
}
