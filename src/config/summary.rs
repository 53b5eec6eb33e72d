//! The `summary` section: how matches are folded into a summary (group and pattern caps,
//! de-duplication masks, the time zone of the times shown).

use super::SummaryOptions;
use super::walk::{Ctx, names_in, opt};
use super::yaml::{Kind, Node};
use crate::rules::short_regex_error;
use crate::rules::{REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT};
use crate::window::BUILTIN_MASKS;

const SUMMARY_KEYS: &[&str] = &[
    "max_groups",
    "max_patterns",
    "masks",
    "custom_masks",
    "timezone",
];

const CUSTOM_MASK_KEYS: &[&str] = &["name", "pattern"];

pub(crate) fn summary(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<SummaryOptions> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "summary", SUMMARY_KEYS)?;
    let defaults = SummaryOptions::default();
    let count = |ctx: &mut Ctx<'_>, key: &str, default: usize, max: u64| {
        opt(ctx, &map, key, default, |c, n, k| {
            c.count(n, &format!("summary.{k}"), 1, max)
        })
    };
    let max_groups = count(ctx, "max_groups", defaults.max_groups, 1_000);
    let max_patterns = count(ctx, "max_patterns", defaults.max_patterns, 100);
    let masks = opt(ctx, &map, "masks", defaults.masks, |c, n, _| masks(c, n));
    let custom = defaults.custom_masks;
    let custom_masks = opt(ctx, &map, "custom_masks", custom, |c, n, _| {
        custom_masks(c, n)
    });
    let timezone = opt(ctx, &map, "timezone", defaults.timezone, |c, n, _| {
        c.timezone(n, "summary.timezone")
    });
    Some(SummaryOptions {
        max_groups: max_groups?,
        max_patterns: max_patterns?,
        masks: masks?,
        custom_masks: custom_masks?,
        timezone: timezone?,
    })
}

/// The `name:` of every `summary.custom_masks` entry, without validation (a rule's `masks:` may
/// name them).
pub(crate) fn custom_mask_names(node: Option<&Node>) -> Vec<String> {
    let Some(Kind::Map(entries)) = node.map(|n| &n.kind) else {
        return Vec::new();
    };
    let Some((_, masks)) = entries
        .iter()
        .find(|(k, _)| matches!(&k.kind, Kind::Str(k) if k == "custom_masks"))
    else {
        return Vec::new();
    };
    names_in(masks)
}

fn masks(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<String>> {
    let names = ctx.strings(node, "summary.masks")?;
    let mut ok = true;
    for (name, pos) in &names {
        if !BUILTIN_MASKS.contains(&name.as_str()) {
            ctx.error(
                *pos,
                format!("unknown mask `{name}` in `summary.masks`"),
                Some(super::diag::suggestion_help(name, BUILTIN_MASKS)),
            );
            ok = false;
        }
    }
    ok.then(|| names.into_iter().map(|(n, _)| n).collect())
}

fn custom_masks(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<(String, regex::Regex)>> {
    let items = ctx.list(node, "summary.custom_masks")?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let what = format!("summary.custom_masks[{i}]");
        let Some(map) = ctx.map(item, &what, CUSTOM_MASK_KEYS) else {
            ok = false;
            continue;
        };
        let name = ctx
            .required(&map, "name", &format!("`{what}`"))
            .and_then(|n| ctx.non_empty_string(n, &format!("{what}.name")));
        let pattern = ctx
            .required(&map, "pattern", &format!("`{what}`"))
            .and_then(|n| {
                let text = ctx.non_empty_string(n, &format!("{what}.pattern"))?;
                match regex::RegexBuilder::new(&text)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
                    .build()
                {
                    Ok(re) => Some(re),
                    Err(err) => {
                        let message = short_regex_error(&err.to_string());
                        ctx.error(
                            n.pos,
                            format!("`{what}.pattern` is not a valid regex: {message}"),
                            None,
                        );
                        None
                    }
                }
            });
        match (name, pattern) {
            // The placeholder shown in patterns in place of what the regex matched.
            (Some(name), Some(pattern)) => out.push((format!("<{name}>"), pattern)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
