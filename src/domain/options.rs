//! Per-message publish options that travel with a message into the log:
//! its [`Priority`] and its ordering [`OrderingKey`]. And the
//! [`IdempotencyKey`] of a publish request, which does not.

use std::fmt;
use std::sync::Arc;

/// A message's priority, 1 (min) to 5 (max); 3 when the publisher gives
/// none. Among the messages a subscription has ready, higher goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("priority {0:?} is invalid: use 1-5 or min, low, default, high, max")]
pub struct PriorityError(pub String);

impl Priority {
    pub const MIN: Priority = Priority(1);
    pub const DEFAULT: Priority = Priority(3);
    pub const MAX: Priority = Priority(5);
    const NAMES: [&'static str; 5] = ["min", "low", "default", "high", "max"];

    /// `1`–`5`, or a name: `min low default high max` (any case).
    pub fn parse(s: &str) -> Result<Self, PriorityError> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u8>() {
            return Self::new(n).ok_or_else(|| PriorityError(s.to_owned()));
        }
        Self::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| Priority(i as u8 + 1))
            .ok_or_else(|| PriorityError(s.to_owned()))
    }

    /// From a stored number; `None` outside 1–5.
    pub fn new(n: u8) -> Option<Self> {
        (1..=5).contains(&n).then_some(Priority(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An ordering key (`?key=`): 1–128 printable ASCII characters. In an
/// `ordered` subscription, messages of one key go one at a time.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrderingKey(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {0:?} is invalid: use 1-{max} printable ASCII characters", max = OrderingKey::MAX_LEN)]
pub struct KeyError(pub String);

impl OrderingKey {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if printable_ascii(s, Self::MAX_LEN) {
            Ok(Self(Arc::from(s)))
        } else {
            Err(KeyError(s.chars().take(Self::MAX_LEN + 1).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OrderingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// An `Idempotency-Key` header: 1–255 printable ASCII characters (the
/// IETF httpapi draft's key is a string; herald bounds it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Idempotency-Key must be 1-{max} printable ASCII characters", max = IdempotencyKey::MAX_LEN)]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        if printable_ascii(s, Self::MAX_LEN) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdempotencyKeyError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as one caller's: two callers' equal keys are two keys.
    /// `scope` names the caller (a token, a JWT subject, an address); a
    /// unit separator, which a key cannot hold, ends it.
    pub fn scoped(&self, scope: &str) -> Self {
        Self(format!("{scope}\u{1f}{}", self.0))
    }
}

/// 1..=max characters, each printable ASCII (space through `~`).
fn printable_ascii(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (b' '..=b'~').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_as_numbers_and_names() {
        assert_eq!(Priority::parse("1").unwrap(), Priority::MIN);
        assert_eq!(Priority::parse("max").unwrap(), Priority::MAX);
        assert_eq!(Priority::parse("High").unwrap().get(), 4);
        assert_eq!(Priority::parse("default").unwrap(), Priority::default());
        for bad in ["0", "6", "", "urgent", "3.0", "-1", "256"] {
            assert!(Priority::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(OrderingKey::parse("customer-42").is_ok());
        assert!(OrderingKey::parse(&"k".repeat(128)).is_ok());
        for bad in ["", "tab\there", "é", "line\n"] {
            assert!(OrderingKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OrderingKey::parse(&"k".repeat(129)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("ключ").is_err());
        assert!(IdempotencyKey::parse("").is_err());
    }
}
