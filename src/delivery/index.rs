//! What the deliverer remembers between passes, so that a subscription
//! that cannot have work costs no query: which subscriptions exist and on
//! what topics (an index by exact topic and by pattern, as the hub keeps
//! for streams), and up to where each one's log was read without a match.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::TopicSelector;
use crate::fanout::{FilterRegistry, Matcher};
use crate::storage::webhooks::Subscription;

use super::SubscriptionChanges;

/// How often a pass reads every active subscription, not only those with
/// work: another node's new or changed subscriptions are known here
/// within this (this node's own, at once).
pub(super) const FULL_PASS_EVERY: Duration = Duration::from_secs(5);

/// Which subscriptions a pass looks at.
pub(super) enum Scope {
    /// Those on these topics (new messages were committed on them).
    Topics(HashSet<String>),
    /// Those that may be behind the head, and those with deliveries due.
    Behind,
    /// Every active one.
    All,
}

/// The active subscriptions of the last full pass, by topic, and the
/// [`SubscriptionChanges`] count then.
pub(super) struct Known {
    changes: u64,
    at: Instant,
    ids: Vec<i64>,
    exact: HashMap<String, Vec<i64>>,
    patterns: Vec<(i64, TopicSelector)>,
}

impl Known {
    pub(super) fn new(changes: u64, subs: impl IntoIterator<Item = (i64, TopicSelector)>) -> Self {
        let mut known = Known {
            changes,
            at: Instant::now(),
            ids: Vec::new(),
            exact: HashMap::new(),
            patterns: Vec::new(),
        };
        for (id, selector) in subs {
            known.ids.push(id);
            match selector.exact_names() {
                Some(names) => {
                    for name in names {
                        known.exact.entry(name.to_owned()).or_default().push(id);
                    }
                }
                None => known.patterns.push((id, selector)),
            }
        }
        known
    }

    /// Whether nothing was created, changed or deleted here since, and
    /// the list is younger than [`FULL_PASS_EVERY`].
    pub(super) fn is_current(&self, changes: &SubscriptionChanges) -> bool {
        self.changes == changes.current() && self.at.elapsed() < FULL_PASS_EVERY
    }

    /// How many there are.
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Those not known here to be done up to `head`.
    pub(super) fn behind(&self, scanned: &Scanned, head: i64) -> HashSet<i64> {
        let done = |id: &&i64| scanned.0.get(*id).is_some_and(|s| s.to >= head);
        self.ids.iter().filter(|id| !done(id)).copied().collect()
    }

    /// The subscriptions that can take a message on one of `topics`.
    pub(super) fn on(&self, topics: &HashSet<String>) -> HashSet<i64> {
        let mut ids: HashSet<i64> = topics
            .iter()
            .filter_map(|t| self.exact.get(t))
            .flatten()
            .copied()
            .collect();
        ids.extend(
            self.patterns
                .iter()
                .filter(|(_, s)| topics.iter().any(|t| s.matches(t)))
                .map(|(id, _)| *id),
        );
        ids
    }
}

/// Per subscription, a stretch of the log read without a match while its
/// stored cursor stayed where it was (its write is deferred, see
/// [`crate::storage::webhooks::CURSOR_WRITE_EVERY`]): nothing after the
/// cursor up to the head noted is for it, as long as it takes what it
/// took then (a change of topic, filter or events, on any node, reads
/// again).
#[derive(Default)]
pub(super) struct Scanned(HashMap<i64, Stretch>);

struct Stretch {
    cursor: i64,
    to: i64,
    takes: String,
}

/// What a subscription takes.
fn takes(sub: &Subscription) -> String {
    format!("{}\n{:?}\n{:?}", sub.topic, sub.filter, sub.event_types)
}

impl Scanned {
    /// Whether `sub` has nothing to dispatch below `head`: its cursor is
    /// at the head, or what lies between was read here already.
    pub(super) fn is_done(&self, sub: &Subscription, head: i64) -> bool {
        sub.cursor >= head
            || self
                .0
                .get(&sub.id)
                .is_some_and(|s| s.cursor == sub.cursor && s.to >= head && s.takes == takes(sub))
    }

    /// Notes that nothing after the stored cursor of `sub` up to `head`
    /// is for it: a dispatch from there read all that was committed, or
    /// the cursor is at the head.
    pub(super) fn note(&mut self, sub: &Subscription, head: i64) {
        let stretch = Stretch {
            cursor: sub.cursor,
            to: head,
            takes: takes(sub),
        };
        self.0.insert(sub.id, stretch);
    }

    /// Keeps only the subscriptions in `active`.
    pub(super) fn retain(&mut self, active: &HashSet<i64>) {
        self.0.retain(|id, _| active.contains(id));
    }
}

/// Each subscription's matcher, kept while what it takes stays the same
/// (a filter compiles once, not once per pass).
#[derive(Default)]
pub(super) struct Matchers(HashMap<i64, (String, Matcher)>);

impl Matchers {
    pub(super) fn of(
        &mut self,
        filters: &FilterRegistry,
        sub: &Subscription,
    ) -> anyhow::Result<Matcher> {
        let key = takes(sub);
        if let Some((k, m)) = self.0.get(&sub.id)
            && *k == key
        {
            return Ok(m.clone());
        }
        let m = super::dispatch::matcher(filters, sub)?;
        self.0.insert(sub.id, (key, m.clone()));
        Ok(m)
    }

    /// Keeps only the subscriptions in `active`.
    pub(super) fn retain(&mut self, active: &HashSet<i64>) {
        self.0.retain(|id, _| active.contains(id));
    }
}
