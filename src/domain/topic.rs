//! Topic names (`orders.eu.created`) and the patterns that select them
//! (`orders.*`, `orders.**`).
//!
//! A name is 1–128 characters of `A-Z a-z 0-9 _ - .`, and `.` separates
//! levels, so no level may be empty. In a pattern a level may also be `*`
//! (exactly one level) or, as the last level only, `**` (one or more levels).

use std::fmt;
use std::sync::Arc;

/// The longest topic name or pattern accepted, in bytes (all accepted
/// characters are ASCII, so bytes and characters agree).
pub const MAX_TOPIC_LEN: usize = 128;

/// Why a topic name or pattern was refused; the text is shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("a topic name must not be empty")]
    Empty,
    #[error("a topic name is at most {MAX_TOPIC_LEN} characters; this one has {0}")]
    TooLong(usize),
    #[error(
        "character {ch:?} at position {index} is not allowed; topic names use A-Z a-z 0-9 _ - and . between levels"
    )]
    InvalidChar { ch: char, index: usize },
    #[error("level {level} is empty; levels are separated by single dots")]
    EmptyLevel { level: usize },
    #[error("wildcards are not allowed in a topic name, only in subscription patterns")]
    Wildcard,
    #[error(
        "level {level} ({text:?}) mixes a wildcard with other characters; a level is a name, `*`, or a final `**`"
    )]
    BadWildcard { level: usize, text: String },
    #[error("`**` may only be the last level of a pattern")]
    DoubleStarNotLast,
    #[error(
        "`$` may only start herald's reserved prefix `$herald.`, followed by at least one level"
    )]
    Reserved,
}

/// The first level of herald's own topics (`$herald.subscription.circuit`
/// …): only herald publishes there, and a wildcard first level never
/// matches them.
pub const RESERVED_LEVEL: &str = "$herald";

/// Whether `level` (the `index`th of `whole`) is the reserved first level,
/// which the usual alphabet does not allow: `Err` where `$` is misused.
fn reserved_level(whole: &str, level: &str, index: usize) -> Result<bool, TopicError> {
    if !level.contains('$') {
        return Ok(false);
    }
    if index == 0 && level == RESERVED_LEVEL && whole.len() > RESERVED_LEVEL.len() {
        return Ok(true);
    }
    Err(TopicError::Reserved)
}

/// A validated topic name. Cheap to clone: messages and subscriptions share
/// the same allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Checks `s` against the naming rules.
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        check_length(s)?;
        for (level_index, level) in s.split('.').enumerate() {
            if level == "*" || level == "**" {
                return Err(TopicError::Wildcard);
            }
            if !reserved_level(s, level, level_index)? {
                check_literal_level(s, level, level_index)?;
            }
        }
        Ok(Self(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One of herald's own topics (`$herald.…`), where only herald publishes.
    pub fn is_reserved(&self) -> bool {
        is_reserved(&self.0)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `topic` is one of herald's own (`$herald.…`).
pub fn is_reserved(topic: &str) -> bool {
    topic
        .strip_prefix(RESERVED_LEVEL)
        .is_some_and(|rest| rest.starts_with('.'))
}

fn check_length(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    let chars = s.chars().count();
    if chars > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(chars));
    }
    Ok(())
}

fn check_literal_level(whole: &str, level: &str, level_index: usize) -> Result<(), TopicError> {
    if level.is_empty() {
        return Err(TopicError::EmptyLevel {
            level: level_index + 1,
        });
    }
    if let Some(ch) = level
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        if ch == '*' {
            return Err(TopicError::BadWildcard {
                level: level_index + 1,
                text: level.to_owned(),
            });
        }
        // Position in the whole string, in characters, for the error text.
        let offset = level.as_ptr() as usize - whole.as_ptr() as usize;
        let index = whole[..offset].chars().count()
            + level.chars().position(|c| c == ch).unwrap_or_default();
        return Err(TopicError::InvalidChar { ch, index });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(Box<str>),
    /// `*`: exactly one level.
    One,
    /// `**`: one or more levels (only last).
    Rest,
}

/// A topic name or a pattern with `*` / `**` levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    text: Box<str>,
    levels: Vec<Level>,
}

impl TopicPattern {
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        check_length(s)?;
        let parts: Vec<&str> = s.split('.').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let level = match *part {
                "*" => Level::One,
                "**" if i + 1 == parts.len() => Level::Rest,
                "**" => return Err(TopicError::DoubleStarNotLast),
                literal => {
                    if !reserved_level(s, literal, i)? {
                        check_literal_level(s, literal, i)?;
                    }
                    Level::Literal(literal.into())
                }
            };
            levels.push(level);
        }
        Ok(Self {
            text: s.into(),
            levels,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The topic name when the pattern has no wildcard.
    pub fn as_exact(&self) -> Option<&str> {
        self.levels
            .iter()
            .all(|l| matches!(l, Level::Literal(_)))
            .then_some(&*self.text)
    }

    pub fn matches(&self, topic: &str) -> bool {
        if let Some(exact) = self.as_exact() {
            return exact == topic;
        }
        if is_reserved(topic) && !self.names_reserved() {
            return false;
        }
        let mut parts = topic.split('.');
        for level in &self.levels {
            match level {
                Level::Rest => return parts.next().is_some(),
                Level::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Level::Literal(l) => {
                    if parts.next() != Some(&**l) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// Whether the first level is `$herald`: only such patterns match
    /// herald's own topics.
    fn names_reserved(&self) -> bool {
        matches!(self.levels.first(), Some(Level::Literal(l)) if &**l == RESERVED_LEVEL)
    }

    /// Whether every topic that `other` matches is matched by `self` too:
    /// `orders.**` covers `orders.*` and `orders.eu`, but not `**`.
    pub fn covers(&self, other: &TopicPattern) -> bool {
        let (granted, asked) = (&self.levels, &other.levels);
        // A wildcard grant does not reach herald's own topics.
        if other.names_reserved() && !self.names_reserved() {
            return false;
        }
        if matches!(granted.last(), Some(Level::Rest)) {
            // `**` takes one or more levels: `asked` needs at least as many.
            if asked.len() < granted.len() {
                return false;
            }
        } else if asked.len() != granted.len() || matches!(asked.last(), Some(Level::Rest)) {
            return false;
        }
        granted.iter().zip(asked).all(|(g, a)| match (g, a) {
            (Level::Rest, _) => true,
            (Level::One, Level::Rest) => false,
            (Level::One, _) => true,
            (Level::Literal(g), Level::Literal(a)) => g == a,
            (Level::Literal(_), _) => false,
        })
    }
}

/// What one subscriber listens to: a non-empty set of names and patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSelector {
    patterns: Vec<TopicPattern>,
}

impl TopicSelector {
    /// The most topics or patterns one stream may name.
    pub const MAX_PATTERNS: usize = 64;

    /// Builds a selector; duplicates are removed and order is kept.
    pub fn new(patterns: Vec<TopicPattern>) -> Self {
        let mut unique: Vec<TopicPattern> = Vec::with_capacity(patterns.len());
        for p in patterns {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        Self { patterns: unique }
    }

    pub fn single(name: &TopicName) -> Self {
        Self {
            patterns: vec![TopicPattern {
                text: name.as_str().into(),
                levels: name
                    .as_str()
                    .split('.')
                    .map(|l| Level::Literal(l.into()))
                    .collect(),
            }],
        }
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(topic))
    }

    /// The exact topic names, when no pattern has a wildcard: storage can
    /// then select them with an index instead of scanning the whole log.
    pub fn exact_names(&self) -> Option<Vec<&str>> {
        self.patterns.iter().map(TopicPattern::as_exact).collect()
    }

    pub fn patterns(&self) -> &[TopicPattern] {
        &self.patterns
    }

    /// A canonical text for the selector (sorted, comma separated), used to
    /// group identical subscriptions.
    pub fn key(&self) -> String {
        let mut texts: Vec<&str> = self.patterns.iter().map(TopicPattern::as_str).collect();
        texts.sort_unstable();
        texts.join(",")
    }
}

#[cfg(test)]
mod tests;
