//! Durable storage: the [`Store`] trait and its two implementations,
//! [`sqlite`] (the default, one process) and [`postgres`] (several herald
//! nodes on one database). All SQL lives below this module.

pub mod open;
pub mod postgres;
pub mod presence;
pub mod pull;
pub mod readiness;
mod rows;
pub mod scheduled;
pub mod sqlite;
pub mod tokens;
pub mod topics;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;

pub(crate) use rows::StoredFields;
pub use rows::{MESSAGE_COLUMNS, MessageRow};
use rows::{TopicRow, rows_to_messages};

use crate::domain::idempotency::KeyClaim;
use crate::domain::{Message, NewMessage, Position, Timestamp, TopicName};

/// Everything herald keeps. Implementations assign positions and seqs in the
/// transaction that stores the messages, in commit order.
#[async_trait::async_trait]
pub trait Store:
    webhooks::WebhookStore
    + webhooks::WebhookOpsStore
    + webhooks::DeadLetterStore
    + pull::PullStore
    + presence::PresenceStore
    + topics::TopicStore
    + tokens::TokenStore
    + scheduled::ScheduleStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Stores a batch in one transaction, assigning consecutive positions
    /// after the log head and consecutive seqs per topic. Returns the
    /// committed messages in position order. All or nothing. Gives up
    /// (unavailable) when it cannot have the connection and the log's lock
    /// `within` this long (to [`LOCK_WAIT_SLACK`]), however long the
    /// configured timeout.
    async fn append(
        &self,
        batch: Vec<NewMessage>,
        within: Duration,
    ) -> Result<Vec<Message>, StoreError> {
        self.append_keyed(batch, Vec::new(), within).await
    }

    /// Appends `batch` as [`Store::append`] does, and records each
    /// idempotency key with the answer for its range of the batch, in the
    /// same transaction: [`StoreError::DuplicateKey`] (nothing stored) if
    /// one is already recorded and live.
    async fn append_keyed(
        &self,
        batch: Vec<NewMessage>,
        keys: Vec<Keyed>,
        within: Duration,
    ) -> Result<Vec<Message>, StoreError>;

    /// Appends up to `limit` scheduled messages due at `now`, oldest due
    /// first, and deletes their schedules, in one transaction: each is
    /// appended exactly once, however many nodes run this.
    async fn publish_due(
        &self,
        now: Timestamp,
        limit: u32,
        within: Duration,
    ) -> Result<Vec<Message>, StoreError>;

    /// Messages after `after` in position order, at most `limit`, of the
    /// given topics only when `topics` is given.
    async fn read(
        &self,
        after: Position,
        topics: Option<&[&str]>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

    /// The messages at these positions (those that exist), in position order.
    async fn messages_at(&self, positions: &[i64]) -> Result<Vec<Message>, StoreError>;

    /// The last committed position (0 for an empty log).
    async fn head(&self) -> Result<Position, StoreError>;

    async fn topics(&self) -> Result<Vec<TopicInfo>, StoreError>;

    async fn topic(&self, name: &TopicName) -> Result<Option<TopicInfo>, StoreError>;

    /// Connections of each pool: (pool name, open, idle).
    fn pool_stats(&self) -> Vec<(&'static str, u32, usize)>;

    /// A cheap round trip.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A tiny write in a transaction of its own, for readiness: fails
    /// while the database refuses writes, even if it answers reads.
    async fn probe_write(&self) -> Result<(), readiness::ProbeError>;

    /// For backends that several nodes share: the heads committed by any
    /// node, as they happen. `None` where only this process writes.
    fn head_notifications(&self) -> Option<BoxStream<'static, HeadNotice>>;

    /// For backends that several nodes share: presence changes as nodes
    /// commit them. `None` where one process is all there is.
    fn presence_notifications(&self) -> Option<BoxStream<'static, Notice>>;

    /// For backends that several nodes share: a notice each time a node
    /// announces ([`pull::PullStore::announce_pull`]) that rows of a pull
    /// subscription may have become due without a commit to the log (a
    /// nack, a seek, a redrive) or that leases ended (an ack). The payload
    /// is the announcing node's id. `None` where one process is all there
    /// is.
    fn pull_notifications(&self) -> Option<BoxStream<'static, Notice>>;
}

/// What the SQL shared by both backends ([`webhooks`], [`topics`]) needs
/// of one: its pools, how it sorts errors, how it reads the log, and what
/// it appends to row-claiming selects.
pub trait SqlBackend: Send + Sync + 'static {
    type DB: topics::Sql;
    /// Appended to selects that claim rows (`FOR UPDATE SKIP LOCKED` where
    /// several nodes compete for them).
    const CLAIM_LOCK: &'static str;
    /// A statement (channel `$1`, payload `$2`) that tells the other nodes
    /// of a change when its transaction commits; `None` where one process
    /// is all there is.
    const NOTIFY: Option<&'static str>;
    /// Where changes go (on SQLite, the one writer connection).
    fn writes(&self) -> &sqlx::Pool<Self::DB>;
    fn reads(&self) -> &sqlx::Pool<Self::DB>;
    fn err(e: sqlx::Error) -> StoreError;
    /// Told of the rows a committed dispatch queued into `retries` (see
    /// `postgres/analyze.rs`).
    fn queued(&self, _rows: usize) {}
    /// Messages after `after`, as [`Store::read`].
    fn read_log(
        &self,
        after: Position,
        topics: Option<&[&str]>,
        limit: u32,
    ) -> impl std::future::Future<Output = Result<Vec<Message>, StoreError>> + Send;
}

/// Tells the other nodes of a change on `channel` (see
/// [`SqlBackend::NOTIFY`]; nothing where one process is all there is). In
/// a transaction, the notice goes out when it commits.
pub(crate) async fn notify<'c, T, E>(ex: E, channel: &str, payload: &str) -> Result<(), sqlx::Error>
where
    T: SqlBackend,
    E: sqlx::Executor<'c, Database = T::DB>,
    String: topics::Binds<T::DB>,
{
    let Some(sql) = T::NOTIFY else {
        return Ok(());
    };
    sqlx::query(sql)
        .bind(channel.to_owned())
        .bind(payload.to_owned())
        .execute(ex)
        .await
        .map(drop)
}

/// A change to the log head that another node (or this one) committed.
/// An idempotency key and the messages of the batch (by index) it
/// answers for.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub claim: KeyClaim,
    pub range: std::ops::Range<usize>,
}

/// What a notification connection hears (on backends that several nodes
/// share).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A change another node (or this one) committed.
    Payload(String),
    /// Notices may have been missed (the connection was lost): read
    /// everything again.
    Resync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadNotice {
    /// The log now reaches this position.
    Head(Position),
    /// Notices may have been missed (connection lost): re-read the head.
    Resync,
}

/// A topic as stored.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: TopicName,
    pub last_seq: i64,
    pub message_count: i64,
    pub created: Timestamp,
    pub last_published: Option<Timestamp>,
    /// Its configuration as stored (JSON text), if it has one.
    pub config: Option<String>,
}

/// A storage failure, sorted by what the client should be told.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Down, locked, timed out, or busy: worth retrying later (503).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else is a bug or corruption (500).
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The Idempotency-Key is already recorded (by a request that
    /// committed first, perhaps on another node).
    #[error("the idempotency key is already recorded")]
    DuplicateKey,
}

impl StoreError {
    /// Sorts a sqlx error; `transient` says which database error codes of
    /// the backend mean "try again later" (busy, locked, shutting down…).
    fn classify(err: sqlx::Error, transient: fn(&str) -> bool) -> Self {
        use sqlx::Error as E;
        match &err {
            // A live record of an Idempotency-Key: the key's primary key,
            // or (SQLite's upsert) its `idempotency_key_live` check.
            E::Database(db)
                if (db.is_unique_violation() || db.is_check_violation())
                    && (db.message().contains("idempotency_key")
                        || db.constraint() == Some("idempotency_keys_pkey")) =>
            {
                StoreError::DuplicateKey
            }
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                StoreError::Unavailable(err)
            }
            E::Database(db) if db.code().is_some_and(|c| transient(&c)) => {
                StoreError::Unavailable(err)
            }
            _ => StoreError::Other(err),
        }
    }
}

/// How much longer than its budget an append may wait for the log's lock:
/// below this, the connection's own lock timeout (`--db-timeout-ms`) is
/// kept, which saves a statement on Postgres.
pub const LOCK_WAIT_SLACK: Duration = Duration::from_millis(100);

/// The lock wait an append with `within` left must set, when the
/// connection's `default` would wait more than [`LOCK_WAIT_SLACK`] longer.
fn shorter_lock_wait(within: Duration, default: Duration) -> Option<Duration> {
    (within + LOCK_WAIT_SLACK < default).then_some(within)
}

/// An append that ran out of time before it had its connection.
fn out_of_time() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolTimedOut)
}

/// Storage settings shared by both backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long to wait for a connection or a lock before giving up.
    pub timeout: Duration,
    pub max_connections: u32,
    /// SQLite `synchronous=FULL` (true) or `NORMAL`.
    pub sqlite_full_sync: bool,
    /// SQLite `max_page_count` of the writer (a test hook: a full "disk").
    pub sqlite_max_page_count: Option<u32>,
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and
/// runs its migrations.
pub async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, options).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, options).await?))
    } else {
        anyhow::bail!("unsupported database URL {url:?}: use sqlite://FILE or postgres://…")
    }
}

/// Assigns seqs within a batch: `last_seqs` holds each topic's last seq
/// before the batch and is advanced in place. Shared by both backends so
/// they number identically.
fn assign(
    batch: Vec<NewMessage>,
    head: Position,
    time: Timestamp,
    last_seqs: &mut std::collections::HashMap<String, i64>,
) -> Vec<Message> {
    batch
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let seq = last_seqs.entry(m.topic.as_str().to_owned()).or_insert(0);
            *seq += 1;
            let expires = m.ttl.map(|ttl| Timestamp(time.0 + ttl.as_micros() as i64));
            Message::new(
                Position(head.0 + 1 + i as i64),
                m.topic,
                *seq,
                time,
                m.event,
                m.payload,
                m.content_type,
            )
            .expiring(expires)
            .with_options(m.priority, m.key)
        })
        .collect()
}

/// The distinct topics of a batch, in first-seen order.
fn distinct_topics(batch: &[NewMessage]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .map(|m| m.topic.as_str())
        .filter(|t| seen.insert(*t))
        .collect()
}
