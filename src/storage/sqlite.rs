//! The SQLite backend: one file, WAL, one writer connection (SQLite has one
//! writer at a time anyway) and a small pool of readers.

use std::collections::HashMap;
use std::str::FromStr;

use futures_util::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{
    HeadNotice, MessageRow, Store, StoreError, StoreOptions, TopicInfo, TopicRow, assign,
    distinct_topics, rows_to_messages,
};
use crate::domain::{Message, NewMessage, Position, Timestamp, TopicName};

const MESSAGE_COLUMNS: &str =
    "position, topic, seq, event, is_json, payload, content_type, time_us";
/// Rows per multi-row INSERT (8 parameters each, well under SQLite's limit).
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

super::webhooks::webhook_store!(SqliteStore, Sqlite, writer, readers, "");

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
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
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sqlite_full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(options.timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.timeout)
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { writer, readers })
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Message>, StoreError> {
        let time = Timestamp::now();
        // IMMEDIATE takes the write lock up front, so a busy database fails
        // here, after the busy timeout, instead of half-way through.
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(err)?;
        let head: i64 = sqlx::query_scalar("SELECT head FROM log_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;

        // One lookup for every topic of the group (not one per topic).
        let topics: Vec<String> = distinct_topics(&batch)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut last_seqs: HashMap<String, i64> = HashMap::with_capacity(topics.len());
        for chunk in topics.chunks(INSERT_CHUNK) {
            let mut q =
                QueryBuilder::<Sqlite>::new("SELECT name, last_seq FROM topics WHERE name IN (");
            let mut list = q.separated(", ");
            for t in chunk {
                list.push_bind(t.as_str());
            }
            q.push(")");
            let rows: Vec<(String, i64)> =
                q.build_query_as().fetch_all(&mut *tx).await.map_err(err)?;
            last_seqs.extend(rows);
        }
        let before = last_seqs.clone();
        let messages = assign(batch, Position(head), time, &mut last_seqs);

        for chunk in messages.chunks(INSERT_CHUNK) {
            let mut insert =
                QueryBuilder::<Sqlite>::new(format!("INSERT INTO messages ({MESSAGE_COLUMNS}) "));
            insert.push_values(chunk, |mut row, m| {
                row.push_bind(m.position.0)
                    .push_bind(m.topic.as_str())
                    .push_bind(m.seq)
                    .push_bind(m.event.as_str())
                    .push_bind(m.payload.is_json())
                    .push_bind(m.payload.as_str())
                    .push_bind(m.content_type.as_str())
                    .push_bind(m.time.0);
            });
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        // One upsert creates new topics and advances existing ones.
        for chunk in topics.chunks(INSERT_CHUNK) {
            let mut upsert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO topics (name, last_seq, message_count, created_us, last_published_us) ",
            );
            upsert.push_values(chunk, |mut row, t| {
                let last = last_seqs[t];
                row.push_bind(t.as_str())
                    .push_bind(last)
                    .push_bind(last - before.get(t).copied().unwrap_or(0))
                    .push_bind(time.0)
                    .push_bind(time.0);
            });
            upsert.push(
                " ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, \
                 message_count = topics.message_count + excluded.message_count, \
                 last_published_us = excluded.last_published_us",
            );
            upsert.build().execute(&mut *tx).await.map_err(err)?;
        }
        let new_head = head + messages.len() as i64;
        sqlx::query("UPDATE log_head SET head = ? WHERE id = 1")
            .bind(new_head)
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
        let mut conn = self.readers.acquire().await.map_err(err)?;
        read_in(&mut conn, after.0, topics, limit).await
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

    async fn retained_bounds(&self) -> Result<(Position, Position), StoreError> {
        let (oldest, head): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE((SELECT MIN(position) FROM messages), head + 1), head \
             FROM log_head WHERE id = 1",
        )
        .fetch_one(&self.readers)
        .await
        .map_err(err)?;
        Ok((Position(oldest), Position(head)))
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>, StoreError> {
        let rows: Vec<TopicRow> = sqlx::query_as(
            "SELECT name, last_seq, message_count, created_us, last_published_us \
             FROM topics ORDER BY name",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(err)?;
        rows.into_iter().map(TopicInfo::try_from).collect()
    }

    async fn topic(&self, name: &TopicName) -> Result<Option<TopicInfo>, StoreError> {
        let row: Option<TopicRow> = sqlx::query_as(
            "SELECT name, last_seq, message_count, created_us, last_published_us \
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

    fn head_notifications(&self) -> Option<BoxStream<'static, HeadNotice>> {
        // Only this process writes the file: the writer feeds the hub.
        None
    }
}
