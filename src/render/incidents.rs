//! The incident parts of a message: why a rule is shown in full (`new`, `repeat`,
//! `escalated`, with its start and a sparkline), one line per ongoing incident and one per
//! resolved one, the heading's totals of a message that only resolves incidents, and the
//! event-time range when it differs from the window (a backlog). Pure, like all of `render`;
//! rule names and `group_by` values are escaped here like any other untrusted text.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::escape::{Flavor, escape};
use super::number::thousands;
use super::{MAX_GROUP_CHARS, MAX_NAME_CHARS, plural};
use crate::incident::{IncidentLine, Reason};
use crate::summary::Summary;

/// Ongoing or resolved lines shown per message; the rest are counted on one line.
const LINES_SHOWN: usize = 20;

/// The block characters of a sparkline, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Per-window counts as a sparkline, scaled to the largest (a zero is the lowest bar).
pub fn sparkline(counts: &[u64]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|&count| {
            // Rounded to 1..=7 for non-zero counts, so that any hit shows above a quiet window.
            let scaled = (count.saturating_mul(14).saturating_add(max)) / max.saturating_mul(2);
            let level = if count == 0 {
                0
            } else {
                scaled.clamp(1, 7) as usize
            };
            BARS[level]
        })
        .collect()
}

/// What follows a rule's count when the incident stage says why it is shown:
/// ` · new` or ` · repeat · since 10:02 (47 min) · total 5,830 · ▁▂▅▇█`.
pub(super) fn note(summary: &Summary, rule: &str, tz: &TimeZone) -> String {
    let Some(note) = summary.incidents.notes.iter().find(|n| n.rule == rule) else {
        return String::new();
    };
    let reason = match note.reason {
        Reason::New => return " · new".to_owned(),
        Reason::Escalated => "escalated",
        Reason::Repeat => "still going",
    };
    format!(
        " · {reason} · since {} ({}) · total {} · {}",
        clock(note.since, summary.end, tz),
        span(note.since, summary.end),
        thousands(note.total),
        sparkline(&note.recent)
    )
}

/// The ongoing and resolved lines, as blocks of the message; empty when there are none.
pub(super) fn blocks(summary: &Summary, tz: &TimeZone, flavor: Flavor) -> Vec<String> {
    let report = &summary.incidents;
    let mut blocks = Vec::new();
    for (title, lines, is_resolved) in [
        ("ONGOING", &report.ongoing, false),
        ("RESOLVED", &report.resolved, true),
    ] {
        if lines.is_empty() {
            continue;
        }
        let texts = lines.iter().take(LINES_SHOWN);
        let texts = texts.map(|line| line_text(line, summary.end, tz, flavor, is_resolved));
        let mut block = titled(title, texts, flavor);
        if let Some(rest) = lines.get(LINES_SHOWN..).filter(|rest| !rest.is_empty()) {
            let count: u64 = rest.iter().map(|l| l.count).sum();
            block.push(format!(
                "- +{} more, {}",
                rest.len(),
                plural(count, "match")
            ));
        }
        blocks.push(block.join("\n"));
    }
    blocks
}

/// A block's title (bold in markdown) and its lines as a list.
pub(super) fn titled(
    title: &str,
    texts: impl Iterator<Item = String>,
    flavor: Flavor,
) -> Vec<String> {
    let mut block = vec![match flavor {
        Flavor::Markdown => format!("**{title}**"),
        Flavor::Text => title.to_owned(),
    }];
    block.extend(texts.map(|text| match flavor {
        Flavor::Markdown => format!("- {text}"),
        Flavor::Text => format!("  - {text}"),
    }));
    block
}

/// The heading's totals of a message with no rule in full: `2 resolved, 1 ongoing`.
pub(super) fn totals(summary: &Summary) -> Option<(String, String)> {
    let report = &summary.incidents;
    if !summary.rules.is_empty() || report.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if !report.resolved.is_empty() {
        what.push(format!("{} resolved", report.resolved.len()));
    }
    if !report.ongoing.is_empty() {
        what.push(format!("{} ongoing", report.ongoing.len()));
    }
    Some((what.join(", "), plural(report.line_matches(), "match")))
}

/// ` · seen 2026-11-26 09:58:01–10:40:12`, when the hits' own times reach outside the window
/// (a backlog read late, or `scan` of old files).
pub(super) fn seen(summary: &Summary, tz: &TimeZone) -> String {
    let first = summary.rules.iter().map(|r| r.first).min();
    let last = summary.rules.iter().map(|r| r.last).max();
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    if first >= summary.start && last <= summary.end {
        return String::new();
    }
    let first = first.to_zoned_datetime(tz.clone());
    let last = last.to_zoned_datetime(tz.clone());
    let last_format = if first.date() == last.date() {
        "%H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    format!(
        " · seen {}–{}",
        first.strftime("%Y-%m-%d %H:%M:%S"),
        last.strftime(last_format)
    )
}

/// `ERROR · db-timeout peer=10.0.0.5 ×120 · since 10:02 (47 min) · total 5,830 · ▁▂▅▇█`, or
/// for a resolved one `... resolved 10:49 · lasted 47 min · total 5,830 · ▅▂▁`.
fn line_text(
    line: &IncidentLine,
    now: Timestamp,
    tz: &TimeZone,
    flavor: Flavor,
    is_resolved: bool,
) -> String {
    let mut text = format!(
        "{} · {}",
        line.severity.as_str().to_uppercase(),
        escape(&line.rule, MAX_NAME_CHARS, flavor)
    );
    if !line.group.is_empty() {
        let label: Vec<String> = line.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push(' ');
        text.push_str(&escape(&label.join(" "), MAX_GROUP_CHARS, flavor));
    }
    if line.count > 0 {
        text.push_str(&format!(" ×{}", line.count));
    }
    if is_resolved {
        text.push_str(&format!(
            " · resolved {} · lasted {}",
            clock(line.last_seen, now, tz),
            span(line.since, line.last_seen)
        ));
    } else {
        text.push_str(&format!(
            " · since {} ({})",
            clock(line.since, now, tz),
            span(line.since, now)
        ));
    }
    text.push_str(&format!(
        " · total {} · {}",
        thousands(line.total),
        sparkline(&line.recent)
    ));
    text
}

/// `10:02`, or `11-26 10:02` when not on the day of `now`.
pub(super) fn clock(at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    let zoned = at.to_zoned_datetime(tz.clone());
    if zoned.date() == now.to_zoned_datetime(tz.clone()).date() {
        zoned.strftime("%H:%M").to_string()
    } else {
        zoned.strftime("%m-%d %H:%M").to_string()
    }
}

/// `47 min`, `2 h 5 min`, `3 d 4 h`, `< 1 min`.
pub(super) fn span(from: Timestamp, to: Timestamp) -> String {
    let minutes = to.duration_since(from).max(SignedDuration::ZERO).as_secs() / 60;
    match minutes {
        0 => "< 1 min".to_owned(),
        1..60 => format!("{minutes} min"),
        60..1440 if minutes % 60 == 0 => format!("{} h", minutes / 60),
        60..1440 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} d {} h", minutes / 1440, minutes % 1440 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest_and_keeps_quiet_windows_lowest() {
        assert_eq!(sparkline(&[0, 1, 2, 5, 8, 8, 7, 5, 2, 0]), "▁▂▃▅██▇▅▃▁");
        assert_eq!(sparkline(&[3, 3, 3]), "███");
        assert_eq!(sparkline(&[]), "");
    }

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_795_831_200 + minute * 60).unwrap()
    }

    fn line(rule: &str, count: u64, since: i64, last: i64) -> IncidentLine {
        IncidentLine {
            rule: rule.into(),
            severity: crate::rules::Severity::Error,
            group: vec![("peer".into(), "10.0.0.5".into())],
            count,
            since: at(since),
            last_seen: at(last),
            total: 5830,
            recent: vec![1, 2, 5, 7, 8, 7, 5, 2],
        }
    }

    #[test]
    fn ongoing_and_resolved_lines_read_like_the_issue_says() {
        let summary = Summary {
            host: "app-01".into(),
            start: at(47),
            end: at(47),
            rules: Vec::new(),
            below_threshold: Vec::new(),
            excluded: 0,
            windows: 0,
            skewed: 0,
            incidents: crate::incident::IncidentReport {
                notes: Vec::new(),
                ongoing: vec![line("db-timeout", 120, 2, 47)],
                resolved: vec![line("db-@all", 0, 2, 49)],
                absent: Vec::new(),
                ..Default::default()
            },
        };
        let tz = TimeZone::fixed(jiff::tz::offset(8));
        let blocks = blocks(&summary, &tz, Flavor::Markdown);
        assert_eq!(
            blocks.join("\n\n"),
            "**ONGOING**\n\
             - ERROR · db-timeout peer=10.0.0.5 ×120 · since 10:02 (45 min) · total 5,830 · ▂▃▅▇█▇▅▃\n\n\
             **RESOLVED**\n\
             - ERROR · db-＠all peer=10.0.0.5 · resolved 10:49 · lasted 47 min · total 5,830 · ▂▃▅▇█▇▅▃"
        );
        assert_eq!(
            totals(&summary),
            Some(("1 resolved, 1 ongoing".into(), "120 matches".into()))
        );
    }

    #[test]
    fn thousands_and_spans() {
        assert_eq!(thousands(5830), "5,830");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        let t = |m: i64| Timestamp::from_second(1_795_831_200 + m * 60).unwrap();
        assert_eq!(span(t(0), t(47)), "47 min");
        assert_eq!(span(t(0), t(125)), "2 h 5 min");
        assert_eq!(span(t(0), t(60 * 24 * 3 + 240)), "3 d 4 h");
        assert_eq!(span(t(5), t(0)), "< 1 min");
    }
}
