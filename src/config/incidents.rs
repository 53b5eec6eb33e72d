//! The `incidents` section (lifecycle defaults and bounds), the rule keys that override it
//! (`repeat_interval`, `resolve_after`, `send_resolved`, `keep_firing_for`), and a source's
//! `timestamp:` (how its lines say when they happened).

use std::collections::HashMap;
use std::time::Duration;

use jiff::tz::TimeZone;

use super::walk::opt;
use super::walk::{Ctx, Map};
use super::yaml::{Kind, Node};
use crate::event_time::{DEFAULT_MAX_SKEW, PRESETS, TimestampSpec};
use crate::incident::{Policies, Policy};

const INCIDENTS_KEYS: &[&str] = &[
    "repeat_interval",
    "resolve_after",
    "send_resolved",
    "keep_firing_for",
    "escalate_ratio",
    "max_incidents",
];

const TIMESTAMP_KEYS: &[&str] = &["preset", "pattern", "format", "timezone", "max_skew"];

/// A rule's own lifecycle settings; `None` takes the `incidents:` default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PolicyOverride {
    repeat_interval: Option<Duration>,
    resolve_after: Option<Duration>,
    send_resolved: Option<bool>,
    keep_firing_for: Option<Duration>,
}

impl PolicyOverride {
    /// Returns true if and only if the rule sets none of the keys.
    pub(crate) fn is_empty(&self) -> bool {
        *self == PolicyOverride::default()
    }

    fn over(self, defaults: Policy) -> Policy {
        Policy {
            repeat_interval: self.repeat_interval.unwrap_or(defaults.repeat_interval),
            resolve_after: self.resolve_after.unwrap_or(defaults.resolve_after),
            send_resolved: self.send_resolved.unwrap_or(defaults.send_resolved),
            keep_firing_for: self.keep_firing_for.unwrap_or(defaults.keep_firing_for),
        }
    }
}

/// Reads the `incidents:` section into policies with no per-rule settings yet.
pub(crate) fn incidents(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Policies> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "incidents", INCIDENTS_KEYS)?;
    let fallback = Policies::default();
    let defaults = policy_keys(ctx, &map, "incidents.").map(|o| o.over(fallback.defaults));
    let integer = |ctx: &mut Ctx<'_>, key: &str, default: u64, min: u64| {
        opt(ctx, &map, key, default, |c, n, k| {
            c.integer(n, &format!("incidents.{k}"), min, 1_000_000)
        })
    };
    let escalate_ratio = integer(ctx, "escalate_ratio", fallback.escalate_ratio.into(), 2);
    let max_incidents = integer(ctx, "max_incidents", fallback.max_incidents as u64, 1);
    Some(Policies {
        defaults: defaults?,
        rules: HashMap::new(),
        escalate_ratio: u32::try_from(escalate_ratio?).ok()?,
        max_incidents: usize::try_from(max_incidents?).ok()?,
        absence: crate::absence::Watches::default(),
    })
}

/// Fills in the per-rule settings of `policies`.
pub(crate) fn with_rules(mut policies: Policies, rules: Vec<(String, PolicyOverride)>) -> Policies {
    for (name, own) in rules {
        policies.rules.insert(name, own.over(policies.defaults));
    }
    policies
}

/// Reads the lifecycle keys of a rule (or, with `prefix` `incidents.`, of the section).
pub(crate) fn policy_keys(
    ctx: &mut Ctx<'_>,
    map: &Map<'_>,
    prefix: &str,
) -> Option<PolicyOverride> {
    let duration = |ctx: &mut Ctx<'_>, key: &str| match map.get(key) {
        Some(n) => ctx.duration(n, &format!("{prefix}{key}")).map(Some),
        None => Some(None),
    };
    let repeat_interval = duration(ctx, "repeat_interval");
    let resolve_after = duration(ctx, "resolve_after");
    let keep_firing_for = match map.get("keep_firing_for") {
        // Zero is meaningful here (no extra hold), unlike other durations.
        Some(n) if matches!(&n.kind, Kind::Str(s) if s.trim() == "0s" || s.trim() == "0") => {
            Some(Some(Duration::ZERO))
        }
        _ => duration(ctx, "keep_firing_for"),
    };
    let send_resolved = match map.get("send_resolved") {
        Some(n) => ctx.boolean(n, &format!("{prefix}send_resolved")).map(Some),
        None => Some(None),
    };
    Some(PolicyOverride {
        repeat_interval: repeat_interval?,
        resolve_after: resolve_after?,
        send_resolved: send_resolved?,
        keep_firing_for: keep_firing_for?,
    })
}

/// Reads a source's `timestamp:`: a preset name, or a mapping (`preset` or `pattern` +
/// `format`, and `timezone`, `max_skew`).
pub(crate) fn timestamp(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<TimestampSpec> {
    let presets: Vec<&str> = PRESETS.iter().map(|(name, _, _)| *name).collect();
    if let Kind::Str(_) = &node.kind {
        let name = ctx.choice(node, what, &presets)?;
        return spec(ctx, node, TimestampSpec::preset(name, TimeZone::system()));
    }
    let map = ctx.map(node, what, TIMESTAMP_KEYS)?;
    let timezone = match map.get("timezone") {
        Some(n) => ctx.timezone(n, &format!("{what}.timezone")),
        None => Some(TimeZone::system()),
    };
    let max_skew = opt(ctx, &map, "max_skew", DEFAULT_MAX_SKEW, |c, n, _| {
        c.duration(n, &format!("{what}.max_skew"))
    });
    let built = match (map.get("preset"), map.get("pattern"), map.get("format")) {
        (Some(preset), None, None) => {
            let name = ctx.choice(preset, &format!("{what}.preset"), &presets)?;
            TimestampSpec::preset(name, timezone.clone()?)
        }
        (None, Some(pattern), Some(format)) => {
            let pattern_text = ctx.non_empty_string(pattern, &format!("{what}.pattern"))?;
            let format_text = ctx.non_empty_string(format, &format!("{what}.format"))?;
            let built = TimestampSpec::custom(&pattern_text, &format_text, timezone.clone()?);
            return spec(ctx, pattern, built).map(|mut s| {
                s.max_skew = max_skew.unwrap_or(DEFAULT_MAX_SKEW);
                s
            });
        }
        _ => {
            ctx.error(
                map.pos,
                format!("`{what}` needs either `preset` or both `pattern` and `format`"),
                Some(format!("presets: {}", presets.join(", "))),
            );
            return None;
        }
    };
    let mut spec = spec(ctx, node, built)?;
    spec.max_skew = max_skew?;
    Some(spec)
}

fn spec(
    ctx: &mut Ctx<'_>,
    node: &Node,
    built: Result<TimestampSpec, crate::event_time::SpecError>,
) -> Option<TimestampSpec> {
    built
        .map_err(|err| ctx.error(node.pos, err.to_string(), None))
        .ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::load_yaml as load;
    use crate::incident::{Policies, Policy};

    const RULES: &str = "
rules:
  - name: db
    pattern: timeout
    repeat_interval: 1h
    send_resolved: false
  - name: oom
    pattern: OutOfMemoryError
";

    #[test]
    fn defaults_section_and_rule_keys() {
        let config = load(RULES).unwrap();
        assert_eq!(*config.incidents.of("oom"), Policy::default());
        let db = config.incidents.of("db");
        assert_eq!(
            (db.repeat_interval, db.send_resolved),
            (Duration::from_secs(3600), false)
        );
        assert_eq!(db.resolve_after, Duration::from_secs(300));
        assert_eq!(
            (
                config.incidents.escalate_ratio,
                config.incidents.max_incidents
            ),
            (
                Policies::default().escalate_ratio,
                Policies::default().max_incidents
            )
        );

        let text = format!(
            "incidents: {{resolve_after: 2m, keep_firing_for: 0s, escalate_ratio: 5, max_incidents: 50}}\n{RULES}"
        );
        let config = load(&text).unwrap();
        let db = config.incidents.of("db");
        assert_eq!(
            (db.resolve_after, db.keep_firing_for),
            (Duration::from_secs(120), Duration::ZERO)
        );
        assert_eq!(
            config.incidents.of("oom").resolve_after,
            Duration::from_secs(120)
        );
        assert_eq!(
            (
                config.incidents.escalate_ratio,
                config.incidents.max_incidents
            ),
            (5, 50)
        );
    }

    #[test]
    fn timestamp_presets_and_custom_layouts() {
        let text = format!(
            "sources:
  - {{name: app, paths: [/var/log/app.log], timestamp: log4j}}
  - name: web
    paths: [/var/log/web.log]
    timestamp: {{pattern: '^(?P<ts>\\S+)', format: '%d.%m.%Y', timezone: UTC, max_skew: 1m}}
{RULES}"
        );
        let config = load(&text).unwrap();
        assert!(config.sources[0].timestamp.is_some());
        let web = config.sources[1].timestamp.as_ref().unwrap();
        assert_eq!(web.max_skew, Duration::from_secs(60));

        let bad =
            format!("sources:\n  - {{name: app, paths: [/x.log], timestamp: log5j}}\n{RULES}");
        let err = load(&bad).unwrap_err();
        assert!(
            err.contains("`sources[0].timestamp` must be one of"),
            "{err}"
        );
        assert!(err.contains("did you mean `log4j`?"), "{err}");
        let bad = format!(
            "sources:\n  - name: app\n    paths: [/x.log]\n    timestamp: {{pattern: '^\\d+', format: epoch}}\n{RULES}"
        );
        let err = load(&bad).unwrap_err();
        assert!(
            err.contains("the timestamp pattern has no capture named `ts`"),
            "{err}"
        );
        assert!(err.contains("logding.yaml:4:"), "{err}");
        let bad = format!("incidents: {{repeat_intervall: 1h}}\n{RULES}");
        assert!(load(&bad).unwrap_err().contains("repeat_interval"));
    }
}
