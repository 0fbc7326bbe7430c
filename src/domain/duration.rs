//! Durations as herald's flags and fields spell them: a number and a unit,
//! `ms`, `s`, `m`, `h` or `d` (`"90s"`, `"15m"`, `"24h"`, `"7d"`), or
//! several such parts in a row (`"1h30m"`). Shown back in the largest unit
//! that divides them exactly.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A parsed duration. `0` (bare) is the only spelling without a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a duration: use a number and a unit, ms s m h or d, e.g. \"90s\", \"15m\", \"24h\", \"7d\""
)]
pub struct DurationError(pub String);

/// The longest duration herald accepts anywhere: 100 years.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let bad = || DurationError(s.to_owned());
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let mut rest = s;
        let mut total: u64 = 0;
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let letters = rest[digits..]
                .bytes()
                .take_while(u8::is_ascii_alphabetic)
                .count();
            if digits == 0 || letters == 0 || digits > 12 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            let unit = &rest[digits..digits + letters];
            let ms = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, ms)| *ms)
                .ok_or_else(bad)?;
            total = n
                .checked_mul(ms)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            rest = &rest[digits + letters..];
        }
        let d = Duration::from_millis(total);
        if d > MAX {
            return Err(bad());
        }
        Ok(Self(d))
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0");
        }
        let (unit, size) = UNITS
            .iter()
            .find(|(_, size)| ms.is_multiple_of(*size))
            .expect("every whole number of ms divides by 1");
        write!(f, "{}{unit}", ms / size)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_compounds_parse_and_show_in_their_largest_unit() {
        for (text, ms, shown) in [
            ("90s", 90_000, "90s"),
            ("15m", 900_000, "15m"),
            ("24h", 86_400_000, "1d"),
            ("7d", 604_800_000, "7d"),
            ("1h30m", 5_400_000, "90m"),
            ("250ms", 250, "250ms"),
            ("0", 0, "0"),
        ] {
            let d = HumanDuration::parse(text).unwrap();
            assert_eq!(d.0, Duration::from_millis(ms), "{text}");
            assert_eq!(d.to_string(), shown);
        }
    }

    #[test]
    fn bad_spellings_and_absurd_lengths_are_refused() {
        for bad in [
            "",
            "s",
            "10",
            "-5s",
            "1.5h",
            "5 s",
            "5sec",
            "1y",
            "0s0",
            "36501d",
            "99999999999999d",
        ] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad:?}");
        }
        assert!(HumanDuration::parse("36500d").is_ok());
    }
}
