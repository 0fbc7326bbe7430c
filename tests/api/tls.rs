//! HTTPS through the real binary: HTTP/2 and HTTP/1.1 through ALPN, and a
//! certificate reloaded on SIGHUP while a stream stays open.

use std::path::{Path, PathBuf};

use reqwest::Version;

use crate::helpers::{Backend, Sse, TestDb, eventually};
use crate::lifecycle::Herald;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as
/// `cert.pem` and `key.pem` in `dir`; returns the certificate's PEM.
pub fn write_certificate(dir: &Path) -> String {
    let pair =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = pair.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
    cert
}

/// A client that trusts only `cert`; `http1` keeps it to HTTP/1.1.
pub fn client_trusting(cert: &str, http1: bool) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.as_bytes()).unwrap()]);
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

/// Starts the binary with the certificate in `dir`.
pub async fn start_https(db: &TestDb, dir: &Path) -> Herald {
    let path = |name: &str| -> String {
        let p: PathBuf = dir.join(name);
        p.display().to_string()
    };
    let (cert, key) = (path("cert.pem"), path("key.pem"));
    let herald = Herald::start_with(db, &["--tls-cert", &cert, "--tls-key", &key]).await;
    assert!(herald.base.starts_with("https://"), "{}", herald.base);
    herald
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_speaks_http2_and_http1_through_alpn_and_streams_over_both() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = write_certificate(dir.path());
    let herald = start_https(&db, dir.path()).await;
    for (http1, version) in [(false, Version::HTTP_2), (true, Version::HTTP_11)] {
        let client = client_trusting(&cert, http1);
        let health = client.get(herald.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.version(), version);
        let mut sse = Sse::connect(&client, &herald.url("/topics/tls/events"), None).await;
        // From a page of herald's own origin: over HTTP/2 the host is in
        // `:authority`, not in a Host header.
        let r = client
            .post(herald.url("/topics/tls"))
            .header("origin", &herald.base)
            .body(format!("over {version:?}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.version(), version);
        let got = sse.messages(1).await;
        assert_eq!(got[0].data, format!("over {version:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_new_certificate_and_open_streams_survive() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let old = write_certificate(dir.path());
    let herald = start_https(&db, dir.path()).await;
    let old_client = client_trusting(&old, false);
    let mut sse = Sse::connect(&old_client, &herald.url("/topics/hup/events"), None).await;

    let new = write_certificate(dir.path());
    herald.signal("HUP");
    // A client that trusts only the new certificate gets in once the
    // reload is done.
    let url = herald.url("/healthz");
    eventually("the new certificate", || {
        let client = client_trusting(&new, false);
        let url = url.clone();
        async move { client.get(&url).send().await.ok() }
    })
    .await;
    let refused = client_trusting(&old, false).get(&url).send().await;
    assert!(refused.is_err(), "the old certificate is still served");

    let r = client_trusting(&new, false)
        .post(herald.url("/topics/hup"))
        .body("after the reload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = sse.messages(1).await;
    assert_eq!(got[0].data, "after the reload", "the open stream survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_fit_the_certificate_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let other = tempfile::tempdir().unwrap();
    write_certificate(other.path());
    let db = format!("sqlite://{}", dir.path().join("h.db").display());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
            "--tls-cert",
        ])
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(other.path().join("key.pem"))
        .env("HERALD_LOG_FORMAT", "text")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("does not fit the certificate"), "{stderr}");
}

/// `curl http://` to the TLS port: a readable 400 that says to use https,
/// not a TLS alert shown as "HTTP/0.9"; HTTPS on the same port still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_is_told_to_use_https() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = write_certificate(dir.path());
    let herald = start_https(&db, dir.path()).await;
    let addr = herald.base.trim_start_matches("https://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(crate::helpers::DEADLINE, tcp.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");
    let health = client_trusting(&cert, true)
        .get(herald.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
