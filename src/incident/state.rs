//! The incident stage's memory: open (and recently resolved) incidents and the details of
//! windows not yet reported. Plain data with a versioned JSON form, so that `logding run` can
//! keep it in `state_dir/incidents.json` across restarts (the agent writes it atomically; this
//! module does no IO).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::Severity;
use crate::summary::RuleSummary;
use crate::summary::incident::IncidentLine;

/// Version of the JSON form; a file with another version is set aside, not misread.
/// Version 2 added `absence`; a version 1 file is read as having no absence memory.
pub const STATE_VERSION: u32 = 2;

/// Windows of per-window counts kept per incident (the sparkline's width).
pub const RECENT_WINDOWS: usize = 12;

/// Everything the stage remembers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Always [`STATE_VERSION`] when written by this version.
    pub version: u32,
    /// Incidents, open and resolved, in no particular order.
    pub incidents: Vec<Incident>,
    /// Per rule: the merged details of windows whose hits are in no message yet.
    pub pending: BTreeMap<String, RuleSummary>,
    /// Resolved lines waiting for the next message (rules with `send_resolved: false`).
    pub resolved_unsent: Vec<IncidentLine>,
    /// Incidents forgotten because `max_incidents` was reached.
    pub dropped: u64,
    /// What absence rules and stalled sources remember (version 2).
    #[serde(default)]
    pub absence: crate::absence::Memory,
}

/// Why a state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not JSON of the expected shape.
    #[error("incident state is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// Written by another version.
    #[error("incident state has version {found}, this logding reads versions 1 to {STATE_VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
}

/// One incident: a rule plus its `group_by` values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Rule name.
    pub rule: String,
    /// `group_by` values (empty: a rule without `group_by`, or its "other" groups).
    pub group: Vec<(String, String)>,
    /// Highest severity seen.
    pub severity: Severity,
    /// Event time of its first hit.
    pub since: Timestamp,
    /// Event time of its last hit.
    pub last_seen: Timestamp,
    /// Agent-clock end of its last window with hits (resolution counts from here: event
    /// times may be old or wrong, the agent's clock is what "quiet for 5 minutes" means).
    pub last_window: Timestamp,
    /// When it was last shown in full (agent clock).
    pub last_full: Timestamp,
    /// Hits since it began.
    pub total: u64,
    /// Hits not yet in any message.
    pub unreported: u64,
    /// Hits of its last window with hits (escalation compares with this).
    pub previous_window: u64,
    /// Per-window counts, oldest first, at most [`RECENT_WINDOWS`]; the last is window slot
    /// `recent_slot`.
    pub recent: Vec<u64>,
    /// Window slot (agent time divided by the window length) of the last entry of `recent`.
    pub recent_slot: i64,
    /// When it was resolved (agent clock); `None` while open.
    pub resolved: Option<Timestamp>,
}

impl State {
    /// Reads the JSON form.
    ///
    /// # Errors
    ///
    /// Not JSON of this shape, or another version.
    pub fn from_json(bytes: &[u8]) -> Result<State, StateError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned = serde_json::from_slice(bytes).map_err(StateError::Json)?;
        if !(1..=STATE_VERSION).contains(&versioned.version) {
            return Err(StateError::Version {
                found: versioned.version,
            });
        }
        serde_json::from_slice(bytes).map_err(StateError::Json)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        let mut state = self.clone();
        state.version = STATE_VERSION;
        serde_json::to_vec(&state).expect("incident state always serializes")
    }

    /// Keeps at most `max` incidents: the oldest resolved ones go first, then (only when open
    /// incidents alone are more than `max`) the open ones quiet the longest. Returns how many
    /// were dropped.
    pub fn bound(&mut self, max: usize) -> usize {
        let excess = self.incidents.len().saturating_sub(max);
        if excess == 0 {
            return 0;
        }
        // Resolved before open; among each, the least recent first.
        self.incidents.sort_by_key(|i| {
            (
                i.resolved.is_none(),
                i.resolved.unwrap_or(i.last_window),
                i.last_window,
            )
        });
        self.incidents.drain(..excess);
        self.dropped = self.dropped.saturating_add(excess as u64);
        excess
    }
}

impl Incident {
    /// Returns true if and only if it is still open.
    pub fn is_open(&self) -> bool {
        self.resolved.is_none()
    }

    /// Counts a window's hits in the per-window history at window slot `slot`.
    pub fn record(&mut self, slot: i64, count: u64) {
        if self.recent.is_empty() || slot > self.recent_slot {
            if !self.recent.is_empty() {
                self.recent = self.recent_at(slot);
            }
            self.recent.push(count);
            self.recent_slot = slot;
        } else if let Some(last) = self.recent.last_mut() {
            *last = last.saturating_add(count);
        }
        let excess = self.recent.len().saturating_sub(RECENT_WINDOWS);
        self.recent.drain(..excess);
    }

    /// The per-window history of the windows before slot `slot` (quiet windows since the
    /// last hit are zeros), at most [`RECENT_WINDOWS`] long.
    pub fn recent_at(&self, slot: i64) -> Vec<u64> {
        let mut recent = self.recent.clone();
        let gap = slot.saturating_sub(self.recent_slot).saturating_sub(1);
        let zeros = usize::try_from(gap).unwrap_or(0).min(RECENT_WINDOWS);
        recent.extend(std::iter::repeat_n(0, zeros));
        let excess = recent.len().saturating_sub(RECENT_WINDOWS);
        recent.drain(..excess);
        recent
    }

    /// The incident as one line, adding `count` hits.
    pub fn line(&self, count: u64, recent: Vec<u64>) -> IncidentLine {
        IncidentLine {
            rule: self.rule.clone(),
            severity: self.severity,
            group: self.group.clone(),
            count,
            since: self.since,
            last_seen: self.last_seen,
            total: self.total,
            recent,
        }
    }
}
