//! Log positions and the resume cursors clients send back
//! (`Last-Event-ID: 42`, `?last_event_id=earliest`).

use std::fmt;

/// A message's place in herald's single, commit-ordered log (1, 2, 3, …).
/// It is the SSE `id:` of the message on every stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Position(pub i64);

impl Position {
    /// Before the first message: "after ZERO" means the whole log.
    pub const ZERO: Position = Position(0);

    pub fn next(self) -> Position {
        Position(self.0.saturating_add(1))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// All retained history.
    Earliest,
    /// Everything committed after this position.
    After(Position),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid cursor: use a message id (a non-negative integer) or `earliest`")]
pub struct CursorError(pub String);

impl Cursor {
    pub fn parse(s: &str) -> Result<Self, CursorError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("earliest") {
            return Ok(Cursor::Earliest);
        }
        // Digits only: no sign, no spaces inside, no hex; i64 range.
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CursorError(s.to_owned()));
        }
        t.parse::<i64>()
            .map(|n| Cursor::After(Position(n)))
            .map_err(|_| CursorError(s.to_owned()))
    }

    /// The position to read after.
    pub fn after(self) -> Position {
        match self {
            Cursor::Earliest => Position::ZERO,
            Cursor::After(p) => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse() {
        assert_eq!(Cursor::parse("earliest"), Ok(Cursor::Earliest));
        assert_eq!(Cursor::parse("0"), Ok(Cursor::After(Position(0))));
        assert_eq!(Cursor::parse(" 42 "), Ok(Cursor::After(Position(42))));
        for bad in [
            "",
            "-1",
            "+1",
            "abc",
            "1.5",
            "0x10",
            "99999999999999999999",
            "4 2",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
