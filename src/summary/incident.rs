//! What the incident stage adds to a [`Summary`](crate::summary::Summary): which rules are
//! reported in full and why, one line per ongoing incident, one line per resolved one. Plain
//! data, persisted in the outbox with the summary and rendered by `render::incidents`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::absent::AbsentLine;
use super::suppressed::Suppressed;
use crate::rules::Severity;

/// The incident part of a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentReport {
    /// Why each rule in `Summary::rules` is shown in full (by rule name).
    #[serde(default)]
    pub notes: Vec<IncidentNote>,
    /// Open incidents not shown in full: one line each.
    #[serde(default)]
    pub ongoing: Vec<IncidentLine>,
    /// Incidents that ended: one line each, said once.
    #[serde(default)]
    pub resolved: Vec<IncidentLine>,
    /// Absences (absence rules, stalled sources): new, still absent, or back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<AbsentLine>,
    /// What was suppressed since the last message (silenced, inhibited, muted, deferred).
    #[serde(default, skip_serializing_if = "Suppressed::is_empty")]
    pub suppressed: Suppressed,
}

/// Why a rule is reported in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Its `repeat_interval` passed while it kept having hits.
    Repeat,
    /// Its severity rose, or its count rose by more than `escalate_ratio`.
    Escalated,
    /// A new incident.
    New,
}

/// A rule shown in full, and the incidents behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentNote {
    /// Rule name.
    pub rule: String,
    /// The strongest reason among its incidents (new, then escalated, then repeat).
    pub reason: Reason,
    /// When its oldest open incident began (event time).
    pub since: Timestamp,
    /// Hits of its open incidents since they began, this message included.
    pub total: u64,
    /// Per-window counts of the last windows, oldest first (see `sparkline`).
    pub recent: Vec<u64>,
}

/// One incident as one line (ongoing or resolved).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentLine {
    /// Rule name.
    pub rule: String,
    /// Rule severity.
    pub severity: Severity,
    /// `group_by` values; empty for a rule without `group_by` (or its "other" groups).
    pub group: Vec<(String, String)>,
    /// Hits since the incident was last in a message (what this line adds to the counts).
    pub count: u64,
    /// When it began (event time of its first hit).
    pub since: Timestamp,
    /// Its last hit (event time); for a resolved incident, when it ended.
    pub last_seen: Timestamp,
    /// Hits since it began.
    pub total: u64,
    /// Per-window counts of the last windows, oldest first.
    pub recent: Vec<u64>,
}

impl IncidentReport {
    /// Returns true if and only if there is nothing to say about incidents.
    pub fn is_empty(&self) -> bool {
        self.notes.is_empty()
            && self.ongoing.is_empty()
            && self.resolved.is_empty()
            && self.absent.is_empty()
            && self.suppressed.is_empty()
    }

    /// Hits this report adds to a message beyond its rules' entries (ongoing and resolved
    /// lines), so that the counts of all messages add up to the hits.
    pub fn line_matches(&self) -> u64 {
        self.ongoing
            .iter()
            .chain(&self.resolved)
            .map(|line| line.count)
            .sum()
    }

    /// Folds a later report into this one (messages merged in the outbox): notes and resolved
    /// lines are kept, an ongoing line of the same incident adds its count and takes the later
    /// figures.
    pub fn merge(&mut self, later: IncidentReport) {
        super::absent::merge(&mut self.absent, later.absent);
        self.suppressed.merge(later.suppressed);
        for note in later.notes {
            match self.notes.iter_mut().find(|n| n.rule == note.rule) {
                Some(mine) => {
                    mine.reason = mine.reason.max(note.reason);
                    mine.since = mine.since.min(note.since);
                    mine.total = mine.total.max(note.total);
                    mine.recent = note.recent;
                }
                None => self.notes.push(note),
            }
        }
        for line in later.ongoing {
            let same = |l: &&mut IncidentLine| l.rule == line.rule && l.group == line.group;
            match self.ongoing.iter_mut().find(same) {
                Some(mine) => {
                    let count = mine.count.saturating_add(line.count);
                    *mine = IncidentLine { count, ..line };
                }
                None => self.ongoing.push(line),
            }
        }
        self.resolved.extend(later.resolved);
        // An incident resolved later is no longer ongoing; its hits shown as ongoing stay counted.
        let resolved = &self.resolved;
        let (gone, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ongoing)
            .into_iter()
            .partition(|l| {
                resolved
                    .iter()
                    .any(|r| r.rule == l.rule && r.group == l.group)
            });
        self.ongoing = open;
        for line in gone {
            if let Some(r) = self
                .resolved
                .iter_mut()
                .find(|r| r.rule == line.rule && r.group == line.group)
            {
                r.count = r.count.saturating_add(line.count);
            }
        }
    }
}
