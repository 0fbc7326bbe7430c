//! The HTTP API: the router, shared state, and one module per resource.
//! Handlers parse input into domain types and call into `fanout` and
//! `storage`; they hold no SQL and no delivery logic.

pub mod batch;
pub mod body_limits;
pub mod caller;
pub mod cross_site;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod extract;
pub mod front_door;
pub mod health;
pub mod hosts;
pub mod json;
pub mod messages;
pub mod openapi;
pub mod openapi_events;
pub mod openapi_guards;
pub mod openapi_security;
pub mod presence;
pub mod publish;
pub mod publish_options;
pub mod pull;
pub mod request_log;
pub mod scheduled;
pub mod server;
pub mod subscriptions;
pub mod tls;
mod tls_hint;
pub mod tokens;
pub mod topics;
pub mod ui;
pub mod write_timeout;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

use crate::domain::TopicSelector;
use crate::fanout::{FilterRegistry, Hub, Matcher, Publisher, StreamSettings};
use crate::storage::Store;

/// Settings the handlers need.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub max_message_bytes: usize,
    pub history_max_limit: u32,
    /// Most messages in one batch publish.
    pub batch_max_messages: usize,
    /// Largest batch publish body, in bytes.
    pub batch_max_bytes: usize,
    /// Allow webhook URLs on loopback and private networks.
    pub webhook_allow_private: bool,
    /// How long a rotated-out secret still signs (`--webhook-secret-overlap`).
    pub webhook_secret_overlap: std::time::Duration,
    /// Subscriptions one owner may have (`--max-subscriptions-per-owner`).
    pub max_subscriptions_per_owner: u32,
    /// Origins allowed by CORS (`*` for any); empty: same origin only.
    pub cors_origins: Vec<String>,
    /// The hosts requests may name ([`hosts::AllowedHosts`]).
    pub allowed_hosts: Arc<hosts::AllowedHosts>,
    pub stream: StreamSettings,
    /// Retention of topics that set none of their own.
    pub retention: crate::retention::Defaults,
    /// How long an Idempotency-Key is remembered (`--idempotency-window`).
    pub idempotency_window: std::time::Duration,
    /// The furthest a publish may be scheduled (`--schedule-max-delay`).
    pub schedule_max_delay: std::time::Duration,
    /// WebSocket limits and heartbeats.
    pub ws: ws::WsSettings,
}

/// What every handler can reach: one `Arc`, so that the clones axum makes
/// per request (a handler's state, each `State` extractor) cost one
/// atomic increment, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind an [`AppState`].
pub struct Services {
    /// Who is listening, on this node and (shared database) every other.
    pub presence: Arc<crate::presence::Presence>,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub publisher: Publisher,
    pub settings: Arc<HttpSettings>,
    /// Compiled filters, shared between subscriptions.
    pub filters: Arc<FilterRegistry>,
    /// Each topic's configuration, with its schema compiled.
    pub topics: Arc<crate::topics::TopicDirectory>,
    /// Told of every subscription change, so webhook delivery sees it.
    pub subscription_changes: Arc<crate::delivery::SubscriptionChanges>,
    /// Wakes consumers of pull subscriptions waiting on this node.
    pub pulls: Arc<crate::delivery::pull::PullSignals>,
    /// Cancelled at shutdown: open streams end cleanly.
    pub shutdown: CancellationToken,
    /// The last readiness probe, shared by `/readyz` requests.
    pub readiness: Arc<health::Readiness>,
    /// Access control and per-client limits.
    pub auth: Arc<crate::auth::Auth>,
    /// Idempotency keys whose first request is being answered here.
    pub in_flight: Arc<publish_options::InFlightKeys>,
    /// Wakes the scheduler when a publish is scheduled here.
    pub scheduler: Arc<tokio::sync::Notify>,
    /// Open WebSockets (their tasks hold a token): shutdown waits for
    /// them to send their close frames (1001).
    pub sockets: tokio_util::task::TaskTracker,
}

impl Services {
    /// The matcher for `selector` and an optional `?filter=` expression.
    pub fn matcher(
        &self,
        selector: TopicSelector,
        filter: Option<&str>,
    ) -> Result<Matcher, error::ApiError> {
        let filter = match filter {
            Some(source) => Some(self.filters.get(source)?),
            None => None,
        };
        Ok(Matcher { selector, filter })
    }
}

/// The whole HTTP service: the routes and the middleware around them.
pub type App = tower::util::BoxCloneSyncService<
    axum::http::Request<axum::body::Body>,
    axum::response::Response,
    std::convert::Infallible,
>;

pub fn router(state: AppState) -> App {
    let body_limit = state.settings.max_message_bytes;
    let allowed_hosts = state.settings.allowed_hosts.clone();
    let cors = cors(&state.settings.cors_origins);
    let origins = cross_site::AllowedOrigins::new(&state.settings.cors_origins);
    let routes = Router::new()
        .route("/", get(ui::page))
        .route("/favicon.svg", get(ui::icon))
        .route("/favicon.ico", get(ui::icon))
        .route("/topics", get(topics::list))
        .route(
            "/topics/{topic}",
            post(publish::publish)
                .get(topics::show)
                .put(topics::configure)
                .delete(topics::delete),
        )
        .route(
            body_limits::BATCH_ROUTE,
            post(batch::publish_batch).layer(DefaultBodyLimit::max(state.settings.batch_max_bytes)),
        )
        .route("/topics/{topic}/events", get(events::topic_events))
        .route("/topics/{topic}/messages", get(messages::history))
        .route("/topics/{topic}/presence", get(presence::show))
        .route("/ws", get(ws::upgrade))
        .route("/events", get(events::events))
        .route(
            "/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/subscriptions/{id}",
            get(subscriptions::show)
                .patch(subscriptions::update)
                .delete(subscriptions::delete),
        )
        .route(
            "/subscriptions/{id}/attempts",
            get(subscriptions::attempts::list),
        )
        .route(
            "/subscriptions/{id}/rotate-secret",
            post(subscriptions::secrets::rotate),
        )
        .route("/subscriptions/{id}/pull", post(pull::pull))
        .route("/subscriptions/{id}/ack", post(pull::acks::ack))
        .route("/subscriptions/{id}/nack", post(pull::acks::nack))
        .route("/subscriptions/{id}/extend", post(pull::acks::extend))
        .route("/subscriptions/{id}/seek", post(pull::seek))
        .route("/subscriptions/{id}/events", get(pull::stream::events))
        .route("/scheduled", get(scheduled::list))
        .route(
            "/scheduled/{id}",
            get(scheduled::show).delete(scheduled::cancel),
        )
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/redrive", post(dead_letters::redrive_all))
        .route(
            "/dead-letters/{id}",
            get(dead_letters::show).delete(dead_letters::delete),
        )
        .route("/dead-letters/{id}/redrive", post(dead_letters::redrive))
        .route("/tokens", post(tokens::create).get(tokens::list))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(openapi::docs())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            body_limits::BodyLimits {
                message: body_limit,
                batch: state.settings.batch_max_bytes,
            },
            body_limits::refuse_oversized,
        ))
        .with_state(state);
    // The rest of the stack wraps the router as one service: layers added
    // with `Router::layer` are boxed per route and each box is cloned per
    // request, these are cloned once per request, as one value.
    let stack = tower::ServiceBuilder::new()
        .map_response(|r: axum::response::Response<_>| r.map(axum::body::Body::new))
        .map_request(request_log::drop_bad_request_id)
        .layer(request_log::set_request_id())
        .layer(request_log::propagate_request_id())
        // Spans name the path only: a query may hold `access_token`.
        .layer(request_log::trace_layer())
        .layer(axum::middleware::from_fn(request_log::problem_request_id))
        .layer(CatchPanicLayer::custom(error::panicked))
        .layer(axum::middleware::from_fn_with_state(
            allowed_hosts,
            hosts::refuse_unknown_host,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            origins,
            cross_site::refuse_cross_site,
        ))
        .service(routes);
    App::new(stack)
}

/// CORS for browsers on other origins, when configured. Preflights are
/// answered for every method and the headers herald reads; `Retry-After`
/// and the headers the client libraries read are exposed.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
            HeaderName::from_static("x-request-id"),
        ])
        // What the client libraries read, from a page on another origin too.
        .expose_headers([
            header::RETRY_AFTER,
            HeaderName::from_static("herald-connection"),
            HeaderName::from_static("herald-start-after"),
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}
