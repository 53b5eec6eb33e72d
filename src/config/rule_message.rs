//! The rule keys that shape a rule's message rather than its matching: `masks:`, `show:` and
//! `severity_from:` (see `window::RuleMessage`).

use super::build::{severity, short_regex_error};
use super::walk::{Ctx, Map};
use super::yaml::{Kind, Node, Pos};
use crate::rules::Rule;
use crate::window::{BUILTIN_MASKS, RuleMessage, SeverityFrom};

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
