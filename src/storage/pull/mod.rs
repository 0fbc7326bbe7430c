//! Pull subscriptions on the webhook ledger. The same cursor and dispatch
//! that queue webhook deliveries fill `retries` for a pull subscription;
//! a consumer then *leases* due rows: `attempts + 1`, and `leased_until` =
//! `next_attempt_us` = the lease's end. An ack deletes a row still leased
//! with the same attempt; a nack or the end of a lease makes it due again
//! (redelivered with `attempt + 1`); a due row whose attempts reached
//! `max_attempts` becomes a dead letter.
//!
//! [`PullStore`] is implemented once, for every [`SqlBackend`]. Postgres
//! adds `FOR UPDATE SKIP LOCKED` to the claims, so consumers on several
//! nodes never lease one row twice at the same time.

mod sql;

use sqlx::FromRow;

use super::StoreError;
use super::webhooks::Start;
use crate::domain::{AckId, Timestamp};

/// The NOTIFY channel on which nodes announce pull changes (see
/// [`PullStore::announce_pull`]).
pub const CHANNEL: &str = "herald_pull";

/// Dead-letter reason: leased `max_attempts` times without an ack.
pub const REASON_MAX_ATTEMPTS: &str = "max_attempts";
/// Dead-letter reason: the message was gone (retention) before a lease.
pub const REASON_RETENTION: &str = "retention";

/// The claim condition (on `retries r`, subscription `$1`) that holds
/// back a delivery while an earlier one of its ordering key is pending, in
/// an `ordered` subscription: one per key in flight, in log order. The
/// earlier one leaves `retries` when it is acked (delivered) or becomes a
/// dead letter. Shared by pull leases and webhook claims.
pub(crate) const OLDEST_OF_ITS_KEY: &str = "(r.msg_key IS NULL \
     OR (SELECT ordered FROM subscriptions WHERE id = $1) = FALSE \
     OR NOT EXISTS (SELECT 1 FROM retries o WHERE o.subscription_id = $1 \
     AND o.msg_key = r.msg_key AND o.position < r.position))";

/// A delivery leased to a consumer.
#[derive(Debug, Clone)]
pub struct Leased {
    pub ack_id: AckId,
    /// The message envelope (JSON).
    pub envelope: String,
    /// Its event type, for the SSE `event:` line.
    pub event: String,
}

/// What one lease did.
#[derive(Debug, Default)]
pub struct LeaseOutcome {
    pub leased: Vec<Leased>,
    /// Rows claimed but dropped instead (message expired or no longer
    /// retained): more may be due.
    pub dropped: usize,
    /// The acks given with the lease that were still leased, now acked.
    pub acked: Vec<AckId>,
    /// Deliveries this lease moved to the dead letters.
    pub dead_lettered: Vec<DeadLettered>,
}

/// A delivery that a lease moved to the dead letters.
#[derive(Debug, Clone)]
pub struct DeadLettered {
    /// The dead letter's id.
    pub id: i64,
    pub position: i64,
    pub topic: String,
    /// [`REASON_MAX_ATTEMPTS`] or [`REASON_RETENTION`].
    pub reason: &'static str,
    pub attempts: i32,
    /// What happened, in words ("nacked 3 times", "lease expired once").
    pub error: String,
}

/// A pull subscription's ledger now.
#[derive(Debug, Clone, Default, FromRow)]
pub struct PullStats {
    /// Rows not leased now: due, or waiting out a nack's delay.
    pub backlog: i64,
    /// Rows leased now.
    pub in_flight: i64,
    /// Commit time of the oldest message not acked yet.
    pub oldest_us: Option<i64>,
}

/// Pull-subscription storage. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait PullStore: Send + Sync {
    /// In one transaction: acks `acks` (as [`PullStore::ack`] does),
    /// buries due rows that reached `max_attempts`, then leases up to `n`
    /// due rows (highest priority first, then in position order) until
    /// `until`.
    async fn lease(
        &self,
        sub: i64,
        now: Timestamp,
        until: Timestamp,
        n: u32,
        max_attempts: i32,
        acks: &[AckId],
    ) -> Result<LeaseOutcome, StoreError>;
    /// Moves the subscription's due rows whose attempts are used up to
    /// the dead letters, as a lease does first: for the deliverer's
    /// passes, so that they are buried while no consumer pulls. A read
    /// only, when there are none.
    async fn bury_exhausted(
        &self,
        sub: i64,
        now: Timestamp,
        max_attempts: i32,
    ) -> Result<Vec<DeadLettered>, StoreError>;
    /// Deletes the rows still leased under these ids and counts them as
    /// delivered; returns the ids acked.
    async fn ack(&self, sub: i64, ids: &[AckId], now: Timestamp) -> Result<Vec<AckId>, StoreError>;
    /// Moves rows still leased under these ids to `next`: still leased
    /// until then (`keep_lease`, an extend) or due then (a nack). Returns
    /// the ids changed.
    async fn relet(
        &self,
        sub: i64,
        ids: &[(AckId, Timestamp)],
        keep_lease: bool,
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError>;
    /// Those of `ids` still leased now.
    async fn still_leased(
        &self,
        sub: i64,
        ids: &[AckId],
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError>;
    /// Drops the subscription's pending rows and moves its cursor; false
    /// if it does not exist.
    async fn seek(&self, sub: i64, to: Start, now: Timestamp) -> Result<bool, StoreError>;
    async fn pull_stats(&self, sub: i64, now: Timestamp) -> Result<PullStats, StoreError>;
    /// When the next row of the subscription becomes due (or is due).
    async fn next_due(&self, sub: i64) -> Result<Option<Timestamp>, StoreError>;
    /// Tells the other nodes sharing the database that rows may have
    /// become due, or leases ended, without a commit to the log (a NOTIFY
    /// on [`CHANNEL`] carrying `node`); nothing where one process is all
    /// there is.
    async fn announce_pull(&self, node: &str) -> Result<(), StoreError>;
}
