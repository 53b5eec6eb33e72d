//! The suppression settings: mute hours per rule or for all (`mute:`), inhibition rules
//! (`inhibit:`), and what they decide for one incident ([`Verdict`]).

use std::collections::HashMap;

use jiff::Timestamp;

use super::interval::TimeIntervals;
use super::silence::{Matcher, Silence, label_value};
use crate::rules::Severity;
use crate::summary::suppressed::Why;

/// Everything the configuration says about suppression.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Named intervals, for mute hours.
    pub intervals: TimeIntervals,
    /// Mute hours.
    pub mute: MutePolicies,
    /// Inhibition rules.
    pub inhibit: Vec<InhibitRule>,
    /// Silences from config files (`silences:`).
    pub silences: Vec<Silence>,
    /// `logding silence add` refuses longer silences; `check` warns about them.
    pub max_silence: std::time::Duration,
}

/// What happens to hits during mute hours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MuteMode {
    /// Counted in the next message's footer, never shown in full.
    #[default]
    Drop,
    /// Held, and reported in full when the interval ends.
    Defer,
}

/// One `mute:` mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MutePolicy {
    /// Muted while any of these holds.
    pub mute_during: Vec<String>,
    /// When not empty, muted while none of these holds.
    pub active_during: Vec<String>,
    /// Drop or defer.
    pub mode: MuteMode,
    /// Incidents at or above this severity are never muted.
    pub except_severity: Option<Severity>,
}

/// Mute hours: the top-level `mute:` and the rules' own.
#[derive(Clone, Debug, Default)]
pub struct MutePolicies {
    /// For rules without their own (`None`: not muted).
    pub defaults: Option<MutePolicy>,
    /// Rules with their own `mute:` (it replaces the top-level one).
    pub rules: HashMap<String, MutePolicy>,
}

/// One `inhibit:` entry: while an incident of `source_rule` (matching `source_matchers`) is
/// active, incidents of `target_rules` (all other rules when empty) matching
/// `target_matchers`, with the same values of the `equal` labels, are folded under it.
#[derive(Clone, Debug)]
pub struct InhibitRule {
    /// The inhibiting rule.
    pub source_rule: String,
    /// Further matchers on the source incident.
    pub source_matchers: Vec<Matcher>,
    /// The rules inhibited; empty: every other rule.
    pub target_rules: Vec<String>,
    /// Further matchers on the target incident.
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

/// What suppression decides for one incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not suppressed.
    Show,
    /// Counted in the footer of the next message (silenced, inhibited, muted with `drop`).
    Count(Why),
    /// Held until the interval named ends (muted with `defer`).
    Defer(String),
}

/// An incident: a rule and its `group_by` values.
pub type Key<'a> = (&'a str, &'a [(String, String)]);

impl MutePolicies {
    /// The mute hours of `rule`.
    pub fn of(&self, rule: &str) -> Option<&MutePolicy> {
        self.rules.get(rule).or(self.defaults.as_ref())
    }
}

impl MutePolicy {
    /// The interval that mutes an incident of `severity` at `now` (for `active_during`,
    /// `outside NAME`), if any.
    pub fn muted_by(
        &self,
        intervals: &TimeIntervals,
        severity: Severity,
        now: Timestamp,
    ) -> Option<String> {
        if self.except_severity.is_some_and(|min| severity >= min) {
            return None;
        }
        if let Some(name) = self
            .mute_during
            .iter()
            .find(|name| intervals.contains(name, now))
        {
            return Some(name.clone());
        }
        let is_active = self.active_during.is_empty()
            || self
                .active_during
                .iter()
                .any(|name| intervals.contains(name, now));
        (!is_active).then(|| format!("outside {}", self.active_during.join(", ")))
    }

    /// The next instant at which one of its intervals starts or ends.
    pub fn next_change(&self, intervals: &TimeIntervals, now: Timestamp) -> Option<Timestamp> {
        self.mute_during
            .iter()
            .chain(&self.active_during)
            .filter_map(|name| intervals.get(name)?.next_change(now))
            .min()
    }
}

impl InhibitRule {
    /// Returns true if and only if `source` (an active incident) inhibits `target`.
    pub fn inhibits(&self, source: Key<'_>, target: Key<'_>) -> bool {
        let (source_rule, source_group) = source;
        let (target_rule, target_group) = target;
        source_rule == self.source_rule
            && target_rule != source_rule
            && (self.target_rules.is_empty() || self.target_rules.iter().any(|r| r == target_rule))
            && self
                .source_matchers
                .iter()
                .all(|m| m.matches(source_rule, source_group))
            && self
                .target_matchers
                .iter()
                .all(|m| m.matches(target_rule, target_group))
            && self.equal.iter().all(|label| {
                label_value(label, source_rule, source_group)
                    == label_value(label, target_rule, target_group)
            })
    }
}

impl Settings {
    /// What happens to the incident `key` of `severity` at `now`, given the active incidents
    /// (`active`, for inhibition) and the silences added at run time (`runtime`). Silences
    /// come first, then inhibition, then mute hours.
    pub fn verdict(
        &self,
        key: Key<'_>,
        severity: Severity,
        active: &[Key<'_>],
        runtime: &[Silence],
        now: Timestamp,
    ) -> Verdict {
        let (rule, group) = key;
        if let Some(silence) = self
            .silences
            .iter()
            .chain(runtime)
            .find(|s| s.silences(rule, group, now))
        {
            return Verdict::Count(Why::Silenced {
                id: silence.id.clone(),
                until: silence.expires,
            });
        }
        if let Some(source) = self.inhibit.iter().find_map(|inhibit| {
            active
                .iter()
                .find(|source| inhibit.inhibits(**source, key))
                .map(|_| inhibit.source_rule.clone())
        }) {
            return Verdict::Count(Why::Inhibited { source });
        }
        let Some(policy) = self.mute.of(rule) else {
            return Verdict::Show;
        };
        match policy.muted_by(&self.intervals, severity, now) {
            None => Verdict::Show,
            Some(interval) if policy.mode == MuteMode::Defer => Verdict::Defer(interval),
            Some(interval) => Verdict::Count(Why::Muted { interval }),
        }
    }
}
