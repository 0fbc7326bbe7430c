//! Idempotency keys in a group commit. A client that retries a publish
//! whose key is recorded already (a normal retry, answered as a replay)
//! must cost the publishes committed beside it nothing: one recorded key
//! fails the whole transaction, and before, the writer then committed
//! every request of the group alone, one fsync each.
//!
//! So the writer remembers the keys it recorded lately (hashes only, a
//! bounded number), reads those that a group repeats before committing,
//! answers the recorded ones (the handler replays them) and commits the
//! rest together. A first request costs no read. A key recorded elsewhere
//! (another node, before a restart, forgotten here) fails the group once:
//! then its recorded keys are read, answered and remembered, and the rest
//! commits together again.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

use tokio::sync::mpsc;

use super::{Failed, PublishError, Request, commit, fail};
use crate::domain::idempotency::KeyClaim;
use crate::fanout::Feed;
use crate::storage::Store;

/// Keys remembered at most: 8 bytes each (plus the set's overhead).
const REMEMBERED: usize = 100_000;

/// Hashes of the keys recorded lately, oldest first out.
#[derive(Default)]
pub(super) struct RecentKeys {
    hasher: RandomState,
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl RecentKeys {
    fn hash(&self, claim: &KeyClaim) -> u64 {
        self.hasher
            .hash_one((claim.topic.as_str(), claim.key.as_str()))
    }

    fn remember(&mut self, claim: &KeyClaim) {
        let h = self.hash(claim);
        if self.set.insert(h) {
            self.order.push_back(h);
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// Whether `r` repeats a key recorded lately (a hash collision only
    /// costs a read).
    fn repeats(&self, r: &Request) -> bool {
        r.key
            .as_ref()
            .is_some_and(|c| self.set.contains(&self.hash(c)))
    }
}

/// Commits a group, as the module says. Any other permanent error in a
/// group commits each request alone, so one bad message cannot fail the
/// publishes beside it.
pub(super) async fn commit_group(
    store: &dyn Store,
    requests: Vec<Request>,
    feed: &mpsc::Sender<Feed>,
    recent: &mut RecentKeys,
) {
    let repeated: Vec<bool> = requests.iter().map(|r| recent.repeats(r)).collect();
    let requests = match drop_recorded(store, requests, &repeated, recent).await {
        Ok(rest) if rest.is_empty() => return,
        Ok(rest) | Err(rest) => rest,
    };
    let claims: Vec<KeyClaim> = requests.iter().filter_map(|r| r.key.clone()).collect();
    let requests = match commit(store, requests, feed).await {
        Ok(()) => {
            claims.iter().for_each(|c| recent.remember(c));
            return;
        }
        Err(Failed::DuplicateKey(requests)) => {
            let keyed: Vec<bool> = requests.iter().map(|r| r.key.is_some()).collect();
            match drop_recorded(store, requests, &keyed, recent).await {
                Ok(rest) if rest.is_empty() => return,
                Ok(rest) => match commit(store, rest, feed).await {
                    Ok(()) => return,
                    Err(Failed::DuplicateKey(r) | Failed::Other(r)) => r,
                },
                Err(requests) => requests,
            }
        }
        Err(Failed::Other(requests)) => requests,
    };
    for r in requests {
        if let Err(Failed::DuplicateKey(rest) | Failed::Other(rest)) =
            commit(store, vec![r], feed).await
        {
            fail(rest, PublishError::Internal);
        }
    }
}

/// Reads the keys of the requests that `check` picks (side by side),
/// answers [`PublishError::DuplicateKey`] to those recorded (live), whose
/// keys it remembers, and hands back the others; hands all back if none is
/// found (a key being committed elsewhere, or a read that failed).
async fn drop_recorded(
    store: &dyn Store,
    requests: Vec<Request>,
    check: &[bool],
    recent: &mut RecentKeys,
) -> Result<Vec<Request>, Vec<Request>> {
    let lookups = requests.iter().zip(check).map(|(r, &checked)| async move {
        match (&r.key, checked) {
            (Some(c), true) => matches!(
                store
                    .recorded_key(c.topic.as_str(), c.key.as_str(), c.stale_before)
                    .await,
                Ok(Some(_))
            ),
            _ => false,
        }
    });
    let recorded = futures_util::future::join_all(lookups).await;
    if !recorded.contains(&true) {
        return Err(requests);
    }
    let (dups, rest): (Vec<_>, Vec<_>) = requests
        .into_iter()
        .zip(recorded)
        .partition(|(_, recorded)| *recorded);
    let dups: Vec<Request> = dups.into_iter().map(|(r, _)| r).collect();
    dups.iter()
        .filter_map(|r| r.key.as_ref())
        .for_each(|c| recent.remember(c));
    fail(dups, PublishError::DuplicateKey);
    Ok(rest.into_iter().map(|(r, _)| r).collect())
}
