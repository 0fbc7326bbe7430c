//! A deliverer's pass: which subscriptions it reads (see [`Scope`]), and
//! each one's part: dispatch what is new for it, attempt what is due, bury
//! what a pull subscription's leases left exhausted.

use std::collections::HashSet;
use std::sync::Arc;

use super::dispatch::CatchUp;
use super::index::{Known, Scope};
use super::{Deliverer, dispatch, pull};
use crate::domain::{Timestamp, TopicSelector};
use crate::fanout::{Hub, Matcher};
use crate::storage::StoreError;
use crate::storage::webhooks::Subscription;

/// The active subscriptions a full pass read, with their topics.
pub(super) type Listed = Vec<(i64, TopicSelector)>;

impl Deliverer {
    /// One pass. With the subscriptions known (and current), it reads only
    /// those the scope names and those with deliveries due; otherwise
    /// every active one, and returns them for the next passes to go by.
    pub(super) async fn pass(
        self: &Arc<Self>,
        hub: &Hub,
        scope: &Scope,
        known: Option<&Known>,
    ) -> Result<Option<Listed>, StoreError> {
        let head = hub.head().0;
        // One indexed read finds the subscriptions with work; only those
        // take write locks to claim it.
        let due: HashSet<i64> = self
            .store
            .due_subscriptions(Timestamp::now())
            .await?
            .into_iter()
            .collect();
        let topics = match scope {
            Scope::Topics(t) => Some(t),
            _ => None,
        };
        let some = match (scope, known) {
            (Scope::Topics(t), Some(known)) => Some(known.on(t)),
            (Scope::Behind, Some(known)) => {
                Some(known.behind(&self.scanned.lock().expect("poisoned"), head))
            }
            _ => None,
        };
        if let Some(ids) = some {
            let mut ids: Vec<i64> = ids.union(&due).copied().collect();
            ids.sort_unstable();
            // Most of them: one read of all is cheaper than by id.
            let subs = if ids.len() * 2 > known.map_or(0, Known::len) {
                let wanted: HashSet<i64> = ids.into_iter().collect();
                let mut all = self.store.active_subscriptions().await?;
                all.retain(|s| wanted.contains(&s.id));
                all
            } else {
                self.store.active_subscriptions_in(&ids).await?
            };
            self.serve_all(subs, topics, head, &due).await?;
            return Ok(None);
        }
        let subs = self.store.active_subscriptions().await?;
        let ids: HashSet<i64> = subs.iter().map(|s| s.id).collect();
        self.scanned.lock().expect("poisoned").retain(&ids);
        self.matchers.lock().expect("poisoned").retain(&ids);
        self.serve_all(subs, topics, head, &due).await.map(Some)
    }

    /// Each subscription's part of a pass; returns their topics.
    async fn serve_all(
        self: &Arc<Self>,
        subs: Vec<Subscription>,
        topics: Option<&HashSet<String>>,
        head: i64,
        due: &HashSet<i64>,
    ) -> Result<Listed, StoreError> {
        let now = Timestamp::now();
        let mut listed = Vec::with_capacity(subs.len());
        for sub in subs {
            // Its creator's token has expired: it waits (a PATCH with a
            // fresh token resumes it), like a stream that ended.
            if sub.owner_expired(now) {
                continue;
            }
            let matcher = match self
                .matchers
                .lock()
                .expect("poisoned")
                .of(&self.filters, &sub)
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(subscription = sub.id, error = %e, "subscription cannot be matched; skipping it");
                    continue;
                }
            };
            listed.push((sub.id, matcher.selector.clone()));
            let woken =
                topics.is_none_or(|t| t.iter().any(|topic| matcher.selector.matches(topic)));
            self.serve(sub, &matcher, woken, head, due).await?;
        }
        Ok(listed)
    }

    /// One subscription's part of a pass.
    async fn serve(
        self: &Arc<Self>,
        sub: Subscription,
        matcher: &Matcher,
        woken: bool,
        head: i64,
        due: &HashSet<i64>,
    ) -> Result<(), StoreError> {
        let done = self.scanned.lock().expect("poisoned").is_done(&sub, head);
        let behind = woken && !done;
        // Read to the head: nothing after the cursor up to it is left for
        // this subscription. Not so when another dispatch (or a pause) won
        // the cursor: what it read may have matched and not been queued.
        let read_all =
            behind && dispatch::catch_up(&*self.store, &sub, matcher, None).await? == CatchUp::Head;
        if done || read_all {
            self.scanned.lock().expect("poisoned").note(&sub, head);
        }
        if !behind && !due.contains(&sub.id) {
            return Ok(());
        }
        // Consumers lease a pull subscription's deliveries; what their
        // leases left exhausted is buried here, with or without consumers.
        if sub.is_pull() {
            if due.contains(&sub.id)
                && let Err(e) = pull::bury_exhausted(&*self.store, &self.publisher, &sub).await
            {
                tracing::warn!(subscription = sub.id, error = %e, "cannot bury exhausted pull deliveries; trying on the next pass");
            }
            return Ok(());
        }
        self.attempt_due(Arc::new(sub)).await
    }
}
