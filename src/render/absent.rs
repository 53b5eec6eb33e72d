//! The absence parts of a message (`summary.incidents.absent`): what went missing, what still
//! is, what came back, each on one line a person on call understands on a phone:
//! `ERROR · nightly-sync: no `finished` for 15 min · last seen 02:14`. Pure; rule names,
//! patterns, group values and paths are escaped like any other text.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::escape::{Flavor, escape};
use super::incidents::{clock, span, titled};
use super::{MAX_FILE_CHARS, MAX_GROUP_CHARS, MAX_NAME_CHARS};
use crate::absence::{AbsentKind, AbsentLine, AbsentState};
use crate::summary::Summary;

/// Absent lines shown per block; the rest are counted on one line.
const LINES_SHOWN: usize = 20;

/// Longest pattern shown, in characters.
const MAX_WHAT_CHARS: usize = 60;

/// The ABSENT, STILL ABSENT and BACK blocks; empty when there are none.
pub(super) fn blocks(summary: &Summary, tz: &TimeZone, flavor: Flavor) -> Vec<String> {
    let mut blocks = Vec::new();
    for (title, state) in [
        ("ABSENT", AbsentState::New),
        ("STILL ABSENT", AbsentState::Ongoing),
        ("BACK", AbsentState::Back),
    ] {
        let lines: Vec<&AbsentLine> = summary
            .incidents
            .absent
            .iter()
            .filter(|l| l.state == state)
            .collect();
        if lines.is_empty() {
            continue;
        }
        let texts = lines.iter().take(LINES_SHOWN);
        let texts = texts.map(|line| line_text(line, summary.end, tz, flavor));
        let mut block = titled(title, texts, flavor);
        if lines.len() > LINES_SHOWN {
            block.push(format!("- +{} more", lines.len() - LINES_SHOWN));
        }
        blocks.push(block.join("\n"));
    }
    blocks
}

/// The headline of a message whose first news is an absence:
/// `CRITICAL nightly-sync absent 15 min` (plain text), with how many more there are.
pub(super) fn headline(summary: &Summary, flavor: Flavor) -> Option<String> {
    let absent = &summary.incidents.absent;
    let news: Vec<&AbsentLine> = absent
        .iter()
        .filter(|l| l.state != AbsentState::Ongoing)
        .collect();
    let top = news
        .iter()
        .filter(|l| l.state == AbsentState::New)
        .max_by_key(|l| l.severity)
        .or(news.first())?;
    let name = subject(top, flavor);
    let what = match top.state {
        AbsentState::Back => format!("{name} back"),
        _ => format!(
            "{} {name} {}",
            top.severity.as_str().to_uppercase(),
            match top.kind {
                AbsentKind::Line { .. } => "absent",
                AbsentKind::Stalled { .. } => "stalled",
                AbsentKind::NoFile { .. } => "has no file",
            }
        ),
    };
    Some(match news.len() - 1 {
        0 => what,
        n => format!("{what} (+{n} more)"),
    })
}

/// `nightly-sync`, `heartbeat host=db-2`, or `source app`.
fn subject(line: &AbsentLine, flavor: Flavor) -> String {
    let mut name = escape(&line.rule, MAX_NAME_CHARS, flavor);
    if line.is_source() {
        name = format!("source {name}");
    }
    if !line.group.is_empty() {
        let label: Vec<String> = line.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        name.push(' ');
        name.push_str(&escape(&label.join(" "), MAX_GROUP_CHARS, flavor));
    }
    name
}

fn line_text(line: &AbsentLine, now: Timestamp, tz: &TimeZone, flavor: Flavor) -> String {
    let subject = subject(line, flavor);
    let severity = line.severity.as_str().to_uppercase();
    let last = |verb: &str| match line.last_seen {
        Some(at) => format!("{verb} {}", clock(at, now, tz)),
        None => match line.watched_since {
            Some(since) => format!("never seen (watched since {})", clock(since, now, tz)),
            None => "never seen".to_owned(),
        },
    };
    let minutes = |secs: u64| crate::config::format_duration(std::time::Duration::from_secs(secs));
    match (&line.kind, line.state) {
        (AbsentKind::Line { what, .. }, AbsentState::Back) => format!(
            "{subject}: `{}` is back · absent {}",
            escape(what, MAX_WHAT_CHARS, flavor),
            span(line.since, line.back.unwrap_or(now))
        ),
        (AbsentKind::Stalled { .. } | AbsentKind::NoFile { .. }, AbsentState::Back) => format!(
            "{subject}: logging again · stalled {}",
            span(line.since, line.back.unwrap_or(now))
        ),
        (
            AbsentKind::Line {
                what,
                window_secs,
                min_count,
                seen,
            },
            state,
        ) => {
            let what = escape(what, MAX_WHAT_CHARS, flavor);
            let missing = if *min_count <= 1 || *seen == 0 {
                format!("no `{what}`")
            } else {
                format!("only {seen} of {min_count} `{what}`")
            };
            let mut text = format!(
                "{severity} · {subject}: {missing} for {}",
                minutes(*window_secs)
            );
            if state == AbsentState::Ongoing {
                text = format!(
                    "{severity} · {subject}: {missing} · absent since {} ({})",
                    clock(line.since, now, tz),
                    span(line.since, now)
                );
            }
            format!("{text} · {}", last("last seen"))
        }
        (AbsentKind::Stalled { file, after_secs }, _) => {
            let file = file.as_deref().map_or_else(
                || "no file".to_owned(),
                |f| format!("`{}`", escape(f, MAX_FILE_CHARS, flavor)),
            );
            format!(
                "{severity} · {subject}: {file} has not grown for {} · {}",
                minutes(*after_secs),
                last("last grew")
            )
        }
        (AbsentKind::NoFile { paths, after_secs }, _) => {
            let globs: Vec<String> = paths
                .iter()
                .map(|p| format!("`{}`", escape(p, MAX_FILE_CHARS, flavor)))
                .collect();
            format!(
                "{severity} · {subject}: no file matches {} (for {}) · {}",
                globs.join(", "),
                minutes(*after_secs),
                last("last grew")
            )
        }
    }
}
