//! One webhook attempt: `POST` of the envelope with Standard Webhooks
//! headers, through a pooled HTTP client that follows no redirects and
//! resolves names through the SSRF guard.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::guard::{self, GuardedResolver};
use crate::domain::webhook::Secret;
use crate::storage::webhooks::{Failure, Subscription};
use bytes::Bytes;

/// A failed attempt, and how long the endpoint asked us to wait.
#[derive(Debug)]
pub struct AttemptError {
    pub failure: Failure,
    pub retry_after: Option<Duration>,
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
    pub async fn attempt(
        &self,
        sub: &Subscription,
        position: i64,
        body: Bytes,
    ) -> Result<StatusCode, AttemptError> {
        let fail = |status: Option<StatusCode>, error: String, retry_after| AttemptError {
            failure: Failure {
                status: status.map(|s| i32::from(s.as_u16())),
                error,
            },
            retry_after,
        };
        // IP literals never reach the resolver: check them here too.
        if let Err(e) = guard::check_url(&sub.url, self.allow_private).await {
            return Err(fail(None, e.to_string(), None));
        }
        let secret = Secret::parse(&sub.secret).map_err(|e| fail(None, e.to_string(), None))?;
        let id = format!("msg_{}_{}", sub.id, position);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = secret.sign(&id, timestamp, &body);
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
        match sent {
            Ok(r) if r.status().is_success() => Ok(r.status()),
            Ok(r) => {
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
                Err(fail(
                    Some(status),
                    format!("endpoint answered {status}"),
                    retry_after,
                ))
            }
            Err(e) if e.is_timeout() => Err(fail(
                None,
                format!("timed out after {} ms", sub.timeout_ms),
                None,
            )),
            Err(e) => Err(fail(None, error_chain(&e), None)),
        }
    }
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
