//! Rules: named regexes with a severity, compiled once, run over bytes.
//!
//! A [`Rule`] is what a user writes in YAML after validation: one or more patterns (any of them
//! matching makes a hit), exclusions, a severity, a per-window threshold and the named captures
//! that split its count. Patterns are compiled with the `regex` crate's bytes API, so invalid
//! UTF-8 in a log never stops matching, and with a compile size limit, so one pathological rule
//! cannot eat the host's memory. A pattern is checked when its rule loads and compiled the first
//! time a line needs it (see [`Pattern`]): most rules of a large set never do. The `regex` crate guarantees linear-time matching; that is why
//! look-around and backreferences are rejected (with an explanation) rather than emulated.
//!
//! This module is pure: no IO, no clock. [`crate::scan`] runs a [`RuleSet`] over chunks.

use std::fmt;
use std::num::NonZeroU64;

use regex::bytes::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

mod message;
mod pattern;

pub use message::{RuleMessage, SeverityFrom};
pub use pattern::{
    MAX_KEPT_MATCH_BYTES, ONEPASS_SIZE_LIMIT, Pattern, Spans, short_regex_error, syntax_config,
};

/// Upper bound on the compiled size of one pattern (bytes of the regex program).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Upper bound on the lazy DFA cache of one pattern.
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

/// How bad a rule's hits are. Ordered: `Info < Warning < Error < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Something degraded.
    Warning,
    /// Something failed.
    Error,
    /// Someone must act now.
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The lowercase name used in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Index of a rule in its [`RuleSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleId(pub u32);

impl RuleId {
    /// The index as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A rule as written by the user, before compilation. Built by `config` from YAML.
#[derive(Clone, Debug, Default)]
pub struct RuleDef {
    /// Unique name, shown in messages.
    pub name: String,
    /// Any of these matching makes a hit.
    pub patterns: Vec<String>,
    /// A line matching any of these is not a hit (counted as excluded).
    pub exclude: Vec<String>,
    /// Severity of the hits.
    pub severity: Option<Severity>,
    /// Minimum number of hits (per group) in a window for the rule to be reported.
    pub min_count: Option<u64>,
    /// Named captures that split the count.
    pub group_by: Vec<String>,
    /// Names of the sources this rule applies to; empty means all.
    pub sources: Vec<String>,
    /// Lines that must match.
    pub examples_match: Vec<String>,
    /// Lines that must not match (or must be excluded).
    pub examples_no_match: Vec<String>,
    /// What the rule asks of its message (`masks:`, `show:`, `severity_from:`).
    pub message: RuleMessage,
}

/// Where in a rule a compile problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternKind {
    /// The n-th entry of `pattern`.
    Pattern(usize),
    /// The n-th entry of `exclude`.
    Exclude(usize),
}

/// Why a rule does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The rule has no pattern.
    #[error("rule `{rule}` has no pattern")]
    NoPattern {
        /// Rule name.
        rule: String,
    },
    /// The regex does not parse or is too big.
    #[error("rule `{rule}`: invalid regex `{pattern}`: {message}")]
    InvalidRegex {
        /// Rule name.
        rule: String,
        /// Which pattern.
        kind: PatternKind,
        /// The pattern text.
        pattern: String,
        /// The regex crate's explanation.
        message: String,
    },
    /// The regex uses a feature the linear-time engine cannot offer.
    #[error(
        "rule `{rule}`: {feature} in `{pattern}` is not supported: logding matches in linear time \
         (the `regex` crate), which rules out {feature}; {hint}"
    )]
    Unsupported {
        /// Rule name.
        rule: String,
        /// Which pattern.
        kind: PatternKind,
        /// The pattern text.
        pattern: String,
        /// "look-around" or "backreferences".
        feature: &'static str,
        /// How to express it otherwise.
        hint: &'static str,
    },
    /// `group_by` names a capture that no pattern defines.
    #[error("rule `{rule}`: group_by `{name}` is not a named capture of its pattern{available}")]
    UnknownGroup {
        /// Rule name.
        rule: String,
        /// The missing name.
        name: String,
        /// ", which has: a, b" or " (it has no named captures; write `(?P<name>...)`)".
        available: String,
    },
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Severity of its hits.
    pub severity: Severity,
    /// Minimum hits per group per window to be reported.
    pub min_count: NonZeroU64,
    /// Named captures that split the count, in order.
    pub group_by: Vec<String>,
    /// Source names this rule applies to; empty means all sources.
    pub sources: Vec<String>,
    /// Patterns (any-of).
    pub patterns: Vec<Pattern>,
    /// Exclusions.
    pub excludes: Vec<Pattern>,
    /// For each pattern, for each `group_by` name, the capture index in that pattern.
    pub group_slots: Vec<Vec<Option<usize>>>,
    /// Example lines that must match.
    pub examples_match: Vec<String>,
    /// Example lines that must not match.
    pub examples_no_match: Vec<String>,
    /// What the rule asks of its message (`masks:`, `show:`, `severity_from:`).
    pub message: RuleMessage,
}

/// Result of testing one line against one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No pattern matches.
    NoMatch,
    /// A pattern matches but the exclusion with this index matches too.
    Excluded {
        /// Index into the rule's `exclude`.
        exclude: usize,
    },
    /// A hit: the pattern index that matched.
    Match {
        /// Index into the rule's `pattern`.
        pattern: usize,
    },
}

impl Rule {
    /// Compiles a rule definition.
    ///
    /// # Errors
    ///
    /// Every problem found in the rule, not only the first.
    pub fn compile(def: &RuleDef) -> Result<Rule, Vec<RuleError>> {
        let mut errors = Vec::new();
        if def.patterns.is_empty() {
            errors.push(RuleError::NoPattern {
                rule: def.name.clone(),
            });
        }
        let patterns = compile_all(&def.name, &def.patterns, PatternKind::Pattern, &mut errors);
        let excludes = compile_all(&def.name, &def.exclude, PatternKind::Exclude, &mut errors);
        let group_slots = patterns
            .iter()
            .map(|re| {
                def.group_by
                    .iter()
                    .map(|name| re.capture_names().position(|n| n == Some(name.as_str())))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        // A pattern that does not compile may still define the name: only then is it not
        // reported (so `check` shows the regex error and a wrong `group_by` in one round).
        for (i, name) in def.group_by.iter().enumerate() {
            let in_broken = patterns.len() < def.patterns.len()
                && def
                    .patterns
                    .iter()
                    .any(|p| p.contains(&format!("<{name}>")));
            if !in_broken && !group_slots.iter().any(|slots| slots[i].is_some()) {
                errors.push(unknown_group(&def.name, name, &patterns));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Rule {
            name: def.name.clone(),
            severity: def.severity.unwrap_or(Severity::Error),
            min_count: NonZeroU64::new(def.min_count.unwrap_or(1)).unwrap_or(NonZeroU64::MIN),
            group_by: def.group_by.clone(),
            sources: def.sources.clone(),
            patterns,
            excludes,
            group_slots,
            examples_match: def.examples_match.clone(),
            examples_no_match: def.examples_no_match.clone(),
            message: def.message.clone(),
        })
    }

    /// Tests one line (or one multiline event).
    pub fn verdict(&self, line: &[u8]) -> Verdict {
        let Some(pattern) = self.patterns.iter().position(|re| re.is_match(line)) else {
            return Verdict::NoMatch;
        };
        match self.excludes.iter().position(|re| re.is_match(line)) {
            Some(exclude) => Verdict::Excluded { exclude },
            None => Verdict::Match { pattern },
        }
    }

    /// Returns true if and only if the rule applies to the source with this name.
    pub fn applies_to(&self, source: &str) -> bool {
        self.sources.is_empty() || self.sources.iter().any(|s| s == source)
    }

    /// The `group_by` values of a line that matched `pattern`, as byte ranges into `line`.
    /// A name the pattern does not define, or a group that did not participate, is `None`.
    pub fn group_ranges(&self, pattern: usize, line: &[u8]) -> Vec<Option<std::ops::Range<usize>>> {
        let slots = &self.group_slots[pattern];
        if slots.is_empty() {
            return Vec::new();
        }
        let Some(groups) = self.patterns[pattern].captures(line) else {
            return vec![None; slots.len()];
        };
        slots
            .iter()
            .map(|slot| slot.and_then(|i| groups.get(i).cloned().flatten()))
            .collect()
    }
}

fn compile_all(
    rule: &str,
    sources: &[String],
    kind: fn(usize) -> PatternKind,
    errors: &mut Vec<RuleError>,
) -> Vec<Pattern> {
    let mut out = Vec::with_capacity(sources.len());
    for (i, pattern) in sources.iter().enumerate() {
        match Pattern::new(pattern) {
            Ok(re) => out.push(re),
            Err(message) => errors.push(classify(rule, kind(i), pattern, message)),
        }
    }
    out
}

/// Compiles one pattern with the flags of rule patterns ([`syntax_config`]) into a `regex`
/// crate regex, size-limited (multiline `start` patterns).
///
/// # Errors
///
/// The regex crate's message.
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    let flags = syntax_config();
    RegexBuilder::new(pattern)
        .case_insensitive(flags.get_case_insensitive())
        .multi_line(flags.get_multi_line())
        .dot_matches_new_line(flags.get_dot_matches_new_line())
        .crlf(flags.get_crlf())
        .swap_greed(flags.get_swap_greed())
        .ignore_whitespace(flags.get_ignore_whitespace())
        .unicode(flags.get_unicode())
        .octal(flags.get_octal())
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => pattern::too_big(limit),
            other => other.to_string(),
        })
}

fn classify(rule: &str, kind: PatternKind, pattern: &str, message: String) -> RuleError {
    let unsupported = |feature, hint| RuleError::Unsupported {
        rule: rule.to_owned(),
        kind,
        pattern: pattern.to_owned(),
        feature,
        hint,
    };
    if message.contains("look-around") {
        return unsupported(
            "look-around",
            "match the wider text and use `exclude:` for what must not be there",
        );
    }
    if message.contains("backreference") {
        return unsupported(
            "backreferences",
            "capture the part with `(?P<name>...)` and use `group_by:` instead",
        );
    }
    RuleError::InvalidRegex {
        rule: rule.to_owned(),
        kind,
        pattern: pattern.to_owned(),
        message,
    }
}

fn unknown_group(rule: &str, name: &str, patterns: &[Pattern]) -> RuleError {
    let mut names: Vec<&str> = patterns
        .iter()
        .flat_map(|re| re.capture_names().flatten())
        .collect();
    names.sort_unstable();
    names.dedup();
    let available = if names.is_empty() {
        " (it has no named captures; write `(?P<name>...)`)".to_owned()
    } else {
        format!(", which has: {}", names.join(", "))
    };
    RuleError::UnknownGroup {
        rule: rule.to_owned(),
        name: name.to_owned(),
        available,
    }
}

/// All rules of a configuration, in file order. Rule ids are indices.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Wraps compiled rules. Names are assumed unique (config checks it).
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        RuleSet { rules }
    }

    /// The rules, indexed by [`RuleId`].
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// One rule.
    pub fn get(&self, id: RuleId) -> &Rule {
        &self.rules[id.index()]
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Returns true if and only if there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Looks a rule up by name.
    pub fn find(&self, name: &str) -> Option<RuleId> {
        self.rules
            .iter()
            .position(|r| r.name == name)
            .map(|i| RuleId(i as u32))
    }

    /// Ids of the rules that apply to a source.
    pub fn ids_for_source(&self, source: &str) -> Vec<RuleId> {
        (0..self.rules.len())
            .filter(|&i| self.rules[i].applies_to(source))
            .map(|i| RuleId(i as u32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, pattern: &str) -> RuleDef {
        RuleDef {
            name: name.into(),
            patterns: vec![pattern.into()],
            ..RuleDef::default()
        }
    }

    #[test]
    fn look_around_is_explained() {
        let errors = Rule::compile(&def("r", "foo(?=bar)")).unwrap_err();
        let text = errors[0].to_string();
        assert!(text.contains("look-around"), "{text}");
        assert!(text.contains("linear time"), "{text}");
    }

    #[test]
    fn backreference_is_explained() {
        let errors = Rule::compile(&def("r", r"(a)\1")).unwrap_err();
        assert!(matches!(
            errors[0],
            RuleError::Unsupported {
                feature: "backreferences",
                ..
            }
        ));
    }

    #[test]
    fn group_by_must_name_a_capture() {
        let mut d = def("r", r"status=(?P<status>\d+)");
        d.group_by = vec!["code".into()];
        let errors = Rule::compile(&d).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "rule `r`: group_by `code` is not a named capture of its pattern, which has: status"
        );
    }

    #[test]
    fn matching_works_on_invalid_utf8() {
        let rule = Rule::compile(&def("r", "ERROR")).unwrap();
        assert_eq!(
            rule.verdict(b"\xff\xfe ERROR here"),
            Verdict::Match { pattern: 0 }
        );
    }

    #[test]
    fn exclusion_wins() {
        let mut d = def("r", "5\\d\\d");
        d.exclude = vec!["/healthz".into(), "/ready".into()];
        let rule = Rule::compile(&d).unwrap();
        assert_eq!(
            rule.verdict(b"GET /ready 503"),
            Verdict::Excluded { exclude: 1 }
        );
    }
}
