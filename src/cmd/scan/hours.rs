//! `scan --by hour`: hits per hour of the lines' own times, so a user sees when errors began.
//!
//! A hit's hour comes from its source's `timestamp:` (a hit without a readable time counts in
//! the hour the scan started). Printed as a terminal histogram (one row per hour, quiet hours
//! between included, and the sparkline DingTalk messages use), or as one JSON line.

use std::collections::BTreeMap;
use std::io::Write;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::rules::RuleSet;

/// Widest bar of the histogram, in characters.
const BAR_WIDTH: u64 = 40;
/// Most rows printed with the quiet hours between; past that only hours with hits are shown.
const MAX_ROWS: i64 = 24 * 31;

/// Hits per hour (start of the hour, as a Unix second) and per rule.
#[derive(Debug, Default)]
pub(super) struct Hours {
    counts: BTreeMap<i64, BTreeMap<usize, u64>>,
}

impl Hours {
    /// Counts one hit of rule `rule` at `at`.
    pub(super) fn add(&mut self, at: Timestamp, rule: usize) {
        let hour = at.as_second().div_euclid(3600) * 3600;
        *self
            .counts
            .entry(hour)
            .or_default()
            .entry(rule)
            .or_default() += 1;
    }

    /// Rows from the first hour with hits to the last, quiet hours included (unless there are
    /// too many): (hour, hits).
    fn rows(&self) -> Vec<(i64, u64)> {
        let total = |hour: &i64| self.counts.get(hour).map_or(0, |r| r.values().sum());
        let (Some(first), Some(last)) = (self.counts.keys().next(), self.counts.keys().last())
        else {
            return Vec::new();
        };
        if (last - first) / 3600 >= MAX_ROWS {
            return self.counts.keys().map(|h| (*h, total(h))).collect();
        }
        (*first..=*last)
            .step_by(3600)
            .map(|h| (h, total(&h)))
            .collect()
    }

    /// The histogram for a terminal.
    pub(super) fn write_text(&self, tz: &TimeZone, out: &mut impl Write) -> std::io::Result<()> {
        let rows = self.rows();
        if rows.is_empty() {
            return Ok(());
        }
        let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
        let offset = Timestamp::now()
            .to_zoned_datetime(tz.clone())
            .strftime("%:z")
            .to_string();
        writeln!(out, "hour ({offset})          hits")?;
        for (hour, count) in &rows {
            let start = hour_start(*hour).to_zoned_datetime(tz.clone());
            let width = usize::try_from(count.saturating_mul(BAR_WIDTH).div_ceil(max)).unwrap_or(0);
            writeln!(
                out,
                "{}  {count:>8}  {}",
                start.strftime("%Y-%m-%d %H:%M"),
                "█".repeat(width)
            )?;
        }
        let counts: Vec<u64> = rows.iter().map(|(_, n)| *n).collect();
        writeln!(out, "shape: {}", crate::render::sparkline(&counts))?;
        writeln!(out)
    }

    /// One JSON line: `{"type": "hours", "hours": [{"hour", "count", "rules": {...}}]}`.
    pub(super) fn write_json(&self, rules: &RuleSet, out: &mut impl Write) -> std::io::Result<()> {
        let hours: Vec<_> = self
            .rows()
            .into_iter()
            .map(|(hour, count)| {
                let by_rule: serde_json::Map<String, serde_json::Value> = self
                    .counts
                    .get(&hour)
                    .into_iter()
                    .flatten()
                    .filter_map(|(rule, n)| {
                        Some((rules.rules().get(*rule)?.name.clone(), json!(n)))
                    })
                    .collect();
                json!({"hour": hour_start(hour), "count": count, "rules": by_rule})
            })
            .collect();
        writeln!(out, "{}", json!({"type": "hours", "hours": hours}))
    }
}

fn hour_start(second: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH
        .checked_add(SignedDuration::from_secs(second))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}
