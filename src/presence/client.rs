//! The `client` label of a stream: the token's subject when the caller has
//! one (it cannot be chosen then), else `?client=`, else empty.

/// Longest label, in characters.
pub const MAX_CHARS: usize = 64;

/// Why a `?client=` label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("client is {0} characters long; at most 64 are allowed")]
    TooLong(usize),
    #[error("client holds a control character at position {0}; use printable characters")]
    Control(usize),
}

/// Checks a `?client=` label: at most [`MAX_CHARS`] characters, none of
/// them a control character (labels end up in JSON and in log lines).
pub fn parse(label: &str) -> Result<String, ClientError> {
    let chars = label.chars().count();
    if chars > MAX_CHARS {
        return Err(ClientError::TooLong(chars));
    }
    if let Some(i) = label.chars().position(char::is_control) {
        return Err(ClientError::Control(i));
    }
    Ok(label.to_owned())
}

/// The label of a caller with token subject `subject` asking for `asked`.
pub fn label(subject: Option<&str>, asked: Option<&str>) -> Result<String, ClientError> {
    match subject.filter(|s| !s.is_empty()) {
        Some(sub) => Ok(sub.to_owned()),
        None => asked.map_or_else(|| Ok(String::new()), parse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_wins_over_the_asked_label() {
        assert_eq!(label(Some("alice"), Some("mallory")).unwrap(), "alice");
        assert_eq!(label(None, Some("bob")).unwrap(), "bob");
        assert_eq!(label(None, None).unwrap(), "");
    }

    #[test]
    fn long_or_control_labels_are_refused() {
        assert_eq!(parse(&"é".repeat(64)).unwrap().chars().count(), 64);
        assert_eq!(parse(&"x".repeat(65)), Err(ClientError::TooLong(65)));
        assert_eq!(parse("a\nb"), Err(ClientError::Control(1)));
    }
}
