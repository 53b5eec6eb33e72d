//! What a rule asks of its message beyond counting ([`RuleMessage`]: `masks:`, `show:`,
//! `severity_from:`), and what its match says about a hit ([`Keeper`]): the text it singles
//! out, which masks must never touch, and the line's level.
//!
//! Masks exist to count lines that differ only in ids and times as one shape. They must never
//! merge what the rule itself distinguishes: a rule `" (?P<status>[45]\d\d) ` over an access
//! log wants 404s and 502s apart, yet the `number` mask would make both `<n>`. So:
//! - the text of every capture group of the matching pattern (named or not) is kept as it is;
//! - a pattern without capture groups whose matches are short and bounded (at most
//!   [`MAX_KEPT_MATCH_BYTES`], no `*`, `+` or `{n,}`: `" [45]\d\d `, `ERROR`) keeps its whole
//!   match; a pattern with an unbounded part (`timeout after \d+ ms`) keeps nothing, so that
//!   its numbers are still masked.
//!
//! The window runs the pattern once more per hit for this, and only for rules that need it (a
//! pattern that is a literal without digits or quotes has nothing a mask would touch).

use std::ops::Range;

use regex::bytes::Regex;

use crate::rules::{Pattern, Rule, Severity};

/// A pattern without captures keeps its whole match only if no match is longer than this.
pub const MAX_KEPT_MATCH_BYTES: usize = 64;

/// What a rule asks of its message (the rule keys `masks:`, `show:` and `severity_from:`).
#[derive(Clone, Debug, Default)]
pub struct RuleMessage {
    /// The masks of this rule's shapes, by name (built-in or `summary.custom_masks`); `None`:
    /// those of `summary.masks` and every custom mask; empty: none (`masks: none`).
    pub masks: Option<Vec<String>>,
    /// Lines of a multiline event matching any of these are shown under its sample (at most
    /// `window::MAX_CONTEXT_LINES`).
    pub show: Vec<Regex>,
    /// Where the line's level is read, and what it means.
    pub severity_from: Option<SeverityFrom>,
}

/// `severity_from: {capture: level, map: {ERROR: error, FATAL: critical}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeverityFrom {
    /// A named capture of the rule's patterns.
    pub capture: String,
    /// Captured value (compared ignoring ASCII case) to severity; other values take the rule's
    /// `severity`.
    pub map: Vec<(String, Severity)>,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Nothing,
    WholeMatch,
    Groups,
}

impl Keeper {
    /// The keeper of `rule`; `masks_anything` is false for `masks: none` (nothing to keep).
    pub(crate) fn new(rule: &Rule, masks_anything: bool) -> Keeper {
        let severity_from = rule.message.severity_from.as_ref();
        let patterns: Vec<Kept> = rule
            .patterns
            .iter()
            .map(|pattern| {
                let mode = if !masks_anything {
                    Mode::Nothing
                } else if pattern.capture_names().count() > 1 {
                    Mode::Groups
                } else {
                    whole_match_mode(pattern.as_str())
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
    /// capture is absent or its value unmapped).
    pub(crate) fn read(&self, line: &[u8], keep: &mut Vec<Range<usize>>) -> Option<Severity> {
        keep.clear();
        if self.is_inert {
            return None;
        }
        let mut level = None;
        for kept in &self.patterns {
            if kept.mode == Mode::Nothing && kept.level.is_none() {
                if kept.pattern.is_match(line) {
                    break;
                }
                continue;
            }
            let Some(spans) = kept.pattern.captures(line) else {
                continue;
            };
            match kept.mode {
                Mode::Nothing => {}
                Mode::WholeMatch => keep.extend(spans.first().cloned().flatten()),
                Mode::Groups => keep.extend(spans.iter().skip(1).flatten().cloned()),
            }
            level = kept
                .level
                .and_then(|i| spans.get(i).cloned().flatten())
                .map(|range| &line[range]);
            break;
        }
        keep.sort_by_key(|range| range.start);
        let (map, default) = self.severity.as_ref()?;
        let mapped = level.and_then(|value| {
            map.iter()
                .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(value))
                .map(|(_, severity)| *severity)
        });
        Some(mapped.unwrap_or(*default))
    }
}

/// [`Mode::WholeMatch`] when every match of `pattern` is at most [`MAX_KEPT_MATCH_BYTES`] and
/// may hold something a mask would touch (a literal without digits or quotes never does).
fn whole_match_mode(pattern: &str) -> Mode {
    let Ok(hir) = regex_automata::util::syntax::parse_with(pattern, &crate::rules::syntax_config())
    else {
        return Mode::Nothing;
    };
    let properties = hir.properties();
    let is_short = properties
        .maximum_len()
        .is_some_and(|max| max <= MAX_KEPT_MATCH_BYTES);
    let is_inert_literal = properties.is_literal()
        && !pattern
            .bytes()
            .any(|b| b.is_ascii_digit() || b == b'"' || b == b'\'');
    if is_short && !is_inert_literal {
        Mode::WholeMatch
    } else {
        Mode::Nothing
    }
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
    use crate::rules::RuleDef;

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
        keeper(pattern, None).read(line.as_bytes(), &mut keep);
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
            keeper.read(b"fatal [main] x", &mut keep),
            Some(Severity::Critical)
        );
        assert_eq!(keep, vec![std::ops::Range { start: 0, end: 5 }]);
        assert_eq!(
            keeper.read(b"NOTICE [main] x", &mut keep),
            Some(Severity::Error)
        );
    }
}
