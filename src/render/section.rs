//! One rule's section of a message, built to be read on a phone:
//!
//! ```text
//! **ERROR · upstream-5xx** ×87 · by status · access.log
//! 502 ×57
//! 404 ×30
//! > ×57 10.0.0.1 - - [28/Nov/2026:10:00:00 +0800] "GET /api HTTP/1.1" 502 157
//! > ×30 10.0.0.2 - - [28/Nov/2026:10:00:01 +0800] "GET /x HTTP/1.1" 404 0
//! ```
//!
//! - the rule line: severity, name, count, files (relative to the heading's directory);
//! - the `group_by` split, one short line per value (the capture name said once on the rule
//!   line), then `+N matches of other values` with its exact figure;
//! - each chosen shape once, as its raw sample with its count (the masked shape repeated what
//!   the sample says; `logding explain` and `--output json` show it), then the lines shown
//!   under it (`↳` the outermost exception, `show:` lines, the root cause), then
//!   `+N more patterns, M matches` with exact figures.
//!
//! When a message holds one rule, the heading already names it and its count: the rule line
//! is left out (unless the incident stage says why the rule is shown: ` · new · since 10:02`).
//!
//! In markdown, DingTalk joins lines separated by a single `\n`, so every line of a section
//! ends with a hard break (two spaces) except its last; a CommonMark renderer shows each on
//! its own line (tested with `pulldown-cmark`).

use super::escape::{Flavor, escape};
use super::{
    Detail, Doc, MAX_FILE_CHARS, MAX_GROUP_CHARS, MAX_SAMPLE_CHARS, MAX_SHORT_SAMPLE_CHARS, plural,
};
use crate::summary::{GroupCount, PatternCount, RuleSummary};

/// Files named per section; the rest are counted.
const FILES_SHOWN: usize = 3;

/// Marks a line shown under a sample.
const UNDER: &str = "↳ ";

/// A markdown hard line break: two spaces, then the newline.
const HARD_BREAK: &str = "  \n";

impl Doc<'_> {
    /// A rule's section at a level of detail.
    pub(super) fn entry(&self, rule: &RuleSummary, detail: Detail) -> String {
        let mut lines = Vec::new();
        let note = super::incidents::note(self.summary, &rule.name, &self.options.timezone);
        if self.summary.rules.len() > 1 || !note.is_empty() {
            lines.push(self.rule_line(rule, &note));
        }
        lines.extend(self.group_lines(rule));
        if detail != Detail::Bare {
            lines.extend(self.pattern_lines(rule, detail));
        }
        lines.extend(
            self.inhibited_line(&rule.name)
                .map(|l| format!("{UNDER}{l}")),
        );
        match self.flavor {
            Flavor::Markdown => lines.join(HARD_BREAK),
            Flavor::Text => lines.join("\n"),
        }
    }

    /// `**CRITICAL · java-oom** ×2 · app.log`.
    fn rule_line(&self, rule: &RuleSummary, note: &str) -> String {
        let severity = rule.severity.as_str().to_uppercase();
        let name = self.name(&rule.name);
        let mut line = match self.flavor {
            Flavor::Markdown => format!("**{severity} · {name}**"),
            Flavor::Text => format!("{severity} · {name}"),
        };
        if let [group] = rule.groups.as_slice()
            && rule.other_groups_count == 0
        {
            line.push(' ');
            line.push_str(&self.group_label(group, false));
        }
        line.push_str(&format!(" ×{}", rule.count));
        line.push_str(note);
        if let Some(key) = self.split_key(rule) {
            line.push_str(&format!(
                " · by {}",
                escape(key, MAX_GROUP_CHARS, self.flavor)
            ));
        }
        let files: Vec<String> = rule
            .files
            .iter()
            .filter_map(|f| self.paths.in_section(f))
            .take(FILES_SHOWN)
            .map(|f| escape(f, MAX_FILE_CHARS, self.flavor))
            .collect();
        if !files.is_empty() {
            line.push_str(" · ");
            line.push_str(&files.join(", "));
        }
        let more =
            (rule.files.len().saturating_sub(FILES_SHOWN) as u64).saturating_add(rule.other_files);
        if more > 0 && self.paths.in_section("").is_some() {
            line.push_str(&format!(" +{}", plural(more, "file")));
        }
        line
    }

    /// The single `group_by` name, said once on the rule line, when the split gets its own
    /// lines.
    fn split_key<'r>(&self, rule: &'r RuleSummary) -> Option<&'r str> {
        if !self.has_split(rule) {
            return None;
        }
        match rule.groups.first()?.values.as_slice() {
            [(name, _)] => Some(name.as_str()),
            _ => None,
        }
    }

    fn has_split(&self, rule: &RuleSummary) -> bool {
        rule.groups.len() > 1
            || rule.other_groups_count > 0
            || (self.summary.rules.len() == 1 && !rule.groups.is_empty())
    }

    /// `502 ×57`, one per line, then `+3 matches of other values`.
    fn group_lines(&self, rule: &RuleSummary) -> Vec<String> {
        if !self.has_split(rule) {
            return Vec::new();
        }
        let bare = self.split_key(rule).is_some() && self.summary.rules.len() > 1;
        let mut lines: Vec<String> = rule
            .groups
            .iter()
            .map(|g| format!("{} ×{}", self.group_label(g, bare), g.count))
            .collect();
        if rule.other_groups_count > 0 {
            lines.push(format!(
                "+{} of other values",
                plural(rule.other_groups_count, "match")
            ));
        }
        let indent = if self.flavor == Flavor::Text {
            "  "
        } else {
            ""
        };
        lines.into_iter().map(|l| format!("{indent}{l}")).collect()
    }

    /// `status=502 method=GET`, or just `502` when the name is said on the rule line.
    fn group_label(&self, group: &GroupCount, bare: bool) -> String {
        let label: Vec<String> = group
            .values
            .iter()
            .map(|(name, value)| {
                if bare {
                    value.clone()
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        escape(&label.join(" "), MAX_GROUP_CHARS, self.flavor)
    }

    fn pattern_lines(&self, rule: &RuleSummary, detail: Detail) -> Vec<String> {
        let is_only = matches!(rule.patterns.as_slice(), [_]) && rule.other_patterns_count == 0;
        let shown = match detail {
            Detail::TopPattern => 1.min(rule.patterns.len()),
            _ => rule.patterns.len(),
        };
        let mut lines = Vec::new();
        for pattern in &rule.patterns[..shown] {
            let max = if detail == Detail::Full {
                MAX_SAMPLE_CHARS
            } else {
                MAX_SHORT_SAMPLE_CHARS
            };
            let sample = escape(&pattern.sample, max, self.flavor);
            let count = if is_only {
                String::new()
            } else {
                format!("×{} ", pattern.count)
            };
            let hidden = if detail == Detail::Full {
                hidden_lines(pattern)
            } else {
                pattern.extra_lines
            };
            let more = match hidden {
                0 => String::new(),
                n => format!(" (+{})", plural(u64::from(n), "line")),
            };
            lines.push(self.quote(&format!("{count}{sample}{more}"), false));
            if detail == Detail::Full {
                for under in pattern.context.iter().chain(&pattern.cause) {
                    let text = escape(under, MAX_SAMPLE_CHARS, self.flavor);
                    lines.push(self.quote(&format!("{UNDER}{text}"), true));
                }
            }
        }
        let rest = &rule.patterns[shown..];
        let kinds = (rest.len() as u64).saturating_add(rule.other_patterns);
        let count = rest
            .iter()
            .map(|p| p.count)
            .sum::<u64>()
            .saturating_add(rule.other_patterns_count);
        if count > 0 {
            let text = if kinds > 0 {
                format!(
                    "+{} more {}, {}",
                    kinds,
                    if kinds == 1 { "pattern" } else { "patterns" },
                    plural(count, "match")
                )
            } else {
                format!(
                    "+{count} more {}",
                    if count == 1 { "match" } else { "matches" }
                )
            };
            lines.push(self.quote(&text, false));
        }
        lines
    }

    /// A line of the samples' block (already escaped).
    fn quote(&self, text: &str, is_under: bool) -> String {
        match (self.flavor, is_under) {
            (Flavor::Markdown, _) => format!("> {text}"),
            (Flavor::Text, false) => format!("  {text}"),
            (Flavor::Text, true) => format!("    {text}"),
        }
    }
}

/// Lines of the event neither shown as the sample nor under it.
fn hidden_lines(pattern: &PatternCount) -> u32 {
    let shown = pattern.context.len() + usize::from(pattern.cause.is_some());
    pattern
        .extra_lines
        .saturating_sub(u32::try_from(shown).unwrap_or(u32::MAX))
}
