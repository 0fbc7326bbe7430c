//! Presence across nodes on a shared database: one task per node that
//!
//! - writes this node's joins and leaves (whatever has queued, in one
//!   transaction, with a NOTIFY each), so opening a stream never waits on
//!   the database;
//! - renews the node's lease every third of `--presence-lease`, and
//!   deletes the nodes whose lease lapsed (any node may, once);
//! - follows the other nodes: their NOTIFYs as they commit, and a full
//!   read of every live node's rows at each renewal, as a safety net for
//!   lost notices and to drop the streams of a dead node.
//!
//! Bound: a node killed without a clean stop renewed its lease at most a
//! third of the lease before it died, so its streams leave every other
//! node's presence within `lease` plus one renewal period (15 s + 5 s by
//! default), with `leave` events.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Change, Member, Presence};
use crate::domain::{Timestamp, TopicPattern, TopicSelector};
use crate::storage::Notice;
use crate::storage::Store;
use crate::storage::presence::{PresenceChange, PresenceRow};

/// Changes written in one transaction at most.
const MAX_BATCH: usize = 512;

/// Runs the sync of `presence` until `shutdown`, then removes this node's
/// rows and lease (a clean stop: other nodes see its streams leave at once).
pub async fn run(
    presence: Arc<Presence>,
    store: Arc<dyn Store>,
    mut outbox: mpsc::UnboundedReceiver<Change>,
    mut notices: BoxStream<'static, Notice>,
    lease: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Put this node's rows back whenever a write may have been lost.
    let mut dirty = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(first) = outbox.recv() => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match outbox.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                let changes: Vec<PresenceChange> = batch.iter().map(to_store).collect();
                if let Err(e) = store.apply_presence(&changes).await {
                    tracing::warn!(error = %e, "cannot record presence; retrying at the next renewal");
                    dirty = true;
                }
            }
            Some(notice) = notices.next() => match notice {
                Notice::Payload(p) if p != "resync" => match serde_json::from_str::<Change>(&p) {
                    Ok(change) => presence.apply_remote(change),
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed presence notice"),
                },
                _ => reload(&presence, &*store).await,
            },
            _ = tick.tick() => {
                dirty = renew(&presence, &*store, lease, dirty).await;
                reload(&presence, &*store).await;
            }
        }
    }
    if let Err(e) = store.leave_node(presence.node()).await {
        tracing::warn!(error = %e, "cannot remove this node's presence at shutdown; it lapses with its lease");
    }
}

/// Renews the lease (putting this node's rows back if they may be gone)
/// and reaps dead nodes. Returns whether the rows still need putting back.
async fn renew(presence: &Presence, store: &dyn Store, lease: Duration, dirty: bool) -> bool {
    let now = Timestamp::now().0;
    let until = now + lease.as_micros() as i64;
    let alive = match store.renew_lease(presence.node(), now, until).await {
        Ok(alive) => alive,
        Err(e) => {
            tracing::warn!(error = %e, "cannot renew this node's presence lease");
            return true;
        }
    };
    if !alive || dirty {
        let rows: Vec<PresenceRow> = presence.local().iter().map(to_row).collect();
        if let Err(e) = store.replace_presence(presence.node(), &rows).await {
            tracing::warn!(error = %e, "cannot record presence");
            return true;
        }
    }
    match store.reap_nodes(now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            nodes = n,
            "removed the presence of nodes whose lease lapsed"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot remove lapsed nodes"),
    }
    false
}

/// Reads every live node's streams into the view.
async fn reload(presence: &Presence, store: &dyn Store) {
    match store.live_presence(Timestamp::now().0).await {
        Ok(rows) => presence.replace_remote(rows.into_iter().filter_map(to_member).collect()),
        Err(e) => tracing::warn!(error = %e, "cannot read presence"),
    }
}

fn to_row(m: &Member) -> PresenceRow {
    PresenceRow {
        connection: m.connection.clone(),
        node: m.node.clone(),
        client: m.client.clone(),
        topics: m.topics(),
        since_us: m.since.0,
    }
}

fn to_store(c: &Change) -> PresenceChange {
    PresenceChange {
        row: PresenceRow {
            connection: c.connection.clone(),
            node: c.node.clone(),
            client: c.client.clone(),
            topics: c.topics.clone(),
            since_us: c.since_us,
        },
        joined: c.joined,
        notice: notice(c),
    }
}

/// What other nodes are told of `c`: the change itself, or `resync` (read
/// everything again) when it is longer than a NOTIFY may carry.
fn notice(c: &Change) -> String {
    const NOTIFY_MAX: usize = 7900;
    match serde_json::to_string(c) {
        Ok(json) if json.len() <= NOTIFY_MAX => json,
        _ => "resync".to_owned(),
    }
}

fn to_member(r: PresenceRow) -> Option<Member> {
    let patterns = r
        .topics
        .split(',')
        .map(TopicPattern::parse)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(Member {
        connection: r.connection,
        client: r.client,
        node: r.node,
        since: Timestamp(r.since_us),
        selector: Arc::new(TopicSelector::new(patterns)),
    })
}
