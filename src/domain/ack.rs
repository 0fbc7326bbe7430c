//! Ack ids of pull subscriptions: which delivery of which message a
//! consumer holds. `"{message id}.{attempt}"`, opaque to clients: an ack
//! that names an earlier attempt (its lease ran out and the message went
//! to another consumer) matches nothing.

use std::fmt;

/// One lease of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckId {
    /// The message's position in the log.
    pub position: i64,
    /// Its delivery attempt (1 for the first lease).
    pub attempt: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ack id (use the ack_id of a pulled message as it is)")]
pub struct AckIdError(pub String);

impl AckId {
    pub fn parse(s: &str) -> Result<Self, AckIdError> {
        let bad = || AckIdError(s.chars().take(64).collect());
        let (position, attempt) = s.split_once('.').ok_or_else(bad)?;
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(position) || !digits(attempt) {
            return Err(bad());
        }
        let position: i64 = position.parse().map_err(|_| bad())?;
        let attempt: i32 = attempt.parse().map_err(|_| bad())?;
        if position < 1 || attempt < 1 {
            return Err(bad());
        }
        Ok(Self { position, attempt })
    }
}

impl fmt::Display for AckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.position, self.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_ids_round_trip_and_garbage_is_refused() {
        let id = AckId::parse("42.3").unwrap();
        assert_eq!(
            id,
            AckId {
                position: 42,
                attempt: 3
            }
        );
        assert_eq!(id.to_string(), "42.3");
        for bad in [
            "",
            "42",
            "42.",
            ".3",
            "a.b",
            "0.1",
            "1.0",
            "-1.2",
            "1.2.3",
            "1.99999999999",
        ] {
            assert!(AckId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
