//! `event_time`: when a log line says it happened, parsed from the line itself. Pure: no IO,
//! no clock reads (`now` is passed in, for the year of syslog stamps and the skew check).
//!
//! Windows still close on the agent's clock (an alert must not wait for a log that lies about
//! its time), but summaries say when things *happened*: `first_seen`/`last_seen`, `scan` over
//! old files and `logding test` use these times. A source's `timestamp:` is either a preset
//! name ([`PRESETS`]) or `{pattern, format, timezone, max_skew}`: `pattern` is a regex with a
//! capture named `ts` (and optionally `tz`, a zone written next to it), `format` a strftime
//! string (jiff's `strtime`) or one of `iso8601`, `epoch`, `epoch_ms`.
//!
//! Only the lines of hits are parsed (a few per window), never every line, so the regex and
//! jiff's parser are off the hot path. A line whose time cannot be read falls back to the time
//! it was read; so does a line stamped more than `max_skew` in the future (a wrong clock or a
//! wrong `timezone`), which is counted as skewed. Times in the past are kept: a backlog read
//! after a restart or on a first run with `start_at: beginning` is reported with its own range.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use regex::bytes::Regex;

/// Default of `timestamp.max_skew`.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(600);

/// Longest `ts` capture looked at, in bytes (a runaway capture is not a time).
const MAX_STAMP_BYTES: usize = 64;

/// Built-in timestamp layouts: (name, pattern, format).
pub const PRESETS: &[(&str, &str, &str)] = &[
    (
        "iso8601",
        r"(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)",
        "iso8601",
    ),
    (
        "nginx_access",
        r"\[(?P<ts>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]",
        "%d/%b/%Y:%H:%M:%S %z",
    ),
    (
        "nginx_error",
        r"^(?P<ts>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})",
        "%Y/%m/%d %H:%M:%S",
    ),
    (
        "syslog",
        r"^(?:<\d+>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})",
        "%b %e %H:%M:%S",
    ),
    (
        "jul",
        r"^(?P<ts>[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M)",
        "%b %d, %Y %I:%M:%S %p",
    ),
    (
        "log4j",
        r"^\[?(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)",
        "iso8601",
    ),
    (
        "postgres",
        r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(?: (?P<tz>[A-Z]{2,5}|[+-]\d{2}(?::?\d{2})?))?",
        "iso8601",
    ),
    (
        "python_logging",
        r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:,\d{3})?)",
        "iso8601",
    ),
    (
        "epoch_ms",
        r"(?:^|[^\d.])(?P<ts>1\d{12})(?:[^\d.]|$)",
        "epoch_ms",
    ),
];

/// How the `ts` capture is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// ISO 8601 / RFC 3339, `T` or space, `.` or `,` before the fraction, offset optional.
    Iso8601,
    /// Seconds since the Unix epoch (a fraction allowed).
    Epoch,
    /// Milliseconds since the Unix epoch.
    EpochMs,
    /// A strftime format (jiff `strtime`). Without a year (`syslog`), the year that puts the
    /// time closest to `now` is used.
    Strftime(String),
}

impl Format {
    /// The format a `format:` string names.
    pub fn named(format: &str) -> Format {
        match format {
            "iso8601" => Format::Iso8601,
            "epoch" => Format::Epoch,
            "epoch_ms" => Format::EpochMs,
            other => Format::Strftime(other.to_owned()),
        }
    }
}

/// A source's compiled `timestamp:` setting.
#[derive(Clone, Debug)]
pub struct TimestampSpec {
    /// Regex with a `ts` capture (and maybe `tz`).
    pub pattern: Regex,
    /// How `ts` is read.
    pub format: Format,
    /// Zone of times written without an offset.
    pub timezone: TimeZone,
    /// Lines stamped further than this in the future fall back to the read time.
    pub max_skew: Duration,
}

/// Why a spec could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// Not a preset name.
    #[error("unknown timestamp preset `{0}`")]
    UnknownPreset(String),
    /// The regex does not compile.
    #[error("invalid timestamp pattern: {0}")]
    Pattern(String),
    /// The regex has no capture named `ts`.
    #[error("the timestamp pattern has no capture named `ts`")]
    NoTsCapture,
    /// Unknown IANA zone.
    #[error("unknown time zone `{0}`")]
    TimeZone(String),
}

/// What one hit line's time turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// The line's own time.
    Event(Timestamp),
    /// The line's time is more than `max_skew` ahead of the clock: not trusted.
    Skewed,
    /// The line has no readable time.
    Missing,
}

impl TimestampSpec {
    /// A spec from a preset name; times without an offset are in `timezone`.
    ///
    /// # Errors
    ///
    /// An unknown preset.
    pub fn preset(name: &str, timezone: TimeZone) -> Result<TimestampSpec, SpecError> {
        let (_, pattern, format) = PRESETS
            .iter()
            .find(|(preset, _, _)| *preset == name)
            .ok_or_else(|| SpecError::UnknownPreset(name.to_owned()))?;
        TimestampSpec::custom(pattern, format, timezone)
    }

    /// A spec from a pattern and a format.
    ///
    /// # Errors
    ///
    /// A regex that does not compile or has no `ts` capture.
    pub fn custom(
        pattern: &str,
        format: &str,
        timezone: TimeZone,
    ) -> Result<TimestampSpec, SpecError> {
        let pattern = Regex::new(pattern).map_err(|err| SpecError::Pattern(err.to_string()))?;
        if !pattern.capture_names().any(|name| name == Some("ts")) {
            return Err(SpecError::NoTsCapture);
        }
        Ok(TimestampSpec {
            pattern,
            format: Format::named(format),
            timezone,
            max_skew: DEFAULT_MAX_SKEW,
        })
    }

    /// Reads the time of `line` (the first line of an event is enough) and checks it against
    /// the clock (`now`).
    pub fn stamp(&self, line: &[u8], now: Timestamp) -> Stamp {
        match self.parse(line, now) {
            None => Stamp::Missing,
            Some(at) if at.duration_since(now) > signed(self.max_skew) => Stamp::Skewed,
            Some(at) => Stamp::Event(at),
        }
    }

    /// The time written in `line`, if it has one this spec can read.
    pub fn parse(&self, line: &[u8], now: Timestamp) -> Option<Timestamp> {
        let captures = self.pattern.captures(line)?;
        let ts = captures.name("ts")?.as_bytes();
        if ts.len() > MAX_STAMP_BYTES {
            return None;
        }
        let ts = std::str::from_utf8(ts).ok()?;
        let zone = match captures.name("tz") {
            Some(tz) => zone_named(std::str::from_utf8(tz.as_bytes()).ok()?, &self.timezone),
            None => self.timezone.clone(),
        };
        match &self.format {
            Format::Iso8601 => parse_iso8601(ts, &zone),
            Format::Epoch => parse_epoch(ts),
            Format::EpochMs => Timestamp::from_millisecond(ts.parse().ok()?).ok(),
            Format::Strftime(format) => parse_strftime(format, ts, &zone, now),
        }
    }
}

/// Picks the event time of a hit, or the read time when it has none (or a skewed one).
pub fn event_or(stamp: Stamp, read: Timestamp) -> Timestamp {
    match stamp {
        Stamp::Event(at) => at,
        Stamp::Skewed | Stamp::Missing => read,
    }
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

/// A zone written next to a time: `UTC`/`GMT`/`Z`, a numeric offset, or (an abbreviation such
/// as `CST`, which is ambiguous) the configured zone.
fn zone_named(name: &str, configured: &TimeZone) -> TimeZone {
    match name {
        "UTC" | "GMT" | "Z" => TimeZone::UTC,
        _ => parse_offset(name).map_or_else(|| configured.clone(), TimeZone::fixed),
    }
}

/// `+08`, `+0800`, `+08:00`, `-05`.
fn parse_offset(text: &str) -> Option<Offset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits.get(2..).map_or(Some(0), |m| m.parse().ok())?;
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

fn parse_iso8601(ts: &str, zone: &TimeZone) -> Option<Timestamp> {
    let ts = ts.replacen(',', ".", 1);
    if let Ok(at) = ts.parse::<Timestamp>() {
        return Some(at);
    }
    let (civil, offset) = split_offset(&ts);
    let datetime: DateTime = civil.parse().ok()?;
    match offset {
        Some(offset) => offset.to_timestamp(datetime).ok(),
        None => zone.to_ambiguous_timestamp(datetime).compatible().ok(),
    }
}

/// Splits a `+0800`-style offset (which RFC 3339 does not allow) off the end.
fn split_offset(ts: &str) -> (&str, Option<Offset>) {
    if ts.len() > 5 {
        let (civil, tail) = ts.split_at(ts.len() - 5);
        if let Some(offset) = parse_offset(tail).filter(|_| !tail.contains(':')) {
            return (civil, Some(offset));
        }
    }
    (ts, None)
}

fn parse_epoch(ts: &str) -> Option<Timestamp> {
    let seconds: f64 = ts.parse().ok()?;
    Timestamp::from_duration(SignedDuration::try_from_secs_f64(seconds).ok()?).ok()
}

fn parse_strftime(format: &str, ts: &str, zone: &TimeZone, now: Timestamp) -> Option<Timestamp> {
    let mut parsed = jiff::fmt::strtime::parse(format, ts).ok()?;
    if let Ok(at) = parsed.to_timestamp() {
        return Some(at);
    }
    if parsed.year().is_some() {
        let datetime = parsed.to_datetime().ok()?;
        return zone.to_ambiguous_timestamp(datetime).compatible().ok();
    }
    // No year (syslog): the year that puts the time nearest to now, so that a December line
    // read on the 1st of January lands in the old year.
    let this_year = now.to_zoned_datetime(zone.clone()).year();
    let mut best: Option<Timestamp> = None;
    for year in [this_year - 1, this_year, this_year + 1] {
        parsed.set_year(Some(year)).ok()?;
        let Ok(datetime) = parsed.to_datetime() else {
            continue;
        };
        let Ok(at) = zone.to_ambiguous_timestamp(datetime).compatible() else {
            continue;
        };
        let distance = |t: Timestamp| t.duration_since(now).abs();
        if best.is_none_or(|b| distance(at) < distance(b)) {
            best = Some(at);
        }
    }
    best
}

#[cfg(test)]
mod tests;
