//! The SQLite backend: one file, WAL, one writer connection (SQLite has one
//! writer at a time anyway) and a small pool of readers.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{
    HeadNotice, MessageRow, Store, StoreError, StoreOptions, TopicInfo, TopicRow, rows_to_messages,
};
use crate::domain::{Message, NewMessage, Position, TopicName};

use super::MESSAGE_COLUMNS;
/// Rows per multi-row INSERT (11 parameters each, well under SQLite's limit).
const INSERT_CHUNK: usize = 1000;

/// Messages after `after` in position order (of `topics` only, if given).
async fn read_in(
    conn: &mut SqliteConnection,
    after: i64,
    topics: Option<&[&str]>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE position > "
    ));
    q.push_bind(after);
    if let Some(topics) = topics {
        q.push(" AND topic IN (");
        let mut list = q.separated(", ");
        for t in topics {
            list.push_bind(*t);
        }
        q.push(")");
    }
    q.push(" ORDER BY position LIMIT ")
        .push_bind(i64::from(limit));
    let rows: Vec<MessageRow> = q.build_query_as().fetch_all(conn).await.map_err(err)?;
    rows_to_messages(rows)
}

mod append;
mod clean;
mod library;
mod topics;

use append::Committed;

impl super::SqlBackend for SqliteStore {
    type DB = Sqlite;
    const CLAIM_LOCK: &'static str = "";
    const NOTIFY: Option<&'static str> = None;

    fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    fn reads(&self) -> &SqlitePool {
        &self.readers
    }

    fn err(e: sqlx::Error) -> StoreError {
        err(e)
    }

    async fn read_log(
        &self,
        after: Position,
        topics: Option<&[&str]>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let mut conn = self.readers.acquire().await.map_err(err)?;
        read_in(&mut conn, after.0, topics, limit).await
    }
}

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    committed: Arc<tokio::sync::Mutex<Committed>>,
    /// The lock on `<file>.lock`: one herald process per SQLite file.
    _lock: Option<std::fs::File>,
    /// The database file (`None` in memory), for the readiness probe.
    file: Option<std::path::PathBuf>,
    /// The connections' busy timeout (`--db-timeout-ms`).
    busy_timeout: Duration,
}

/// SQLITE_BUSY, SQLITE_LOCKED, and the disk's troubles: READONLY, IOERR,
/// FULL (with their extended codes). A retry may succeed once they pass.
fn transient(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13))
}

fn err(e: sqlx::Error) -> StoreError {
    StoreError::classify(e, transient)
}

impl SqliteStore {
    pub async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        library::configure();
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid SQLite URL {url:?}: {e}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sqlite_full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(options.timeout);
        // Settings that write to the file, for the writer only: a reader
        // connection opened later must never write, or the writer's
        // transactions would meet a second writer and fail at once.
        let mut writes = connect
            .clone()
            // Lets retention give pages back to the file system (it takes
            // effect in a new file; see `TopicStore::reclaim_space`).
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            // The WAL file keeps its high-water size after a checkpoint
            // unless told otherwise: a burst (a large prune) would leave it
            // hundreds of MiB large for good.
            .pragma("journal_size_limit", "67108864");
        if let Some(pages) = options.sqlite_max_page_count {
            writes = writes.pragma("max_page_count", pages.to_string());
        }
        let file = connect.get_filename().to_owned();
        let lock = if file.as_os_str() == ":memory:" {
            None
        } else {
            Some(super::open::lock_sqlite_file(&file)?)
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.timeout)
            .after_release(|conn, _| Box::pin(clean::outside_transaction(conn)))
            .connect_with(writes)
            .await
            .map_err(|e| super::open::sqlite_open_error(&file, &e))?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.timeout)
            .connect_with(connect)
            .await?;
        Ok(Self {
            writer,
            readers,
            committed: Default::default(),
            file: lock.is_some().then_some(file),
            _lock: lock,
            busy_timeout: options.timeout,
        })
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append_keyed(
        &self,
        batch: Vec<NewMessage>,
        keys: Vec<crate::storage::Keyed>,
        within: Duration,
    ) -> Result<Vec<Message>, StoreError> {
        let (writer, committed) = (self.writer.clone(), self.committed.clone());
        let job = append::Job::Publish(batch, keys);
        append::append(writer, committed, job, within, self.busy_timeout).await
    }

    async fn publish_due(
        &self,
        now: crate::domain::Timestamp,
        limit: u32,
        within: Duration,
    ) -> Result<Vec<Message>, StoreError> {
        let (writer, committed) = (self.writer.clone(), self.committed.clone());
        let job = append::Job::Due { now, limit };
        append::append(writer, committed, job, within, self.busy_timeout).await
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
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE position IN ("
        ));
        let mut list = q.separated(", ");
        for p in positions {
            list.push_bind(*p);
        }
        q.push(") ORDER BY position");
        let rows: Vec<MessageRow> = q
            .build_query_as()
            .fetch_all(&self.readers)
            .await
            .map_err(err)?;
        rows_to_messages(rows)
    }

    async fn head(&self) -> Result<Position, StoreError> {
        sqlx::query_scalar("SELECT head FROM log_head WHERE id = 1")
            .fetch_one(&self.readers)
            .await
            .map(Position)
            .map_err(err)
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>, StoreError> {
        let rows: Vec<TopicRow> = sqlx::query_as(
            "SELECT name, last_seq, message_count, created_us, last_published_us, config \
             FROM topics ORDER BY name",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(err)?;
        rows.into_iter().map(TopicInfo::try_from).collect()
    }

    async fn topic(&self, name: &TopicName) -> Result<Option<TopicInfo>, StoreError> {
        let row: Option<TopicRow> = sqlx::query_as(
            "SELECT name, last_seq, message_count, created_us, last_published_us, config \
             FROM topics WHERE name = ?",
        )
        .bind(name.as_str())
        .fetch_optional(&self.readers)
        .await
        .map_err(err)?;
        row.map(TopicInfo::try_from).transpose()
    }

    fn pool_stats(&self) -> Vec<(&'static str, u32, usize)> {
        vec![
            ("writer", self.writer.size(), self.writer.num_idle()),
            ("readers", self.readers.size(), self.readers.num_idle()),
        ]
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map(drop)
            .map_err(err)
    }

    async fn probe_write(&self) -> Result<(), super::readiness::ProbeError> {
        super::readiness::sqlite(self.writer.clone(), self.file.clone()).await
    }

    fn head_notifications(&self) -> Option<BoxStream<'static, HeadNotice>> {
        // Only this process writes the file: the writer feeds the hub.
        None
    }

    fn presence_notifications(&self) -> Option<BoxStream<'static, super::Notice>> {
        // One process knows its streams in memory.
        None
    }

    fn pull_notifications(&self) -> Option<BoxStream<'static, super::Notice>> {
        // One process wakes its own consumers.
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{EventType, Payload};

    fn message(topic: &str) -> NewMessage {
        NewMessage {
            topic: TopicName::parse(topic).unwrap(),
            event: EventType::message(),
            payload: Payload::Text("x".into()),
            content_type: "text/plain".into(),
            ttl: None,
            priority: Default::default(),
            key: None,
        }
    }

    /// When the writer's memory of topics is full it starts over, and a
    /// topic it knew is then read back, not numbered from 1 again.
    #[tokio::test]
    async fn a_full_topic_memory_starts_over_without_renumbering() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/log.db", dir.path().display());
        let options = StoreOptions {
            timeout: Duration::from_secs(5),
            max_connections: 2,
            sqlite_full_sync: false,
            sqlite_max_page_count: None,
        };
        let store = SqliteStore::connect(&url, &options).await.unwrap();
        store
            .append(vec![message("a"), message("a")], Duration::from_secs(5))
            .await
            .unwrap();
        {
            let mut committed = store.committed.lock().await;
            for i in committed.last_seqs.len()..append::COMMITTED_TOPICS - 1 {
                committed.last_seqs.insert(format!("filler{i}"), 1);
            }
        }
        let appended = store
            .append(
                vec![message("a"), message("b"), message("c")],
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let seqs: Vec<(&str, i64)> = appended.iter().map(|m| (m.topic.as_str(), m.seq)).collect();
        assert_eq!(seqs, [("a", 3), ("b", 1), ("c", 1)]);
        assert_eq!(appended[0].position, Position(3));
        assert!(store.committed.lock().await.last_seqs.len() <= 3);
    }
}
