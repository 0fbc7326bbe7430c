//! What a stream (or webhook) wants: topics and an optional content filter.
//!
//! Filters are shared: every subscription with the same expression gets the
//! same compiled [`SharedFilter`], which remembers its verdict on the last
//! message it saw. Many subscribers with one filter then cost one
//! evaluation per message, not one per subscriber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::domain::filter::{Filter, FilterError};
use crate::domain::{Message, TopicSelector};

/// A compiled filter plus a one-entry memo of its last verdict.
#[derive(Debug)]
pub struct SharedFilter {
    filter: Filter,
    /// `position << 1 | verdict` of the last message evaluated; position 0
    /// is never a message, so the initial 0 never answers.
    memo: AtomicU64,
}

impl SharedFilter {
    pub fn source(&self) -> &str {
        self.filter.source()
    }

    pub fn matches(&self, m: &Message) -> bool {
        let key = (m.position.0 as u64) << 1;
        let memo = self.memo.load(Ordering::Relaxed);
        if memo & !1 == key {
            return memo & 1 == 1;
        }
        let verdict = self.filter.matches(&m.view());
        // Concurrent subscribers may both evaluate and both store: the
        // verdict for a position never changes, so any order is right.
        self.memo.store(key | u64::from(verdict), Ordering::Relaxed);
        verdict
    }
}

/// Hands out one [`SharedFilter`] per distinct expression while any
/// subscription uses it.
#[derive(Debug, Default)]
pub struct FilterRegistry {
    filters: Mutex<HashMap<String, Weak<SharedFilter>>>,
}

impl FilterRegistry {
    /// The shared compiled form of `source`, compiling it if needed.
    pub fn get(&self, source: &str) -> Result<Arc<SharedFilter>, FilterError> {
        let mut filters = self.filters.lock().expect("filter registry poisoned");
        if let Some(existing) = filters.get(source).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let shared = Arc::new(SharedFilter {
            filter: Filter::compile(source)?,
            memo: AtomicU64::new(0),
        });
        // Drop entries whose subscriptions are all gone, so the map stays
        // as large as the set of live expressions.
        filters.retain(|_, w| w.strong_count() > 0);
        filters.insert(source.to_owned(), Arc::downgrade(&shared));
        Ok(shared)
    }
}

/// Which messages a stream wants.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub selector: TopicSelector,
    pub filter: Option<Arc<SharedFilter>>,
}

impl Matcher {
    /// Whether the message is of the stream's topics, passes its filter,
    /// and has not expired (an expired message is sent to no one; the clock
    /// is read only for messages that expire).
    pub fn matches(&self, m: &Message) -> bool {
        self.selector.matches(m.topic.as_str())
            && self.filter.as_ref().is_none_or(|f| f.matches(m))
            && !m
                .expires
                .is_some_and(|_| m.is_expired(crate::domain::Timestamp::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventType, Payload, Position, Timestamp, TopicName};

    fn message(position: i64, payload: &str) -> Message {
        Message::new(
            Position(position),
            TopicName::parse("orders").unwrap(),
            position,
            Timestamp(0),
            EventType::message(),
            Payload::json(payload.into()).unwrap(),
            "application/json".into(),
        )
    }

    #[test]
    fn identical_expressions_share_one_compiled_filter() {
        let registry = FilterRegistry::default();
        let a = registry.get("data.total > 100").unwrap();
        let b = registry.get("data.total > 100").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = registry.get("data.total > 1").unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b));
        // Once unused, the next request compiles afresh.
        let d = registry.get("data.total > 100").unwrap();
        assert_eq!(d.source(), "data.total > 100");
        assert!(registry.get("data.total >").is_err());
    }

    #[test]
    fn the_memo_answers_per_position() {
        let registry = FilterRegistry::default();
        let f = registry.get("data.total > 100").unwrap();
        let big = message(1, r#"{"total":150}"#);
        let small = message(2, r#"{"total":50}"#);
        for _ in 0..3 {
            assert!(f.matches(&big));
            assert!(f.matches(&big));
            assert!(!f.matches(&small));
            assert!(!f.matches(&small));
        }
    }

    #[test]
    fn a_matcher_needs_topic_and_filter() {
        let registry = FilterRegistry::default();
        let m = Matcher {
            selector: TopicSelector::single(&TopicName::parse("orders").unwrap()),
            filter: Some(registry.get("data.total > 100").unwrap()),
        };
        assert!(m.matches(&message(1, r#"{"total":150}"#)));
        assert!(!m.matches(&message(2, r#"{"total":50}"#)));
        assert!(!m.matches(&message(3, r#"{"other":150}"#)));
    }
}
