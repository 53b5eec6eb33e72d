use super::*;

fn shanghai() -> TimeZone {
    TimeZone::get("Asia/Shanghai").expect("the test host has tzdata")
}

/// 2026-11-28T02:00:00Z = 10:00 in Shanghai.
fn now() -> Timestamp {
    "2026-11-28T02:00:00Z".parse().unwrap()
}

#[track_caller]
fn check(preset: &str, line: &str, expected: Option<&str>) {
    let spec = TimestampSpec::preset(preset, shanghai()).unwrap();
    let parsed = spec.parse(line.as_bytes(), now()).map(|t| t.to_string());
    assert_eq!(parsed.as_deref(), expected, "{preset}: {line}");
}

#[test]
fn presets_read_their_layouts() {
    check(
        "iso8601",
        r#"{"time":"2026-11-28T09:58:01.250+08:00","level":"error"}"#,
        Some("2026-11-28T01:58:01.25Z"),
    );
    check(
        "iso8601",
        "2026-11-28T01:58:01Z oops",
        Some("2026-11-28T01:58:01Z"),
    );
    check(
        "iso8601",
        "2026-11-28 09:58:01+0800 oops",
        Some("2026-11-28T01:58:01Z"),
    );
    check(
        "iso8601",
        "2026-11-28 09:58:01 zone-less, so Shanghai",
        Some("2026-11-28T01:58:01Z"),
    );
    check(
        "nginx_access",
        r#"10.0.0.1 - - [28/Nov/2026:09:58:01 +0800] "GET /api HTTP/1.1" 502 157"#,
        Some("2026-11-28T01:58:01Z"),
    );
    check(
        "nginx_error",
        "2026/11/28 09:58:01 [error] 123#0: *1 upstream timed out",
        Some("2026-11-28T01:58:01Z"),
    );
    check(
        "syslog",
        "Nov 28 09:58:01 app-01 sshd[42]: error: x",
        Some("2026-11-28T01:58:01Z"),
    );
    check(
        "syslog",
        "Nov  8 09:58:01 app-01 kernel: oops",
        Some("2026-11-08T01:58:01Z"),
    );
    check(
        "jul",
        "Nov 28, 2026 9:58:01 AM com.example.Order place",
        Some("2026-11-28T01:58:01Z"),
    );
    check(
        "log4j",
        "2026-11-28 09:58:01,114 ERROR [main] c.a.OrderService - boom",
        Some("2026-11-28T01:58:01.114Z"),
    );
    check(
        "postgres",
        "2026-11-28 01:58:01.114 UTC [1234] ERROR:  deadlock detected",
        Some("2026-11-28T01:58:01.114Z"),
    );
    check(
        "postgres",
        "2026-11-28 09:58:01.114 CST [1234] ERROR:  deadlock detected",
        Some("2026-11-28T01:58:01.114Z"),
    );
    check(
        "python_logging",
        "2026-11-28 09:58:01,114 - app - ERROR - boom",
        Some("2026-11-28T01:58:01.114Z"),
    );
    check(
        "epoch_ms",
        r#"{"ts":1795831081114,"msg":"boom"}"#,
        Some("2026-11-28T01:58:01.114Z"),
    );
}

#[test]
fn lines_without_a_time_have_none() {
    check("iso8601", "no time here", None);
    check(
        "nginx_error",
        "2026/13/45 99:99:99 [error] nonsense date",
        None,
    );
    check("epoch_ms", "order 17958310811145 is 14 digits", None);
}

#[test]
fn syslog_in_january_puts_a_december_line_in_the_old_year() {
    let spec = TimestampSpec::preset("syslog", TimeZone::UTC).unwrap();
    let january: Timestamp = "2027-01-01T00:05:00Z".parse().unwrap();
    let at = spec.parse(b"Dec 31 23:59:00 host x: y", january).unwrap();
    assert_eq!(at.to_string(), "2026-12-31T23:59:00Z");
}

#[test]
fn a_custom_pattern_and_format() {
    let spec =
        TimestampSpec::custom(r"^\[(?P<ts>[^\]]+)\]", "%d.%m.%Y %H:%M:%S", TimeZone::UTC).unwrap();
    let at = spec.parse(b"[28.11.2026 01:58:01] boom", now()).unwrap();
    assert_eq!(at.to_string(), "2026-11-28T01:58:01Z");
    assert_eq!(
        TimestampSpec::custom(r"^\d+", "epoch", TimeZone::UTC).unwrap_err(),
        SpecError::NoTsCapture
    );
    assert_eq!(
        TimestampSpec::preset("apache", TimeZone::UTC).unwrap_err(),
        SpecError::UnknownPreset("apache".into())
    );
}

#[test]
fn future_times_beyond_max_skew_are_skewed_past_ones_are_kept() {
    let spec = TimestampSpec::preset("iso8601", TimeZone::UTC).unwrap();
    let stamp = |line: &str| spec.stamp(line.as_bytes(), now());
    assert_eq!(
        stamp("2026-11-28T02:09:00Z a"),
        Stamp::Event("2026-11-28T02:09:00Z".parse().unwrap())
    );
    assert_eq!(stamp("2026-11-28T02:11:00Z a"), Stamp::Skewed);
    assert_eq!(
        stamp("2026-11-26T02:00:00Z two days old"),
        Stamp::Event("2026-11-26T02:00:00Z".parse().unwrap())
    );
    assert_eq!(stamp("no time"), Stamp::Missing);
    assert_eq!(event_or(Stamp::Skewed, now()), now());
}

/// Specs of every preset in UTC, compiled once (regex compilation dominates otherwise).
static UTC_PRESETS: std::sync::LazyLock<Vec<(&str, TimestampSpec)>> =
    std::sync::LazyLock::new(|| {
        PRESETS
            .iter()
            .map(|(name, _, _)| (*name, TimestampSpec::preset(name, TimeZone::UTC).unwrap()))
            .collect()
    });

fn utc_preset(name: &str) -> &'static TimestampSpec {
    &UTC_PRESETS.iter().find(|(n, _)| *n == name).unwrap().1
}

proptest::proptest! {
    /// Whatever the line, parsing never panics, and a time formatted by the preset's own layout
    /// reads back exactly (to the second).
    #[test]
    fn parsing_never_panics_and_round_trips(line in ".{0,80}", seconds in 1_500_000_000i64..2_000_000_000) {
        let at = Timestamp::from_second(seconds).unwrap();
        for (_, spec) in UTC_PRESETS.iter() {
            let _ = spec.parse(line.as_bytes(), now());
        }
        let zoned = at.to_zoned_datetime(TimeZone::UTC);
        let written = [
            ("iso8601", zoned.strftime("%Y-%m-%dT%H:%M:%S%:z x").to_string()),
            ("nginx_access", zoned.strftime("1.2.3.4 - - [%d/%b/%Y:%H:%M:%S %z] \"GET").to_string()),
            ("log4j", zoned.strftime("%Y-%m-%d %H:%M:%S,000 ERROR").to_string()),
            ("jul", zoned.strftime("%b %-d, %Y %-I:%M:%S %p com.x").to_string()),
            ("epoch_ms", format!("ts={} x", seconds * 1000)),
        ];
        for (name, line) in written {
            let spec = utc_preset(name);
            proptest::prop_assert_eq!(spec.parse(line.as_bytes(), at), Some(at), "{} {}", name, line);
        }
    }
}

#[test]
fn an_aggregated_window_carries_the_hits_own_times_and_counts_the_skewed() {
    use crate::window::tests::{rules, t};
    use crate::window::{Aggregator, HitRef, WindowOptions};
    let rules = rules(&[(
        "oom",
        "OutOfMemory",
        crate::rules::Severity::Critical,
        1,
        &[],
    )]);
    let mut aggregator =
        Aggregator::new(rules, WindowOptions::new(Duration::from_secs(60), "app-01"));
    let spec = utc_preset("iso8601");
    let read = t(0);
    let two_days_ago = "2026-11-26T01:58:01Z";
    for line in [
        format!("{two_days_ago} OutOfMemory"),
        "2026-11-26T02:30:00Z OutOfMemory".to_owned(),
        "2030-01-01T00:00:00Z OutOfMemory (a clock far ahead)".to_owned(),
    ] {
        let hit = HitRef {
            rule: crate::rules::RuleId(0),
            line: line.as_bytes(),
            groups: &[],
            file: "/x.log",
        };
        aggregator.observe_stamped(read, Some(spec), hit);
    }
    let summary = aggregator.poll(t(60)).unwrap();
    let rule = &summary.rules[0];
    assert_eq!(rule.first.to_string(), two_days_ago);
    assert_eq!(rule.last, read, "the skewed line keeps its read time");
    assert_eq!(
        (summary.start, summary.end),
        (read, t(60)),
        "the window is on the clock"
    );
    assert_eq!(summary.skewed, 1);
}
