//! `Host` validation, against DNS rebinding: a page on another site whose
//! name the attacker re-points at 127.0.0.1 reaches herald as a
//! same-origin request (its `Origin` and `Host` agree), so the cross-site
//! check alone would let it publish, and read what it likes, while access
//! control is off.
//!
//! Every request's host (`Host`, or HTTP/2's `:authority`) must be one
//! herald answers to, or it is refused with `421` before its handler
//! runs:
//! - `--allowed-hosts` (comma separated names or addresses; `*` allows
//!   any; `.example.com` allows that domain and its subdomains);
//! - else, when herald listens on a loopback address: loopback names only
//!   (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`);
//! - else any host (behind a load balancer herald cannot know its names:
//!   set `--allowed-hosts` there).
//!
//! A request without any host (HTTP/1.0) is not a browser's, and passes.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The hosts herald answers to.
#[derive(Debug, Clone)]
pub enum AllowedHosts {
    Any,
    Loopback,
    /// Lower case; a leading `.` allows a domain and its subdomains.
    Listed(Vec<String>),
}

impl AllowedHosts {
    /// From `--allowed-hosts` and whether herald listens on loopback.
    pub fn new(configured: &[String], listens_on_loopback: bool) -> Arc<Self> {
        let listed: Vec<String> = configured
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Arc::new(if listed.iter().any(|h| h == "*") {
            AllowedHosts::Any
        } else if !listed.is_empty() {
            AllowedHosts::Listed(listed)
        } else if listens_on_loopback {
            AllowedHosts::Loopback
        } else {
            AllowedHosts::Any
        })
    }

    /// Whether `host` (a name or address, without its port) is allowed.
    fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            AllowedHosts::Any => true,
            AllowedHosts::Loopback => is_loopback(&host),
            AllowedHosts::Listed(listed) => listed.iter().any(|h| match h.strip_prefix('.') {
                Some(domain) => host == domain || host.ends_with(&format!(".{domain}")),
                None => *h == host || brackets(h) == host,
            }),
        }
    }
}

/// `::1` as a URL host has brackets: `[::1]`.
fn brackets(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_owned()
    }
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Middleware: refuses a request for a host herald does not answer to.
pub async fn refuse_unknown_host(
    State(allowed): State<Arc<AllowedHosts>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(authority) = super::cross_site::request_authority(&req)
        && !allowed.allows(authority.host())
    {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "unknown-host",
            "Unknown host",
            format!(
                "herald does not answer to host {:?}; list it in --allowed-hosts",
                authority.host()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_loopback_only_loopback_names_are_allowed() {
        let h = AllowedHosts::new(&[], true);
        for ok in [
            "localhost",
            "LOCALHOST.",
            "app.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for no in [
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil",
            "10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!h.allows(no), "{no}");
        }
    }

    #[test]
    fn listed_hosts_and_domains_replace_the_default() {
        let h = AllowedHosts::new(
            &[
                "herald.example".into(),
                ".corp.example".into(),
                "::1".into(),
            ],
            true,
        );
        for ok in [
            "herald.example",
            "Herald.Example",
            "corp.example",
            "a.b.corp.example",
            "[::1]",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for no in [
            "localhost",
            "127.0.0.1",
            "xcorp.example",
            "herald.example.evil",
        ] {
            assert!(!h.allows(no), "{no}");
        }
        assert!(AllowedHosts::new(&["*".into()], true).allows("anything.example"));
        assert!(AllowedHosts::new(&[], false).allows("anything.example"));
    }
}
