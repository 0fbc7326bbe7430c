//! What the hub holds: committed messages in entries of bounded size, and a
//! ledger that keeps their total under a byte budget.
//!
//! A `tokio::sync::broadcast` bounds itself in slots, not bytes, and keeps a
//! slot's value until every receiver has seen it: one receiver that stops
//! reading pins the whole ring. So the broadcast carries [`Entry`] shells,
//! and the hub keeps a ledger of the entries it sent with their estimated
//! sizes. When the total passes the budget, the ledger empties the oldest
//! entries: a shell stays in the ring (a few dozen bytes), its messages go.
//! A receiver that meets an emptied entry gets the lag signal and reads
//! those messages from storage, as it does when the ring itself overflows.
//!
//! Entries are also bounded in size ([`ENTRY_BYTES`]): a committed batch of
//! 1,000 messages becomes several entries, so the budget evicts in small
//! steps and a stream holds at most one small entry while it writes.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock, Weak};

use tokio::sync::broadcast;

use crate::domain::{Message, Position};

/// Committed messages in position order, shared by every subscriber.
pub type Batch = Arc<Vec<Message>>;

/// Largest entry, in estimated bytes (an entry holds at least one message,
/// whatever its size).
pub const ENTRY_BYTES: usize = 64 * 1024;

/// What a receiver gets instead of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Messages up to and including `through` are no longer in the hub (for
    /// a ring overflow, where the positions are unknown: `i64::MAX`). A
    /// receiver already past `through` has lost nothing.
    Lagged { through: Position },
    /// The hub is gone.
    Closed,
    /// Nothing new yet (only from [`HubReceiver::try_recv`]).
    Empty,
}

/// One broadcast slot's value: a piece of a committed batch, until the
/// ledger takes it.
#[derive(Debug)]
pub struct Entry {
    last: Position,
    batch: RwLock<Option<Batch>>,
}

impl Entry {
    fn batch(&self) -> Option<Batch> {
        self.batch.read().expect("hub entry poisoned").clone()
    }

    fn evict(&self) {
        // Dropped outside the lock: freeing a thousand messages is not
        // something readers should wait for.
        let taken = self.batch.write().expect("hub entry poisoned").take();
        drop(taken);
    }
}

/// A subscription to the hub: every entry broadcast after it was made.
pub struct HubReceiver {
    rx: broadcast::Receiver<Arc<Entry>>,
}

impl HubReceiver {
    pub(super) fn new(rx: broadcast::Receiver<Arc<Entry>>) -> Self {
        Self { rx }
    }

    /// The next batch, waiting for one.
    pub async fn recv(&mut self) -> Result<Batch, Missed> {
        use broadcast::error::RecvError;
        match self.rx.recv().await {
            Ok(entry) => open(&entry),
            Err(RecvError::Lagged(_)) => Err(overflowed()),
            Err(RecvError::Closed) => Err(Missed::Closed),
        }
    }

    /// The next batch if one is queued.
    pub fn try_recv(&mut self) -> Result<Batch, Missed> {
        use broadcast::error::TryRecvError;
        match self.rx.try_recv() {
            Ok(entry) => open(&entry),
            Err(TryRecvError::Lagged(_)) => Err(overflowed()),
            Err(TryRecvError::Closed) => Err(Missed::Closed),
            Err(TryRecvError::Empty) => Err(Missed::Empty),
        }
    }
}

fn open(entry: &Entry) -> Result<Batch, Missed> {
    entry.batch().ok_or(Missed::Lagged {
        through: entry.last,
    })
}

fn overflowed() -> Missed {
    Missed::Lagged {
        through: Position(i64::MAX),
    }
}

/// Entries sent and not yet known to be gone, oldest first, with their
/// estimated sizes. Only the sequencer pushes, so the lock is uncontended.
#[derive(Default)]
pub(super) struct Ledger {
    entries: VecDeque<(Weak<Entry>, usize)>,
    bytes: usize,
}

impl Ledger {
    /// Records `entry` and empties the oldest entries until the total is
    /// within `max_bytes` again (the newest entry always stays).
    pub(super) fn push(&mut self, entry: &Arc<Entry>, size: usize, max_bytes: usize) {
        // Entries every receiver has read are freed by the broadcast itself;
        // forget them from the front so they no longer count.
        while let Some((front, size)) = self.entries.front() {
            if front.strong_count() > 0 {
                break;
            }
            self.bytes -= size;
            self.entries.pop_front();
        }
        self.entries.push_back((Arc::downgrade(entry), size));
        self.bytes += size;
        while self.bytes > max_bytes && self.entries.len() > 1 {
            let Some((oldest, size)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= size;
            if let Some(e) = oldest.upgrade() {
                e.evict();
            }
        }
    }

    /// Estimated bytes of the entries the ledger still counts.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Splits a committed batch into entries of at most [`ENTRY_BYTES`]
/// (estimated), each with its size.
pub(super) fn split(batch: Vec<Message>) -> Vec<(Arc<Entry>, usize)> {
    let mut out = Vec::new();
    let mut current: Vec<Message> = Vec::new();
    let mut size = 0;
    for m in batch {
        let s = m.estimated_bytes();
        if !current.is_empty() && size + s > ENTRY_BYTES {
            out.push(entry(std::mem::take(&mut current), size));
            size = 0;
        }
        size += s;
        current.push(m);
    }
    if !current.is_empty() {
        out.push(entry(current, size));
    }
    out
}

fn entry(messages: Vec<Message>, size: usize) -> (Arc<Entry>, usize) {
    let last = messages.last().map_or(Position::ZERO, |m| m.position);
    let e = Entry {
        last,
        batch: RwLock::new(Some(Arc::new(messages))),
    };
    (Arc::new(e), size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventType, Payload, Timestamp, TopicName};

    fn message(position: i64, bytes: usize) -> Message {
        Message::new(
            Position(position),
            TopicName::parse("t").unwrap(),
            position,
            Timestamp(1_700_000_000_000_000),
            EventType::message(),
            Payload::Text("x".repeat(bytes)),
            "text/plain".into(),
        )
    }

    #[test]
    fn a_large_batch_is_split_into_bounded_entries_in_order() {
        let batch: Vec<_> = (1..=100).map(|p| message(p, 1000)).collect();
        let entries = split(batch);
        assert!(entries.len() > 1);
        let mut next = 1;
        for (e, size) in &entries {
            assert!(*size <= ENTRY_BYTES);
            for m in e.batch().unwrap().iter() {
                assert_eq!(m.position, Position(next));
                next += 1;
            }
        }
        assert_eq!(next, 101);
    }

    #[test]
    fn the_ledger_empties_the_oldest_entries_past_its_budget() {
        let mut ledger = Ledger::default();
        let kept: Vec<_> = (1..=10)
            .map(|p| split(vec![message(p, 1000)]).pop().unwrap())
            .collect();
        let each = kept[0].1;
        for (e, size) in &kept {
            ledger.push(e, *size, 3 * each);
        }
        assert!(ledger.bytes() <= 3 * each);
        let alive: Vec<bool> = kept.iter().map(|(e, _)| e.batch().is_some()).collect();
        assert_eq!(alive.iter().filter(|a| **a).count(), 3);
        assert!(alive[7..].iter().all(|a| *a), "the newest stay: {alive:?}");
        assert_eq!(
            open(&kept[0].0).unwrap_err(),
            Missed::Lagged {
                through: Position(1)
            }
        );
    }

    #[test]
    fn entries_read_by_everyone_stop_counting() {
        let mut ledger = Ledger::default();
        let (e, size) = split(vec![message(1, 10)]).pop().unwrap();
        ledger.push(&e, size, usize::MAX);
        drop(e);
        let (e2, size2) = split(vec![message(2, 10)]).pop().unwrap();
        ledger.push(&e2, size2, usize::MAX);
        assert_eq!(ledger.bytes(), size2);
    }
}
