//! What each client op of `/ws` does. Subscriptions reuse the SSE
//! subscriber streams; `publish` and `pull`/`ack`/`nack` call the HTTP
//! handlers themselves, so checks, limits and answers are the same as on
//! the HTTP API.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::Message;
use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::frames::{self, ClientFrame, Echo, Publish, Subscribe, WsFormat};
use super::relay::{PullCall, answer_frame, publish_request};
use super::{Outbox, QUEUE_BYTES, Reason};
use crate::auth::Caller;
use crate::domain::{Cursor, TopicPattern, TopicSelector};
use crate::fanout::subscriber;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::ApiPath;

/// Publishes and pulls one socket may have in flight; past this it stops
/// reading frames until one is answered.
const IN_FLIGHT: usize = 64;

/// Frames a subscription hands its socket at once at most (and a quarter
/// of [`QUEUE_BYTES`]).
const BURST: usize = 64;

/// One socket's state.
pub struct Conn {
    pub state: AppState,
    caller: Caller,
    client: String,
    /// Cancelled at shutdown, or when the caller's token ends.
    pub stop: CancellationToken,
    pub out: Outbox,
    subs: HashMap<String, DropGuard>,
    publishes: governor::DefaultDirectRateLimiter,
    in_flight: Arc<Semaphore>,
    /// Held (shared) by each publish until it is answered: a later
    /// `subscribe` or `pull` takes it alone first, so it starts after
    /// every publish sent before it is stored.
    storing: Arc<tokio::sync::RwLock<()>>,
}

impl Conn {
    pub fn new(
        state: AppState,
        caller: Caller,
        client: String,
        stop: CancellationToken,
        out: Outbox,
    ) -> Self {
        let rate = state.settings.ws.publish_rate;
        let period = (rate.per / rate.count.get()).max(std::time::Duration::from_nanos(1));
        let quota = governor::Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(rate.count.min(NonZeroU32::new(1000).expect("nonzero")));
        Conn {
            state,
            caller,
            client,
            stop,
            out,
            subs: HashMap::new(),
            publishes: governor::RateLimiter::direct(quota),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            storing: Default::default(),
        }
    }

    /// Handles one frame from the client; `Some` closes the socket.
    pub async fn receive(&mut self, m: Message) -> Option<Reason> {
        match m {
            Message::Text(text) if text.len() > self.state.settings.ws.max_frame_bytes => {
                let e = ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "frame-too-large",
                    "Frame too large",
                    format!(
                        "a frame holds at most {} bytes (--ws-max-frame-bytes)",
                        self.state.settings.ws.max_frame_bytes
                    ),
                );
                self.send(frames::error(&e, &Echo::default())).await;
            }
            Message::Text(text) => match frames::parse(text.as_str()) {
                (echo, Ok(frame)) => self.op(frame, echo).await,
                (echo, Err(e)) => self.send(frames::error(&e, &echo)).await,
            },
            Message::Binary(_) => {
                let e = ApiError::bad_request(
                    "binary-frame",
                    "Binary frame",
                    "herald speaks JSON text frames; send the frame as text",
                );
                self.send(frames::error(&e, &Echo::default())).await;
            }
            // A Close never gets here: `run` answers the closing handshake.
            Message::Close(_) | Message::Ping(_) | Message::Pong(_) => {}
        }
        None
    }

    async fn send(&self, frame: Bytes) {
        self.out.frame(frame).await;
    }

    async fn op(&mut self, frame: ClientFrame, echo: Echo) {
        let done = match frame {
            ClientFrame::Subscribe(s) => self.subscribe(s, &echo).await,
            ClientFrame::Unsubscribe { sub } => self.unsubscribe(&sub, &echo).await,
            ClientFrame::Publish(p) => self.publish(p, echo.clone()).await,
            ClientFrame::Pull { subscription, body } => {
                self.pull(subscription, body, "pull", echo.clone()).await
            }
            ClientFrame::Ack { subscription, body } => {
                self.pull(subscription, body, "ack", echo.clone()).await
            }
            ClientFrame::Nack { subscription, body } => {
                self.pull(subscription, body, "nack", echo.clone()).await
            }
            ClientFrame::Ping {} => {
                self.send(frames::server("pong", Value::Null, &echo)).await;
                Ok(())
            }
        };
        if let Err(e) = done {
            self.send(frames::error(&e, &echo)).await;
        }
    }

    /// Waits until every publish sent before now is answered.
    async fn after_publishes(&self) {
        drop(self.storing.write().await);
    }

    async fn subscribe(&mut self, s: Subscribe, echo: &Echo) -> Result<(), ApiError> {
        self.room_for(&s.sub)?;
        self.after_publishes().await;
        let selector = selector(&s.topics)?;
        self.caller.require_subscribe(&selector)?;
        let cursor = cursor(s.last_event_id.as_ref())?;
        let matcher = self.state.matcher(selector.clone(), s.filter.as_deref())?;
        let events = s.presence.then(|| self.state.presence.events());
        let present =
            crate::http::presence::join(&self.state, self.client.clone(), &selector).await?;
        let stop = self.stop.child_token();
        let (start_after, stream) = subscriber::open(
            &self.state.hub,
            self.state.store.clone(),
            matcher,
            cursor,
            self.state.settings.stream.clone(),
            stop.clone(),
            WsFormat::new(&s.sub),
        )
        .await?;
        let connection = Value::String(present.connection().to_owned());
        self.send(frames::server(
            "subscribed",
            serde_json::json!({"connection": connection, "start_after": start_after.0}),
            echo,
        ))
        .await;
        let stream: futures_util::stream::BoxStream<'static, _> = match events {
            Some(events) => {
                let (echo, caller) = (echo.clone(), self.caller.clone());
                crate::presence::with_events(stream, events, move |c| {
                    if !caller.may_see(c.topics.split(',')) {
                        return Vec::new();
                    }
                    c.payloads(&selector)
                        .into_iter()
                        .map(|v| frames::server(if c.joined { "join" } else { "leave" }, v, &echo))
                        .collect()
                })
                .boxed()
            }
            None => stream.boxed(),
        };
        tokio::spawn(forward(stream, self.out.clone(), stop.clone(), present));
        self.subs.insert(s.sub, stop.drop_guard());
        Ok(())
    }

    /// Whether a subscription named `sub` may be added to this socket.
    fn room_for(&self, sub: &str) -> Result<(), ApiError> {
        frames::check_sub(sub)?;
        if self.subs.contains_key(sub) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "sub-in-use",
                "Subscription name in use",
                format!(
                    "this socket already has a subscription {:?}; unsubscribe first",
                    sub
                ),
            ));
        }
        if self.subs.len() >= self.state.settings.ws.max_subscriptions {
            return Err(ApiError::too_many(
                format!(
                    "a socket holds at most {} subscriptions (--ws-max-subscriptions)",
                    self.state.settings.ws.max_subscriptions
                ),
                1,
            ));
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, sub: &str, echo: &Echo) -> Result<(), ApiError> {
        let Some(guard) = self.subs.remove(sub) else {
            return Err(ApiError::not_found(format!(
                "no subscription {sub:?} on this socket"
            )));
        };
        drop(guard); // ends its stream, and its presence
        let echo = Echo {
            sub: Some(sub.to_owned()),
            ..echo.clone()
        };
        self.send(frames::server("unsubscribed", Value::Null, &echo))
            .await;
        Ok(())
    }

    /// Publishes through `POST /topics/{topic}` itself, in a task of its
    /// own: the socket reads on while the commit is awaited.
    async fn publish(&mut self, p: Publish, echo: Echo) -> Result<(), ApiError> {
        if self.publishes.check().is_err() {
            return Err(ApiError::too_many(
                "this socket publishes faster than --ws-publish-rate allows",
                1,
            ));
        }
        let (query, headers, body) = publish_request(&p)?;
        let (state, caller, out) = (self.state.clone(), self.caller.clone(), self.out.clone());
        let permit = self.permit().await?;
        let storing = self.storing.clone().read_owned().await;
        tokio::spawn(async move {
            let answer = crate::http::publish::publish(
                State(state),
                caller,
                ApiPath(p.topic),
                query,
                headers,
                Ok(body),
            )
            .await;
            let frame = match answer {
                Ok(r) => answer_frame(r, &echo).await,
                Err(e) => frames::error(&e, &echo),
            };
            out.frame(frame).await;
            drop((permit, storing));
        });
        Ok(())
    }

    /// `pull`, `ack` or `nack` through the HTTP handlers of pull
    /// subscriptions, in a task of its own (a pull may wait).
    async fn pull(
        &mut self,
        id: i64,
        body: Value,
        op: &'static str,
        echo: Echo,
    ) -> Result<(), ApiError> {
        if id <= 0 {
            return Err(ApiError::bad_request(
                "invalid-frame",
                "Invalid frame",
                "subscription is a positive id",
            ));
        }
        let (state, caller, out) = (self.state.clone(), self.caller.clone(), self.out.clone());
        let invalid = |e: serde_json::Error| {
            ApiError::bad_request("invalid-frame", "Invalid frame", format!("{op}: {e}"))
        };
        let call = PullCall::parse(op, body).map_err(invalid)?;
        self.after_publishes().await;
        let permit = self.permit().await?;
        tokio::spawn(async move {
            let frame = match call.run(state, caller, id).await {
                Ok((answer_op, v)) => frames::server(answer_op, v, &echo),
                Err(e) => frames::error(&e, &echo),
            };
            out.frame(frame).await;
            drop(permit);
        });
        Ok(())
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal())
    }
}

/// Feeds a subscription's frames to the socket until it is unsubscribed
/// or the socket ends; then its presence guard goes (its `leave`).
async fn forward(
    mut stream: futures_util::stream::BoxStream<'static, Result<Bytes, std::convert::Infallible>>,
    out: Outbox,
    stop: CancellationToken,
    present: crate::presence::PresenceGuard,
) {
    use futures_util::FutureExt;
    let mut open = true;
    while open {
        let item = tokio::select! {
            _ = stop.cancelled() => break,
            item = stream.next() => item,
        };
        let Some(Ok(first)) = item else { break };
        // Whatever else is ready goes in the same hand-over: one queue
        // operation and one wake-up of the writer per burst, not per frame.
        let mut size = first.len();
        let mut frames = vec![first];
        while frames.len() < BURST && size < QUEUE_BYTES / 4 {
            match stream.next().now_or_never() {
                Some(Some(Ok(f))) => {
                    size += f.len();
                    frames.push(f);
                }
                Some(None) => {
                    open = false;
                    break;
                }
                _ => break,
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            sent = out.frames(frames) => if !sent { break },
        }
    }
    drop(present);
}

/// The topics of a `subscribe`: names or patterns, 1 to 64.
fn selector(topics: &[String]) -> Result<TopicSelector, ApiError> {
    if topics.is_empty() || topics.len() > TopicSelector::MAX_PATTERNS {
        return Err(ApiError::bad_request(
            "invalid-topic",
            "Invalid topic",
            format!(
                "topics holds 1 to {} names or patterns",
                TopicSelector::MAX_PATTERNS
            ),
        ));
    }
    let patterns = topics
        .iter()
        .map(|t| TopicPattern::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopicSelector::new(patterns))
}

/// `last_event_id`: a message id (number or string), or `"earliest"`.
fn cursor(raw: Option<&Value>) -> Result<Option<Cursor>, ApiError> {
    let text = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    };
    Ok(Some(Cursor::parse(&text)?))
}
