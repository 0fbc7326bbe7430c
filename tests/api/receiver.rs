//! A real local HTTP endpoint for webhook tests, with a scripted behaviour,
//! that records what it receives and checks signatures as a receiver would.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::helpers::DEADLINE;

/// How the endpoint answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    Ok,
    Fail(u16),
    /// Fail with 500 this many times, then answer 200.
    FailFirst(usize),
    /// Sleep this long before answering 200.
    Slow(Duration),
    /// 429 with `Retry-After: secs` this many times, then 200.
    RetryAfter {
        secs: u64,
        times: usize,
    },
    /// 500 with `webhook-delivery: abort-message`.
    Abort,
    /// This status with a body of this many bytes.
    Body(u16, usize),
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    pub status: u16,
}

impl Hit {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Verifies the Standard Webhooks signature with `secret`.
    pub fn verify(&self, secret: &str) {
        let id = self.headers["webhook-id"].to_str().unwrap();
        let ts = self.headers["webhook-timestamp"].to_str().unwrap();
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
        assert!(age.abs() < 300, "stale timestamp {ts}");
        let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
        let header = self.headers["webhook-signature"].to_str().unwrap();
        assert!(
            header.split(' ').any(|s| s == expected),
            "bad signature {header}"
        );
    }
}

#[derive(Default)]
struct Inner {
    behaviour: Mutex<Option<Behaviour>>,
    hits: Mutex<Vec<Hit>>,
    answered: Mutex<usize>,
}

pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let inner = Arc::new(Inner::default());
        *inner.behaviour.lock().unwrap() = Some(behaviour);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, inner }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = Some(behaviour);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.inner.hits.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests were answered 2xx; returns those.
    pub async fn successes(&self, n: usize) -> Vec<Hit> {
        crate::helpers::eventually(&format!("{n} webhook deliveries"), || async {
            let ok: Vec<Hit> = self.hits().into_iter().filter(|h| h.status < 300).collect();
            (ok.len() >= n).then_some(ok)
        })
        .await
    }

    /// Waits until at least `n` requests arrived, whatever the answer.
    pub async fn requests(&self, n: usize) -> Vec<Hit> {
        crate::helpers::eventually(&format!("{n} webhook requests"), || async {
            let hits = self.hits();
            (hits.len() >= n).then_some(hits)
        })
        .await
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let behaviour = inner.behaviour.lock().unwrap().clone().unwrap();
    let n = {
        let mut a = inner.answered.lock().unwrap();
        *a += 1;
        *a
    };
    let (status, retry_after) = match behaviour {
        Behaviour::Ok => (200, None),
        Behaviour::Fail(s) => (s, None),
        Behaviour::FailFirst(k) => (if n <= k { 500 } else { 200 }, None),
        Behaviour::Slow(d) => {
            tokio::time::sleep(d.min(DEADLINE)).await;
            (200, None)
        }
        Behaviour::RetryAfter { secs, times } => {
            if n <= times {
                (429, Some(secs))
            } else {
                (200, None)
            }
        }
        Behaviour::Abort | Behaviour::Body(..) => (500, None),
    };
    let status = match behaviour {
        Behaviour::Body(s, _) => s,
        _ => status,
    };
    inner.hits.lock().unwrap().push(Hit {
        headers,
        body,
        at: Instant::now(),
        status,
    });
    let body = match behaviour {
        Behaviour::Body(_, bytes) => "x".repeat(bytes),
        _ => String::new(),
    };
    let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
    if matches!(behaviour, Behaviour::Abort) {
        r.headers_mut()
            .insert("webhook-delivery", "abort-message".parse().unwrap());
    }
    if let Some(s) = retry_after {
        r.headers_mut().insert("retry-after", s.into());
    }
    r
}
