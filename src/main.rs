//! The `herald` binary: parse flags, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use herald::config::{Cli, Command};
use herald::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The log writer's guard lives until the last line below is queued.
    let mut log = None;
    let result = match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        // The client commands print for a person and log nothing.
        Command::Publish(args) => return herald::cli::run(herald::cli::publish::run(args)).await,
        Command::Subscribe(args) => {
            return herald::cli::run(herald::cli::subscribe::run(args)).await;
        }
        Command::Health(server) => return herald::cli::run(herald::cli::health(server)).await,
        Command::Openapi(args) => {
            log = Some(herald::logging::init_text());
            herald::http::openapi::emit(args.write.as_deref())
        }
        Command::ConfigReference => herald::config::reference::print(),
        Command::Token(command) => {
            log = Some(herald::logging::init_text());
            herald::cli::token::run(command).await
        }
        Command::Serve(config) => {
            log = Some(herald::logging::init(&config.log));
            match Application::build(config).await {
                Ok(app) => app.run_until(shutdown_signal()).await,
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            drop(log);
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
}

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options. Freed pages go back to the OS after 1 s
/// (jemalloc's default is 10 s), purged by a background thread: without it
/// purging happens only inside allocations, so a server gone quiet after
/// its stalled connections closed kept their memory (issue 21, item 7).
/// `_RJEM_MALLOC_CONF` in the environment still overrides these.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000".as_ptr());

/// A C string pointer jemalloc reads at start-up.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: it points at a static C string that nothing writes.
unsafe impl Sync for MallocConf {}
