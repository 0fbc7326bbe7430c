//! Cross-site request refusal. CORS only stops a browser from *reading*
//! an answer; a "simple" cross-origin request (a `POST` with
//! `Content-Type: text/plain`, say) is still sent without a preflight and
//! runs. So any web page someone on herald's network visits could publish.
//!
//! A state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`) that carries
//! an `Origin` header is refused with `403` before its handler runs unless
//! that origin is herald's own (its host and port are the request's `Host`)
//! or is allowed by `--cors-origins` (`*` allows any). Requests without
//! `Origin` (curl, servers, other non-browser clients) are unaffected, and
//! so are reads.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header, uri::Authority};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The origins `--cors-origins` allows.
#[derive(Debug, Clone)]
pub struct AllowedOrigins {
    any: bool,
    /// Lower case, without a trailing `/`.
    listed: Vec<String>,
}

impl AllowedOrigins {
    pub fn new(configured: &[String]) -> Arc<Self> {
        let listed: Vec<String> = configured
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Arc::new(Self {
            any: listed.iter().any(|o| o == "*"),
            listed,
        })
    }

    /// Whether a request from `origin` to `headers`' host may change state.
    fn allows(&self, origin: &str, authority: Option<&Authority>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        self.any || self.listed.contains(&origin) || same_origin(&origin, authority)
    }
}

/// Middleware: refuses a cross-site state-changing request with `403`.
pub async fn refuse_cross_site(
    State(allowed): State<Arc<AllowedOrigins>>,
    req: Request,
    next: Next,
) -> Response {
    // A WebSocket can publish, and browsers open one from any page with
    // the cookie: its upgrade is checked like a POST.
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let changes_state = websocket
        || matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
    if changes_state && let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !allowed.allows(&origin, request_authority(&req).as_ref()) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross-site-request",
                "Cross-site request refused",
                format!(
                    "a {} from origin {origin:?} is refused: it is neither herald's own origin nor allowed by --cors-origins",
                    if websocket { "WebSocket" } else { req.method().as_str() }
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Whether `origin` (`scheme://host[:port]`) names the host and port that
/// the request was sent to (its `Host` header).
/// The host the client asked for: `Host` (HTTP/1.1), else the URI's
/// authority (HTTP/2's `:authority`, which has no `Host` header).
pub(crate) fn request_authority(req: &Request) -> Option<Authority> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok());
    host.or_else(|| req.uri().authority().cloned())
}

fn same_origin(origin: &str, host: Option<&Authority>) -> bool {
    let Ok(origin) = url::Url::parse(origin) else {
        return false; // `null` (sandboxed frames, files) and the like
    };
    let Some(host) = host else {
        return false;
    };
    let (Some(origin_host), Some(origin_port)) =
        (origin.host_str(), origin.port_or_known_default())
    else {
        return false;
    };
    let port = host.port_u16().or(origin.port_or_known_default());
    origin_host.eq_ignore_ascii_case(host.host()) && port == Some(origin_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Option<Authority> {
        Some(h.parse().unwrap())
    }

    #[test]
    fn the_own_origin_is_the_request_host() {
        let none = AllowedOrigins::new(&[]);
        for (origin, h) in [
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://Herald.example", "herald.example"),
            ("http://herald.example", "herald.example:80"),
            ("https://herald.example", "herald.example"),
            ("http://[::1]:8080", "[::1]:8080"),
        ] {
            assert!(none.allows(origin, host(h).as_ref()), "{origin} {h}");
        }
        for (origin, h) in [
            ("http://127.0.0.1:8081", "127.0.0.1:8080"),
            ("http://localhost:8080", "127.0.0.1:8080"),
            ("https://herald.example", "herald.example:80"),
            ("http://herald.example.evil", "herald.example"),
            ("null", "herald.example"),
        ] {
            assert!(!none.allows(origin, host(h).as_ref()), "{origin} {h}");
        }
    }

    #[test]
    fn listed_origins_and_any_are_allowed() {
        let listed = AllowedOrigins::new(&["https://app.example.com/".into()]);
        assert!(listed.allows("https://APP.example.com", host("herald:8080").as_ref()));
        assert!(!listed.allows("https://evil.example", host("herald:8080").as_ref()));
        let any = AllowedOrigins::new(&["*".into()]);
        assert!(any.allows("https://evil.example", host("herald:8080").as_ref()));
    }
}
