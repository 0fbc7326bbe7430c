//! API tokens: created, looked up by id, listed, revoked. Only a hash of
//! each token's secret is stored. A revoked token keeps its row, so that
//! every node's revocation poll ([`TokenStore::revoked_since`]) sees it.
//!
//! The SQL is the same on both backends: [`TokenStore`] is implemented once
//! for every [`SqlBackend`].

use sqlx::{Database, Executor, FromRow, Pool};

use super::topics::{Binds, Rows};
use super::{SqlBackend, StoreError};
use crate::domain::Timestamp;

/// A token as created (its secret already hashed).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub subject: String,
    /// JSON arrays of patterns.
    pub publish: String,
    pub subscribe: String,
    pub admin: bool,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    pub expires: Option<Timestamp>,
}

/// A stored token.
#[derive(Debug, Clone, FromRow)]
pub struct StoredToken {
    pub id: i64,
    pub subject: String,
    pub publish: String,
    pub subscribe: String,
    pub admin: bool,
    pub hash: String,
    pub created_us: i64,
    pub expires_us: Option<i64>,
    pub revoked_us: Option<i64>,
}

/// API tokens. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, token: NewToken, now: Timestamp) -> Result<i64, StoreError>;
    /// The token with this id, revoked or not.
    async fn token(&self, id: i64) -> Result<Option<StoredToken>, StoreError>;
    /// Tokens that are not revoked, by id, at most `limit` after `after`.
    async fn tokens(&self, after: i64, limit: u32) -> Result<Vec<StoredToken>, StoreError>;
    /// Revokes a token and pauses the subscriptions it owns, in one
    /// transaction; false if it is unknown or revoked already.
    async fn revoke_token(&self, id: i64, now: Timestamp) -> Result<bool, StoreError>;
    /// Ids of the tokens revoked at or after `since`.
    async fn revoked_since(&self, since: Timestamp) -> Result<Vec<i64>, StoreError>;
}

const COLUMNS: &str =
    "id, subject, publish, subscribe, admin, hash, created_us, expires_us, revoked_us";

#[async_trait::async_trait]
impl<T> TokenStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    i64: Binds<T::DB>,
    bool: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    StoredToken: Rows<T::DB>,
    (i64,): Rows<T::DB>,
{
    async fn create_token(&self, token: NewToken, now: Timestamp) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (subject, publish, subscribe, admin, hash, created_us, expires_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(token.subject)
        .bind(token.publish)
        .bind(token.subscribe)
        .bind(token.admin)
        .bind(token.hash)
        .bind(now.0)
        .bind(token.expires.map(|t| t.0))
        .fetch_one(self.writes())
        .await
        .map_err(T::err)?;
        Ok(id)
    }

    async fn token(&self, id: i64) -> Result<Option<StoredToken>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.reads())
            .await
            .map_err(T::err)
    }

    async fn tokens(&self, after: i64, limit: u32) -> Result<Vec<StoredToken>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE revoked_us IS NULL AND id > $1 \
             ORDER BY id LIMIT $2"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(T::err)
    }

    async fn revoke_token(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let rows: Vec<(i64,)> = sqlx::query_as(
            "UPDATE api_tokens SET revoked_us = $1 WHERE id = $2 AND revoked_us IS NULL \
             RETURNING id",
        )
        .bind(now.0)
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(T::err)?;
        sqlx::query("UPDATE subscriptions SET paused = TRUE, updated_us = $1 WHERE owner = $2")
            .bind(now.0)
            .bind(format!("token:{id}"))
            .execute(&mut *tx)
            .await
            .map_err(T::err)?;
        tx.commit().await.map_err(T::err)?;
        Ok(!rows.is_empty())
    }

    async fn revoked_since(&self, since: Timestamp) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM api_tokens WHERE revoked_us >= $1 ORDER BY id")
                .bind(since.0)
                .fetch_all(self.reads())
                .await
                .map_err(T::err)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
