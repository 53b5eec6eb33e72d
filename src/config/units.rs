//! The units a config is written in: durations (`90s`, `1h30m`) and byte sizes (`64KiB`),
//! parsed from text alone (the readers in `walk` add positions and wording).

use std::time::Duration;

use jiff::{Span, SpanRelativeTo};

/// A mebibyte, in bytes.
pub(crate) const MIB: u64 = 1 << 20;

/// Parses a duration: numbers with units, largest first, like `500ms`, `90s`, `15m`, `1h30m`,
/// `1h 30m`, `1d` or `2w` (jiff's "friendly" format, which also reads ISO 8601's `PT5M`). Days
/// are 24 hours; months and years, which have no fixed length, are refused.
///
/// # Errors
///
/// Why the text is not a duration, naming the part at fault.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let span: Span = text.parse().map_err(|err| why_not(text, &err))?;
    if span.is_negative() {
        return Err("a duration cannot be negative".into());
    }
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(
            "months and years have no fixed length: write days or weeks, like `30d`".into(),
        );
    }
    span.to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|err| err.to_string())
        .and_then(|d| Duration::try_from(d).map_err(|err| err.to_string()))
}

/// `1m 30s`, `1s 500ms`, `24h`: the way durations are written in a config, for messages.
pub fn format_duration(duration: Duration) -> String {
    match jiff::SignedDuration::try_from(duration) {
        Ok(duration) => format!("{duration:#}"),
        Err(_) => format!("{}s", duration.as_secs()),
    }
}

/// What is wrong with `text`, which jiff refused with `err`: the first number without a unit,
/// unit jiff does not know or word where a number belongs; jiff's own words otherwise.
fn why_not(text: &str, err: &jiff::Error) -> String {
    if text.is_empty() {
        return "it is empty".into();
    }
    let mut rest = text.trim_start_matches(['+', '-']);
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return format!("expected a number at `{rest}`");
        }
        let after = rest[digits..].trim_start();
        let unit_len = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        if unit.is_empty() {
            return format!("`{}` has no unit", &rest[..digits]);
        }
        if format!("1{unit}").parse::<Span>().is_err() {
            return format!("unknown unit `{unit}`: use `ms`, `s`, `m`, `h`, `d` or `w`");
        }
        rest = &after[unit_len..];
    }
    let message = err.to_string();
    match message.split_once(" format: ") {
        Some((_, reason)) => reason.to_owned(),
        None => message,
    }
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

/// Parses `+08:00`, `-05:30`, `+8`.
pub(crate) fn fixed_offset(text: &str) -> Option<jiff::tz::Offset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = text[1..].split_once(':').unwrap_or((&text[1..], "0"));
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_users_write() {
        let secs = |text: &str| parse_duration(text).map(|d| d.as_secs_f64());
        assert_eq!(secs("90s"), Ok(90.0));
        assert_eq!(secs("15m"), Ok(900.0));
        assert_eq!(secs("1h30m"), Ok(5400.0));
        assert_eq!(secs("1h 30m"), Ok(5400.0));
        assert_eq!(secs("1d"), Ok(86_400.0));
        assert_eq!(secs("7d"), Ok(604_800.0));
        assert_eq!(secs("2w"), Ok(1_209_600.0));
        assert_eq!(secs("1500ms"), Ok(1.5));
        assert_eq!(secs("0s"), Ok(0.0));
        assert_eq!(secs(" 10 sec "), Ok(10.0));
    }

    #[test]
    fn errors_name_the_part_at_fault() {
        let err = |text: &str| parse_duration(text).unwrap_err();
        assert_eq!(err(""), "it is empty");
        assert_eq!(err("soon"), "expected a number at `soon`");
        assert_eq!(err("10 sec later"), "expected a number at `later`");
        assert_eq!(err("5"), "`5` has no unit");
        assert_eq!(
            err("5x"),
            "unknown unit `x`: use `ms`, `s`, `m`, `h`, `d` or `w`"
        );
        assert_eq!(
            err("2M"),
            "unknown unit `M`: use `ms`, `s`, `m`, `h`, `d` or `w`"
        );
        assert_eq!(err("-5s"), "a duration cannot be negative");
        assert_eq!(
            err("1month"),
            "months and years have no fixed length: write days or weeks, like `30d`"
        );
        assert!(
            err("1m 1h").contains("largest to smallest"),
            "{}",
            err("1m 1h")
        );
    }

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
