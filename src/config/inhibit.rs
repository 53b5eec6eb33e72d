//! `inhibit:` (while a source incident is active, its targets are folded under it) and
//! `mute:` (mute hours, at the top level for every rule and per rule), read into
//! [`crate::suppress::Settings`]'s parts. Rule and interval names are checked here, with
//! positions, so `check` points at the name that is wrong.

use super::diag::{backticked, suggest};
use super::silences::matchers;
use super::time_intervals::interval_refs;
use super::walk::Ctx;
use super::walk::severity;
use super::yaml::{Kind, Node, Pos};
use crate::suppress::{InhibitRule, MuteMode, MutePolicy};

const INHIBIT_KEYS: &[&str] = &["source", "target", "equal"];
const SOURCE_KEYS: &[&str] = &["rule", "matchers"];
const TARGET_KEYS: &[&str] = &["rules", "matchers"];
const MUTE_KEYS: &[&str] = &["mute_during", "active_during", "mode", "except_severity"];

/// Reads `inhibit:`; `rules` are the rule names as written.
pub(crate) fn inhibit(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    rules: &[String],
) -> Option<Vec<InhibitRule>> {
    let Some(node) = node else {
        return Some(Vec::new());
    };
    let items = ctx.list(node, "inhibit")?;
    let read: Vec<Option<InhibitRule>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| inhibit_rule(ctx, item, &format!("inhibit[{index}]"), rules))
        .collect();
    read.into_iter().collect()
}

fn inhibit_rule(
    ctx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    rules: &[String],
) -> Option<InhibitRule> {
    let map = ctx.map(node, what, INHIBIT_KEYS)?;
    let source_node = ctx.required(&map, "source", &format!("`{what}`"));
    let target_node = ctx.required(&map, "target", &format!("`{what}`"));
    let source = source_node.and_then(|n| {
        let what = format!("{what}.source");
        let source = ctx.map(n, &what, SOURCE_KEYS)?;
        let rule_node = ctx.required(&source, "rule", &format!("`{what}`"))?;
        let rule = ctx.non_empty_string(rule_node, &format!("{what}.rule"))?;
        let known = known_rule(ctx, &rule, rule_node.pos, rules);
        let found = match source.get("matchers") {
            Some(n) => matchers(ctx, n, &format!("{what}.matchers"))?,
            None => Vec::new(),
        };
        known.then_some((rule, found))
    });
    let target = target_node.and_then(|n| {
        let what = format!("{what}.target");
        let target = ctx.map(n, &what, TARGET_KEYS)?;
        let names = match target.get("rules") {
            Some(n) => ctx.strings(n, &format!("{what}.rules"))?,
            None => Vec::new(),
        };
        let known = names.iter().fold(true, |ok, (name, pos)| {
            known_rule(ctx, name, *pos, rules) && ok
        });
        let found = match target.get("matchers") {
            Some(n) => matchers(ctx, n, &format!("{what}.matchers"))?,
            None => Vec::new(),
        };
        known.then(|| (names.into_iter().map(|(n, _)| n).collect(), found))
    });
    let equal = match map.get("equal") {
        Some(n) => ctx.strings(n, &format!("{what}.equal")),
        None => Some(Vec::new()),
    };
    let ((source_rule, source_matchers), (target_rules, target_matchers)) = (source?, target?);
    Some(InhibitRule {
        source_rule,
        source_matchers,
        target_rules,
        target_matchers,
        equal: equal?.into_iter().map(|(n, _)| n).collect(),
    })
}

/// Returns true if and only if `name` is one of `rules`; records an error at `pos` otherwise.
fn known_rule(ctx: &mut Ctx<'_>, name: &str, pos: Pos, rules: &[String]) -> bool {
    if rules.iter().any(|r| r == name) {
        return true;
    }
    let known: Vec<&str> = rules.iter().map(String::as_str).collect();
    let help = match suggest(name, &known) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("defined rules: {}", backticked(&known)),
    };
    ctx.error(pos, format!("unknown rule `{name}`"), Some(help));
    false
}

/// Reads a `mute:` mapping (`what` is `mute` or a rule's `mute`); `intervals` are the names
/// under `time_intervals:`.
pub(crate) fn mute(
    ctx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    intervals: &[String],
) -> Option<MutePolicy> {
    let map = ctx.map(node, what, MUTE_KEYS)?;
    let names = |ctx: &mut Ctx<'_>, key: &str| match map.get(key) {
        Some(n) => interval_refs(ctx, n, &format!("{what}.{key}"), intervals),
        None => Some(Vec::new()),
    };
    let mute_during = names(ctx, "mute_during");
    let active_during = names(ctx, "active_during");
    let mode = match map.get("mode") {
        Some(n) => ctx.choice_of(
            n,
            &format!("{what}.mode"),
            &[("drop", MuteMode::Drop), ("defer", MuteMode::Defer)],
        ),
        None => Some(MuteMode::Drop),
    };
    let except_severity = match map.get("except_severity") {
        Some(n) => severity(ctx, n, &format!("{what}.except_severity")).map(Some),
        None => Some(None),
    };
    let policy = MutePolicy {
        mute_during: mute_during?,
        active_during: active_during?,
        mode: mode?,
        except_severity: except_severity?,
    };
    if policy.mute_during.is_empty()
        && policy.active_during.is_empty()
        && !matches!(node.kind, Kind::Null)
    {
        ctx.error(
            map.pos,
            format!("`{what}` names no interval"),
            Some("set `mute_during:` or `active_during:` to names under `time_intervals:`".into()),
        );
        return None;
    }
    Some(policy)
}

#[cfg(test)]
mod tests {
    use crate::config::load_yaml as load;
    use crate::suppress::MuteMode;

    const INTERVALS: &str = "time_intervals:
  - name: nights
    time_intervals: [{times: [{start_time: '22:00', end_time: '24:00'}]}]
";

    #[test]
    fn inhibit_and_mute_load() {
        let text = format!(
            "{INTERVALS}mute: {{mute_during: [nights], except_severity: critical}}
inhibit:
  - source: {{rule: db-down, matchers: {{cluster: main}}}}
    target: {{rules: [db-timeout]}}
    equal: [cluster]
rules:
  - {{name: db-down, pattern: 'db down (?P<cluster>\\w+)', group_by: [cluster]}}
  - {{name: db-timeout, pattern: timeout, mute: {{active_during: [nights], mode: defer}}}}
"
        );
        let config = load(&text).unwrap();
        let settings = &config.suppression;
        assert_eq!(settings.inhibit[0].source_rule, "db-down");
        assert_eq!(settings.inhibit[0].equal, ["cluster"]);
        let own = settings.mute.of("db-timeout").unwrap();
        assert_eq!((own.mode, own.active_during.len()), (MuteMode::Defer, 1));
        assert_eq!(settings.mute.of("db-down").unwrap().mute_during, ["nights"]);
    }

    #[test]
    fn unknown_rules_and_intervals_are_errors_with_positions() {
        let text = format!(
            "{INTERVALS}inhibit:
  - source: {{rule: db-dwn}}
    target: {{rules: [db-timeout, nope]}}
rules:
  - {{name: db-down, pattern: down}}
  - {{name: db-timeout, pattern: timeout, mute: {{mute_during: [night]}}}}
"
        );
        let err = load(&text).unwrap_err();
        assert!(err.contains("logding.yaml:5:20"), "{err}");
        assert!(err.contains("did you mean `db-down`?"), "{err}");
        assert!(err.contains("logding.yaml:6:34"), "{err}");
        assert!(err.contains("unknown time interval `night`"), "{err}");
        assert!(err.contains("did you mean `nights`?"), "{err}");
    }
}
