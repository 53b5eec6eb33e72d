//! The rule keys that shape a rule's message rather than its matching: `masks:`, `show:` and
//! `severity_from:` (see `rules::RuleMessage`).

use super::walk::severity;
use super::walk::{Ctx, Map};
use super::yaml::{Kind, Node, Pos};
use crate::rules::Rule;
use crate::rules::short_regex_error;
use crate::rules::{RuleMessage, SeverityFrom};
use crate::window::BUILTIN_MASKS;

const SEVERITY_FROM_KEYS: &[&str] = &["capture", "map"];

/// Most `show:` regexes per rule.
const MAX_SHOW: u64 = 10;

/// Reads the message keys of a rule; `custom_masks` are the names of `summary.custom_masks`.
/// Returns the settings and the position of `severity_from.capture`, for [`check_capture`].
pub(crate) fn read(
    ctx: &mut Ctx<'_>,
    map: &Map<'_>,
    custom_masks: &[String],
) -> Option<(RuleMessage, Option<Pos>)> {
    let masks = match map.get("masks") {
        Some(node) => masks(ctx, node, custom_masks).map(Some),
        None => Some(None),
    };
    let show = match map.get("show") {
        Some(node) => show(ctx, node),
        None => Some(Vec::new()),
    };
    let severity_from = match map.get("severity_from") {
        Some(node) => severity_from(ctx, node).map(Some),
        None => Some(None),
    };
    let severity_from = severity_from?;
    let capture_pos = severity_from.as_ref().map(|(_, pos)| *pos);
    let message = RuleMessage {
        masks: masks?,
        show: show?,
        severity_from: severity_from.map(|(from, _)| from),
    };
    Some((message, capture_pos))
}

/// Reports a `severity_from.capture` that no pattern of the compiled rule defines.
pub(crate) fn check_capture(ctx: &mut Ctx<'_>, rule: &Rule, pos: Option<Pos>) {
    let (Some(from), Some(pos)) = (&rule.message.severity_from, pos) else {
        return;
    };
    let defined = rule
        .patterns
        .iter()
        .any(|re| re.capture_names().flatten().any(|n| n == from.capture));
    if !defined {
        ctx.error(
            pos,
            format!(
                "rule `{}`: severity_from capture `{}` is not a named capture of its pattern",
                rule.name, from.capture
            ),
            Some(format!(
                "write the level as `(?P<{}>...)` in `pattern`",
                from.capture
            )),
        );
    }
}

/// `masks: none`, or a list of built-in or custom mask names.
fn masks(ctx: &mut Ctx<'_>, node: &Node, custom: &[String]) -> Option<Vec<String>> {
    if matches!(&node.kind, Kind::Str(s) if s == "none") {
        return Some(Vec::new());
    }
    let names = ctx.strings(node, "masks")?;
    let mut known: Vec<&str> = BUILTIN_MASKS.to_vec();
    known.extend(custom.iter().map(String::as_str));
    let mut ok = true;
    for (name, pos) in &names {
        if !known.contains(&name.as_str()) {
            ctx.error(
                *pos,
                format!("unknown mask `{name}` in `masks`"),
                Some(format!(
                    "{}; `masks: none` masks nothing",
                    super::diag::suggestion_help(name, &known)
                )),
            );
            ok = false;
        }
    }
    ok.then(|| names.into_iter().map(|(n, _)| n).collect())
}

fn show(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<regex::bytes::Regex>> {
    let patterns = ctx.strings(node, "show")?;
    if patterns.len() as u64 > MAX_SHOW {
        ctx.error(
            node.pos,
            format!(
                "`show` has {} regexes, at most {MAX_SHOW} are allowed",
                patterns.len()
            ),
            None,
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (pattern, pos) in patterns {
        match crate::rules::compile_pattern(&pattern) {
            Ok(re) => out.push(re),
            Err(message) => {
                ctx.error(
                    pos,
                    format!("invalid regex in `show`: {}", short_regex_error(&message)),
                    Some(format!("the regex is `{pattern}`")),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn severity_from(ctx: &mut Ctx<'_>, node: &Node) -> Option<(SeverityFrom, Pos)> {
    let map = ctx.map(node, "severity_from", SEVERITY_FROM_KEYS)?;
    let capture = ctx
        .required(&map, "capture", "`severity_from`")
        .and_then(|n| Some((ctx.non_empty_string(n, "severity_from.capture")?, n.pos)));
    let levels = ctx
        .required(&map, "map", "`severity_from`")
        .and_then(|n| levels(ctx, n));
    let (capture, pos) = capture?;
    Some((
        SeverityFrom {
            capture,
            map: levels?,
        },
        pos,
    ))
}

fn levels(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<(String, crate::rules::Severity)>> {
    let Kind::Map(entries) = &node.kind else {
        ctx.error(
            node.pos,
            format!(
                "`severity_from.map` must map level values to severities, found {}",
                node.kind.describe()
            ),
            Some("for example `map: {ERROR: error, WARN: warning, FATAL: critical}`".into()),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (key, value) in entries {
        let Some(name) = ctx.string(key, "severity_from.map") else {
            ok = false;
            continue;
        };
        match severity(ctx, value, &format!("severity_from.map.{name}")) {
            Some(level) => out.push((name, level)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn load_err(text: &str) -> String {
        match super::super::load_text(
            &Path::new("/etc/logding").join("logding.yaml"),
            text.to_owned(),
            true,
            &|_| None,
        ) {
            Ok(_) => panic!("loaded:\n{text}"),
            Err(err) => err.to_string(),
        }
    }

    /// One round of `check` shows every problem: structure, regexes, `group_by`, the message
    /// keys and examples, even in a rule that has several of them.
    #[test]
    fn check_reports_every_problem_at_once() {
        let text = "\
sources:
  - name: app
    paths: [/var/log/app/*.log]
    multline: java
  - name: db
    paths: [/var/log/db/*.log]
    multiline: postgress
rules:
  - name: a
    pattern: 'foo('
    group_by: [status]
  - name: b
    pattern: 'bar (?P<code>\\d+)'
    group_by: [status]
    severty: error
    severity: fatal
  - pattern: 'no name'
    examples: {match: ['nothing']}
  - name: d
    pattern: '(?P<lvl>ERROR|WARN) '
    severity_from: {capture: level, map: {ERROR: error, WARN: warn}}
    masks: [numbers]
    show: ['STATEMENT:(']
";
        let errors = load_err(text);
        for expected in [
            "unknown key `multline`",
            "unknown multiline preset `postgress`",
            "rule `a`: invalid regex",
            "rule `a`: group_by `status`",
            "rule `b`: group_by `status`",
            "unknown key `severty`",
            "`severity` must be one of",
            "missing the required key `name`",
            "rule `#3`: example does not match",
            "severity_from.map.WARN",
            "unknown mask `numbers`",
            "invalid regex in `show`",
            "found 12 problems",
        ] {
            assert!(errors.contains(expected), "no {expected:?} in:\n{errors}");
        }
    }

    #[test]
    fn severity_from_names_a_capture_of_the_pattern() {
        let errors = load_err(
            "rules:\n  - name: d\n    pattern: '(?P<lvl>ERROR) '\n    \
             severity_from: {capture: level, map: {ERROR: error}}\n",
        );
        assert!(
            errors.contains("severity_from capture `level` is not a named capture"),
            "{errors}"
        );
    }
}
