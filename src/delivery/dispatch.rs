//! Dispatch: moves a subscription's matching messages from the log into
//! its ledger (`retries`) and advances its cursor. The deliverer runs it
//! for every subscription after each commit; a pull runs it for its own
//! subscription before leasing, so a consumer never waits for the
//! deliverer's next pass. Both can run at once, on any node: each
//! transaction moves the cursor only from where it read it.

use crate::domain::{Message, Timestamp, TopicPattern, TopicSelector};
use crate::fanout::{FilterRegistry, Matcher};
use crate::storage::webhooks::{Dispatched, Subscription};
use crate::storage::{Store, StoreError};

/// Messages read per dispatch transaction.
pub const DISPATCH_PAGE: u32 = 500;

/// The topics and filter of a subscription.
pub fn matcher(filters: &FilterRegistry, sub: &Subscription) -> anyhow::Result<Matcher> {
    let selector = TopicSelector::new(vec![TopicPattern::parse(&sub.topic)?]);
    let filter = match &sub.filter {
        Some(f) => Some(filters.get(f)?),
        None => None,
    };
    Ok(Matcher { selector, filter })
}

/// The events a subscription takes (`event_types`), if it names any: a
/// message without an `event` has `message`.
pub fn event_types(sub: &Subscription) -> Option<Vec<String>> {
    let stored = sub.event_types.as_deref()?;
    match serde_json::from_str(stored) {
        Ok(types) => Some(types),
        Err(e) => {
            // Validated when stored: an unreadable list delivers nothing
            // rather than everything.
            tracing::error!(subscription = sub.id, error = %e, "unreadable event_types");
            Some(Vec::new())
        }
    }
}

/// How a [`catch_up`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// It read up to the log head as it was when it ran.
    Head,
    /// It stopped after `max_pages`, before the head.
    Stopped,
    /// Another dispatch moved the cursor first, or the subscription is
    /// paused: what it read was not queued by it.
    Lost,
}

/// Queues the messages of `sub` (as stored, cursor included) up to the
/// log head, page by page, or at most `max_pages` pages.
pub async fn catch_up(
    store: &dyn Store,
    sub: &Subscription,
    matcher: &Matcher,
    max_pages: Option<usize>,
) -> Result<CatchUp, StoreError> {
    let topics = matcher.selector.exact_names();
    let wants = wants(sub, matcher);
    let mut cursor = sub.cursor;
    for page in 1.. {
        let read = store
            .dispatch(
                sub.id,
                cursor,
                topics.as_deref(),
                DISPATCH_PAGE,
                &wants,
                Timestamp::now(),
            )
            .await?;
        match read {
            Dispatched::Moved(n) if n >= DISPATCH_PAGE as usize => {}
            Dispatched::Moved(_) | Dispatched::Unmatched => break,
            Dispatched::Lost => return Ok(CatchUp::Lost),
        }
        if max_pages.is_some_and(|max| page >= max) {
            return Ok(CatchUp::Stopped);
        }
        // A full page moved the cursor: go on from where it is.
        match store.subscription(sub.id).await? {
            Some(s) => cursor = s.cursor,
            None => return Ok(CatchUp::Lost),
        }
    }
    Ok(CatchUp::Head)
}

/// Queues the messages of `sub` up to `head`, when its cursor as stored is
/// within a page of it: every message committed before a pull's lease is
/// then a candidate for it. A dispatch that loses the cursor to another
/// (the deliverer's, or another consumer's, which may have read less)
/// goes again from where that one left it.
pub async fn catch_up_to(
    store: &dyn Store,
    sub: &Subscription,
    matcher: &Matcher,
    head: i64,
) -> Result<(), StoreError> {
    let topics = matcher.selector.exact_names();
    let wants = wants(sub, matcher);
    let mut cursor = sub.cursor;
    while cursor < head && head - cursor <= i64::from(DISPATCH_PAGE) {
        let read = store
            .dispatch(
                sub.id,
                cursor,
                topics.as_deref(),
                DISPATCH_PAGE,
                &wants,
                Timestamp::now(),
            )
            .await?;
        // Committed: its page reached past `head`.
        if let Dispatched::Moved(_) = read {
            break;
        }
        // Lost the cursor, or nothing up to `head` matched (no write).
        match store.subscription(sub.id).await? {
            Some(s) if s.cursor != cursor => cursor = s.cursor,
            _ => break,
        }
    }
    Ok(())
}

/// Whether `sub` takes a message: its event types and its matcher. A
/// `'static` trait object for the store: it owns its matcher.
fn wants(
    sub: &Subscription,
    matcher: &Matcher,
) -> impl Fn(&Message) -> bool + Send + Sync + 'static {
    let owned = matcher.clone();
    let events = event_types(sub);
    move |m: &Message| {
        events
            .as_ref()
            .is_none_or(|e| e.iter().any(|t| t == m.event.as_str()))
            && owned.matches(m)
    }
}
