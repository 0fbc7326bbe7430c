//! Builds the application (storage, hub, writer, router), binds its
//! listener, and runs it until a shutdown signal, which `main` and tests
//! each supply.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ServeConfig, SqliteSync};
use crate::delivery::{Deliverer, DeliverySettings, SubscriptionChanges};
use crate::fanout::{FilterRegistry, Hub, StreamSettings, hub, writer};
use crate::http::{AppState, HttpSettings, router};
use crate::storage::{self, Store, StoreOptions};
use crate::topics::TopicDirectory;

/// A bound, ready-to-run herald.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    writer: JoinHandle<()>,
    writer_stop: CancellationToken,
    sequencer: JoinHandle<()>,
    delivery: JoinHandle<()>,
    pruner: JoinHandle<()>,
    scheduler: JoinHandle<()>,
    auth_poll: JoinHandle<()>,
    /// Writes and follows presence on a shared database.
    presence_sync: Option<JoinHandle<()>>,
    grace: Duration,
    database: String,
    front_door: crate::http::front_door::Limits,
    connections: crate::http::server::ConnSettings,
    /// HTTPS: the certificate, reloaded on SIGHUP.
    certificates: Option<Arc<crate::http::tls::Certificates>>,
}

impl Application {
    /// Connects to the database (running migrations), starts the writer and
    /// the sequencer, and binds the listener.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        // TLS for https webhooks uses ring (no C toolchain beyond cc, no
        // aws-lc). Installing twice (tests build several apps) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        crate::telemetry::install();
        // Bind first: a taken port or a bad address fails before the
        // database is touched; then the certificate, if any.
        let listener = bind(&config.listen).await?;
        let certificates = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::http::tls::Certificates::load(cert, key)?),
            _ => None,
        };
        let options = StoreOptions {
            timeout: config.db_timeout(),
            max_connections: config.db_max_connections,
            sqlite_full_sync: config.sqlite_synchronous == SqliteSync::Full,
            sqlite_max_page_count: config.sqlite_max_page_count,
        };
        let store: Arc<dyn Store> = storage::connect(&config.database_url, &options).await?;
        let head = store.head().await?;
        let hub = Hub::new(config.hub_capacity as usize, config.hub_max_bytes, head);
        let shutdown = CancellationToken::new();
        let writer_stop = CancellationToken::new();

        let (feed_tx, feed_rx) = mpsc::channel(256);
        let sequencer = tokio::spawn(hub::run_sequencer(
            hub.clone(),
            store.clone(),
            feed_rx,
            store.head_notifications(),
            shutdown.clone(),
        ));
        let scheduler_wake = Arc::new(tokio::sync::Notify::new());
        let scheduler = tokio::spawn(
            crate::scheduler::Scheduler {
                store: store.clone(),
                feed: feed_tx.clone(),
                wake: scheduler_wake.clone(),
                timeout: config.db_timeout(),
                idempotency_window: config.idempotency_window.0,
            }
            .run(shutdown.clone()),
        );
        let (publisher, writer) = writer::spawn(
            store.clone(),
            feed_tx,
            writer::WriterLimits {
                max_batch: config.max_batch as usize,
                max_pending: config.max_pending_publishes as usize,
                timeout: config.db_timeout(),
            },
            writer_stop.clone(),
        );

        let filters = Arc::new(FilterRegistry::default());
        let subscription_changes = Arc::new(SubscriptionChanges::default());
        let addr = listener.local_addr()?;
        let topics = Arc::new(TopicDirectory::new(store.clone()));
        let auth = Arc::new(crate::auth::Auth::new(&config.auth(), store.clone())?);
        let auth_poll = auth.spawn_poll(config.auth_revocation_poll.0, shutdown.clone());
        let notices = store.presence_notifications();
        let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
        let node = crate::presence::Presence::new_node_id();
        let pulls = pull_signals(&store, &node, &shutdown);
        let presence = crate::presence::Presence::new(node, notices.is_some().then_some(outbox_tx));
        let presence_sync = notices.map(|notices| {
            tokio::spawn(crate::presence::sync::run(
                presence.clone(),
                store.clone(),
                outbox_rx,
                notices,
                config.realtime.presence_lease.0,
                shutdown.clone(),
            ))
        });
        let state = AppState::new(crate::http::Services {
            presence,
            store,
            hub,
            publisher,
            settings: Arc::new(HttpSettings {
                max_message_bytes: config.max_message_bytes,
                history_max_limit: config.history_max_limit.max(1),
                batch_max_messages: config.batch_max_messages as usize,
                batch_max_bytes: config.batch_max_bytes,
                webhook_allow_private: config.webhooks.webhook_allow_private,
                webhook_secret_overlap: config.webhooks.webhook_secret_overlap.0,
                max_subscriptions_per_owner: config.webhooks.max_subscriptions_per_owner,
                cors_origins: config.cors_origins.clone(),
                allowed_hosts: crate::http::hosts::AllowedHosts::new(
                    &config.allowed_hosts,
                    addr.ip().is_loopback(),
                ),
                stream: StreamSettings {
                    heartbeat: Duration::from_millis(config.heartbeat_ms),
                    retry: Duration::from_millis(config.sse_retry_ms),
                    page: 1000,
                    max_duration: (config.sse_max_duration_ms > 0)
                        .then(|| Duration::from_millis(config.sse_max_duration_ms)),
                },
                retention: config.retention(),
                idempotency_window: config.idempotency_window.0,
                schedule_max_delay: config.schedule_max_delay.0,
                ws: crate::http::ws::WsSettings {
                    max_frame_bytes: config.realtime.ws_max_frame_bytes,
                    max_subscriptions: config.realtime.ws_max_subscriptions as usize,
                    publish_rate: config.realtime.ws_publish_rate,
                    ping_interval: config.realtime.ws_ping_interval.0,
                },
            }),
            filters: filters.clone(),
            topics,
            subscription_changes: subscription_changes.clone(),
            pulls,
            shutdown: shutdown.clone(),
            readiness: Default::default(),
            auth,
            in_flight: Default::default(),
            scheduler: scheduler_wake,
            sockets: Default::default(),
        });
        let deliverer = Deliverer::new(
            state.store.clone(),
            subscription_changes,
            filters,
            state.publisher.clone(),
            DeliverySettings {
                poll: Duration::from_millis(config.webhooks.webhook_poll_ms),
                per_subscription: config.webhooks.webhook_concurrency as usize,
                allow_private: config.webhooks.webhook_allow_private,
                grace: Duration::from_millis(config.shutdown_grace_ms),
                attempt_log: !config.webhooks.attempt_log_max_age.is_zero(),
                breaker: config.webhooks.breaker(),
                disable_after: config.webhooks.webhook_disable_after.0,
            },
        )?;
        let pruner = tokio::spawn(crate::retention::pruner::run(
            state.store.clone(),
            config.retention(),
            config.prune_interval.0,
            shutdown.clone(),
        ));
        let delivery = tokio::spawn(deliverer.run(state.hub.clone(), shutdown));
        Ok(Self {
            listener,
            addr,
            state,
            writer,
            writer_stop,
            sequencer,
            delivery,
            pruner,
            scheduler,
            auth_poll,
            presence_sync,
            grace: Duration::from_millis(config.shutdown_grace_ms),
            database: redact(&config.database_url),
            front_door: config.front_door(),
            connections: crate::http::server::ConnSettings {
                write_timeout: (!config.sse_write_timeout.is_zero())
                    .then_some(config.sse_write_timeout.0),
                send_buffer: (config.tcp_send_buffer > 0).then_some(config.tcp_send_buffer),
                tls: certificates.as_ref().map(|c| c.acceptor()).transpose()?,
            },
            certificates,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub, for tests and benchmarks that look inside.
    pub fn hub(&self) -> Arc<Hub> {
        self.state.hub.clone()
    }

    /// Serves until `signal` completes, then shuts down: stop accepting,
    /// end open streams, let in-flight publishes commit, exit.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.state.shutdown.clone();
        let scheme = match self.certificates {
            Some(certificates) => {
                certificates.reload_on_sighup(shutdown.clone())?;
                "https"
            }
            None => "http",
        };
        tracing::info!(
            backend = self.state.store.backend(),
            database = %self.database,
            "herald listening on {scheme}://{}",
            self.addr
        );
        // The address is the first line; what follows explains it.
        warn_if_open(&self.state.auth, self.addr);
        if let Some(open_files) = &self.front_door.open_files {
            open_files.log();
        }
        let sockets = self.state.sockets.clone();
        let app = router(self.state);
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            trigger.cancel();
        });
        let door = crate::http::front_door::FrontDoor::new(self.front_door);
        let serve = crate::http::server::serve(
            self.listener,
            app,
            door,
            self.connections,
            shutdown.clone(),
        );
        let grace = self.grace;
        tokio::select! {
            () = serve => {}
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("requests still open after the shutdown grace period; closing them");
            }
        }
        shutdown.cancel();
        // WebSockets are upgraded out of the server's drain: each sends its
        // close frame (1001) and waits a moment for the peer's answer.
        sockets.close();
        if tokio::time::timeout(Duration::from_secs(2), sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!("WebSockets still open 2 s after the shutdown; closing them");
        }
        tracing::info!("no longer accepting requests; committing what is queued");
        // Every publish that reached the writer is committed and answered
        // before the writer stops.
        self.writer_stop.cancel();
        if let Err(e) = self.writer.await {
            tracing::error!(error = %e, "writer task failed");
        }
        let _ = self.sequencer.await;
        let _ = self.delivery.await;
        let _ = self.pruner.await;
        let _ = self.scheduler.await;
        let _ = self.auth_poll.await;
        if let Some(sync) = self.presence_sync {
            let _ = sync.await;
        }
        tracing::info!("herald stopped");
        Ok(())
    }
}

/// The wakes of pull consumers; where nodes share the database, with the
/// task that carries them between nodes (it ends at `shutdown`).
fn pull_signals(
    store: &Arc<dyn Store>,
    node: &str,
    shutdown: &CancellationToken,
) -> Arc<crate::delivery::pull::PullSignals> {
    use crate::delivery::pull_signals::{PullSignals, sync};
    let Some(notices) = store.pull_notifications() else {
        return Arc::new(PullSignals::default());
    };
    let (signals, announce) = PullSignals::shared();
    let signals = Arc::new(signals);
    tokio::spawn(sync(
        signals.clone(),
        announce,
        store.clone(),
        node.to_owned(),
        notices,
        shutdown.clone(),
    ));
    signals
}

/// Waits for the `herald listening on <url>` line (logged by
/// [`Application::run_until`]) on a herald child process's stderr and
/// returns the URL. The rest of the log is drained in the background, so the
/// child never blocks on a full pipe. For tests and the benchmark, which
/// start the binary.
pub async fn wait_until_listening(
    stderr: tokio::process::ChildStderr,
    within: Duration,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(stderr).lines();
    let url = tokio::time::timeout(within, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = listening_url(&line) {
                return Ok(url);
            }
        }
        anyhow::bail!("herald exited before listening")
    })
    .await
    .map_err(|_| anyhow::anyhow!("herald did not start within {within:?}"))??;
    // The rest is read and dropped in large reads (never left to fill the
    // pipe, which would make herald drop its log lines).
    let mut rest = lines.into_inner();
    tokio::spawn(async move { tokio::io::copy(&mut rest, &mut tokio::io::sink()).await });
    Ok(url)
}

/// The URL in a `herald listening on <url>` log line, text or JSON.
pub fn listening_url(line: &str) -> Option<String> {
    let rest = line.split("herald listening on ").nth(1)?;
    let url: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":/.[]-".contains(*c))
        .collect();
    (!url.is_empty()).then_some(url)
}

/// With access control off, anyone who can reach herald may do anything:
/// fine on loopback, worth a warning anywhere else.
fn warn_if_open(auth: &crate::auth::Auth, addr: SocketAddr) {
    if !auth.enabled() && !addr.ip().is_loopback() {
        tracing::warn!(
            "access control is off and herald listens on {addr}: anyone who can reach it may publish, read and change everything; set --auth-jwt-secret, --auth-jwt-key or --anonymous (see docs/access-control.md)"
        );
    }
}

/// Binds `listen` (`HOST:PORT`), with errors that name the address.
async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    let well_formed = listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !well_formed {
        anyhow::bail!(
            "invalid --listen value {listen:?}: expected HOST:PORT, for example 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080"
        );
    }
    TcpListener::bind(listen).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot listen on {listen}: the address is already in use (another herald?); choose another with --listen or HERALD_LISTEN"
        ),
        _ => anyhow::anyhow!("cannot listen on {listen}: {e}"),
    })
}

/// The database URL without a password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(super::redact("sqlite://herald.db"), "sqlite://herald.db");
    }
}
