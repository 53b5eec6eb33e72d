//! The units a config is written in: durations (`90s`, `1h30m`) and byte sizes (`64KiB`),
//! parsed from text alone (the readers in `walk` add positions and wording).

use std::time::Duration;

/// Parses a duration: numbers with units, like `500ms`, `90s`, `15m`, `1h30m` or `7d`.
///
/// # Errors
///
/// Why the text is not a duration.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| err.to_string())
}

/// Parses `19000`, `64KiB`, `1 MiB`, `500KB`, `2MB`, `1GiB`.
pub(crate) fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("19000"), Some(19_000));
        assert_eq!(parse_byte_size("64KiB"), Some(65_536));
        assert_eq!(parse_byte_size("1 MiB"), Some(1 << 20));
        assert_eq!(parse_byte_size("500KB"), Some(500_000));
        assert_eq!(parse_byte_size("12 parsecs"), None);
        assert_eq!(parse_byte_size("99999999999999999999GiB"), None);
    }
}
