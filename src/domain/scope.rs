//! Access scopes: which topics a caller may publish to and subscribe to,
//! and whether it is an admin. Patterns may name the caller with `{sub}`
//! (`users.{sub}.**`), which is replaced by the token's subject.

use super::{TopicName, TopicPattern, TopicSelector};

/// The placeholder for the token's subject in a granted pattern.
pub const SUBJECT: &str = "{sub}";

/// What one caller may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub publish: Vec<TopicPattern>,
    pub subscribe: Vec<TopicPattern>,
    /// Admins may do everything.
    pub admin: bool,
}

/// A granted pattern that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{pattern:?} is not a topic pattern: {reason}")]
pub struct ScopeError {
    pub pattern: String,
    pub reason: String,
}

impl Grants {
    /// Whether these grants allow nothing at all.
    pub fn nothing(&self) -> bool {
        !self.admin && self.publish.is_empty() && self.subscribe.is_empty()
    }

    /// Everything: what every caller may do while access control is off.
    pub fn everything() -> Self {
        let all = TopicPattern::parse("**").expect("`**` is a pattern");
        Grants {
            publish: vec![all.clone()],
            subscribe: vec![all],
            admin: true,
        }
    }

    /// Grants from raw patterns, `{sub}` replaced by `subject`. A pattern
    /// with `{sub}` is left out when the subject is missing or is not a
    /// single topic level, so that a subject like `*` or `a.b` can never
    /// widen it.
    pub fn expand(
        publish: &[String],
        subscribe: &[String],
        admin: bool,
        subject: Option<&str>,
    ) -> Result<Self, ScopeError> {
        Ok(Grants {
            publish: expand_all(publish, subject)?,
            subscribe: expand_all(subscribe, subject)?,
            admin,
        })
    }

    /// Both sets of grants (a token's, and what anonymous callers may do).
    pub fn union(mut self, other: &Grants) -> Self {
        self.publish.extend(other.publish.iter().cloned());
        self.subscribe.extend(other.subscribe.iter().cloned());
        self.admin |= other.admin;
        self
    }

    pub fn may_publish(&self, topic: &TopicName) -> bool {
        self.admin || self.publish.iter().any(|p| p.matches(topic.as_str()))
    }

    /// The first pattern of `selector` that no subscribe grant covers.
    pub fn subscribe_denied<'a>(&self, selector: &'a TopicSelector) -> Option<&'a TopicPattern> {
        if self.admin {
            return None;
        }
        selector
            .patterns()
            .iter()
            .find(|asked| !self.subscribe.iter().any(|g| g.covers(asked)))
    }

    pub fn may_subscribe(&self, pattern: &TopicPattern) -> bool {
        self.admin || self.subscribe.iter().any(|g| g.covers(pattern))
    }
}

/// Checks that each raw pattern is valid once `{sub}` is filled in with
/// `subject`, or with the longest subject that can fill it when the token
/// has none yet: a pattern accepted here never fails later.
pub fn validate(patterns: &[String], subject: Option<&str>) -> Result<(), ScopeError> {
    let longest = "s".repeat(MAX_SUBJECT_LEVEL);
    let subject = subject.filter(|s| is_level(s)).unwrap_or(&longest);
    expand_all(patterns, Some(subject)).map(drop)
}

/// The longest subject that fills `{sub}` (a longer one fills nothing).
pub const MAX_SUBJECT_LEVEL: usize = 64;

fn expand_all(raw: &[String], subject: Option<&str>) -> Result<Vec<TopicPattern>, ScopeError> {
    let subject = subject.filter(|s| is_level(s));
    let mut out = Vec::with_capacity(raw.len());
    for text in raw {
        let filled = match (text.contains(SUBJECT), subject) {
            (false, _) => text.clone(),
            (true, Some(s)) => text.replace(SUBJECT, s),
            (true, None) => continue,
        };
        let pattern = TopicPattern::parse(&filled).map_err(|e| ScopeError {
            pattern: text.clone(),
            reason: e.to_string(),
        })?;
        out.push(pattern);
    }
    Ok(out)
}

/// One literal topic level: `A-Z a-z 0-9 _ -`, 1 to 64 characters.
fn is_level(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SUBJECT_LEVEL
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TopicPattern {
        TopicPattern::parse(s).unwrap()
    }

    /// Every pattern of up to three levels over `a`, `b`, `*`, with or
    /// without a trailing `**`.
    fn all_patterns() -> Vec<TopicPattern> {
        let mut out = Vec::new();
        let mut level_sets: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..3 {
            let mut next = Vec::new();
            for set in &level_sets {
                for l in ["a", "b", "*"] {
                    let mut s = set.clone();
                    s.push(l);
                    next.push(s);
                }
            }
            for set in &next {
                out.push(p(&set.join(".")));
            }
            for set in &level_sets {
                let mut s = set.clone();
                s.push("**");
                out.push(p(&s.join(".")));
            }
            level_sets = next;
        }
        out
    }

    /// Every topic of up to five levels over `a`, `b`, `c`: one level more
    /// than any pattern above, so a counterexample exists among them
    /// whenever one exists at all.
    fn all_topics() -> Vec<String> {
        let mut out = Vec::new();
        let mut prev = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for t in &prev {
                for l in ["a", "b", "c"] {
                    next.push(if t.is_empty() {
                        l.to_owned()
                    } else {
                        format!("{t}.{l}")
                    });
                }
            }
            out.extend(next.iter().cloned());
            prev = next;
        }
        out
    }

    /// The property, checked exhaustively over a small universe: `g`
    /// covers `r` exactly when every topic `r` matches is matched by `g`.
    #[test]
    fn covers_is_exactly_containment_of_matched_topics() {
        let patterns = all_patterns();
        let topics = all_topics();
        assert_eq!(patterns.len(), 52);
        let matched: Vec<Vec<bool>> = patterns
            .iter()
            .map(|pat| topics.iter().map(|t| pat.matches(t)).collect())
            .collect();
        let mut covered = 0;
        for (gi, g) in patterns.iter().enumerate() {
            for (ri, r) in patterns.iter().enumerate() {
                let contained = matched[ri]
                    .iter()
                    .zip(&matched[gi])
                    .all(|(in_r, in_g)| !in_r || *in_g);
                assert_eq!(
                    g.covers(r),
                    contained,
                    "{} covers {}?",
                    g.as_str(),
                    r.as_str()
                );
                covered += usize::from(contained);
            }
        }
        // Not a vacuous check: both answers occur many times.
        assert!(covered > 100 && covered < 52 * 52 - 100, "{covered}");
    }

    #[test]
    fn the_issue_examples_hold() {
        assert!(p("orders.**").covers(&p("orders.*")));
        assert!(p("orders.**").covers(&p("orders.eu.created")));
        assert!(!p("orders.**").covers(&p("**")));
        assert!(!p("orders.**").covers(&p("orders")));
        assert!(!p("orders.*").covers(&p("orders.**")));
    }

    #[test]
    fn subject_fills_private_patterns_and_cannot_widen_them() {
        let raw = vec!["users.{sub}.**".to_owned()];
        let g = Grants::expand(&[], &raw, false, Some("alice")).unwrap();
        assert!(g.may_subscribe(&p("users.alice.inbox")));
        assert!(!g.may_subscribe(&p("users.bob.inbox")));
        for sneaky in ["*", "**", "a.b", "", "bob@example.com"] {
            let g = Grants::expand(&[], &raw, false, Some(sneaky)).unwrap();
            assert!(g.subscribe.is_empty(), "subject {sneaky:?}");
        }
        let g = Grants::expand(&[], &raw, false, None).unwrap();
        assert!(g.subscribe.is_empty());
    }

    #[test]
    fn invalid_patterns_are_named() {
        let e = validate(&["orders..x".to_owned()], None).unwrap_err();
        assert_eq!(e.pattern, "orders..x");
        assert!(validate(&["users.{sub}.**".to_owned()], None).is_ok());
        // Too long once the longest subject fills it.
        let long = format!("{}.{{sub}}", "x".repeat(100));
        assert!(validate(std::slice::from_ref(&long), Some("ab")).is_ok());
        assert!(validate(&[long], None).is_err());
    }
}
