//! Where herald's logs go and in what shape: one line per event on
//! stderr, as text for a person at a terminal or as JSON (one object per
//! line) for a log collector. `RUST_LOG` picks what is logged.
//!
//! Lines are formatted where they happen and written by a thread of their
//! own, in batches (one `write` for all the lines waiting), so a request
//! never waits for stderr. The queue between them holds at most
//! `--log-buffer-lines` lines: when stderr stalls (a pipe nobody reads),
//! herald keeps serving and drops lines, counted by
//! `herald_log_lines_dropped_total`.

use std::io::{BufWriter, IsTerminal};

use clap::{Args, ValueEnum};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::http::request_log::ACCESS;

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

/// The log flags of `herald serve`.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log lines as `json` (one object per line) or `text`. Default: text
    /// on a terminal, JSON otherwise.
    #[arg(long, env = "HERALD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// One line per answer (method, path, status, latency, bytes), at
    /// info; health checks and metrics scrapes that succeed are logged at
    /// debug. `--access-log false` turns the lines off (streams still log
    /// their open and close).
    #[arg(
        long,
        env = "HERALD_ACCESS_LOG",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub access_log: bool,

    /// Most log lines waiting to be written; beyond it lines are dropped
    /// and counted (`herald_log_lines_dropped_total`) rather than making
    /// requests wait for a stalled stderr.
    #[arg(long, env = "HERALD_LOG_BUFFER_LINES", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub log_buffer_lines: u32,
}

impl Default for LogArgs {
    fn default() -> Self {
        Self {
            log_format: Some(LogFormat::Text),
            access_log: true,
            log_buffer_lines: 16_384,
        }
    }
}

/// Keeps the log writer's thread: dropping it writes what is queued.
/// Hold it until the process ends.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Installs the process-wide subscriber, writing to stderr through the
/// queue described above. `RUST_LOG` overrides the default filter
/// (`info`, with sqlx's statements quiet).
pub fn init(args: &LogArgs) -> LogGuard {
    let default = if args.access_log {
        "info,sqlx=warn".to_owned()
    } else {
        format!("info,sqlx=warn,{ACCESS}=off")
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(args.log_buffer_lines as usize)
        .lossy(true)
        .thread_name("herald-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let dropped = writer.error_counter();
    crate::telemetry::watch_log_drops(move || dropped.dropped_lines() as u64);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // A second subscriber (tests that init twice) is refused, harmlessly.
    let installed = match args.log_format.unwrap_or_else(LogFormat::detect) {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    LogGuard {
        _worker: installed.is_ok().then_some(guard),
    }
}

/// Logging for the client commands and tools: text lines.
pub fn init_text() -> LogGuard {
    init(&LogArgs::default())
}
