//! Presence across nodes: each node's lease (`nodes`) and its live streams
//! (`presence`). Only shared databases need it (a single SQLite process
//! knows its streams in memory), but the SQL is the same on both backends,
//! written once here, so both are tested alike.
//!
//! A node renews its lease every few seconds; readers ignore the rows of a
//! node whose lease has lapsed, and any node deletes them. On Postgres each
//! change also goes out as a `NOTIFY` on [`CHANNEL`], in the transaction
//! that writes it, so other nodes see it as soon as it commits.

use futures_util::stream::BoxStream;
use sqlx::{Executor, FromRow};

use super::topics::{Binds, Sql};
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

/// What the notification connection hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceNotice {
    /// A change another node (or this one) committed.
    Payload(String),
    /// Notices may have been missed: read everything again.
    Resync,
}

/// Presence rows and node leases. Part of every [`super::Store`].
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
    /// Changes as other nodes commit them; `None` where one process is
    /// all there is (SQLite).
    fn presence_notifications(&self) -> Option<BoxStream<'static, PresenceNotice>>;
}

async fn insert<'c, DB, E>(ex: E, r: &PresenceRow) -> Result<(), sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    i64: Binds<DB>,
{
    sqlx::query(
        "INSERT INTO presence (connection, node, client, topics, since_us) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection) DO NOTHING",
    )
    .bind(r.connection.as_str())
    .bind(r.node.as_str())
    .bind(r.client.as_str())
    .bind(r.topics.as_str())
    .bind(r.since_us)
    .execute(ex)
    .await
    .map(drop)
}

async fn exec<'c, DB, E>(ex: E, sql: &'static str, key: &str) -> Result<u64, sqlx::Error>
where
    DB: Sql,
    E: Executor<'c, Database = DB>,
    for<'q> &'q str: Binds<DB>,
    <DB as sqlx::Database>::QueryResult: RowsAffected,
{
    Ok(sqlx::query(sql).bind(key).execute(ex).await?.affected())
}

/// `rows_affected` of either backend's query result.
pub trait RowsAffected {
    fn affected(&self) -> u64;
}
impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}
impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The SQL of [`PresenceStore`], for a backend `B`; `notify` sends one
/// notice inside the transaction (nothing on SQLite).
macro_rules! presence_store {
    ($backend:ty, $db:ty, $notify:expr, $listen:expr) => {
        #[async_trait::async_trait]
        impl PresenceStore for $backend {
            async fn renew_lease(
                &self,
                node: &str,
                now: i64,
                until: i64,
            ) -> Result<bool, StoreError> {
                let err = <$backend as SqlBackend>::err;
                let renewed = sqlx::query(
                    "UPDATE nodes SET lease_until_us = $2 WHERE node = $1 AND lease_until_us > $3",
                )
                .bind(node)
                .bind(until)
                .bind(now)
                .execute(self.writes())
                .await
                .map_err(err)?
                .rows_affected();
                if renewed == 1 {
                    return Ok(true);
                }
                sqlx::query(
                    "INSERT INTO nodes (node, started_us, lease_until_us) VALUES ($1, $2, $3) \
                     ON CONFLICT (node) DO UPDATE SET lease_until_us = excluded.lease_until_us",
                )
                .bind(node)
                .bind(now)
                .bind(until)
                .execute(self.writes())
                .await
                .map_err(err)?;
                Ok(false)
            }

            async fn apply_presence(&self, changes: &[PresenceChange]) -> Result<(), StoreError> {
                let err = <$backend as SqlBackend>::err;
                let mut tx = self.writes().begin().await.map_err(err)?;
                for c in changes {
                    if c.joined {
                        insert::<$db, _>(&mut *tx, &c.row).await.map_err(err)?;
                    } else {
                        exec::<$db, _>(
                            &mut *tx,
                            "DELETE FROM presence WHERE connection = $1",
                            &c.row.connection,
                        )
                        .await
                        .map_err(err)?;
                    }
                    $notify(&mut *tx, c.notice.as_str()).await.map_err(err)?;
                }
                tx.commit().await.map_err(err)
            }

            async fn replace_presence(
                &self,
                node: &str,
                rows: &[PresenceRow],
            ) -> Result<(), StoreError> {
                let err = <$backend as SqlBackend>::err;
                let mut tx = self.writes().begin().await.map_err(err)?;
                exec::<$db, _>(&mut *tx, "DELETE FROM presence WHERE node = $1", node)
                    .await
                    .map_err(err)?;
                for r in rows {
                    insert::<$db, _>(&mut *tx, r).await.map_err(err)?;
                }
                $notify(&mut *tx, "resync").await.map_err(err)?;
                tx.commit().await.map_err(err)
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
                .map_err(<$backend as SqlBackend>::err)
            }

            async fn reap_nodes(&self, now: i64) -> Result<u64, StoreError> {
                let err = <$backend as SqlBackend>::err;
                let mut tx = self.writes().begin().await.map_err(err)?;
                sqlx::query(
                    "DELETE FROM presence WHERE node IN \
                     (SELECT node FROM nodes WHERE lease_until_us <= $1)",
                )
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                let gone = sqlx::query("DELETE FROM nodes WHERE lease_until_us <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?
                    .rows_affected();
                tx.commit().await.map_err(err)?;
                Ok(gone)
            }

            async fn leave_node(&self, node: &str) -> Result<(), StoreError> {
                let err = <$backend as SqlBackend>::err;
                let mut tx = self.writes().begin().await.map_err(err)?;
                for sql in [
                    "DELETE FROM presence WHERE node = $1",
                    "DELETE FROM nodes WHERE node = $1",
                ] {
                    exec::<$db, _>(&mut *tx, sql, node).await.map_err(err)?;
                }
                $notify(&mut *tx, "resync").await.map_err(err)?;
                tx.commit().await.map_err(err)
            }

            fn presence_notifications(&self) -> Option<BoxStream<'static, PresenceNotice>> {
                $listen(self)
            }
        }
    };
}

async fn no_notify(_: &mut sqlx::SqliteConnection, _: &str) -> Result<(), sqlx::Error> {
    Ok(())
}

async fn pg_notify(conn: &mut sqlx::PgConnection, notice: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(notice)
        .execute(conn)
        .await
        .map(drop)
}

presence_store!(
    super::sqlite::SqliteStore,
    sqlx::Sqlite,
    no_notify,
    no_listen
);
presence_store!(
    super::postgres::PgStore,
    sqlx::Postgres,
    pg_notify,
    pg_listen
);

fn no_listen(_: &super::sqlite::SqliteStore) -> Option<BoxStream<'static, PresenceNotice>> {
    None
}

fn pg_listen(s: &super::postgres::PgStore) -> Option<BoxStream<'static, PresenceNotice>> {
    Some(listen(s.reads().clone()))
}

/// Presence notices from Postgres, reconnecting after a lost connection
/// (with a [`PresenceNotice::Resync`], since notices may have been missed).
fn listen(pool: sqlx::PgPool) -> BoxStream<'static, PresenceNotice> {
    Box::pin(async_stream::stream! {
        loop {
            match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        yield PresenceNotice::Resync;
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) => yield PresenceNotice::Payload(n.payload().to_owned()),
                                Ok(None) => yield PresenceNotice::Resync,
                                Err(e) => {
                                    tracing::warn!(error = %e, "presence notifications interrupted");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN for presence failed"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot open the presence notification connection"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    })
}
