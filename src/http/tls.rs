//! HTTPS: rustls (with the `ring` provider) in front of the same service,
//! offering HTTP/2 and HTTP/1.1 through ALPN. Browsers allow six HTTP/1.1
//! connections per origin; over HTTP/2 every `EventSource` of a page
//! shares one connection.
//!
//! The certificate and key are read at start-up and again on SIGHUP:
//! [`Certificates`] answers each handshake with the key pair it holds now,
//! so open connections keep theirs and new ones get the new pair. A file
//! that does not load keeps the old pair and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The certificate files and the key pair loaded from them.
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Loads `cert` (a PEM chain, leaf first) and `key` (PEM).
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let pair = read_pair(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(pair)),
        }))
    }

    /// Reads the files again; on failure the old pair stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let pair = read_pair(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// A TLS acceptor that offers `h2` and `http/1.1`.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reloads on every SIGHUP until `stop`.
    pub fn reload_on_sighup(self: Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hup.recv() => if got.is_none() { break },
                    () = stop.cancelled() => break,
                }
                match self.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => tracing::error!(
                        "TLS certificate not reloaded, the previous one stays in use: {e:#}"
                    ),
                }
            }
        });
        Ok(())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The key pair in `cert` and `key`, checked to belong together.
fn read_pair(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no PEM certificate in {}", cert.display());
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    CertifiedKey::from_der(chain, der, &provider()).with_context(|| {
        format!(
            "the key {} does not fit the certificate {}",
            key.display(),
            cert.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh self-signed pair in `dir`.
    fn write_pair(dir: &Path) {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("cert.pem"), pair.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
    }

    fn current(c: &Certificates) -> Arc<CertifiedKey> {
        c.current.read().unwrap().clone()
    }

    #[test]
    fn a_reload_that_fails_keeps_the_pair_in_use_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path());
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let certs = Certificates::load(&cert, &key).unwrap();
        let first = current(&certs);

        std::fs::write(&key, "not a key").unwrap();
        let err = certs.reload().unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot read the private key"),
            "{err:#}"
        );
        assert!(Arc::ptr_eq(&first, &current(&certs)), "the old pair stays");

        write_pair(dir.path());
        certs.reload().unwrap();
        assert_ne!(
            first.cert,
            current(&certs).cert,
            "the new certificate is served"
        );
    }

    #[test]
    fn a_file_without_a_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = Certificates::load(&empty, &dir.path().join("key.pem")).unwrap_err();
        assert!(
            format!("{err:#}").contains("no PEM certificate in"),
            "{err:#}"
        );
    }
}
