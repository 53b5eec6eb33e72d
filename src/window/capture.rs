//! What a rule's match says about a hit ([`Keeper`]), as its [`RuleMessage`](crate::rules::RuleMessage) (`masks:`,
//! `show:`, `severity_from:`) asks: the text it singles out, which masks must never touch, and
//! the line's level.
//!
//! Masks exist to count lines that differ only in ids and times as one shape. They must never
//! merge what the rule itself distinguishes: a rule `" (?P<status>[45]\d\d) ` over an access
//! log wants 404s and 502s apart, yet the `number` mask would make both `<n>`. So:
//! - the text of every capture group of the matching pattern (named or not) is kept as it is;
//! - a pattern without capture groups whose matches are short and bounded (at most
//!   [`MAX_KEPT_MATCH_BYTES`](crate::rules::MAX_KEPT_MATCH_BYTES), no `*`, `+` or `{n,}`: `" [45]\d\d `, `ERROR`) keeps its whole
//!   match; a pattern with an unbounded part (`timeout after \d+ ms`) keeps nothing, so that
//!   its numbers are still masked.
//!
//! The scan's search records what this needs of a match ([`Spans`], the rule's
//! [`Found`]): a hit scanned by [`crate::scan`] is shaped without searching its line again.
//! A hit with nothing found (one handed to [`super::Aggregator::observe`]) has its pattern run
//! once more, only for rules that need it (a pattern that is a literal without digits or
//! quotes has nothing a mask would touch), and only as far as needed: a whole match is found
//! without captures, and the captures of a rule whose every group is a `group_by` value are
//! the hit's `group_by` values.

use std::ops::Range;

use crate::rules::{Pattern, Rule, Severity, Spans};

/// What the scan found of a hit: which of the rule's patterns matched (its first that does),
/// and what that match recorded, relative to the hit's line ([`Pattern::search`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found<'a> {
    pub(crate) pattern: usize,
    pub(crate) spans: &'a [Option<Range<usize>>],
}

/// A rule's patterns, ready to tell which text of a hit to keep and which level it has.
#[derive(Debug)]
pub(crate) struct Keeper {
    patterns: Vec<Kept>,
    severity: Option<(Vec<(String, Severity)>, Severity)>,
    /// Nothing to keep and no level to read: [`Keeper::read`] does nothing.
    is_inert: bool,
}

#[derive(Debug)]
struct Kept {
    pattern: Pattern,
    mode: Mode,
    /// Capture index of the level, when the rule has `severity_from`.
    level: Option<usize>,
    /// The pattern's groups, the whole match included.
    groups: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Nothing,
    WholeMatch,
    Groups,
    /// Groups, all of them `group_by` values of a rule with this one pattern: the hit's
    /// group values are the text to keep.
    GroupBy,
}

impl Keeper {
    /// The keeper of `rule`; `masks_anything` is false for `masks: none` (nothing to keep).
    pub(crate) fn new(rule: &Rule, masks_anything: bool) -> Keeper {
        let severity_from = rule.message.severity_from.as_ref();
        let patterns: Vec<Kept> = rule
            .patterns
            .iter()
            .map(|pattern| {
                let groups = pattern.capture_names().count();
                let mode = match pattern.spans() {
                    _ if !masks_anything => Mode::Nothing,
                    Spans::Groups if is_all_group_by(rule, groups) => Mode::GroupBy,
                    Spans::Groups => Mode::Groups,
                    Spans::WholeMatch => Mode::WholeMatch,
                    Spans::Nothing => Mode::Nothing,
                };
                let level = severity_from.and_then(|from| {
                    pattern
                        .capture_names()
                        .position(|name| name == Some(from.capture.as_str()))
                });
                Kept {
                    pattern: pattern.clone(),
                    mode,
                    level,
                    groups,
                }
            })
            .collect();
        let is_inert = severity_from.is_none() && patterns.iter().all(|p| p.mode == Mode::Nothing);
        Keeper {
            patterns,
            severity: severity_from.map(|from| (from.map.clone(), rule.severity)),
            is_inert,
        }
    }

    /// Fills `keep` with the ranges of `line` never to mask (sorted by start) and returns the
    /// line's level when the rule reads one (`severity_from`; the rule's severity when the
    /// capture is absent or its value unmapped). `groups` are the hit's `group_by` values
    /// (slices of the buffer `line` is in); `found`, what the scan found of the hit (`None`:
    /// the rule's patterns are run on the line).
    pub(crate) fn read(
        &self,
        line: &[u8],
        groups: &[Option<&[u8]>],
        found: Option<Found<'_>>,
        keep: &mut Vec<Range<usize>>,
    ) -> Option<Severity> {
        keep.clear();
        if self.is_inert {
            return None;
        }
        let level = match found.and_then(|found| self.read_found(line, groups, found, keep)) {
            Some(level) => level,
            None => self.search(line, groups, keep),
        };
        keep.sort_by_key(|range| range.start);
        let (map, default) = self.severity.as_ref()?;
        let mapped = level.and_then(|value| {
            map.iter()
                .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(value))
                .map(|(_, severity)| *severity)
        });
        Some(mapped.unwrap_or(*default))
    }

    /// What [`Keeper::search`] finds, taken from what the scan found: `None` (and `keep`
    /// empty) when that is not enough (not a hit of this rule's scan).
    fn read_found<'l>(
        &self,
        line: &'l [u8],
        groups: &[Option<&[u8]>],
        found: Found<'_>,
        keep: &mut Vec<Range<usize>>,
    ) -> Option<Option<&'l [u8]>> {
        let kept = self.patterns.get(found.pattern)?;
        let spans = found.spans;
        let has_groups = kept.groups > 1 && spans.len() == kept.groups;
        match kept.mode {
            _ if kept.level.is_some() && !has_groups => return None,
            Mode::GroupBy if kept.level.is_none() && keep_groups(line, groups, keep) => {}
            Mode::Nothing => {}
            Mode::WholeMatch => keep.push(spans.first()?.clone()?),
            Mode::Groups | Mode::GroupBy if has_groups => {
                keep.extend(spans.iter().skip(1).flatten().cloned());
            }
            Mode::Groups | Mode::GroupBy => return None,
        }
        let level = kept.level.and_then(|i| spans.get(i).cloned().flatten());
        match level {
            Some(range) => Some(Some(line.get(range)?)),
            None => Some(None),
        }
    }

    /// Runs the rule's patterns on `line` (in order, up to the first that matches) for the
    /// ranges to keep and the level's text.
    fn search<'l>(
        &self,
        line: &'l [u8],
        groups: &[Option<&[u8]>],
        keep: &mut Vec<Range<usize>>,
    ) -> Option<&'l [u8]> {
        let mut level = None;
        for kept in &self.patterns {
            match kept.mode {
                _ if kept.level.is_some() => {}
                Mode::Nothing if kept.pattern.is_match(line) => break,
                Mode::WholeMatch if let Some(found) = kept.pattern.find(line) => {
                    keep.push(found);
                    break;
                }
                Mode::GroupBy if keep_groups(line, groups, keep) => break,
                Mode::Nothing | Mode::WholeMatch => continue,
                Mode::Groups | Mode::GroupBy => {}
            }
            let Some(spans) = kept.pattern.captures(line) else {
                continue;
            };
            match kept.mode {
                Mode::Nothing => {}
                Mode::WholeMatch => keep.extend(spans.first().cloned().flatten()),
                Mode::Groups | Mode::GroupBy => {
                    keep.extend(spans.iter().skip(1).flatten().cloned())
                }
            }
            level = kept
                .level
                .and_then(|i| spans.get(i).cloned().flatten())
                .map(|range| &line[range]);
            break;
        }
        level
    }
}

/// Whether `rule` has one pattern, whose `groups` groups (the whole match included) are all
/// `group_by` values: the scan found them already.
fn is_all_group_by(rule: &Rule, groups: usize) -> bool {
    let [slots] = rule.group_slots.as_slice() else {
        return false;
    };
    (1..groups).all(|group| slots.contains(&Some(group)))
}

/// Puts where each of `groups` lies in `line` into `keep`; false (and `keep` cleared) when
/// one is not a slice of `line`'s buffer within it.
fn keep_groups(line: &[u8], groups: &[Option<&[u8]>], keep: &mut Vec<Range<usize>>) -> bool {
    for group in groups.iter().flatten() {
        let start = (group.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
        let Some(end) = start
            .checked_add(group.len())
            .filter(|&end| end <= line.len())
        else {
            keep.clear();
            return false;
        };
        keep.push(start..end);
    }
    true
}

/// The ranges of `keep` (into `whole`) that fall in `part` (a subslice of `whole`), relative
/// to `part`, into `out`.
pub(crate) fn ranges_within(
    keep: &[Range<usize>],
    whole: &[u8],
    part: &[u8],
    out: &mut Vec<Range<usize>>,
) {
    out.clear();
    let offset = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    let end = offset + part.len();
    out.extend(
        keep.iter()
            .filter(|r| r.start < end && r.end > offset)
            .map(|r| r.start.max(offset) - offset..r.end.min(end) - offset),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleDef, RuleMessage, SeverityFrom};

    fn keeper(pattern: &str, severity_from: Option<SeverityFrom>) -> Keeper {
        let rule = Rule::compile(&RuleDef {
            name: "r".into(),
            patterns: vec![pattern.into()],
            severity: Some(Severity::Error),
            message: RuleMessage {
                severity_from,
                ..RuleMessage::default()
            },
            ..RuleDef::default()
        })
        .unwrap();
        Keeper::new(&rule, true)
    }

    #[track_caller]
    fn kept(pattern: &str, line: &str) -> Vec<String> {
        let mut keep = Vec::new();
        keeper(pattern, None).read(line.as_bytes(), &[], None, &mut keep);
        keep.into_iter().map(|r| line[r].to_owned()).collect()
    }

    #[test]
    fn captures_and_short_bounded_matches_are_kept() {
        let line = r#"10.0.0.1 - - [28/Nov/2026:10:00:00 +0800] "GET /a HTTP/1.1" 502 157"#;
        assert_eq!(kept(r#"" [45]\d\d "#, line), [r#"" 502 "#]);
        assert_eq!(kept(r#"" (?P<status>5\d\d) (\d+)"#, line), ["502", "157"]);
        assert!(kept(r"HTTP/\d+\.\d+", line).is_empty());
        assert!(kept(r"ERROR", line).is_empty());
    }

    #[test]
    fn a_rule_whose_groups_are_all_group_by_keeps_the_values_the_scan_found() {
        let rule = Rule::compile(&RuleDef {
            name: "r".into(),
            patterns: vec![r#"" (?P<status>5\d\d) (?P<bytes>\d+)"#.into()],
            group_by: vec!["status".into(), "bytes".into()],
            ..RuleDef::default()
        })
        .unwrap();
        let keeper = Keeper::new(&rule, true);
        let line = br#"10.0.0.1 "GET /a HTTP/1.1" 502 157 12ms"#;
        let groups: Vec<Option<&[u8]>> = rule
            .group_ranges(0, line)
            .into_iter()
            .map(|r| r.map(|r| &line[r]))
            .collect();
        let mut keep = Vec::new();
        keeper.read(line, &groups, None, &mut keep);
        let kept: Vec<&[u8]> = keep.iter().map(|r| &line[r.clone()]).collect();
        assert_eq!(kept, [b"502".as_slice(), b"157"]);
        // Values that are not slices of the line: its own captures are found again.
        let elsewhere = b"502 157".to_vec();
        let foreign = [Some(&elsewhere[..3]), Some(&elsewhere[4..])];
        let mut again = Vec::new();
        keeper.read(line, &foreign, None, &mut again);
        assert_eq!(again, keep);
    }

    #[test]
    fn severity_from_maps_ignoring_case_and_defaults_to_the_rule() {
        let from = SeverityFrom {
            capture: "level".into(),
            map: vec![
                ("FATAL".into(), Severity::Critical),
                ("WARN".into(), Severity::Warning),
            ],
        };
        let keeper = keeper(r"(?P<level>[A-Za-z]+) \[", Some(from));
        let mut keep = Vec::new();
        assert_eq!(
            keeper.read(b"fatal [main] x", &[], None, &mut keep),
            Some(Severity::Critical)
        );
        assert_eq!(keep, vec![std::ops::Range { start: 0, end: 5 }]);
        assert_eq!(
            keeper.read(b"NOTICE [main] x", &[], None, &mut keep),
            Some(Severity::Error)
        );
    }
}
