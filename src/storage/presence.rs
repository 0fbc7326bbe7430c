//! Presence across nodes: each node's lease (`nodes`) and its live streams
//! (`presence`). Only shared databases need it (a single SQLite process
//! knows its streams in memory), but the SQL is the same on both backends,
//! written once here, so both are tested alike.
//!
//! A node renews its lease every few seconds; readers ignore the rows of a
//! node whose lease has lapsed, and any node deletes them. On Postgres each
//! change also goes out as a `NOTIFY` on [`CHANNEL`], in the transaction
//! that writes it, so other nodes see it as soon as it commits.

use sqlx::{Database, Executor, FromRow, Pool};

use super::topics::{Binds, Rows, Sql};
use super::{SqlBackend, StoreError};

/// The NOTIFY channel of presence changes.
pub const CHANNEL: &str = "herald_presence";

/// One live stream as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PresenceRow {
    pub connection: String,
    pub node: String,
    pub client: String,
    /// The stream's topics and patterns, comma separated.
    pub topics: String,
    pub since_us: i64,
}

/// A stream that opened (`joined`) or closed on this node, and the notice
/// other nodes get of it.
#[derive(Debug, Clone)]
pub struct PresenceChange {
    pub row: PresenceRow,
    pub joined: bool,
    /// What other nodes are told (JSON made by [`crate::presence`]).
    pub notice: String,
}

/// Presence rows and node leases. Part of every [`super::Store`] (whose
/// `presence_notifications` hears other nodes' changes).
#[async_trait::async_trait]
pub trait PresenceStore: Send + Sync {
    /// Renews `node`'s lease until `until`. False when it had lapsed or did
    /// not exist: other nodes may have removed its rows, so put them back.
    async fn renew_lease(&self, node: &str, now: i64, until: i64) -> Result<bool, StoreError>;
    /// Writes these changes of one node in order, in one transaction.
    async fn apply_presence(&self, changes: &[PresenceChange]) -> Result<(), StoreError>;
    /// Makes `rows` the whole of `node`'s presence.
    async fn replace_presence(&self, node: &str, rows: &[PresenceRow]) -> Result<(), StoreError>;
    /// The rows of every node whose lease lasts past `now`.
    async fn live_presence(&self, now: i64) -> Result<Vec<PresenceRow>, StoreError>;
    /// Deletes nodes whose lease ended before `now`, with their rows.
    async fn reap_nodes(&self, now: i64) -> Result<u64, StoreError>;
    /// Removes `node` and its rows (a clean stop).
    async fn leave_node(&self, node: &str) -> Result<(), StoreError>;
}

async fn insert<'c, DB, E>(ex: E, r: &PresenceRow) -> Result<(), sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    String: Binds<DB>,
    i64: Binds<DB>,
{
    sqlx::query(
        "INSERT INTO presence (connection, node, client, topics, since_us) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection) DO NOTHING",
    )
    .bind(r.connection.clone())
    .bind(r.node.clone())
    .bind(r.client.clone())
    .bind(r.topics.clone())
    .bind(r.since_us)
    .execute(ex)
    .await
    .map(drop)
}

#[async_trait::async_trait]
impl<T> PresenceStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    i64: Binds<T::DB>,
    PresenceRow: Rows<T::DB>,
    (String,): Rows<T::DB>,
{
    async fn renew_lease(&self, node: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let renewed: Option<(String,)> = sqlx::query_as(
            "UPDATE nodes SET lease_until_us = $2 WHERE node = $1 AND lease_until_us > $3 \
             RETURNING node",
        )
        .bind(node.to_owned())
        .bind(until)
        .bind(now)
        .fetch_optional(self.writes())
        .await
        .map_err(T::err)?;
        if renewed.is_some() {
            return Ok(true);
        }
        sqlx::query(
            "INSERT INTO nodes (node, started_us, lease_until_us) VALUES ($1, $2, $3) \
             ON CONFLICT (node) DO UPDATE SET lease_until_us = excluded.lease_until_us",
        )
        .bind(node.to_owned())
        .bind(now)
        .bind(until)
        .execute(self.writes())
        .await
        .map_err(T::err)?;
        Ok(false)
    }

    async fn apply_presence(&self, changes: &[PresenceChange]) -> Result<(), StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        for c in changes {
            if c.joined {
                insert::<T::DB, _>(&mut *tx, &c.row).await.map_err(T::err)?;
            } else {
                sqlx::query("DELETE FROM presence WHERE connection = $1")
                    .bind(c.row.connection.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(T::err)?;
            }
            super::notify::<T, _>(&mut *tx, CHANNEL, &c.notice)
                .await
                .map_err(T::err)?;
        }
        tx.commit().await.map_err(T::err)
    }

    async fn replace_presence(&self, node: &str, rows: &[PresenceRow]) -> Result<(), StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        sqlx::query("DELETE FROM presence WHERE node = $1")
            .bind(node.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(T::err)?;
        for r in rows {
            insert::<T::DB, _>(&mut *tx, r).await.map_err(T::err)?;
        }
        super::notify::<T, _>(&mut *tx, CHANNEL, "resync")
            .await
            .map_err(T::err)?;
        tx.commit().await.map_err(T::err)
    }

    async fn live_presence(&self, now: i64) -> Result<Vec<PresenceRow>, StoreError> {
        sqlx::query_as(
            "SELECT p.connection, p.node, p.client, p.topics, p.since_us FROM presence p \
             JOIN nodes n ON n.node = p.node WHERE n.lease_until_us > $1 \
             ORDER BY p.connection",
        )
        .bind(now)
        .fetch_all(self.reads())
        .await
        .map_err(T::err)
    }

    async fn reap_nodes(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        sqlx::query(
            "DELETE FROM presence WHERE node IN \
             (SELECT node FROM nodes WHERE lease_until_us <= $1)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(T::err)?;
        let gone: Vec<(String,)> =
            sqlx::query_as("DELETE FROM nodes WHERE lease_until_us <= $1 RETURNING node")
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(T::err)?;
        tx.commit().await.map_err(T::err)?;
        Ok(gone.len() as u64)
    }

    async fn leave_node(&self, node: &str) -> Result<(), StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        for sql in [
            "DELETE FROM presence WHERE node = $1",
            "DELETE FROM nodes WHERE node = $1",
        ] {
            sqlx::query(sql)
                .bind(node.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(T::err)?;
        }
        super::notify::<T, _>(&mut *tx, CHANNEL, "resync")
            .await
            .map_err(T::err)?;
        tx.commit().await.map_err(T::err)
    }
}
