//! Rules: read from the main file and from the rule files it includes, compiled, and (for
//! `check`) tested against their own examples.
//!
//! Rules are compiled right where they are read, so that a regex error points at the pattern
//! in the right file. Names must be unique across all files; a duplicate's error names both
//! places.

use std::path::{Path, PathBuf};

use super::absence::{self, RuleKind};
use super::diag::{backticked, suggest};
use super::glob::expand_glob;
use super::incidents::{PolicyOverride, policy_keys};
use super::origin::Origin;
use super::rule_message;
use super::silences::SilenceReader;
use super::walk::severity;
use super::walk::{Ctx, Map};
use super::yaml::{self, Kind, Node, Pos};
use crate::absence::AbsenceRule;
use crate::rules::{PatternKind, Rule, RuleDef, RuleError, Verdict, short_regex_error};
use crate::suppress::{MutePolicy, Silence};

const RULE_KEYS: &[&str] = &[
    "name",
    "pattern",
    "exclude",
    "severity",
    "min_count",
    "group_by",
    "sources",
    "examples",
    "masks",
    "show",
    "severity_from",
    // The incident lifecycle, read by `super::incidents::policy_keys`.
    "repeat_interval",
    "resolve_after",
    "send_resolved",
    "keep_firing_for",
    // `kind: absence` and its keys, read by `super::absence`.
    "kind",
    "window",
    "keys",
    "arm",
    "schedule",
    // Mute hours, read by `super::inhibit::mute`.
    "mute",
];
const EXAMPLE_KEYS: &[&str] = &["match", "no_match"];

/// Collects rules across files.
pub(crate) struct RuleReader {
    source_names: Vec<String>,
    /// Names of `summary.custom_masks`, which a rule's `masks:` may name.
    custom_masks: Vec<String>,
    check_examples: bool,
    rules: Vec<Rule>,
    is_ok: bool,
    /// Name, file (as displayed) and position of every rule read, for duplicate errors.
    seen: Vec<(String, PathBuf, Pos)>,
    /// Rules with their own incident lifecycle settings.
    policies: Vec<(String, PolicyOverride)>,
    /// Names of the time intervals an absence rule's `schedule:` may name.
    schedules: Vec<String>,
    /// `kind: absence` rules.
    absence: Vec<AbsenceRule>,
    /// Names under `time_intervals:`, which a rule's `mute:` may name.
    interval_names: Vec<String>,
    /// Rules with their own `mute:`.
    mutes: Vec<(String, MutePolicy)>,
    /// `silences:` of the main file and the included files.
    silences: SilenceReader,
}

/// What the rule files say about suppression.
pub(crate) struct ReadSuppression {
    /// Every rule name, as written (also of rules with problems).
    pub(crate) rule_names: Vec<String>,
    /// Rules with their own `mute:`.
    pub(crate) mutes: Vec<(String, MutePolicy)>,
    /// The silences; `None` when one had a problem.
    pub(crate) silences: Option<Vec<Silence>>,
}

/// Positions of the parts of a rule, to point compile errors at the right spot.
struct Positions {
    patterns: Vec<Pos>,
    excludes: Vec<Pos>,
    group_by: Vec<(String, Pos)>,
    examples: Vec<(String, Pos, bool)>,
}

impl RuleReader {
    /// A reader checking rule `sources:` against `source_names`.
    pub(crate) fn new(source_names: Vec<String>, check_examples: bool) -> RuleReader {
        RuleReader {
            source_names,
            custom_masks: Vec::new(),
            check_examples,
            rules: Vec::new(),
            is_ok: true,
            seen: Vec::new(),
            policies: Vec::new(),
            schedules: Vec::new(),
            absence: Vec::new(),
            interval_names: Vec::new(),
            mutes: Vec::new(),
            silences: SilenceReader::default(),
        }
    }

    /// Lets rules name these intervals in their `mute:`, and reads `silences:` with `silences`.
    pub(crate) fn with_suppression(
        mut self,
        interval_names: Vec<String>,
        silences: SilenceReader,
    ) -> RuleReader {
        self.interval_names = interval_names;
        self.silences = silences;
        self
    }

    /// Reads a `silences:` list in the current file.
    pub(crate) fn read_silences(&mut self, ctx: &mut Ctx<'_>, node: &Node) {
        let file = ctx
            .file()
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        self.silences.read(ctx, node, &file);
    }

    /// The rule names as written, the rules' own `mute:`, and the silences.
    pub(crate) fn take_suppression(&mut self) -> ReadSuppression {
        ReadSuppression {
            rule_names: self.seen.iter().map(|(n, _, _)| n.clone()).collect(),
            mutes: std::mem::take(&mut self.mutes),
            silences: std::mem::take(&mut self.silences).finish(),
        }
    }

    /// Lets absence rules' `schedule:` name these time intervals.
    pub(crate) fn with_schedules(mut self, names: Vec<String>) -> RuleReader {
        self.schedules = names;
        self
    }

    /// The `kind: absence` rules read.
    pub(crate) fn take_absence(&mut self) -> Vec<AbsenceRule> {
        std::mem::take(&mut self.absence)
    }

    /// Lets rules name these custom masks (`summary.custom_masks`) in their `masks:`.
    pub(crate) fn with_custom_masks(mut self, names: Vec<String>) -> RuleReader {
        self.custom_masks = names;
        self
    }

    /// Reads a `rules:` list in the current file.
    pub(crate) fn read_rules(&mut self, ctx: &mut Ctx<'_>, node: &Node) {
        let items = match &node.kind {
            Kind::Seq(items) => items,
            Kind::Null => return,
            other => {
                ctx.error(
                    node.pos,
                    format!(
                        "`rules` must be a list of rules, found {}",
                        other.describe()
                    ),
                    None,
                );
                self.is_ok = false;
                return;
            }
        };
        for (index, item) in items.iter().enumerate() {
            let before = ctx.diagnostics.len();
            match self.read_rule(ctx, item, index) {
                Some(rule) if ctx.diagnostics.len() == before => self.rules.push(rule),
                _ => self.is_ok = false,
            }
        }
    }

    fn read_rule(&mut self, ctx: &mut Ctx<'_>, node: &Node, index: usize) -> Option<Rule> {
        let map = ctx.map(node, &format!("rules[{index}]"), RULE_KEYS)?;
        let name = ctx
            .required(&map, "name", &format!("rule #{}", index + 1))
            .and_then(|n| {
                Some((
                    ctx.non_empty_string(n, &format!("rules[{index}].name"))?,
                    n.pos,
                ))
            });
        if let Some((name, pos)) = &name {
            self.check_unique(ctx, name, *pos);
        }
        ctx.set_prefix(Some(match &name {
            Some((name, _)) => format!("rule `{name}`"),
            None => format!("rule #{}", index + 1),
        }));
        let patterns = ctx
            .required(&map, "pattern", "the rule")
            .and_then(|n| ctx.strings(n, "pattern"));
        let excludes = list(ctx, &map, "exclude");
        let group_by = list(ctx, &map, "group_by");
        let sources = list(ctx, &map, "sources");
        if let Some(sources) = &sources {
            self.check_sources(ctx, sources);
        }
        let severity = match map.get("severity") {
            Some(n) => severity(ctx, n, "severity").map(Some),
            None => Some(None),
        };
        let kind = absence::kind(ctx, &map);
        let absence_min_count = match kind {
            Some(RuleKind::Absence) => absence::min_count(ctx, &map),
            _ => {
                absence::reject_absence_keys(ctx, &map);
                Some(1)
            }
        };
        let min_count = match map.get("min_count") {
            _ if kind == Some(RuleKind::Absence) => Some(None),
            Some(n) => ctx.integer(n, "min_count", 1, 1_000_000_000).map(Some),
            None => Some(None),
        };
        let examples = match map.get("examples") {
            Some(n) => examples(ctx, n),
            None => Some(Vec::new()),
        };
        let message = rule_message::read(ctx, &map, &self.custom_masks);
        let mute = match map.get("mute") {
            Some(n) => super::inhibit::mute(ctx, n, "mute", &self.interval_names).map(Some),
            None => Some(None),
        };
        if let (Some((name, _)), Some(Some(mute))) = (&name, &mute) {
            self.mutes.push((name.clone(), mute.clone()));
        }
        let policy = policy_keys(ctx, &map, "");
        let prefix = ctx.prefix();
        if let (Some((name, _)), Some(policy)) = (&name, policy)
            && !policy.is_empty()
        {
            self.policies.push((name.clone(), policy));
        }
        ctx.set_prefix(None);
        // Every problem at once: a rule with a bad name, severity or examples still has its
        // regexes and `group_by` checked (it is dropped anyway, a diagnostic was recorded).
        let is_complete = name.is_some()
            && severity.is_some()
            && min_count.is_some()
            && kind.is_some()
            && absence_min_count.is_some()
            && examples.is_some()
            && message.is_some()
            && mute.is_some();
        let (patterns, excludes, group_by) = (patterns?, excludes.unwrap_or_default(), group_by?);
        let positions = Positions {
            patterns: patterns.iter().map(|p| p.1).collect(),
            excludes: excludes.iter().map(|p| p.1).collect(),
            group_by: group_by.clone(),
            examples: examples.unwrap_or_default(),
        };
        let def = RuleDef {
            name: name.map_or_else(|| format!("#{}", index + 1), |n| n.0),
            patterns: strings_of(patterns),
            exclude: strings_of(excludes),
            severity: severity.flatten(),
            min_count: min_count.flatten(),
            group_by: strings_of(group_by),
            sources: strings_of(sources.unwrap_or_default()),
            examples_match: examples_of(&positions.examples, true),
            examples_no_match: examples_of(&positions.examples, false),
            message: message.as_ref().map(|m| m.0.clone()).unwrap_or_default(),
        };
        let pattern_node_pos = map.get("pattern").map_or(map.pos, |n| n.pos);
        let rule = match Rule::compile(&def) {
            Ok(rule) => rule,
            Err(errors) => {
                for error in errors {
                    report_compile_error(ctx, &error, &positions, pattern_node_pos);
                }
                return None;
            }
        };
        if let Some((_, capture_pos)) = message {
            rule_message::check_capture(ctx, &rule, capture_pos);
        }
        if self.check_examples {
            check_examples(ctx, &rule, &positions.examples);
        }
        if kind == Some(RuleKind::Absence) {
            // Read even when `min_count` was wrong, so that every problem is reported at once
            // (the rule is dropped anyway: `is_complete` is false).
            let min_count = absence_min_count.unwrap_or(1);
            ctx.set_prefix(prefix);
            let read = absence::absence_rule(ctx, &map, &rule, min_count, &self.schedules);
            ctx.set_prefix(None);
            self.absence.push(read?);
        }
        is_complete.then_some(rule)
    }

    /// The rules' own incident lifecycle settings, by rule name.
    pub(crate) fn take_policies(&mut self) -> Vec<(String, PolicyOverride)> {
        std::mem::take(&mut self.policies)
    }

    fn check_unique(&mut self, ctx: &mut Ctx<'_>, name: &str, pos: Pos) {
        if let Some((_, file, first)) = self.seen.iter().find(|(n, _, _)| n == name) {
            let (line, column) = first.line_col().unwrap_or((1, 1));
            let help = format!(
                "`{name}` is first defined at {}:{line}:{column}",
                file.display()
            );
            ctx.error(pos, format!("duplicate rule name `{name}`"), Some(help));
            self.is_ok = false;
        }
        self.seen
            .push((name.to_owned(), ctx.file().to_owned(), pos));
    }

    fn check_sources(&mut self, ctx: &mut Ctx<'_>, sources: &[(String, Pos)]) {
        let known: Vec<&str> = self.source_names.iter().map(String::as_str).collect();
        for (name, pos) in sources {
            if known.contains(&name.as_str()) {
                continue;
            }
            let help = match suggest(name, &known) {
                Some(best) => format!("did you mean `{best}`?"),
                None if known.is_empty() => {
                    "no sources are defined; add them under `sources:`".into()
                }
                None => format!("defined sources: {}", backticked(&known)),
            };
            ctx.error(*pos, format!("unknown source `{name}`"), Some(help));
        }
    }

    /// Reads the rule files named by `include:` globs; returns the files read (absolute).
    pub(crate) fn read_includes(
        &mut self,
        ctx: &mut Ctx<'_>,
        node: &Node,
        origin: &Origin,
    ) -> Vec<PathBuf> {
        let Some(patterns) = ctx.strings(node, "include") else {
            self.is_ok = false;
            return Vec::new();
        };
        let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (pattern, pos) in patterns {
            let absolute = origin.resolve(&pattern);
            let found = match expand_glob(&absolute) {
                Ok(found) => found,
                Err(reason) => {
                    ctx.error(
                        pos,
                        format!("`include` has an invalid glob `{pattern}`: {reason}"),
                        None,
                    );
                    self.is_ok = false;
                    continue;
                }
            };
            if found.is_empty() {
                let dir = origin.display_dir();
                ctx.error(
                    pos,
                    format!("include `{pattern}` matches no file"),
                    Some(format!(
                        "include globs are relative to the config file's directory, `{}`",
                        dir.display()
                    )),
                );
                self.is_ok = false;
            }
            for file in found {
                if file != origin.absolute && !files.iter().any(|(f, _)| *f == file) {
                    let display = display_path(&file, &pattern, origin);
                    files.push((file, display));
                }
            }
        }
        for (file, display) in &files {
            self.read_include(ctx, file, display);
        }
        files.into_iter().map(|(f, _)| f).collect()
    }

    fn read_include(&mut self, ctx: &mut Ctx<'_>, file: &Path, display: &Path) {
        let text = match super::read_text_as(file, display, "failed to read rule file") {
            Ok(text) => text,
            Err((message, position)) => {
                ctx.diagnostics.push(super::Diagnostic {
                    file: display.to_owned(),
                    position,
                    message,
                    help: None,
                    snippet: None,
                });
                self.is_ok = false;
                return;
            }
        };
        let (outer_file, outer_text) = ctx.enter(display.to_owned(), text.clone());
        match yaml::parse(&text) {
            Ok(root) => {
                if let Some(map) = ctx.map(&root, "", &["rules", "silences"]) {
                    if let Some(silences) = map.get("silences") {
                        self.read_silences(ctx, silences);
                    }
                    match map.get("rules") {
                        Some(rules) => self.read_rules(ctx, rules),
                        None if map.get("silences").is_some() => {}
                        None => ctx.error(
                            root.pos,
                            "rule file has no `rules:`",
                            Some("an included file holds a `rules:` list (and `silences:`)".into()),
                        ),
                    }
                }
            }
            Err(err) => {
                let is_unclosed = super::is_unclosed_double_quote(&text, &err);
                super::report_syntax_error(ctx, &err, is_unclosed);
            }
        }
        ctx.enter(outer_file, outer_text);
    }

    /// The compiled rules, or `None` when any rule had a problem; an empty set is a problem.
    pub(crate) fn finish(
        self,
        ctx: &mut Ctx<'_>,
        pos: Option<Pos>,
        origin: &Origin,
    ) -> Option<Vec<Rule>> {
        if !self.is_ok {
            return None;
        }
        if self.rules.is_empty() {
            let message = "no rules: the config and its included files define none";
            let help = Some(
                "add rules under `rules:`, or include rule files with `include: [rules/*.yaml]`"
                    .to_owned(),
            );
            match pos {
                Some(pos) => ctx.error(pos, message, help),
                None => ctx.error_file(&origin.display, message, help),
            }
            return None;
        }
        Some(self.rules)
    }
}

fn list(ctx: &mut Ctx<'_>, map: &Map<'_>, key: &str) -> Option<Vec<(String, Pos)>> {
    match map.get(key) {
        Some(node) => ctx.strings(node, key),
        None => Some(Vec::new()),
    }
}

fn strings_of(items: Vec<(String, Pos)>) -> Vec<String> {
    items.into_iter().map(|(s, _)| s).collect()
}

fn examples_of(examples: &[(String, Pos, bool)], should_match: bool) -> Vec<String> {
    examples
        .iter()
        .filter(|e| e.2 == should_match)
        .map(|e| e.0.clone())
        .collect()
}

fn examples(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<(String, Pos, bool)>> {
    let map = ctx.map(node, "examples", EXAMPLE_KEYS)?;
    let mut out = Vec::new();
    for (key, should_match) in [("match", true), ("no_match", false)] {
        if let Some(n) = map.get(key) {
            let items = ctx.strings(n, &format!("examples.{key}"))?;
            out.extend(items.into_iter().map(|(s, p)| (s, p, should_match)));
        }
    }
    Some(out)
}

fn report_compile_error(
    ctx: &mut Ctx<'_>,
    error: &RuleError,
    positions: &Positions,
    fallback: Pos,
) {
    let at = |kind: &PatternKind| match kind {
        PatternKind::Pattern(i) => positions.patterns.get(*i).copied(),
        PatternKind::Exclude(i) => positions.excludes.get(*i).copied(),
    };
    match error {
        RuleError::NoPattern { .. } => ctx.error(fallback, error.to_string(), None),
        RuleError::InvalidRegex { rule, kind, pattern, message } => {
            let field = if matches!(kind, PatternKind::Exclude(_)) { "exclude" } else { "pattern" };
            let pos = regex_error_pos(ctx, at(kind).unwrap_or(fallback), pattern);
            ctx.error(
                pos,
                format!("rule `{rule}`: invalid regex in `{field}`: {}", short_regex_error(message)),
                Some(format!("the regex is `{}`", shorten(pattern))),
            );
        }
        RuleError::Unsupported { rule, kind, pattern, feature, hint } => ctx.error(
            regex_error_pos(ctx, at(kind).unwrap_or(fallback), pattern),
            format!(
                "rule `{rule}`: {feature} in `{}` {} not supported",
                shorten(pattern),
                if feature.ends_with('s') { "are" } else { "is" }
            ),
            Some(format!(
                "logding matches in linear time (the `regex` crate), which rules out {feature}; {hint}"
            )),
        ),
        RuleError::UnknownGroup { name, .. } => {
            let pos = positions
                .group_by
                .iter()
                .find(|(written, _)| written == name)
                .map_or(fallback, |(_, pos)| *pos);
            ctx.error(pos, error.to_string(), None);
        }
    }
}

/// Where in the file the regex error is: the exact character when the pattern is written on
/// one line without escapes (plain, or quoted), else the start of the value.
fn regex_error_pos(ctx: &Ctx<'_>, pos: Pos, pattern: &str) -> Pos {
    let Some(offset) = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .err()
        .map(|e| e.span().start.offset)
    else {
        return pos;
    };
    let Some(written) = ctx.text_at(pos) else {
        return pos;
    };
    // Quoted: the text between the quotes equals the pattern only when nothing was escaped.
    let quote = usize::from(written.starts_with(['\'', '"']));
    let inner = written.get(quote..written.len().saturating_sub(quote));
    if inner != Some(pattern) || written.contains('\n') || offset > pattern.len() {
        return pos;
    }
    let Some((start, _)) = pos.bytes else {
        return pos;
    };
    let chars_before = pattern.get(..offset).map_or(0, |p| p.chars().count());
    Pos {
        line: pos.line,
        column: pos.column + quote + chars_before,
        bytes: Some((start + quote + offset, 1)),
    }
}

/// Checks a rule against its examples: `match` lines must be hits, `no_match` lines must not.
fn check_examples(ctx: &mut Ctx<'_>, rule: &Rule, examples: &[(String, Pos, bool)]) {
    for (line, pos, should_match) in examples {
        let verdict = rule.verdict(line.as_bytes());
        let name = &rule.name;
        match (should_match, verdict) {
            (true, Verdict::Match { .. })
            | (false, Verdict::NoMatch | Verdict::Excluded { .. }) => {}
            (true, Verdict::NoMatch) => ctx.error(
                *pos,
                format!("rule `{name}`: example does not match"),
                Some(
                    "no pattern of the rule matches this line; fix the pattern or the example"
                        .into(),
                ),
            ),
            (true, Verdict::Excluded { exclude }) => ctx.error(
                *pos,
                format!("rule `{name}`: example is excluded"),
                Some(format!(
                    "the line matches, but `exclude` pattern `{}` removes it",
                    shorten(rule.excludes[exclude].as_str())
                )),
            ),
            (false, Verdict::Match { pattern }) => ctx.error(
                *pos,
                format!("rule `{name}`: `no_match` example is a hit"),
                Some(format!(
                    "pattern `{}` matches it; tighten the pattern or add an `exclude:` pattern",
                    shorten(rule.patterns[pattern].as_str())
                )),
            ),
        }
    }
}

/// A pattern cut to a readable length for messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let head: String = text.chars().take(MAX).collect();
    format!("{head}...")
}

/// How to show an included file: under the config's displayed directory when the include
/// pattern was relative, else as found.
fn display_path(file: &Path, pattern: &str, origin: &Origin) -> PathBuf {
    if Path::new(pattern).is_absolute() {
        return file.to_owned();
    }
    let dir = origin.absolute.parent().unwrap_or(Path::new("/"));
    match file.strip_prefix(dir) {
        Ok(relative) => origin.display_of(&relative.to_string_lossy()),
        Err(_) => file.to_owned(),
    }
}
