//! What the attempt log and the dead letters hold, as storage reads and
//! writes them.

use crate::domain::Timestamp;

/// One attempt as the attempt log keeps it.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    pub subscription_id: i64,
    pub position: i64,
    pub time: Timestamp,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The start of the answer's body (at most 1 KiB).
    pub response: Option<String>,
}

/// A row of the attempt log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub id: i64,
    pub subscription_id: i64,
    pub position: i64,
    pub time_us: i64,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub response: Option<String>,
}

/// Which attempts to list: newest first, below the id `before`.
#[derive(Debug, Clone)]
pub struct AttemptQuery {
    pub subscription: i64,
    pub position: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// The outcome of a failed attempt, as recorded.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Option<i32>,
    pub error: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub subscription_id: i64,
    pub position: i64,
    pub topic: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub first_attempt_us: i64,
    pub last_attempt_us: i64,
    pub created_us: i64,
    /// The message's envelope as it was delivered (kept so that retention,
    /// expiry or a topic delete never leaves a dead letter without it).
    pub envelope: Option<String>,
    /// Why it is here: `max_attempts` (also when NULL, as for dead letters
    /// from before reasons were kept) or `retention`.
    pub reason: Option<String>,
}

/// Which dead letters to list: oldest first, after the id `after`.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterQuery {
    pub subscription: Option<i64>,
    pub topic: Option<String>,
    pub after: i64,
    pub limit: u32,
}
