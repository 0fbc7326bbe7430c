//! [`Caller`]: who is calling and what they may do, as [`super::Auth`]
//! finds it from a token. The HTTP layer reads the token from a request
//! and answers a refused check (`crate::http::caller`).

use std::sync::Arc;

use crate::domain::{Grants, TopicPattern};

/// The query parameter that may carry a token.
pub const QUERY_PARAM: &str = "access_token";
/// The cookie that may carry a token.
pub const COOKIE: &str = "herald_token";

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Access control is off: everyone may do everything.
    Open,
    /// No token.
    Anonymous,
    /// The API token with this id.
    ApiToken(i64),
    Jwt,
}

/// Who is calling and what they may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// The token's subject (`sub`).
    pub subject: Option<String>,
    pub grants: Arc<Grants>,
    /// When the token expires (unix seconds).
    pub expires: Option<i64>,
    /// The key of per-client limits: the token, or the address.
    pub client: String,
}

impl Caller {
    pub fn new(
        identity: Identity,
        subject: Option<String>,
        grants: Arc<Grants>,
        expires: Option<i64>,
        client: String,
    ) -> Self {
        Caller {
            identity,
            subject,
            grants,
            expires,
            client,
        }
    }

    /// Who owns what this caller creates: `token:ID` or `jwt:SUBJECT`.
    /// Nobody while access control is off, for anonymous callers, and for
    /// a JWT without a subject: they share no identity that could tell
    /// one owner from another.
    pub fn owner(&self) -> Option<String> {
        match self.identity {
            Identity::Open | Identity::Anonymous => None,
            Identity::ApiToken(id) => Some(format!("token:{id}")),
            Identity::Jwt => self
                .subject
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| format!("jwt:{s}")),
        }
    }

    /// Whether the caller may read and change something `owner` created.
    pub fn may_manage(&self, owner: Option<&str>) -> bool {
        self.identity == Identity::Open
            || self.grants.admin
            || (owner.is_some() && owner == self.owner().as_deref())
    }

    /// Whether the caller may do everything (access control off, or an
    /// admin).
    pub fn unrestricted(&self) -> bool {
        self.identity == Identity::Open || self.grants.admin
    }

    /// When the caller's token expires, in microseconds (for what it owns).
    pub fn expires_us(&self) -> Option<i64> {
        self.expires.map(|s| s.saturating_mul(1_000_000))
    }

    /// Whether the caller may see a stream of `topics` (names or
    /// patterns) in presence: only if it could subscribe to every one of
    /// them itself (an admin's `**` stream is hidden from a `chat.**`
    /// token, and so is a stream that also watches a topic it may not).
    pub fn may_see<'a>(&self, mut topics: impl Iterator<Item = &'a str>) -> bool {
        self.unrestricted()
            || topics.all(|t| TopicPattern::parse(t).is_ok_and(|p| self.grants.may_subscribe(&p)))
    }

    pub fn is_admin(&self) -> bool {
        self.grants.admin
    }
}
