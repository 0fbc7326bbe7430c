//! One webhook attempt: `POST` of the envelope with Standard Webhooks
//! headers, through a pooled HTTP client that follows no redirects and
//! resolves names through the SSRF guard.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::guard::{self, GuardedResolver};
use crate::domain::webhook::Secret;
use crate::storage::webhooks::{Failure, Subscription};
use bytes::Bytes;

/// The most of an answer's body that the attempt log keeps.
pub const RESPONSE_KEPT: usize = 1024;

/// What one attempt came to.
#[derive(Debug)]
pub struct Answer {
    /// The endpoint's status, if it answered.
    pub status: Option<StatusCode>,
    /// Why it failed: a status that is not 2xx, a timeout, a refused
    /// connection … (None: it succeeded).
    pub error: Option<String>,
    /// How long the endpoint asked us to wait (`Retry-After` on 429/503).
    pub retry_after: Option<Duration>,
    /// The endpoint answered `webhook-delivery: abort-message`: no more
    /// attempts for this message.
    pub abort: bool,
    /// The start of the body (at most [`RESPONSE_KEPT`] bytes, lossy UTF-8).
    pub response: Option<String>,
    pub duration: Duration,
}

impl Answer {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// The failure as the ledger records it.
    pub fn failure(&self) -> Failure {
        Failure {
            status: self.status.map(|s| i32::from(s.as_u16())),
            error: self.error.clone().unwrap_or_default(),
        }
    }

    /// An attempt that failed before, or without, an answer.
    pub fn failed(error: String, started: Instant) -> Self {
        Self {
            status: None,
            error: Some(error),
            retry_after: None,
            abort: false,
            response: None,
            duration: started.elapsed(),
        }
    }
}

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private: bool,
}

impl WebhookClient {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            // A redirect could lead anywhere, private addresses included.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::shared(allow_private))
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            allow_private,
        })
    }

    /// Delivers the envelope of the message at `position` to the
    /// subscription's endpoint once.
    pub async fn attempt(&self, sub: &Subscription, position: i64, body: Bytes) -> Answer {
        let started = Instant::now();
        // IP literals never reach the resolver: check them here too.
        if let Err(e) = guard::check_url(&sub.url, self.allow_private).await {
            return Answer::failed(e.to_string(), started);
        }
        let id = format!("msg_{}_{}", sub.id, position);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match signatures(sub, &id, timestamp, &body) {
            Ok(s) => s,
            Err(e) => return Answer::failed(e, started),
        };
        let sent = self
            .http
            .post(&sub.url)
            .timeout(Duration::from_millis(sub.timeout_ms.max(1) as u64))
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                let error = format!("timed out after {} ms", sub.timeout_ms);
                return Answer::failed(error, started);
            }
            Err(e) => return Answer::failed(error_chain(&e), started),
        };
        let status = r.status();
        let retry_after = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
        .then(|| r.headers().get(RETRY_AFTER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
        let abort = r
            .headers()
            .get("webhook-delivery")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"abort-message"));
        let response = body_start(r).await;
        Answer {
            status: Some(status),
            error: (!status.is_success()).then(|| format!("endpoint answered {status}")),
            retry_after,
            abort: abort && !status.is_success(),
            response,
            duration: started.elapsed(),
        }
    }
}

/// `v1,<signature>` with the current secret, and after it (space
/// separated, as Standard Webhooks allows) one with the previous secret
/// while that is still valid after a rotation.
fn signatures(sub: &Subscription, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let secret = Secret::parse(&sub.secret).map_err(|e| e.to_string())?;
    let mut signature = secret.sign(id, timestamp, body);
    let now_us = timestamp.saturating_mul(1_000_000);
    if let (Some(previous), Some(until)) = (&sub.previous_secret, sub.previous_secret_until_us)
        && until > now_us
        && let Ok(previous) = Secret::parse(previous)
    {
        signature.push(' ');
        signature.push_str(&previous.sign(id, timestamp, body));
    }
    Ok(signature)
}

/// The first [`RESPONSE_KEPT`] bytes of the body (the rest is not read: a
/// huge or endless body costs one buffer), within the attempt's timeout.
async fn body_start(mut r: reqwest::Response) -> Option<String> {
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_KEPT {
        match r.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    kept.truncate(RESPONSE_KEPT);
    (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned())
}

/// The error with its causes, e.g. "error sending request: connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
