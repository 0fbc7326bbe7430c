//! The command-line client in the `herald` binary: `herald publish` and
//! `herald subscribe` talk to a running herald over its HTTP API, as curl
//! would, with clear errors and exit codes:
//!
//! - `0`: done;
//! - `1`: herald refused the request (its problem+json detail is printed);
//! - `2`: bad usage, such as a malformed `--url` (clap uses `2` as well);
//! - `3`: herald cannot be reached.

pub mod publish;
pub mod subscribe;
pub mod token;

use std::fmt;
use std::process::ExitCode;

use clap::Args;

/// Where herald is and who is asking, for every client command.
#[derive(Debug, Clone, Args)]
pub struct Server {
    /// herald's base URL.
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A bearer token (an API token or a JWT).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust this PEM certificate (a self-signed herald's) besides the
    /// system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
}

/// Why a client command failed; its exit code follows from it.
#[derive(Debug)]
pub enum CliError {
    /// herald answered with an error status.
    Refused { status: u16, detail: String },
    /// Bad usage that clap could not catch.
    Usage(String),
    /// herald could not be reached (or the connection broke).
    Unreachable(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Refused { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Refused { status, detail } => write!(f, "herald answered {status}: {detail}"),
            CliError::Usage(what) | CliError::Unreachable(what) => f.write_str(what),
        }
    }
}

impl Server {
    /// The base URL, checked: `http(s)://HOST[:PORT][/prefix]`, without a
    /// trailing slash.
    pub fn base(&self) -> Result<String, CliError> {
        let parsed = url::Url::parse(&self.url).map_err(|e| bad_url(&self.url, &e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(bad_url(
                &self.url,
                "expected http:// or https:// and a host",
            ));
        }
        Ok(self.url.trim_end_matches('/').to_owned())
    }

    /// An HTTP client (rustls with ring, as the server uses).
    pub fn client(&self) -> Result<reqwest::Client, CliError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("herald-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &self.cacert {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::Usage(format!("cannot read --cacert {}: {e}", path.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                CliError::Usage(format!(
                    "--cacert {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            builder = builder.tls_certs_merge([cert]);
        }
        builder
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up the HTTP client: {e}")))
    }

    /// `req` with the token, if any.
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }
}

fn bad_url(url: &str, why: &str) -> CliError {
    CliError::Usage(format!(
        "invalid --url {url:?} ({why}); expected something like http://127.0.0.1:8080"
    ))
}

/// A failed request, worded for a person: which server, and why.
pub fn unreachable(base: &str, e: &reqwest::Error) -> CliError {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        why = format!("{why}: {cause}");
        source = cause.source();
    }
    CliError::Unreachable(format!("cannot reach herald at {base}: {why}"))
}

/// An error answer: its problem+json `detail`, or the body as it is.
pub async fn refused(response: reqwest::Response) -> CliError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let title = v.get("title")?.as_str()?.to_owned();
            let detail = v.get("detail")?.as_str()?;
            Some(format!("{title}: {detail}"))
        })
        .unwrap_or_else(|| body.trim().to_owned());
    CliError::Refused { status, detail }
}

/// Runs a client command and turns its outcome into an exit code, the
/// error printed on stderr.
pub async fn run(command: impl std::future::Future<Output = Result<(), CliError>>) -> ExitCode {
    match command.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e}");
            e.exit_code()
        }
    }
}

/// `herald health`: `GET /healthz`, for container health checks (the
/// runtime image has no curl). Prints nothing on success.
pub async fn health(server: Server) -> Result<(), CliError> {
    let base = server.base()?;
    let response = server
        .client()?
        .get(format!("{base}/healthz"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| unreachable(&base, &e))?;
    if !response.status().is_success() {
        return Err(refused(response).await);
    }
    Ok(())
}
