//! The set of firing alerts the sink keeps posting (`state_dir/alertmanager-firing.json`), and
//! how each message of the incident stage changes it. No IO here but the file's bytes.
//!
//! - An incident's alert fires from the message that shows it until one says it resolved; one
//!   that no message mentioned for [`STALE_AFTER`] is resolved (the incident stage reports an
//!   open incident at least every `repeat_interval`, so it lost track of it: a state file
//!   deleted by hand).
//! - An absence's alert fires while the messages show it (every message of the stage carries
//!   each open absence it may show) and ends at its `Back` line, or at the first message that
//!   no longer shows it: silenced or muted, or removed. A shown absence's `Back` line is told
//!   even when silenced (`suppress`). Absences are not repeated, so they never go stale.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::alerts::{IncidentAlert, IncidentKey, PostableAlert};

/// Format version of the file.
const VERSION: u32 = 1;
/// An incident's firing alert no message has mentioned for this long is resolved.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Firing alerts kept at most (the incident stage bounds incidents too).
const MAX_FIRING: usize = 10_000;

/// One firing alert and when a message last mentioned it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Firing {
    rule: String,
    group: Vec<(String, String)>,
    alert: PostableAlert,
    mentioned: Timestamp,
    /// An absence (files written before absences were alerts have none).
    #[serde(default)]
    absence: bool,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    alerts: Vec<Firing>,
}

/// The firing alerts, by incident (the sink's, and a dry run's own, in memory).
#[derive(Debug, Default, PartialEq)]
pub struct FiringSet(BTreeMap<IncidentKey, Firing>);

impl FiringSet {
    /// The set in a file's bytes; `None` when they are not a file of this version.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<FiringSet> {
        match serde_json::from_slice::<File>(bytes) {
            Ok(file) if file.version == VERSION => Some(FiringSet(
                file.alerts
                    .into_iter()
                    .map(|f| ((f.rule.clone(), f.group.clone()), f))
                    .collect(),
            )),
            _ => None,
        }
    }

    /// The file's bytes.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let file = File {
            version: VERSION,
            alerts: self.0.values().cloned().collect(),
        };
        serde_json::to_vec(&file).expect("firing alerts serialize")
    }

    /// How many fire.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Applies the alerts of one message (ending at `end`, received at `now`); returns what to
    /// post: its alerts, plus the ends of those it replaced (labels changed, as on a severity
    /// rise) or no longer shows (absences).
    pub fn update(
        &mut self,
        alerts: Vec<IncidentAlert>,
        end: Timestamp,
        now: Timestamp,
    ) -> Vec<PostableAlert> {
        let mut batch = Vec::new();
        let mut absences = BTreeSet::new();
        for IncidentAlert {
            key,
            alert,
            firing,
            absence,
        } in alerts
        {
            if absence {
                absences.insert(key.clone());
            }
            // Alertmanager notifies a new group at once, skipping `group_wait`, when an
            // alert's `startsAt` is older than `group_wait`: an incident's first hit is a
            // window before its first post, so the other hosts would miss the group's first
            // message. An alert starts when the agent first reports it (Prometheus's
            // FiredAt); `first_seen` keeps the first hit.
            let starts_at = match self.0.get(&key) {
                Some(known) => known.alert.starts_at,
                None if firing => now.max(alert.starts_at),
                None => alert.starts_at,
            };
            let alert = PostableAlert { starts_at, ..alert };
            let previous = if firing {
                let entry = Firing {
                    rule: key.0.clone(),
                    group: key.1.clone(),
                    alert: alert.clone(),
                    mentioned: now,
                    absence,
                };
                self.0.insert(key, entry)
            } else {
                self.0.remove(&key)
            };
            // Its labels changed (a severity rise): the old alert ends, the new one fires.
            if let Some(previous) = previous
                && previous.alert.labels != alert.labels
            {
                batch.push(ended(previous, end));
            }
            batch.push(alert);
        }
        let unshown: Vec<IncidentKey> = self
            .0
            .iter()
            .filter(|(key, f)| f.absence && !absences.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        for key in unshown {
            if let Some(firing) = self.0.remove(&key) {
                batch.push(ended(firing, end));
            }
        }
        batch
    }

    /// The firing alerts with `endsAt` moved to `ends_at`, to post again.
    pub(super) fn refreshed(&self, ends_at: Timestamp) -> Vec<PostableAlert> {
        self.0
            .values()
            .map(|f| PostableAlert {
                ends_at,
                ..f.alert.clone()
            })
            .collect()
    }

    /// Resolves the incidents no message mentioned for [`STALE_AFTER`] and what exceeds
    /// [`MAX_FIRING`] (the least recently mentioned first); returns their resolved alerts.
    pub(super) fn bound(&mut self, now: Timestamp) -> Vec<PostableAlert> {
        let stale_after = jiff::SignedDuration::try_from(STALE_AFTER).unwrap_or_default();
        let mut by_age: Vec<(Timestamp, IncidentKey)> = self
            .0
            .iter()
            .map(|(key, f)| (f.mentioned, key.clone()))
            .collect();
        by_age.sort();
        let excess = by_age.len().saturating_sub(MAX_FIRING);
        let mut ended_now = Vec::new();
        for (index, (mentioned, key)) in by_age.into_iter().enumerate() {
            let is_stale = now.duration_since(mentioned) >= stale_after
                && self.0.get(&key).is_some_and(|f| !f.absence);
            if index >= excess && !is_stale {
                continue;
            }
            if let Some(firing) = self.0.remove(&key) {
                tracing::warn!(
                    rule = %firing.rule,
                    "no message mentioned this firing alert for a day (or too many fire): resolving it"
                );
                ended_now.push(ended(firing, now));
            }
        }
        ended_now
    }
}

fn ended(firing: Firing, at: Timestamp) -> PostableAlert {
    PostableAlert {
        ends_at: at,
        ..firing.alert
    }
}

#[cfg(test)]
mod tests;
