//! A subscription's durations as strings (`"1s"`, `"10m"`), as every other
//! duration herald takes, beside the older `*_ms` integers: each string is
//! folded into its `*_ms` field before anything else reads the request.

use super::{CreateSubscription, PatchSubscription, invalid};
use crate::domain::HumanDuration;
use crate::http::error::ApiError;

/// `min_backoff`, `max_backoff` and `timeout` of a create request.
pub(super) fn fold_create(b: &mut CreateSubscription) -> Result<(), ApiError> {
    fold_each([
        (&mut b.min_backoff_ms, b.min_backoff.take(), "min_backoff"),
        (&mut b.max_backoff_ms, b.max_backoff.take(), "max_backoff"),
        (&mut b.timeout_ms, b.timeout.take(), "timeout"),
    ])
}

/// The same for a `PATCH`.
pub(super) fn fold_patch(b: &mut PatchSubscription) -> Result<(), ApiError> {
    fold_each([
        (&mut b.min_backoff_ms, b.min_backoff.take(), "min_backoff"),
        (&mut b.max_backoff_ms, b.max_backoff.take(), "max_backoff"),
        (&mut b.timeout_ms, b.timeout.take(), "timeout"),
    ])
}

fn fold_each(fields: [(&mut Option<i64>, Option<String>, &str); 3]) -> Result<(), ApiError> {
    fields
        .into_iter()
        .try_for_each(|(ms, text, name)| fold(ms, text, name))
}

/// Puts `text` (a duration) into `ms`; both set is an error.
fn fold(ms: &mut Option<i64>, text: Option<String>, name: &str) -> Result<(), ApiError> {
    let Some(text) = text else {
        return Ok(());
    };
    if ms.is_some() {
        return Err(invalid(format!(
            "set {name} (a duration such as \"30s\") or {name}_ms (milliseconds), not both"
        )));
    }
    let d = HumanDuration::parse(&text).map_err(|e| invalid(format!("{name}: {e}")))?;
    *ms = Some(i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn a_duration_string_becomes_milliseconds_and_both_spellings_conflict() {
        let mut ms = None;
        fold(&mut ms, Some("1m30s".into()), "timeout").unwrap();
        assert_eq!(ms, Some(90_000));
        let mut ms = None;
        fold(&mut ms, None, "timeout").unwrap();
        assert_eq!(ms, None);
        let mut ms = Some(5);
        assert!(fold(&mut ms, Some("1s".into()), "timeout").is_err());
        let mut ms = None;
        assert!(fold(&mut ms, Some("soon".into()), "timeout").is_err());
    }
}
