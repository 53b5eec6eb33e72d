//! What absence remembers, persisted with the incident state: when each rule and source began
//! to be watched, each expected key's recent hits, each source's last growth, the open
//! absences. Plain data with a serde form; bounded ([`MAX_KEYS`] keys per rule, at most
//! `min_count` entries of recent hits per key).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{AbsenceRule, AbsentKind, AbsentLine, AbsentState, Arm, Group, Keys, Stall, add, sub};

/// Keys remembered per rule; past it the learned key seen longest ago is forgotten.
pub const MAX_KEYS: usize = 1000;

/// Everything absence remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Per absence rule.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleMemory>,
    /// Per source with `source_stalled`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceMemory>,
    /// Absences fired and not yet back.
    #[serde(default)]
    pub open: Vec<AbsentLine>,
}

/// One absence rule's memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMemory {
    /// When the rule was first evaluated (`arm: on_start` keys are watched from here).
    pub since: Timestamp,
    /// Expected (or seen) keys.
    pub keys: Vec<KeyMemory>,
}

/// One key of an absence rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMemory {
    /// Its `group_by` values.
    pub group: Group,
    /// Watched from here (`None`: not yet, `arm: after_first_seen` and never seen).
    pub armed: Option<Timestamp>,
    /// Its last hit (agent clock).
    pub last_seen: Option<Timestamp>,
    /// Recent hits `(time, count)`, oldest first: only those still inside the window, and
    /// only as many as `min_count` needs.
    pub recent: Vec<(Timestamp, u64)>,
}

/// One source's memory (`source_stalled`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMemory {
    /// When it was first evaluated.
    pub since: Timestamp,
    /// When one of its files last grew (or appeared).
    pub last_growth: Option<Timestamp>,
    /// The file that grew last.
    pub last_file: Option<String>,
    /// When its globs last matched a file.
    pub last_matched: Option<Timestamp>,
    /// Files its globs matched at the last look (`None`: not looked yet).
    pub files: Option<u64>,
}

impl Memory {
    pub(super) fn rule_memory(&mut self, rule: &AbsenceRule, now: Timestamp) -> &mut RuleMemory {
        self.rules
            .entry(rule.name.clone())
            .or_insert_with(|| RuleMemory {
                since: now,
                keys: Vec::new(),
            })
    }

    pub(super) fn source_memory(&mut self, source: &str, now: Timestamp) -> &mut SourceMemory {
        self.sources
            .entry(source.to_owned())
            .or_insert_with(|| SourceMemory {
                since: now,
                last_growth: None,
                last_file: None,
                last_matched: None,
                files: None,
            })
    }

    /// Drops the memory and open absences of rules and sources no longer watched (a reload).
    pub(super) fn forget_unwatched(&mut self, watches: &super::Watches) {
        self.rules.retain(|name, _| watches.rule(name).is_some());
        self.sources
            .retain(|name, _| watches.stalls.iter().any(|s| s.source == *name));
        let rules = &self.rules;
        let sources = &self.sources;
        self.open.retain(|line| match line.kind {
            AbsentKind::Line { .. } => rules.contains_key(&line.rule),
            AbsentKind::Stalled { .. } | AbsentKind::NoFile { .. } => {
                sources.contains_key(&line.rule)
            }
        });
    }
}

impl RuleMemory {
    /// Adds the keys the rule expects and does not remember yet.
    pub(super) fn expect(&mut self, rule: &AbsenceRule) {
        let armed = match rule.arm {
            Arm::OnStart => Some(self.since),
            Arm::AfterFirstSeen => None,
        };
        let expected: Vec<Group> = if rule.group_by.is_empty() {
            vec![Vec::new()]
        } else {
            rule.keys.fixed.clone()
        };
        for group in expected {
            if !self.keys.iter().any(|k| k.group == group) {
                self.keys.push(KeyMemory::new(group, armed));
            }
        }
    }

    /// Forgets learned keys not seen for `learn_window` (and keys no longer expected at all).
    pub(super) fn forget_learned(&mut self, rule: &AbsenceRule, now: Timestamp) {
        let horizon = sub(now, rule.keys.learn_window);
        self.keys.retain(|key| {
            rule.group_by.is_empty()
                || rule.keys.fixed.contains(&key.group)
                || (rule.keys.learn && key.last_seen.is_some_and(|t| t > horizon))
        });
    }

    /// Keeps at most [`MAX_KEYS`]: learned keys seen longest ago go first.
    pub(super) fn bound(&mut self, keys: &Keys) {
        if self.keys.len() <= MAX_KEYS {
            return;
        }
        self.keys.sort_by_key(|k| {
            (
                !keys.fixed.contains(&k.group),
                std::cmp::Reverse(k.last_seen),
            )
        });
        self.keys.truncate(MAX_KEYS);
    }
}

impl KeyMemory {
    pub(super) fn new(group: Group, armed: Option<Timestamp>) -> KeyMemory {
        KeyMemory {
            group,
            armed,
            last_seen: None,
            recent: Vec::new(),
        }
    }

    /// `count` hits at `at`.
    pub(super) fn seen(&mut self, at: Timestamp, count: u64, rule: &AbsenceRule) {
        self.armed = Some(self.armed.map_or(at, |armed| armed.min(at)));
        self.last_seen = Some(self.last_seen.map_or(at, |t| t.max(at)));
        match self.recent.last_mut() {
            Some((last, n)) if *last == at => *n = n.saturating_add(count),
            _ => self.recent.push((at, count)),
        }
        self.recent.sort_by_key(|(t, _)| *t);
        self.trim(rule, at);
    }

    /// Drops hits that left the window, and old ones `min_count` does not need.
    pub(super) fn trim(&mut self, rule: &AbsenceRule, now: Timestamp) {
        let horizon = sub(now, rule.window);
        self.recent.retain(|(t, _)| *t > horizon);
        let mut total = 0u64;
        let mut keep = self.recent.len();
        for (i, (_, n)) in self.recent.iter().enumerate().rev() {
            if total >= rule.min_count {
                break;
            }
            total = total.saturating_add(*n);
            keep = i;
        }
        self.recent.drain(..keep);
    }

    /// When the key is (or becomes, without more hits) absent; `None`: not armed.
    pub(super) fn due(&self, rule: &AbsenceRule) -> Option<Timestamp> {
        let armed = self.armed?;
        let mut total = 0u64;
        for (at, n) in self.recent.iter().rev() {
            total = total.saturating_add(*n);
            if total >= rule.min_count {
                // The hits from `at` on keep the count up until `at` leaves the window.
                return Some(add(*at, rule.window));
            }
        }
        // Too few hits in the window (those that left it were trimmed): absent since one
        // window after it was armed.
        Some(add(armed, rule.window))
    }

    /// The `New` line of this key's absence at `now`.
    pub(super) fn absent(&self, rule: &AbsenceRule, now: Timestamp) -> AbsentLine {
        AbsentLine {
            rule: rule.name.clone(),
            group: self.group.clone(),
            severity: rule.severity,
            kind: AbsentKind::Line {
                what: rule.what.clone(),
                window_secs: rule.window.as_secs(),
                min_count: rule.min_count,
                seen: self.recent.iter().map(|(_, n)| n).sum(),
            },
            state: AbsentState::New,
            since: now,
            last_seen: self.last_seen,
            watched_since: self.armed,
            back: None,
            told: false,
        }
    }
}

impl SourceMemory {
    /// When the source is (or becomes) stalled.
    pub(super) fn due(&self, stall: &Stall) -> Timestamp {
        let reference = match self.files {
            Some(0) => self.last_matched.unwrap_or(self.since).max(self.since),
            _ => self.last_growth.unwrap_or(self.since).max(self.since),
        };
        add(reference, stall.after)
    }

    /// The `New` line of this source's stall at `now`.
    pub(super) fn absent(&self, stall: &Stall, now: Timestamp) -> AbsentLine {
        let after_secs = stall.after.as_secs();
        let kind = if self.files == Some(0) {
            AbsentKind::NoFile {
                paths: stall.paths.clone(),
                after_secs,
            }
        } else {
            AbsentKind::Stalled {
                file: self.last_file.clone(),
                after_secs,
            }
        };
        AbsentLine {
            rule: stall.source.clone(),
            group: Vec::new(),
            severity: crate::rules::Severity::Error,
            kind,
            state: AbsentState::New,
            since: now,
            last_seen: self.last_growth,
            watched_since: Some(self.since),
            back: None,
            told: false,
        }
    }
}
