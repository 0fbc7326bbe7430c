//! `idle --tls`: idle SSE streams over HTTPS, as HTTP/2 (many streams on
//! one connection, as a browser multiplexes a page's `EventSource`s) and
//! as HTTP/1.1 (one connection each), against the same herald.

use std::path::Path;

use reqwest::Version;

use crate::server::{BenchDb, Server};
use crate::stats::Row;

/// Streams per HTTP/2 connection (herald allows 256).
const STREAMS_PER_CONNECTION: usize = 200;

/// A self-signed certificate for 127.0.0.1 in `dir` (made with openssl).
fn certificate(dir: &Path) -> anyhow::Result<()> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run openssl: {e}"))?;
    anyhow::ensure!(status.success(), "openssl could not make a certificate");
    Ok(())
}

/// A client of the bench's own herald. openssl's self-signed certificate
/// is a CA, which webpki refuses as a server's: skip verification.
fn client(http1: bool) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder().tls_danger_accept_invalid_certs(true);
    let builder = if http1 { builder.http1_only() } else { builder };
    Ok(builder.build()?)
}

/// `n` open streams, each checked to be 200 over `version`.
async fn open(base: &str, n: usize, version: Version) -> anyhow::Result<Vec<reqwest::Response>> {
    let http1 = version == Version::HTTP_11;
    let per = if http1 { 256 } else { STREAMS_PER_CONNECTION };
    let url = format!("{base}/topics/idle/events");
    let mut streams = Vec::with_capacity(n);
    while streams.len() < n {
        // A client of its own per batch: over HTTP/2, one connection.
        let c = client(http1)?;
        let batch = (streams.len()..(streams.len() + per).min(n)).map(|_| c.get(&url).send());
        for r in futures_util::future::join_all(batch).await {
            let r = r?;
            anyhow::ensure!(r.status() == 200, "stream answered {}", r.status());
            anyhow::ensure!(r.version() == version, "stream over {:?}", r.version());
            streams.push(r);
        }
    }
    Ok(streams)
}

/// Memory per idle stream over HTTPS, HTTP/2 then HTTP/1.1.
pub async fn idle(postgres: Option<&str>, backend: &str, n: usize) -> anyhow::Result<Vec<Row>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    certificate(dir.path())?;
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (c, k) = (c.display().to_string(), k.display().to_string());
    // HTTP/1.1 here comes from one address: lift the per-address cap.
    let flags = [
        "--tls-cert",
        &c,
        "--tls-key",
        &k,
        "--max-connections-per-ip",
        "0",
    ];
    let mut rows = Vec::new();
    for (version, name) in [(Version::HTTP_2, "HTTP/2"), (Version::HTTP_11, "HTTP/1.1")] {
        let db = BenchDb::fresh(postgres).await?;
        let server = Server::start(&db, &flags).await?;
        let pid = server.pid().expect("started here");
        drop(open(&server.url, 64, version).await?);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let before = crate::server::rss_bytes(pid).unwrap_or_default();
        let streams = open(&server.url, n, version).await?;
        let after = crate::sse::steady_rss(pid).await;
        drop(streams);
        let per = after.saturating_sub(before) as f64 / n as f64;
        let connections = match version {
            Version::HTTP_2 => n.div_ceil(STREAMS_PER_CONNECTION),
            _ => n,
        };
        rows.push(
            Row::new(
                &format!("idle, {n} SSE streams, HTTPS {name}"),
                backend,
                "server memory per stream",
                per / 1024.0,
                "KiB",
            )
            .note(format!(
                "{connections} TLS connections; RSS {:.1} → {:.1} MiB",
                before as f64 / 1048576.0,
                after as f64 / 1048576.0
            )),
        );
        server.stop().await;
        db.cleanup().await;
    }
    Ok(rows)
}
