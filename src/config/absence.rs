//! The absence keys: a rule's `kind: absence` with `window`, `min_count`, `keys`, `arm` and
//! `schedule`, and a source's `source_stalled`. Read into [`crate::absence`]'s types.

use std::time::Duration;

use super::walk::{Ctx, Map};
use super::yaml::{Kind, Node, Pos};
use crate::absence::{AbsenceRule, Arm, DEFAULT_LEARN_WINDOW, Group, Keys, Stall};
use crate::rules::Rule;

/// The rule keys only an absence rule may have.
pub(crate) const ABSENCE_ONLY_KEYS: &[&str] = &["window", "keys", "arm", "schedule"];

const KEYS_KEYS: &[&str] = &["static", "learn", "learn_window"];

/// What `kind:` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuleKind {
    /// Fires on lines that are there (the default).
    Match,
    /// Fires on lines that are not.
    Absence,
}

/// Reads a rule's `kind:` (`match` when absent).
pub(crate) fn kind(ctx: &mut Ctx<'_>, map: &Map<'_>) -> Option<RuleKind> {
    let Some(node) = map.get("kind") else {
        return Some(RuleKind::Match);
    };
    ctx.choice_of(
        node,
        "kind",
        &[("match", RuleKind::Match), ("absence", RuleKind::Absence)],
    )
}

/// Reports the absence-only keys a `kind: match` rule has.
pub(crate) fn reject_absence_keys(ctx: &mut Ctx<'_>, map: &Map<'_>) {
    for key in ABSENCE_ONLY_KEYS {
        if let Some(pos) = map.key_pos(key) {
            ctx.error(
                pos,
                format!("`{key}` is only for absence rules"),
                Some(
                    "add `kind: absence` to fire when the pattern is *not* seen; a match rule's \
                     window is the top-level `window`"
                        .into(),
                ),
            );
        }
    }
}

/// Reads an absence rule's own `min_count` (at least 1: zero hits can never be too few).
pub(crate) fn min_count(ctx: &mut Ctx<'_>, map: &Map<'_>) -> Option<u64> {
    let Some(node) = map.get("min_count") else {
        return Some(1);
    };
    if matches!(node.kind, Kind::Int(0)) {
        ctx.error(
            node.pos,
            "an absence rule's `min_count` must be at least 1",
            Some(
                "it fires when fewer than `min_count` lines match in `window`; fewer than 0 \
                 never happens, so the rule could never fire"
                    .into(),
            ),
        );
        return None;
    }
    ctx.integer(node, "min_count", 1, 1_000_000)
}

/// Reads the rest of an absence rule (`window` required; `keys`, `arm`, `schedule`), for the
/// compiled `rule` and its `min_count`. `schedules` are the names of the time intervals a
/// `schedule:` may name.
pub(crate) fn absence_rule(
    ctx: &mut Ctx<'_>,
    map: &Map<'_>,
    rule: &Rule,
    min_count: u64,
    schedules: &[String],
) -> Option<AbsenceRule> {
    let window = ctx
        .required(map, "window", "an absence rule")
        .and_then(|n| ctx.duration(n, "window"));
    let keys = match map.get("keys") {
        Some(node) => keys(ctx, node, &rule.group_by),
        None => Some(Keys {
            fixed: Vec::new(),
            // With `group_by` and no `keys:`, the values seen are the ones expected.
            learn: true,
            learn_window: DEFAULT_LEARN_WINDOW,
        }),
    };
    let arm = match map.get("arm") {
        Some(node) => ctx.choice_of(
            node,
            "arm",
            &[
                ("on_start", Arm::OnStart),
                ("after_first_seen", Arm::AfterFirstSeen),
            ],
        ),
        None => Some(Arm::OnStart),
    };
    let schedule = match map.get("schedule") {
        Some(node) => schedule(ctx, node, schedules).map(Some),
        None => Some(None),
    };
    if let (Some(window), Some(keys)) = (window, &keys)
        && keys.learn
        && keys.learn_window < window
        && let Some(pos) = map.get("keys").map(|n| n.pos)
    {
        ctx.error(
            pos,
            "`keys.learn_window` is shorter than the rule's `window`",
            Some("a learned value would be forgotten before it could be found absent".into()),
        );
        return None;
    }
    Some(AbsenceRule {
        name: rule.name.clone(),
        severity: rule.severity,
        what: rule
            .patterns
            .first()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        window: window?,
        min_count,
        group_by: rule.group_by.clone(),
        keys: keys?,
        arm: arm?,
        schedule: schedule?,
    })
}

fn schedule(ctx: &mut Ctx<'_>, node: &Node, schedules: &[String]) -> Option<String> {
    let name = ctx.non_empty_string(node, "schedule")?;
    super::time_intervals::check_interval_name(ctx, &name, node.pos, schedules).then_some(name)
}

fn keys(ctx: &mut Ctx<'_>, node: &Node, group_by: &[String]) -> Option<Keys> {
    let map = ctx.map(node, "keys", KEYS_KEYS)?;
    let fixed = match map.get("static") {
        Some(n) => static_keys(ctx, n, group_by),
        None => Some(Vec::new()),
    };
    let learn = match map.get("learn") {
        Some(n) => ctx.boolean(n, "keys.learn"),
        None => Some(map.get("static").is_none()),
    };
    let learn_window = match map.get("learn_window") {
        Some(n) => ctx.duration(n, "keys.learn_window"),
        None => Some(DEFAULT_LEARN_WINDOW),
    };
    Some(Keys {
        fixed: fixed?,
        learn: learn?,
        learn_window: learn_window?,
    })
}

/// `static:` entries: a value (one `group_by` capture) or a mapping of every capture to its
/// value.
fn static_keys(ctx: &mut Ctx<'_>, node: &Node, group_by: &[String]) -> Option<Vec<Group>> {
    let Kind::Seq(items) = &node.kind else {
        ctx.error(
            node.pos,
            format!(
                "`keys.static` must be a list, found {}",
                node.kind.describe()
            ),
            None,
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let what = format!("keys.static[{i}]");
        let group = match &item.kind {
            Kind::Map(_) => {
                let names: Vec<&str> = group_by.iter().map(String::as_str).collect();
                ctx.map(item, &what, &names).and_then(|map| {
                    group_by
                        .iter()
                        .map(|name| {
                            let value = ctx.required(&map, name, &format!("`{what}`"))?;
                            Some((name.clone(), ctx.string(value, &format!("{what}.{name}"))?))
                        })
                        .collect::<Option<Group>>()
                })
            }
            _ if group_by.len() == 1 => ctx
                .string(item, &what)
                .map(|value| vec![(group_by[0].clone(), value)]),
            _ => {
                one_value_needs_one_capture(ctx, item.pos, &what, group_by);
                None
            }
        };
        match group {
            Some(group) if !out.contains(&group) => out.push(group),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn one_value_needs_one_capture(ctx: &mut Ctx<'_>, pos: Pos, what: &str, group_by: &[String]) {
    let help = if group_by.is_empty() {
        "add `group_by:` with the capture whose values are expected".to_owned()
    } else {
        format!(
            "with several `group_by` captures, write a mapping: {{{}}}",
            group_by
                .iter()
                .map(|n| format!("{n}: ..."))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    ctx.error(
        pos,
        format!("`{what}` must name a value for each `group_by` capture"),
        Some(help),
    );
}

/// Reads every source's `source_stalled:` (the sources section's items, as written) into
/// `(source name, duration)`.
pub(crate) fn stalls(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Vec<(String, Duration)> {
    let Some(Node {
        kind: Kind::Seq(items),
        ..
    }) = node
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Kind::Map(entries) = &item.kind else {
            continue;
        };
        let get = |key: &str| {
            entries.iter().find_map(|(k, v)| match &k.kind {
                Kind::Str(k) if k == key => Some(v),
                _ => None,
            })
        };
        let (
            Some(stalled),
            Some(Node {
                kind: Kind::Str(name),
                ..
            }),
        ) = (get("source_stalled"), get("name"))
        else {
            continue;
        };
        if let Some(after) = ctx.duration(stalled, &format!("sources[{i}].source_stalled")) {
            out.push((name.clone(), after));
        }
    }
    out
}

/// The stalls of the sources read.
pub(crate) fn with_paths(stalls: Vec<(String, Duration)>, sources: &[super::Source]) -> Vec<Stall> {
    stalls
        .into_iter()
        .filter_map(|(name, after)| {
            let source = sources.iter().find(|s| s.name == name)?;
            Some(Stall {
                source: name,
                after,
                paths: source.paths.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(text: &str) -> Result<super::super::Config, String> {
        let path = Path::new("/etc/logding/logding.yaml");
        super::super::load_text(path, text.to_owned(), true, &|_| None).map_err(|e| e.to_string())
    }

    const SOURCES: &str =
        "sources: [{name: app, paths: [/var/log/app/*.log], source_stalled: 10m}]\n";

    #[test]
    fn an_absence_rule_and_a_stalled_source_load_with_their_defaults() {
        let config = load(&format!(
            "{SOURCES}rules:
  - name: nightly-sync
    kind: absence
    pattern: 'sync (?P<job>\\w+) finished'
    group_by: [job]
    window: 15m
    keys: {{static: [nightly, hourly]}}
  - name: heartbeat
    kind: absence
    pattern: beat
    window: 1m
    min_count: 3
    arm: after_first_seen
"
        ))
        .expect("loads");
        let watches = &config.incidents.absence;
        let sync = watches.rule("nightly-sync").expect("read");
        assert_eq!(sync.window, Duration::from_secs(900));
        assert_eq!((sync.min_count, sync.arm), (1, Arm::OnStart));
        assert_eq!(sync.keys.fixed.len(), 2);
        assert!(!sync.keys.learn, "static keys alone: nothing learned");
        let beat = watches.rule("heartbeat").expect("read");
        assert_eq!((beat.min_count, beat.arm), (3, Arm::AfterFirstSeen));
        assert_eq!(
            config
                .rules
                .get(config.rules.find("heartbeat").expect("a rule"))
                .min_count
                .get(),
            1,
            "the aggregator counts every heartbeat"
        );
        assert_eq!(watches.stalls[0].after, Duration::from_secs(600));
        assert_eq!(watches.stalls[0].paths, ["/var/log/app/*.log"]);
    }

    #[test]
    fn nonsense_is_rejected_with_its_place() {
        let rule = |extra: &str| {
            format!("{SOURCES}rules:\n  - name: hb\n    kind: absence\n    pattern: beat\n{extra}")
        };
        for (extra, line_col, message) in [
            (
                "    window: 5m\n    min_count: 0\n",
                ":7:16",
                "`min_count` must be at least 1",
            ),
            (
                "    window: 0s\n",
                ":6:13",
                "`window` must be greater than zero",
            ),
            (
                "    window: 5m\n    schedule: nights\n",
                ":7:15",
                "unknown time interval `nights`",
            ),
            (
                "    min_count: 2\n",
                ":3:5",
                "missing the required key `window`",
            ),
            (
                "    window: 5m\n    arm: sometimes\n",
                ":7:10",
                "`arm` must be one of",
            ),
            (
                "    window: 5m\n    keys: {static: [a]}\n",
                ":7:21",
                "must name a value for each `group_by` capture",
            ),
        ] {
            let err = load(&rule(extra)).expect_err(extra);
            assert!(
                err.contains(&format!("logding.yaml{line_col}")) && err.contains(message),
                "{extra}\n{err}"
            );
        }
        // Every problem of a rule at once: a wrong `min_count` does not hide the schedule.
        let err = load(&rule(
            "    window: 5m\n    min_count: 0\n    schedule: nights\n",
        ))
        .expect_err("two problems");
        assert!(err.contains(":7:16") && err.contains(":8:15"), "{err}");
        let err = load(&format!(
            "{SOURCES}rules:\n  - name: oom\n    pattern: OOM\n    window: 5m\n"
        ))
        .expect_err("a match rule with a window");
        assert!(
            err.contains(":5:5") && err.contains("only for absence rules"),
            "{err}"
        );
        let err = load(&format!(
            "sources: [{{name: app, paths: [/a.log], source_stalled: 0s}}]\n{}",
            "rules: [{name: oom, pattern: OOM}]\n"
        ))
        .expect_err("stalled after 0s");
        assert!(
            err.contains("source_stalled` must be greater than zero"),
            "{err}"
        );
    }
}
