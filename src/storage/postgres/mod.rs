//! The Postgres backend, for several herald nodes on one database.
//!
//! Every publish transaction locks the single `log_head` row while it
//! assigns positions and holds it until commit, so positions from all nodes
//! are committed (and become visible) in position order. After commit the
//! transaction's `pg_notify` tells every node the new head; each node reads
//! the rows it has not seen into its own hub.

use std::str::FromStr;
use std::time::Duration;

use futures_util::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres};

use super::{
    HeadNotice, MessageRow, Store, StoreError, StoreOptions, TopicInfo, TopicRow, rows_to_messages,
};
use crate::domain::{Message, NewMessage, Position, Timestamp, TopicName};

/// The NOTIFY channel that carries new log heads.
const CHANNEL: &str = "herald_log";

mod analyze;
mod append;
mod listen;
mod topics;

/// Messages after `after` in position order (of `topics` only, if given).
async fn read_in(
    conn: &mut PgConnection,
    after: i64,
    topics: Option<&[&str]>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let rows: Vec<MessageRow> = match topics {
        // `topic = $2` walks the (topic, position) index in order and stops
        // at the limit; `topic = ANY(...)` cannot, and sorts every match.
        Some([topic]) => {
            sqlx::query_as(
                "SELECT position, topic, seq, event, is_json, payload, content_type, time_us, expires_us, priority, msg_key \
                 FROM messages WHERE topic = $2 AND position > $1 ORDER BY position LIMIT $3",
            )
            .bind(after)
            .bind(*topic)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
        }
        // Several topics: the first `limit` of each in index order, merged.
        Some(topics) => {
            sqlx::query_as(
                "SELECT m.* FROM unnest($2::text[]) AS t(name) CROSS JOIN LATERAL \
                 (SELECT position, topic, seq, event, is_json, payload, content_type, time_us, expires_us, priority, msg_key \
                  FROM messages WHERE topic = t.name AND position > $1 \
                  ORDER BY position LIMIT $3) AS m \
                 ORDER BY m.position LIMIT $3",
            )
            .bind(after)
            .bind(topics)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
        }
        None => {
            sqlx::query_as(
                "SELECT position, topic, seq, event, is_json, payload, content_type, time_us, expires_us, priority, msg_key \
                 FROM messages WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
        }
    }
    .map_err(err)?;
    rows_to_messages(rows)
}

impl super::SqlBackend for PgStore {
    type DB = Postgres;
    const CLAIM_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";
    const NOTIFY: Option<&'static str> = Some("SELECT pg_notify($1, $2)");

    fn writes(&self) -> &PgPool {
        &self.pool
    }

    fn reads(&self) -> &PgPool {
        &self.pool
    }

    fn err(e: sqlx::Error) -> StoreError {
        err(e)
    }

    fn queued(&self, rows: usize) {
        self.growth.note(&self.pool, rows);
    }

    async fn read_log(
        &self,
        after: Position,
        topics: Option<&[&str]>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(err)?;
        read_in(&mut conn, after.0, topics, limit).await
    }
}

pub struct PgStore {
    /// Publishing has its own connections, so readers (catch-ups, history,
    /// webhooks) can never starve it.
    writer: PgPool,
    pool: PgPool,
    /// The LISTEN connections (log heads, presence, pull wakes), each held
    /// for good: apart, so they never take the readers' connections.
    listeners: PgPool,
    /// The sessions' `lock_timeout` (`--db-timeout-ms`).
    lock_timeout: Duration,
    /// Rows queued into `retries`, for fresh statistics.
    growth: std::sync::Arc<analyze::Growth>,
}

/// Lock timeouts (55P03), a database that refuses connections (55000) or
/// is missing (3D000), serialization failures and deadlocks (40001,
/// 40P01), and the classes connection exception (08), insufficient
/// resources (53), operator intervention such as shutdown or a cancelled
/// statement (57) and system I/O errors (58): all worth a retry.
fn transient(code: &str) -> bool {
    matches!(
        code,
        "55P03" | "55000" | "3D000" | "40001" | "40P01" | "25006"
    ) || ["08", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
}

fn err(e: sqlx::Error) -> StoreError {
    StoreError::classify(e, transient)
}

impl PgStore {
    pub async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        let timeout_ms = options.timeout.as_millis().to_string();
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid Postgres URL: {e}"))?
            .application_name("herald")
            // A publish waiting on the log-head lock (or a locked table)
            // gives up and answers 503 instead of hanging.
            .options([
                ("lock_timeout", timeout_ms.as_str()),
                // A statement or transaction that hangs (a dead network)
                // ends instead of stalling the writer or shutdown.
                ("statement_timeout", "60000"),
                ("idle_in_transaction_session_timeout", "60000"),
                // Log reads want rows in position order from an index, and
                // stop at their LIMIT. Before statistics catch up with a
                // fast-growing table (a fresh database, a burst), the planner
                // estimates a few hundred rows and prefers a bitmap scan of
                // every row after the cursor plus a sort: a 1,000-row page
                // of a 200,000-row replay took 26 ms instead of 0.3 ms. No
                // query of herald's needs bitmap scans.
                ("enable_bitmapscan", "off"),
            ]);
        super::open::probe_postgres(&connect, options.timeout).await?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.timeout)
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let listeners = PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(options.timeout)
            .connect_lazy_with(connect.clone());
        let writer = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(options.timeout)
            .connect_with(connect)
            .await?;
        Ok(Self {
            writer,
            pool,
            listeners,
            lock_timeout: options.timeout,
            growth: Default::default(),
        })
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn append_keyed(
        &self,
        batch: Vec<NewMessage>,
        keys: Vec<super::Keyed>,
        within: Duration,
    ) -> Result<Vec<Message>, StoreError> {
        let mut tx = append::begin(&self.writer, within, self.lock_timeout).await?;
        let messages = append::append_in(&mut tx, batch, &keys).await?;
        tx.commit().await.map_err(err)?;
        Ok(messages)
    }

    async fn publish_due(
        &self,
        now: Timestamp,
        limit: u32,
        within: Duration,
    ) -> Result<Vec<Message>, StoreError> {
        let mut tx = append::begin(&self.writer, within, self.lock_timeout).await?;
        // Locked rows belong to another node's transaction: skipped, so
        // each schedule is appended by exactly one node.
        let rows = crate::storage::scheduled::due_rows(
            &mut *tx,
            now,
            limit,
            <Self as super::SqlBackend>::CLAIM_LOCK,
        )
        .await
        .map_err(err)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let batch = rows
            .into_iter()
            .map(crate::storage::scheduled::ScheduledRow::into_message)
            .collect::<Result<Vec<_>, _>>()?;
        let messages = append::append_in(&mut tx, batch, &[]).await?;
        sqlx::query("DELETE FROM scheduled WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(messages)
    }

    async fn read(
        &self,
        after: Position,
        topics: Option<&[&str]>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        super::SqlBackend::read_log(self, after, topics, limit).await
    }

    async fn messages_at(&self, positions: &[i64]) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT position, topic, seq, event, is_json, payload, content_type, time_us, expires_us, priority, msg_key \
             FROM messages WHERE position = ANY($1) ORDER BY position",
        )
        .bind(positions)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        rows_to_messages(rows)
    }

    async fn head(&self) -> Result<Position, StoreError> {
        sqlx::query_scalar("SELECT head FROM log_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map(Position)
            .map_err(err)
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>, StoreError> {
        let rows: Vec<TopicRow> = sqlx::query_as(
            "SELECT name, last_seq, message_count, created_us, last_published_us, config \
             FROM topics ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        rows.into_iter().map(TopicInfo::try_from).collect()
    }

    async fn topic(&self, name: &TopicName) -> Result<Option<TopicInfo>, StoreError> {
        let row: Option<TopicRow> = sqlx::query_as(
            "SELECT name, last_seq, message_count, created_us, last_published_us, config \
             FROM topics WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err)?;
        row.map(TopicInfo::try_from).transpose()
    }

    fn pool_stats(&self) -> Vec<(&'static str, u32, usize)> {
        vec![
            ("writer", self.writer.size(), self.writer.num_idle()),
            ("readers", self.pool.size(), self.pool.num_idle()),
        ]
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(err)
    }

    async fn probe_write(&self) -> Result<(), super::readiness::ProbeError> {
        super::readiness::postgres(&self.writer).await
    }

    fn presence_notifications(&self) -> Option<BoxStream<'static, super::Notice>> {
        Some(listen::listen(
            self.listeners.clone(),
            super::presence::CHANNEL,
        ))
    }

    fn pull_notifications(&self) -> Option<BoxStream<'static, super::Notice>> {
        Some(listen::listen(self.listeners.clone(), super::pull::CHANNEL))
    }

    fn head_notifications(&self) -> Option<BoxStream<'static, HeadNotice>> {
        use futures_util::StreamExt;
        let notices = listen::listen(self.listeners.clone(), CHANNEL);
        Some(Box::pin(notices.filter_map(|n| async move {
            match n {
                super::Notice::Resync => Some(HeadNotice::Resync),
                super::Notice::Payload(p) => match p.parse::<i64>() {
                    Ok(head) => Some(HeadNotice::Head(Position(head))),
                    Err(_) => {
                        tracing::warn!(payload = p, "ignoring a malformed log notification");
                        None
                    }
                },
            }
        })))
    }
}
