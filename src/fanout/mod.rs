//! From commit to subscribers.
//!
//! - [`writer`]: the one task per process that commits publishes in groups
//!   (group commit) and answers each publish after its commit.
//! - [`hub`]: the in-process broadcast of committed batches, fed in position
//!   order by the sequencer (local commits, and on Postgres the commits of
//!   other nodes read back from storage).
//! - [`gaps`]: which of a stream's topics lost messages after its cursor.
//! - [`ring`]: what the hub holds, in entries bounded by size and a ledger
//!   that keeps their total within `--hub-max-bytes`.
//! - [`matcher`]: topics plus a content filter, shared between
//!   subscriptions with the same expression.
//! - [`subscriber`]: one stream per SSE connection: catch-up from storage,
//!   then live from the hub, with no gap and no duplicate.

pub mod gaps;
pub mod hub;
pub mod matcher;
pub mod ring;
pub mod subscriber;
pub mod writer;

pub use hub::{Feed, Hub};
pub use matcher::{FilterRegistry, Matcher, SharedFilter};
pub use ring::{Batch, HubReceiver, Missed};
pub use subscriber::StreamSettings;
pub use writer::{Ack, PublishError, Publisher};
