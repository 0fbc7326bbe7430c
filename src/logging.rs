//! Where herald's logs go and in what shape: one line per event on
//! stderr, as text for a person at a terminal or as JSON (one object per
//! line) for a log collector. `RUST_LOG` picks what is logged.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// The shape of log lines (`--log-format`, `HERALD_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line: `timestamp`, `level`, `fields`
    /// (`message` and the rest), `target`, `span` and `spans`.
    Json,
    /// Human-readable lines.
    Text,
}

impl LogFormat {
    /// Text on a terminal, JSON otherwise (a container, a service manager,
    /// a file).
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    }
}

/// Installs the process-wide subscriber, writing to stderr. `RUST_LOG`
/// overrides the default filter (`info`, with sqlx's statements quiet).
pub fn init(format: Option<LogFormat>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber (tests that init twice) is refused, harmlessly.
    let _ = match format.unwrap_or_else(LogFormat::detect) {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
