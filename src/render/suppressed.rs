//! What a message says about suppressed hits: the footer's `silenced: db-timeout ×120 (SIL-3,
//! until 12:00)`, `muted: ... (nights)`, `deferred: ... (nights)`, and, under an inhibiting
//! rule's section, `↳ also: 4 rules, 310 matches, inhibited`. An inhibiting rule not shown in
//! full in this message has its fold in the footer instead (`inhibited by db-down: ...`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::escape::escape;
use super::{Doc, plural};
use crate::suppress::{SuppressedLine, Why};

/// At most this many rules are named per kind in the footer; the rest are counted.
const NAMED: usize = 5;

impl Doc<'_> {
    /// `also: 4 rules, 310 matches, inhibited` when `rule` inhibited others.
    pub(super) fn inhibited_line(&self, rule: &str) -> Option<String> {
        let (rules, count) = self.summary.incidents.suppressed.inhibited_by(rule)?;
        let what = match rules.as_slice() {
            [one] => self.name(one),
            _ => plural(rules.len() as u64, "rule"),
        };
        Some(format!(
            "also: {what}, {}, inhibited",
            plural(count, "match")
        ))
    }

    /// The footer's parts about suppressed hits, each starting with ` · `.
    pub(super) fn suppressed_footer(&self) -> String {
        let suppressed = &self.summary.incidents.suppressed;
        let tz = &self.options.timezone;
        let mut out = String::new();
        for (label, pick) in [
            ("silenced", is_silenced as fn(&Why) -> bool),
            ("muted", |w| matches!(w, Why::Muted { .. })),
            ("deferred", |w| matches!(w, Why::Deferred { .. })),
        ] {
            let lines: Vec<&SuppressedLine> =
                suppressed.lines.iter().filter(|l| pick(&l.why)).collect();
            if !lines.is_empty() {
                out.push_str(&format!(" · {label}: {}", self.items(&lines, tz)));
            }
        }
        for source in suppressed.sources() {
            if self.summary.rules.iter().any(|r| r.name == source) {
                continue;
            }
            if let Some(line) = self.inhibited_line(source) {
                let line = line.trim_start_matches("also: ");
                out.push_str(&format!(" · inhibited by {}: {line}", self.name(source)));
            }
        }
        out
    }

    /// `db-timeout ×120 (SIL-3, until 12:00), api ×4 (SIL-3, until 12:00) +2 more (9 matches)`.
    fn items(&self, lines: &[&SuppressedLine], tz: &TimeZone) -> String {
        let mut items: Vec<String> = lines
            .iter()
            .take(NAMED)
            .map(|line| {
                let why = match &line.why {
                    Why::Silenced { id, until } => format!(
                        "{}, until {}",
                        escape(id, 40, self.flavor),
                        clock(*until, self.summary.end, tz)
                    ),
                    Why::Muted { interval } | Why::Deferred { interval } => {
                        escape(interval, 60, self.flavor)
                    }
                    Why::Inhibited { source } => self.name(source),
                };
                format!("{} ×{} ({why})", self.name(&line.rule), line.count)
            })
            .collect();
        if let Some(rest) = lines.get(NAMED..).filter(|r| !r.is_empty()) {
            let count: u64 = rest.iter().map(|l| l.count).sum();
            items.push(format!("+{} more ({})", rest.len(), plural(count, "match")));
        }
        items.join(", ")
    }
}

fn is_silenced(why: &Why) -> bool {
    matches!(why, Why::Silenced { .. })
}

/// `12:00` on the day of `now`, else `12-03 12:00`.
fn clock(at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    let (at, now) = (
        at.to_zoned_datetime(tz.clone()),
        now.to_zoned_datetime(tz.clone()),
    );
    if at.date() == now.date() {
        at.strftime("%H:%M").to_string()
    } else {
        at.strftime("%m-%d %H:%M").to_string()
    }
}
