//! Presence: who is listening. Every live stream (SSE, or a WebSocket
//! subscription) joins here with a `connection` id and a `client` label
//! and leaves when it ends; `join` and `leave` events go to the streams
//! that asked for them.
//!
//! One view per node holds this node's streams and, on a shared database,
//! every other live node's (kept by [`sync`]). Reads (`GET
//! /topics/{topic}/presence`, subscriber counts, `max_subscribers`) are
//! answered from memory; the database is written off the streams' path.
//!
//! - [`sync`]: the task that writes this node's changes, renews its lease,
//!   and follows the other nodes (Postgres).
//! - [`client`]: the `client` label's rules.

pub mod client;
pub mod sync;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use crate::domain::{Timestamp, TopicPattern, TopicSelector};

/// Presence events a stream may fall behind by before it misses some.
const EVENTS_CAPACITY: usize = 1024;

/// One live stream, on this node or another.
#[derive(Debug, Clone)]
pub struct Member {
    pub connection: String,
    pub client: String,
    pub node: String,
    pub since: Timestamp,
    pub selector: Arc<TopicSelector>,
}

impl Member {
    /// Its topics and patterns.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.selector.patterns().iter().map(|p| p.as_str())
    }

    /// Its topics and patterns, comma separated (as stored).
    pub fn topics(&self) -> String {
        let names: Vec<&str> = self
            .selector
            .patterns()
            .iter()
            .map(|p| p.as_str())
            .collect();
        names.join(",")
    }
}

/// A stream that joined or left.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub joined: bool,
    pub node: String,
    pub connection: String,
    pub client: String,
    /// Its topics and patterns, comma separated.
    pub topics: String,
    pub time_us: i64,
    pub since_us: i64,
}

impl Change {
    fn of(m: &Member, joined: bool, time: Timestamp) -> Self {
        Change {
            joined,
            node: m.node.clone(),
            connection: m.connection.clone(),
            client: m.client.clone(),
            topics: m.topics(),
            time_us: time.0,
            since_us: m.since.0,
        }
    }

    fn member(&self) -> Option<Member> {
        let patterns = self
            .topics
            .split(',')
            .map(TopicPattern::parse)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some(Member {
            connection: self.connection.clone(),
            client: self.client.clone(),
            node: self.node.clone(),
            since: Timestamp(self.since_us),
            selector: Arc::new(TopicSelector::new(patterns)),
        })
    }

    /// `event: join` / `event: leave` for a stream of `selector`: one
    /// event per topic of the change that the stream takes, no `id:`
    /// line, so `Last-Event-ID` is never moved by it.
    pub fn sse_frames(&self, selector: &TopicSelector) -> Option<Bytes> {
        let kind = if self.joined { "join" } else { "leave" };
        let mut out = String::new();
        for data in self.payloads(selector) {
            out.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// `{"topic","client","connection","time"}` for each of the change's
    /// topics that `selector` takes.
    pub fn payloads(&self, selector: &TopicSelector) -> Vec<serde_json::Value> {
        let time = Timestamp(self.time_us).to_rfc3339();
        self.topics
            .split(',')
            .filter(|t| selector.matches(t) || selector.patterns().iter().any(|p| p.as_str() == *t))
            .map(|t| {
                serde_json::json!({
                    "topic": t, "client": self.client,
                    "connection": self.connection, "time": time,
                })
            })
            .collect()
    }
}

/// A page of a topic's presence.
#[derive(Debug)]
pub struct Page {
    pub count: usize,
    pub members: Vec<Member>,
    /// The `after` of the next page, when there is one.
    pub next: Option<String>,
}

/// A topic at its `max_subscribers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    pub topic: String,
    pub max: u32,
}

/// This node's view of presence.
pub struct Presence {
    node: String,
    next: AtomicU64,
    members: Mutex<BTreeMap<String, Member>>,
    events: broadcast::Sender<Arc<Change>>,
    /// This node's changes, for [`sync`] to write (shared databases only).
    outbox: Option<mpsc::UnboundedSender<Change>>,
}

impl Presence {
    /// A view for node `node`; `outbox` receives this node's changes.
    pub fn new(node: String, outbox: Option<mpsc::UnboundedSender<Change>>) -> Arc<Self> {
        let (events, _) = broadcast::channel(EVENTS_CAPACITY);
        Arc::new(Self {
            node,
            next: AtomicU64::new(1),
            members: Mutex::new(BTreeMap::new()),
            events,
            outbox,
        })
    }

    /// A fresh node id: 12 hex digits, random.
    pub fn new_node_id() -> String {
        format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Join and leave events from now on.
    pub fn events(&self) -> broadcast::Receiver<Arc<Change>> {
        self.events.subscribe()
    }

    /// Registers a stream unless one of `limits` (topic, `max_subscribers`)
    /// is reached. The stream is present until the guard is dropped.
    pub fn join(
        self: &Arc<Self>,
        client: String,
        selector: Arc<TopicSelector>,
        limits: &[(String, u32)],
    ) -> Result<PresenceGuard, Full> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let member = Member {
            connection: format!("{}-{n:08x}", self.node),
            client,
            node: self.node.clone(),
            since: Timestamp::now(),
            selector,
        };
        {
            // Count and insert under one lock: two streams racing for the
            // last place on this node cannot both get it.
            let mut members = self.members.lock().expect("presence poisoned");
            for (topic, max) in limits {
                let count = members
                    .values()
                    .filter(|m| m.selector.matches(topic))
                    .count();
                if count >= *max as usize {
                    return Err(Full {
                        topic: topic.clone(),
                        max: *max,
                    });
                }
            }
            members.insert(member.connection.clone(), member.clone());
        }
        self.publish(Change::of(&member, true, member.since));
        Ok(PresenceGuard {
            presence: Arc::clone(self),
            connection: member.connection,
        })
    }

    fn leave(&self, connection: &str) {
        let gone = self
            .members
            .lock()
            .expect("presence poisoned")
            .remove(connection);
        if let Some(m) = gone {
            self.publish(Change::of(&m, false, Timestamp::now()));
        }
    }

    fn publish(&self, change: Change) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(change.clone());
        }
        let _ = self.events.send(Arc::new(change));
    }

    /// Streams (on every live node) whose topics include `topic`.
    pub fn count(&self, topic: &str) -> usize {
        self.count_visible(topic, |_| true)
    }

    /// As [`Presence::count`], of the streams `visible` takes.
    pub fn count_visible(&self, topic: &str, visible: impl Fn(&Member) -> bool) -> usize {
        let members = self.members.lock().expect("presence poisoned");
        members
            .values()
            .filter(|m| m.selector.matches(topic) && visible(m))
            .count()
    }

    /// Up to `limit` of `topic`'s streams that `visible` takes, after
    /// connection `after`, in connection order, with their total count.
    pub fn page(
        &self,
        topic: &str,
        after: Option<&str>,
        limit: usize,
        visible: impl Fn(&Member) -> bool,
    ) -> Page {
        let members = self.members.lock().expect("presence poisoned");
        let all = members
            .values()
            .filter(|m| m.selector.matches(topic) && visible(m));
        let count = all.clone().count();
        let mut page: Vec<Member> = all
            .filter(|m| after.is_none_or(|a| m.connection.as_str() > a))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(|m| m.connection.clone())
        });
        Page {
            count,
            members: page,
            next: next.flatten(),
        }
    }

    /// This node's own streams.
    pub fn local(&self) -> Vec<Member> {
        let members = self.members.lock().expect("presence poisoned");
        members
            .values()
            .filter(|m| m.node == self.node)
            .cloned()
            .collect()
    }

    /// A change another node made: applied to the view and told to this
    /// node's listeners.
    pub fn apply_remote(&self, change: Change) {
        if change.node == self.node {
            return;
        }
        {
            let mut members = self.members.lock().expect("presence poisoned");
            if change.joined {
                let Some(m) = change.member() else { return };
                if members.insert(m.connection.clone(), m).is_some() {
                    return; // already known (a reload saw it first)
                }
            } else if members.remove(&change.connection).is_none() {
                return;
            }
        }
        let _ = self.events.send(Arc::new(change));
    }

    /// Every other node's streams as read from the database: whatever
    /// differs from the view is applied and told as joins and leaves (so a
    /// node that died, or notices that were lost, still end in events).
    pub fn replace_remote(&self, remote: Vec<Member>) {
        let now = Timestamp::now();
        let mut told = Vec::new();
        {
            let mut members = self.members.lock().expect("presence poisoned");
            let fresh: BTreeMap<String, Member> = remote
                .into_iter()
                .filter(|m| m.node != self.node)
                .map(|m| (m.connection.clone(), m))
                .collect();
            members.retain(|k, m| {
                let keep = m.node == self.node || fresh.contains_key(k);
                if !keep {
                    told.push(Change::of(m, false, now));
                }
                keep
            });
            for (k, m) in fresh {
                if let std::collections::btree_map::Entry::Vacant(place) = members.entry(k) {
                    told.push(Change::of(&m, true, m.since));
                    place.insert(m);
                }
            }
        }
        for change in told {
            let _ = self.events.send(Arc::new(change));
        }
    }
}

/// Keeps a stream present; dropping it is the stream's `leave`.
pub struct PresenceGuard {
    presence: Arc<Presence>,
    connection: String,
}

impl PresenceGuard {
    pub fn connection(&self) -> &str {
        &self.connection
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.presence.leave(&self.connection);
    }
}

/// `frames` with presence events mixed in between its items (each item is
/// whole frames, so nothing is split); ends when `frames` ends. `encode`
/// turns a change into this stream's items, none when none of its topics
/// concern the stream.
pub fn with_events<S, E>(
    frames: S,
    mut events: broadcast::Receiver<Arc<Change>>,
    encode: E,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static
where
    S: futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
    E: Fn(&Change) -> Vec<Bytes> + Send + 'static,
{
    use futures_util::StreamExt;
    use tokio::sync::broadcast::error::RecvError;
    async_stream::stream! {
        let mut frames = std::pin::pin!(frames);
        // A stream's opening (SSE's `retry:`) is ready at its first poll:
        // it goes out before any presence event.
        match futures_util::FutureExt::now_or_never(frames.next()) {
            Some(Some(frame)) => yield frame,
            Some(None) => return,
            None => {}
        }
        let mut open = true;
        loop {
            tokio::select! {
                frame = frames.next() => match frame {
                    Some(frame) => yield frame,
                    None => break,
                },
                event = events.recv(), if open => match event {
                    Ok(change) => for frame in encode(&change) {
                        yield Ok(frame);
                    },
                    // Presence events are best effort: a stream that fell
                    // this far behind skips some (its messages are exact).
                    Err(RecvError::Lagged(n)) => tracing::debug!(missed = n, "presence events skipped"),
                    Err(RecvError::Closed) => open = false,
                },
            }
        }
    }
}
