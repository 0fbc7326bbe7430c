//! The SSRF guard: webhook URLs must be `http`/`https` and must not reach
//! an address that is not globally reachable (see [`super::special_ranges`]:
//! loopback, private, link-local, every other special-purpose range, and
//! IPv4 inside IPv6 transition forms) unless herald runs with
//! `--webhook-allow-private`. Checked when a subscription is saved and
//! again, through the resolver, on every delivery (a DNS name can change
//! its answer).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// How long a subscription request waits for DNS (a resolver that drops
/// queries would otherwise hold it for many seconds).
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Addresses that are not globally reachable: this machine, its private
/// networks, and every other special-purpose range.
pub fn is_forbidden(ip: IpAddr) -> bool {
    super::special_ranges::forbidden_range(ip).is_some()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a valid URL")]
    Invalid(String),
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error(
        "{0} is not a globally reachable address ({1}); start herald with --webhook-allow-private to allow it"
    )]
    Private(String, &'static str),
}

/// Checks a webhook URL, resolving its host name.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<Url, UrlError> {
    let url = Url::parse(raw).map_err(|_| UrlError::Invalid(raw.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let ips: Vec<IpAddr> = match url.host().ok_or(UrlError::NoHost)? {
        Host::Ipv4(ip) => vec![ip.into()],
        Host::Ipv6(ip) => vec![ip.into()],
        // A name that does not resolve (yet), or not quickly, is accepted:
        // every attempt resolves it again through the guarded resolver.
        Host::Domain(name) => {
            match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port))).await
            {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            }
        }
    };
    if !allow_private
        && let Some((ip, why)) = ips
            .into_iter()
            .find_map(|ip| super::special_ranges::forbidden_range(ip).map(|why| (ip, why)))
    {
        return Err(UrlError::Private(ip.to_string(), why));
    }
    Ok(url)
}

/// A resolver for the webhook client that drops forbidden addresses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow || !is_forbidden(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{} resolves only to forbidden addresses", name.as_str()).into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(allow_private: bool) -> Arc<Self> {
        Arc::new(Self { allow_private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "100.128.0.1"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert_eq!(
            check_url("ftp://example.com/", true).await,
            Err(UrlError::Scheme)
        );
        assert!(matches!(
            check_url("not a url", true).await,
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            check_url("http://127.0.0.1:9/hook", false).await,
            Err(UrlError::Private(..))
        ));
        assert!(matches!(
            check_url("http://[::1]/hook", false).await,
            Err(UrlError::Private(..))
        ));
        assert!(matches!(
            check_url("http://localhost/hook", false).await,
            Err(UrlError::Private(..))
        ));
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check_url("https://93.184.215.14/hook", false).await.is_ok());
        assert!(
            check_url("https://no-such-host.invalid/hook", false)
                .await
                .is_ok()
        );
    }
}
