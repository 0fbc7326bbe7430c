//! Sizes as people write them in flags: `"64MiB"`, `"128KiB"`, or plain
//! numbers of bytes. (Durations are [`super::HumanDuration`].)

/// `"64MiB"`, `"512KiB"`, `"1GiB"`, `"64MB"` (decimal), or bytes
/// (`"1048576"`, `"100B"`).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let per = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: B, KiB, MiB, GiB, kB, MB or GB"
            ));
        }
    };
    n.checked_mul(per)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_decimal_or_no_unit() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("2MB"), Ok(2_000_000));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("100B"), Ok(100));
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("1 furlong").is_err());
        assert!(parse_bytes("99999999999GiB").is_err());
    }
}
