//! API tokens: `hrd_<id>_<secret>`. The database keeps the SHA-256 of the
//! secret; a presented token is looked up by its id (cached) and its
//! secret's hash compared in constant time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{Grants, Timestamp};
use crate::storage::tokens::StoredToken;
use crate::storage::{Store, StoreError};

/// What every API token starts with.
pub const PREFIX: &str = "hrd_";

/// Why an API token was refused. The text never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the API token is malformed")]
    Malformed,
    #[error("the API token is unknown or revoked")]
    Unknown,
    #[error("the API token has expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token as its holder presents it.
pub struct Presented<'a> {
    pub id: i64,
    secret: &'a str,
}

impl<'a> Presented<'a> {
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
        let id = id.parse::<i64>().map_err(|_| TokenError::Malformed)?;
        if id <= 0 || secret.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(Presented { id, secret })
    }
}

/// A fresh secret and the hex hash to store for it.
pub fn new_secret() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hex(&Sha256::digest(secret.as_bytes()));
    (secret, hash)
}

/// The token to hand out for a stored id and its secret.
pub fn token_text(id: i64, secret: &str) -> String {
    format!("{PREFIX}{id}_{secret}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32 bytes of a 64-digit hex hash.
fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// How long a token read from the database is trusted without reading it
/// again: a bound on a revocation missed by the poll.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A stored token as the cache holds it.
#[derive(Debug, Clone)]
pub struct Known {
    pub subject: String,
    pub grants: Arc<Grants>,
    /// Unix seconds.
    pub expires: Option<i64>,
    /// The stored SHA-256 of the secret, decoded once.
    hash: [u8; 32],
    read_at: std::time::Instant,
}

impl Known {
    fn from_row(row: StoredToken) -> Result<Option<Self>, StoreError> {
        if row.revoked_us.is_some() {
            return Ok(None);
        }
        let list = |text: &str| -> Result<Vec<String>, StoreError> {
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
        };
        let subject = (!row.subject.is_empty()).then_some(row.subject.as_str());
        let grants = Grants::expand(
            &list(&row.publish)?,
            &list(&row.subscribe)?,
            row.admin,
            subject,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(Known {
            grants: Arc::new(grants),
            expires: row.expires_us.map(|us| us.div_euclid(1_000_000)),
            hash: unhex(&row.hash)
                .ok_or_else(|| StoreError::Corrupt("an API token hash".into()))?,
            subject: row.subject,
            read_at: std::time::Instant::now(),
        }))
    }
}

/// API tokens by id, as last read from the database. Revoked ones are
/// dropped by the revocation poll ([`super::revocation`]).
#[derive(Default)]
pub struct Cache {
    known: Mutex<HashMap<i64, Known>>,
}

impl Cache {
    /// Checks a presented token: known, unexpired, and its secret right.
    pub async fn verify(
        &self,
        store: &dyn Store,
        token: &Presented<'_>,
    ) -> Result<Known, TokenError> {
        let cached = self
            .known
            .lock()
            .expect("token cache")
            .get(&token.id)
            .filter(|k| k.read_at.elapsed() < CACHE_TTL)
            .cloned();
        let known = match cached {
            Some(k) => k,
            None => {
                let row = store.token(token.id).await?.ok_or(TokenError::Unknown)?;
                let known = Known::from_row(row)?.ok_or(TokenError::Unknown)?;
                self.known
                    .lock()
                    .expect("token cache")
                    .insert(token.id, known.clone());
                known
            }
        };
        let presented: [u8; 32] = Sha256::digest(token.secret.as_bytes()).into();
        if !bool::from(presented.ct_eq(&known.hash)) {
            return Err(TokenError::Unknown);
        }
        let now = Timestamp::now().0.div_euclid(1_000_000);
        if known.expires.is_some_and(|e| now >= e) {
            return Err(TokenError::Expired);
        }
        Ok(known)
    }

    /// Forgets a token (revoked).
    pub fn forget(&self, id: i64) {
        self.known.lock().expect("token cache").remove(&id);
    }
}

/// A token to create: from `POST /tokens` or `herald token create`.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    pub subject: Option<String>,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    pub admin: bool,
    pub expires: Option<Timestamp>,
}

/// Why a token cannot be created as asked.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `spec`, stores the token's hash, and returns its id and the
/// token, which exists nowhere else from then on.
pub async fn issue(store: &dyn Store, spec: TokenSpec) -> Result<(i64, String), IssueError> {
    let invalid = |s: String| IssueError::Invalid(s);
    let sub = spec.subject.as_deref();
    crate::domain::scope::validate(&spec.publish, sub)
        .map_err(|e| invalid(format!("publish: {e}")))?;
    crate::domain::scope::validate(&spec.subscribe, sub)
        .map_err(|e| invalid(format!("subscribe: {e}")))?;
    let subject = spec.subject.unwrap_or_default();
    if subject.len() > 256 || subject.chars().any(char::is_control) {
        return Err(invalid(
            "subject: at most 256 characters, none of them control characters".into(),
        ));
    }
    let now = Timestamp::now();
    if spec.expires.is_some_and(|e| e.0 <= now.0) {
        return Err(invalid("expires: must be in the future".into()));
    }
    let (secret, hash) = new_secret();
    let json = |v: &Vec<String>| serde_json::to_string(v).expect("strings serialize");
    let new = crate::storage::tokens::NewToken {
        subject,
        publish: json(&spec.publish),
        subscribe: json(&spec.subscribe),
        admin: spec.admin,
        hash,
        expires: spec.expires,
    };
    let id = store.create_token(new, now).await?;
    Ok((id, token_text(id, &secret)))
}

/// `expires` as given: a duration from now (`30d`) or an RFC 3339 time.
pub fn parse_expiry(raw: &str) -> Result<Timestamp, String> {
    if let Ok(d) = crate::domain::HumanDuration::parse(raw) {
        return Ok(Timestamp(Timestamp::now().0 + d.0.as_micros() as i64));
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| Timestamp(t.timestamp_micros()))
        .map_err(|_| {
            format!("expires: {raw:?} is neither a duration (\"30d\") nor an RFC 3339 time")
        })
}
