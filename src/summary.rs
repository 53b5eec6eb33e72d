//! [`Summary`]: what one window of hits boils down to. The contract between `window` (which
//! builds it), `render` (which turns it into a DingTalk payload), `outbox` (which persists it as
//! JSON) and `--output json` (which prints it for scripts).
//!
//! It holds counts and short samples, never unbounded data: every list in it is capped by the
//! window's options, and what was cut is counted (`other_*` fields).

pub mod absent;
pub mod incident;
pub mod suppressed;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use self::absent::AbsentState;
use self::incident::IncidentReport;
use crate::rules::Severity;

/// One window's worth of alerts (or several windows merged while DingTalk was unavailable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Host name shown in the header.
    pub host: String,
    /// When the window opened.
    pub start: Timestamp,
    /// When the window closed.
    pub end: Timestamp,
    /// Rules that reached their `min_count`, in rank order (severity, then count). Empty when
    /// no rule reached it: such a summary only carries below-threshold counts and is not sent.
    pub rules: Vec<RuleSummary>,
    /// Rules that had hits but stayed below their `min_count`: (name, hits).
    #[serde(default)]
    pub below_threshold: Vec<(String, u64)>,
    /// Lines matched by a rule but removed by one of its `exclude` patterns.
    #[serde(default)]
    pub excluded: u64,
    /// How many windows this summary stands for (more than 1 after merging).
    #[serde(default = "one")]
    pub windows: u32,
    /// Hits whose own time was too far ahead of the clock (`max_skew`): read time used.
    #[serde(default)]
    pub skewed: u64,
    /// What the incident stage says: why rules are shown in full, ongoing and resolved lines.
    #[serde(default, skip_serializing_if = "IncidentReport::is_empty")]
    pub incidents: IncidentReport,
}

fn one() -> u32 {
    1
}

/// What one rule saw in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// Rule name.
    pub name: String,
    /// Rule severity.
    pub severity: Severity,
    /// Exact number of hits.
    pub count: u64,
    /// Time of the first hit.
    pub first: Timestamp,
    /// Time of the last hit.
    pub last: Timestamp,
    /// Files the hits came from (capped).
    pub files: Vec<String>,
    /// Files beyond the cap.
    #[serde(default)]
    pub other_files: u64,
    /// Counts split by `group_by` values, largest first (capped at `max_groups`).
    #[serde(default)]
    pub groups: Vec<GroupCount>,
    /// Hits whose group fell beyond the cap ("other").
    #[serde(default)]
    pub other_groups_count: u64,
    /// De-duplicated line shapes, largest first (capped at `max_patterns`).
    #[serde(default)]
    pub patterns: Vec<PatternCount>,
    /// Number of distinct shapes beyond the cap (estimated past 256 and after merging). Never
    /// more than `other_patterns_count`.
    #[serde(default)]
    pub other_patterns: u64,
    /// Hits whose shape fell beyond the cap.
    #[serde(default)]
    pub other_patterns_count: u64,
}

/// A `group_by` value combination and its count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCount {
    /// (capture name, value), in `group_by` order. Values are lossy UTF-8, capped in length.
    pub values: Vec<(String, String)>,
    /// Hits with these values.
    pub count: u64,
}

/// A de-duplicated line shape and its count, with one raw sample.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternCount {
    /// The masked line (`<n>`, `<ip>`, ... in place of variable parts).
    pub pattern: String,
    /// Hits with this shape: exact, or a lower bound when the rule saw more distinct shapes
    /// than the window tracks (see `window`).
    pub count: u64,
    /// The first raw line with this shape (lossy UTF-8, capped in length; unescaped).
    pub sample: String,
    /// For a multiline event: how many lines followed the first.
    #[serde(default)]
    pub extra_lines: u32,
    /// For a multiline event: its root cause (the innermost `Caused by: ...`, the first
    /// exception of a Python chain, a Go `panic:` with its first goroutine frame), when there
    /// is one other than the first line.
    #[serde(default)]
    pub cause: Option<String>,
    /// For a multiline event: further lines shown under the sample, in event order (the
    /// outermost exception of a chain, lines selected by the rule's `show:`), at most
    /// `window::MAX_CONTEXT_LINES`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// The highest level of this shape's lines, when the rule reads it (`severity_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// True when this shape was not seen in the windows before this one (novelty ranks it up).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_new: bool,
}

/// Sorts rules in rank order: severity (critical first), then count (largest first), then name.
pub fn sort_rules(rules: &mut [RuleSummary]) {
    rules.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.name.cmp(&b.name))
    });
}

impl Summary {
    /// Returns true if and only if the summary has something to tell: a rule at its
    /// `min_count`, a resolved incident, or an absence that began or ended.
    pub fn is_worth_sending(&self) -> bool {
        !self.rules.is_empty()
            || !self.incidents.resolved.is_empty()
            || self
                .incidents
                .absent
                .iter()
                .any(|a| a.state != AbsentState::Ongoing)
    }

    /// Hits of the rules reported (those that reached their `min_count`).
    pub fn matches(&self) -> u64 {
        self.rules.iter().map(|r| r.count).sum()
    }

    /// Hits of the rules (or groups) that stayed below their `min_count`.
    pub fn below_threshold_matches(&self) -> u64 {
        self.below_threshold.iter().map(|(_, n)| n).sum()
    }

    /// The highest severity reported, if any rule is.
    pub fn max_severity(&self) -> Option<Severity> {
        self.rules.iter().map(|r| r.severity).max()
    }

    /// Folds a later (or earlier) summary into this one, as the outbox does when summaries
    /// queue up behind DingTalk's rate limit. Counts add exactly; the time span covers both;
    /// `windows` adds up; lists stay within the larger of the two lengths (what no longer fits
    /// is counted in the `other_*` fields). Rules are matched by name.
    pub fn merge(&mut self, other: Summary) {
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.windows = self.windows.saturating_add(other.windows);
        self.excluded = self.excluded.saturating_add(other.excluded);
        self.skewed = self.skewed.saturating_add(other.skewed);
        self.incidents.merge(other.incidents);
        for rule in other.rules {
            match self.rules.iter_mut().find(|r| r.name == rule.name) {
                Some(mine) => mine.merge(rule),
                None => self.rules.push(rule),
            }
        }
        sort_rules(&mut self.rules);
        for (name, count) in other.below_threshold {
            match self.below_threshold.iter_mut().find(|(n, _)| *n == name) {
                Some((_, mine)) => *mine = mine.saturating_add(count),
                None => self.below_threshold.push((name, count)),
            }
        }
        self.below_threshold
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
}

impl RuleSummary {
    /// Folds the same rule's entry from another window into this one.
    pub fn merge(&mut self, other: RuleSummary) {
        self.severity = self.severity.max(other.severity);
        self.count = self.count.saturating_add(other.count);
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);

        let cap = self.files.len().max(other.files.len());
        self.other_files = self.other_files.saturating_add(other.other_files);
        for file in other.files {
            if !self.files.contains(&file) {
                self.files.push(file);
            }
        }
        if self.files.len() > cap {
            self.other_files = self
                .other_files
                .saturating_add((self.files.len() - cap) as u64);
            self.files.truncate(cap);
        }

        let cap = self.groups.len().max(other.groups.len());
        // A group listed on one side only has an exact merged figure only if the other side
        // folded no group into "other" (those hits may be this group's). An inexact figure
        // could read below a pattern of the group's own lines, so it joins "other" as well.
        let (mine_folded, theirs_folded) =
            (self.other_groups_count > 0, other.other_groups_count > 0);
        self.other_groups_count = self
            .other_groups_count
            .saturating_add(other.other_groups_count);
        let mut theirs = other.groups;
        let mut groups = Vec::with_capacity(cap);
        let mut folded = 0u64;
        for mut group in std::mem::take(&mut self.groups) {
            match theirs.iter().position(|g| g.values == group.values) {
                Some(i) => {
                    group.count = group.count.saturating_add(theirs.remove(i).count);
                    groups.push(group);
                }
                None if theirs_folded => folded = folded.saturating_add(group.count),
                None => groups.push(group),
            }
        }
        for group in theirs {
            if mine_folded {
                folded = folded.saturating_add(group.count);
            } else {
                groups.push(group);
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        for dropped in groups.drain(cap.min(groups.len())..) {
            folded = folded.saturating_add(dropped.count);
        }
        self.groups = groups;
        self.other_groups_count = self.other_groups_count.saturating_add(folded);

        let cap = self.patterns.len().max(other.patterns.len());
        // Distinct shapes do not add up across windows (the same shapes recur in every window):
        // the larger side's count, plus the shapes this merge pushes out of the list below.
        let mut other_patterns = self.other_patterns.max(other.other_patterns);
        self.other_patterns_count = self
            .other_patterns_count
            .saturating_add(other.other_patterns_count);
        for pattern in other.patterns {
            match self
                .patterns
                .iter_mut()
                .find(|p| p.pattern == pattern.pattern)
            {
                Some(mine) => mine.count = mine.count.saturating_add(pattern.count),
                None => self.patterns.push(pattern),
            }
        }
        self.patterns.sort_by_key(|p| std::cmp::Reverse(p.count));
        let dropped: Vec<PatternCount> = self
            .patterns
            .drain(cap.min(self.patterns.len())..)
            .collect();
        other_patterns = other_patterns.saturating_add(dropped.len() as u64);
        for pattern in dropped {
            self.other_patterns_count = self.other_patterns_count.saturating_add(pattern.count);
        }
        // Every distinct shape beyond the cap has at least one hit.
        self.other_patterns = other_patterns.min(self.other_patterns_count);
        if self.other_patterns_count > 0 {
            self.other_patterns = self.other_patterns.max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_795_831_200 + seconds).expect("a valid test time")
    }

    fn pattern(text: &str, count: u64) -> PatternCount {
        PatternCount {
            pattern: text.into(),
            count,
            sample: format!("{text} sample"),
            ..PatternCount::default()
        }
    }

    fn rule(name: &str, severity: Severity, count: u64, first: i64) -> RuleSummary {
        RuleSummary {
            name: name.into(),
            severity,
            count,
            first: at(first),
            last: at(first + 10),
            files: vec![format!("/var/log/{name}.log")],
            other_files: 0,
            groups: Vec::new(),
            other_groups_count: 0,
            patterns: vec![pattern("a <n>", count)],
            other_patterns: 0,
            other_patterns_count: 0,
        }
    }

    fn summary(start: i64, rules: Vec<RuleSummary>) -> Summary {
        Summary {
            host: "app-01".into(),
            start: at(start),
            end: at(start + 60),
            rules,
            below_threshold: vec![("quiet".into(), 2)],
            excluded: 3,
            windows: 1,
            skewed: 0,
            incidents: Default::default(),
        }
    }

    #[test]
    fn merge_adds_counts_and_covers_both_spans() {
        let mut merged = summary(0, vec![rule("oom", Severity::Critical, 2, 5)]);
        merged.merge(summary(
            60,
            vec![
                rule("oom", Severity::Critical, 3, 70),
                rule("npe", Severity::Error, 40, 61),
            ],
        ));
        assert_eq!(
            (merged.start, merged.end, merged.windows),
            (at(0), at(120), 2)
        );
        assert_eq!((merged.excluded, merged.below_threshold_matches()), (6, 4));
        let oom = &merged.rules[0];
        assert_eq!((oom.name.as_str(), oom.count), ("oom", 5));
        assert_eq!((oom.first, oom.last), (at(5), at(80)));
        assert_eq!(oom.patterns[0].count, 5);
        assert_eq!(merged.rules[1].name, "npe");
        assert_eq!(merged.matches(), 45);
    }

    #[test]
    fn merge_keeps_caps_and_counts_what_no_longer_fits() {
        let mut first = rule("r", Severity::Error, 10, 0);
        first.patterns = vec![pattern("a", 6), pattern("b", 4)];
        first.files = vec!["/a".into(), "/b".into()];
        let mut second = rule("r", Severity::Error, 9, 60);
        second.patterns = vec![pattern("c", 5), pattern("a", 1)];
        second.other_patterns = 1;
        second.other_patterns_count = 3;
        second.files = vec!["/c".into()];
        second.groups = vec![GroupCount {
            values: vec![("status".into(), "502".into())],
            count: 9,
        }];
        let mut merged = summary(0, vec![first]);
        merged.merge(summary(60, vec![second]));
        let r = &merged.rules[0];
        assert_eq!(r.count, 19);
        let patterns: Vec<(&str, u64)> = r
            .patterns
            .iter()
            .map(|p| (p.pattern.as_str(), p.count))
            .collect();
        assert_eq!(patterns, [("a", 7), ("c", 5)]);
        assert_eq!((r.other_patterns, r.other_patterns_count), (2, 7));
        let shown: u64 = r.patterns.iter().map(|p| p.count).sum();
        assert_eq!(shown + r.other_patterns_count, r.count);
        assert_eq!((r.files.len(), r.other_files), (2, 1));
        assert_eq!((r.groups.len(), r.other_groups_count), (1, 0));
    }

    /// Window 1 lists status 404 and folds 502 (×9) into "other"; window 2 lists 502 ×30.
    /// Every 502 line has one shape, so merged its pattern says ×39: the 502 group must not
    /// say ×30 beside it (an inner figure above its group's). Shown figures stay exact.
    #[test]
    fn a_merged_group_never_reads_below_a_pattern_of_its_own_lines() {
        let group = |value: &str, count| GroupCount {
            values: vec![("status".into(), value.into())],
            count,
        };
        let mut first = rule("upstream", Severity::Error, 19, 0);
        first.groups = vec![group("404", 10)];
        first.other_groups_count = 9;
        first.patterns = vec![pattern("GET /x 404", 10), pattern("GET /api 502", 9)];
        let mut second = rule("upstream", Severity::Error, 30, 60);
        second.groups = vec![group("502", 30)];
        second.patterns = vec![pattern("GET /api 502", 30)];
        let mut merged = summary(0, vec![first]);
        merged.merge(summary(60, vec![second]));
        let r = &merged.rules[0];
        let of = |status: &str| r.groups.iter().find(|g| g.values[0].1 == status);
        for pattern in &r.patterns {
            let status = if pattern.pattern.contains("502") {
                "502"
            } else {
                "404"
            };
            if let Some(group) = of(status) {
                assert!(
                    pattern.count <= group.count,
                    "pattern ×{} inside group {status} ×{}",
                    pattern.count,
                    group.count
                );
            }
        }
        let groups: Vec<(&str, u64)> = r
            .groups
            .iter()
            .map(|g| (g.values[0].1.as_str(), g.count))
            .collect();
        assert_eq!((groups, r.other_groups_count), (vec![("404", 10)], 39));
        assert_eq!(r.count, 49);
    }

    /// A rule whose lines take 30 shapes, seen in 40 windows that each kept the top 5.
    #[test]
    fn merged_figures_stay_possible() {
        let window = |w: i64| {
            let mut r = rule("r", Severity::Error, 0, w * 60);
            r.patterns = (0..5).map(|i| pattern(&format!("shape {i}"), 3)).collect();
            r.other_patterns = 25;
            r.other_patterns_count = 25;
            r.count = 40;
            summary(w * 60, vec![r])
        };
        let mut merged = window(0);
        for w in 1..40 {
            merged.merge(window(w));
        }
        let r = &merged.rules[0];
        assert_eq!(r.count, 1_600);
        let shown: u64 = r.patterns.iter().map(|p| p.count).sum();
        assert_eq!(shown + r.other_patterns_count, r.count, "counts add up");
        assert!(
            r.patterns.len() as u64 + r.other_patterns <= 30,
            "{} shown + {} more shapes, of 30 possible",
            r.patterns.len(),
            r.other_patterns
        );
        assert!(r.patterns.iter().all(|p| p.count <= r.count));
    }

    #[test]
    fn merged_estimates_never_exceed_their_counts() {
        let mut first = rule("r", Severity::Error, 10, 0);
        first.patterns = vec![pattern("a", 9)];
        first.other_patterns = 317;
        first.other_patterns_count = 1;
        let mut merged = summary(0, vec![first]);
        merged.merge(summary(60, vec![rule("r", Severity::Error, 3, 60)]));
        let r = &merged.rules[0];
        assert!(
            r.other_patterns <= r.other_patterns_count,
            "+{} more patterns, {} matches",
            r.other_patterns,
            r.other_patterns_count
        );
        assert_eq!(r.other_patterns_count, 4);
    }

    #[test]
    fn merge_ranks_by_severity_then_count() {
        let mut merged = summary(0, vec![rule("warn", Severity::Warning, 100, 0)]);
        merged.merge(summary(60, vec![rule("crit", Severity::Critical, 1, 60)]));
        merged.merge(summary(
            120,
            vec![rule("warn2", Severity::Warning, 200, 120)],
        ));
        let names: Vec<&str> = merged.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["crit", "warn2", "warn"]);
        assert_eq!(merged.windows, 3);
    }

    #[test]
    fn summary_round_trips_through_json() {
        let original = summary(0, vec![rule("oom", Severity::Critical, 2, 5)]);
        let json = serde_json::to_string(&original).unwrap();
        assert_eq!(serde_json::from_str::<Summary>(&json).unwrap(), original);
    }
}
