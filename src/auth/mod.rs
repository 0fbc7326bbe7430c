//! Access control: who is calling, and what they may do.
//!
//! - [`caller`]: the [`Caller`] extractor (the token from `Authorization:
//!   Bearer`, `?access_token=` or the `herald_token` cookie, verified) and
//!   its checks, which answer `401`/`403`.
//! - [`jwt`]: JWT verification (HS256 secret; RS256/ES256/EdDSA keys),
//!   with a cache of verified tokens.
//! - [`api_token`]: API tokens stored hashed in the database.
//! - [`revocation`]: revoked API tokens, polled from the database, which
//!   end their open streams on every node.
//! - [`limits`]: per-client publish rate and open streams.
//!
//! With no JWT key and no `--anonymous` flag, access control is off:
//! every request may do everything, as before it existed.

pub mod api_token;
pub mod caller;
pub mod jwt;
pub mod limits;
pub mod revocation;

use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{Grants, TopicPattern};
use crate::storage::Store;
pub use caller::{Caller, Identity};

/// What a request without a token may do once access control is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Anonymous {
    /// Nothing but the open endpoints (health, docs).
    None,
    /// Subscribe to every topic (streams, history, topic reads).
    Subscribe,
    /// Subscribe and publish to every topic.
    Publish,
}

/// Access control settings, from the flags.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub jwt_secret: Option<String>,
    pub jwt_keys: Vec<PathBuf>,
    pub jwt_audience: Option<String>,
    /// `None`: the flag was not given.
    pub anonymous: Option<Anonymous>,
    pub revocation_poll: Duration,
    pub rate_limit_publish: Option<limits::Rate>,
    pub rate_limit_burst: Option<u32>,
    pub max_streams_per_client: u32,
}

/// Why a presented token was refused (answered `401`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Jwt(#[from] jwt::JwtError),
    #[error(transparent)]
    Token(#[from] api_token::TokenError),
}

/// The limit key of a client without a token: its IPv4 address, or the
/// /64 of its IPv6 one (a host may pick any address in its /64).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Access control of one node.
pub struct Auth {
    enabled: bool,
    anonymous: Arc<Grants>,
    jwt: Option<jwt::Verifier>,
    tokens: Arc<api_token::Cache>,
    revocations: Arc<revocation::Revocations>,
    pub limits: Arc<limits::Limits>,
    store: Arc<dyn Store>,
}

impl Auth {
    pub fn new(settings: &AuthSettings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let jwt = jwt::Verifier::new(
            settings.jwt_secret.as_deref(),
            &settings.jwt_keys,
            settings.jwt_audience.clone(),
        )?;
        let enabled = jwt.is_some() || settings.anonymous.is_some();
        let all = || vec![TopicPattern::parse("**").expect("`**` is a pattern")];
        let anonymous = match settings.anonymous.unwrap_or(Anonymous::None) {
            _ if !enabled => Grants::everything(),
            Anonymous::None => Grants::default(),
            Anonymous::Subscribe => Grants {
                subscribe: all(),
                ..Grants::default()
            },
            Anonymous::Publish => Grants {
                publish: all(),
                subscribe: all(),
                admin: false,
            },
        };
        Ok(Auth {
            enabled,
            anonymous: Arc::new(anonymous),
            jwt,
            tokens: Arc::default(),
            revocations: Arc::default(),
            limits: Arc::new(limits::Limits::new(
                settings.rate_limit_publish,
                settings.rate_limit_burst,
                settings.max_streams_per_client,
            )),
            store,
        })
    }

    /// Whether access control is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The caller a request makes, from its token (if any) and address.
    pub async fn caller(
        &self,
        token: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Caller, AuthError> {
        let ip_key = || ip.map_or_else(|| "ip:unknown".to_owned(), client_key);
        if !self.enabled {
            return Ok(Caller::new(
                Identity::Open,
                None,
                self.anonymous.clone(),
                None,
                ip_key(),
            ));
        }
        let Some(token) = token else {
            return Ok(Caller::new(
                Identity::Anonymous,
                None,
                self.anonymous.clone(),
                None,
                ip_key(),
            ));
        };
        if token.starts_with(api_token::PREFIX) {
            let presented = api_token::Presented::parse(token)?;
            // Known revoked: refused without a database lookup.
            if self.revocations.is_revoked(presented.id) {
                return Err(api_token::TokenError::Unknown.into());
            }
            let known = self.tokens.verify(self.store.as_ref(), &presented).await?;
            let grants = self.with_anonymous(&known.grants);
            let subject = (!known.subject.is_empty()).then_some(known.subject);
            let id = presented.id;
            return Ok(Caller::new(
                Identity::ApiToken(id),
                subject,
                grants,
                known.expires,
                format!("token:{id}"),
            ));
        }
        let Some(jwt) = &self.jwt else {
            return Err(jwt::JwtError::Malformed.into());
        };
        let v = jwt.verify(token)?;
        let key = v
            .subject
            .as_ref()
            .map_or_else(ip_key, |s| format!("jwt:{s}"));
        Ok(Caller::new(
            Identity::Jwt,
            v.subject,
            self.with_anonymous(&v.grants),
            v.expires,
            key,
        ))
    }

    /// A token's grants plus what anonymous callers may do anyway.
    fn with_anonymous(&self, grants: &Arc<Grants>) -> Arc<Grants> {
        if *self.anonymous == Grants::default() {
            return grants.clone();
        }
        Arc::new((**grants).clone().union(&self.anonymous))
    }

    /// Completes when the caller's access ends: its token expires, or (an
    /// API token) is revoked on any node. `None` if it never ends.
    pub fn access_ends(&self, caller: &Caller) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let expiry = caller.expires.map(|exp| {
            let now = jsonwebtoken::get_current_timestamp() as i64;
            tokio::time::sleep(Duration::from_secs(exp.saturating_sub(now).max(0) as u64))
        });
        let revoked = match caller.identity {
            Identity::ApiToken(id) => Some(self.revocations.revoked(id)),
            _ => None,
        };
        match (expiry, revoked) {
            (None, None) => None,
            (Some(e), None) => Some(Box::pin(e)),
            (None, Some(r)) => Some(Box::pin(r)),
            (Some(e), Some(r)) => Some(Box::pin(async move {
                tokio::select! {
                    () = e => {}
                    () = r => {}
                }
            })),
        }
    }

    /// Takes effect on this node at once (others see it at their next
    /// poll).
    pub fn revoked_here(&self, id: i64) {
        self.revocations.add([id], &self.tokens);
    }

    /// Polls for revocations every `every` until `shutdown`.
    pub fn spawn_poll(
        &self,
        every: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let limits = self.limits.clone();
        tokio::spawn(revocation::poll(
            self.store.clone(),
            self.revocations.clone(),
            self.tokens.clone(),
            every,
            move || limits.housekeeping(),
            shutdown,
        ))
    }
}
