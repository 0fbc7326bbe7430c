//! The OpenAPI 3.1 document, generated from the handlers' annotations,
//! served at `/openapi.json` and browsable at `/docs` (Swagger UI, every
//! asset served by herald itself: it works with no internet).

use super::json::Json;
use super::openapi_security::Security;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::openapi_guards::GuardAnswers;
use super::{
    batch, dead_letters, events, health, messages, presence, publish, pull, scheduled,
    subscriptions, tokens, topics, ws,
};

/// The message envelope: the `data:` of every SSE event, the items of the
/// history, and the body of every webhook delivery.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: envelopes are encoded by hand
#[schema(example = json!({"id": 42, "topic": "orders", "seq": 7,
    "time": "2026-11-24T04:20:21.723484Z", "event": "message", "priority": 3, "data": {"total": 150}}))]
pub struct Envelope {
    /// Position in herald's global log; the SSE `id:`.
    id: i64,
    topic: String,
    /// Number within the topic (1, 2, 3, … without gaps).
    seq: i64,
    /// Commit time, RFC 3339 UTC with microseconds.
    time: String,
    /// The event type (`message` unless published with `?event=`).
    event: String,
    /// 1 (min) to 5 (max); 3 unless published with `?priority=`.
    #[schema(minimum = 1, maximum = 5)]
    priority: u8,
    /// The ordering key, if published with `?key=`.
    key: Option<String>,
    /// When the message expires (RFC 3339), if it was published with a
    /// time to live (`?ttl=` or the topic's `message_ttl`).
    expires: Option<String>,
    /// The payload: JSON as published, or a string for text bodies.
    data: serde_json::Value,
}

/// One Server-Sent Event as an SSE client parses it (the response of the
/// stream endpoints is a sequence of these).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: frames are encoded by hand
pub struct SseEvent {
    /// The message id (its position in the log): what `EventSource` sends
    /// back as `Last-Event-ID`.
    id: Option<String>,
    /// `message` (or the type given at publish), or `gap`.
    event: Option<String>,
    /// The `Envelope` as JSON text; for `gap`,
    /// `{"after","oldest_available","resumed_from"}`, plus `topics:
    /// [{"topic","lost_through"}]` when retention removed messages of
    /// those topics after the cursor.
    data: String,
}

/// A page of history.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the page is spliced together
pub struct MessagesPage {
    messages: Vec<Envelope>,
    /// Pass as `after` to get the following page.
    next: i64,
    /// Present when retention removed messages of the topic after `after`.
    gap: Option<HistoryGap>,
}

/// Messages of the topic after the cursor that retention removed.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct HistoryGap {
    after: i64,
    /// The highest id removed.
    lost_through: i64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "herald",
        description = "A durable notification service. Publish with `POST /topics/{topic}`; \
            subscribe with Server-Sent Events (`GET /topics/{topic}/events`, `GET /events`) and \
            resume exactly with `Last-Event-ID`; or register webhooks (`/subscriptions`) with \
            retries and dead letters. Errors are RFC 9457 problem documents. \
            herald publishes its own events to reserved topics, read like any topic: \
            `$herald.subscription.circuit` (SSE event `circuit`, data `CircuitEvent`), \
            `$herald.subscription.disabled` (event `disabled`, data `DisabledEvent`) and \
            `$herald.delivery.dead_lettered` (event `dead_lettered`, data `DeadLetteredEvent`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        publish::publish,
        batch::publish_batch,
        scheduled::list,
        scheduled::show,
        scheduled::cancel,
        events::topic_events,
        events::events,
        messages::history,
        presence::show,
        ws::upgrade,
        topics::list,
        topics::show,
        topics::configure,
        topics::delete,
        subscriptions::create,
        subscriptions::list,
        subscriptions::show,
        subscriptions::update,
        subscriptions::delete,
        subscriptions::attempts::list,
        subscriptions::secrets::rotate,
        pull::pull,
        pull::acks::ack,
        pull::acks::nack,
        pull::acks::extend,
        pull::seek,
        pull::stream::events,
        dead_letters::list,
        dead_letters::show,
        dead_letters::delete,
        dead_letters::redrive,
        dead_letters::redrive_all,
        tokens::create,
        tokens::list,
        tokens::revoke,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
    ),
    components(schemas(
        super::openapi_events::CircuitEvent,
        super::openapi_events::DisabledEvent,
        super::openapi_events::DeadLetteredEvent,
    )),
    tags(
        (name = "messages", description = "Publish and read messages"),
        (name = "streams", description = "Server-Sent Events, and the WebSocket (`/ws`)"),
        (name = "presence", description = "Who is listening: each stream's connection and client, on every node"),
        (name = "topics", description = "What is stored, who listens, and each topic's configuration (retention, TTL, schema)"),
        (name = "webhooks", description = "Webhook subscriptions and dead letters"),
        (name = "pull", description = "Pull subscriptions: consumers lease, ack and nack messages (create them with `POST /subscriptions` and `\"mode\": \"pull\"`)"),
        (name = "access", description = "API tokens (admin); see docs/access-control.md"),
        (name = "operations", description = "Health, readiness and this document"),
    ),
    // Security first: the guards append their note to its 403.
    modifiers(&Security, &GuardAnswers)
)]
pub struct ApiDoc;

impl ApiDoc {
    /// The document as `herald openapi` prints it and the repository keeps
    /// it (`openapi/openapi.json`).
    pub fn pretty_json() -> String {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        text.push('\n');
        text
    }
}

/// `herald openapi`: prints the document, or with `--write FILE` replaces
/// FILE atomically (a temporary file beside it, renamed over it), so a
/// failure never leaves the committed spec empty or half written.
pub fn emit(write: Option<&std::path::Path>) -> anyhow::Result<()> {
    use std::io::Write;
    let text = ApiDoc::pretty_json();
    let Some(path) = write else {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(&e))?;
    tmp.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Swagger UI at `/docs`, reading `/openapi.json`.
pub fn docs() -> SwaggerUi {
    SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json"))
}
