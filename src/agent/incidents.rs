//! The incident stage of the agent ([`Stage`]) and `state_dir/incidents.json`, where its
//! [`State`] survives restarts.
//!
//! The pure `incident` module decides what each closed window says and turns its state into
//! bytes and back; this is the IO around it. Writes go through `state::write_atomic` (tmp → fsync → rename → fsync dir), so a kill
//! at any instant leaves the old state or the new. The agent writes the state after each
//! window and tick, *before* committing the offsets of the lines it covers: hits held in the
//! state (ongoing incidents not yet reported) are as safe as those in the outbox.
//!
//! A file that cannot be read (corrupt, or written by another version) is moved aside to
//! `incidents.json.bad` with a warning and the agent starts with no incidents: losing the
//! incident history costs a second "new" message, never an alert.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use tracing::{debug, error, warn};

use super::suppress::{self, Stamp};
use crate::absence::Schedules;
use crate::config::Config;
use crate::incident::{Incidents, State};
use crate::summary::Summary;
use crate::suppress::Suppression;

/// The file name in `state_dir`.
pub(super) const FILE_NAME: &str = "incidents.json";

/// Why the state could not be saved.
#[derive(Debug, thiserror::Error)]
#[error("failed to save the incident state")]
pub(super) struct SaveError(#[source] crate::state::Error);

/// The agent's incident stage: [`Incidents`] and where its state is kept (`None`: a dry run,
/// which writes no state).
#[derive(Debug)]
pub(super) struct Stage {
    incidents: Incidents,
    /// Silences, mute hours and inhibition, before the incidents (`src/suppress/`).
    suppression: Suppression,
    /// The version of `silences.json` last read.
    silences_seen: Stamp,
    state_dir: Option<PathBuf>,
}

impl Stage {
    /// A stage for `config`, resuming `state`, persisting to `state_dir` (if any).
    pub(super) fn new(config: &Config, state: State, state_dir: Option<PathBuf>) -> Stage {
        let mut incidents = Incidents::new(config.incidents.clone(), config.window, state);
        incidents.set_schedules(schedules(config));
        Stage {
            incidents,
            suppression: Suppression::new(config.suppression.clone(), Default::default()),
            silences_seen: None,
            state_dir,
        }
    }

    /// The agent starts at `now` (absence waits one window for the backlog).
    pub(super) fn start(&mut self, now: Timestamp) {
        self.incidents.start(now);
    }

    /// A batch of `source`'s `file` was read at `now` (the file grew).
    pub(super) fn grew(&mut self, source: &str, file: &str, now: Timestamp) {
        self.incidents.grew(source, file, now);
    }

    /// The sources with `source_stalled`, to look for their files before a tick.
    pub(super) fn stalled_sources(&self) -> Vec<String> {
        self.incidents
            .stalled_sources()
            .map(str::to_owned)
            .collect()
    }

    /// `source`'s globs matched `count` files at `now`.
    pub(super) fn matched(&mut self, source: &str, count: u64, now: Timestamp) {
        self.incidents.matched(source, count, now);
    }

    /// Resumes the suppression state of the last run.
    pub(super) fn resume_suppression(&mut self, config: &Config, state: crate::suppress::State) {
        self.suppression = Suppression::new(config.suppression.clone(), state);
    }

    /// Re-reads `state_dir/silences.json` when it changed (on the blocking pool), so silences
    /// added or expired by `logding silence` apply from the next window on.
    pub(super) async fn refresh_silences(&mut self) {
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let seen = self.silences_seen;
        let read =
            tokio::task::spawn_blocking(move || suppress::read_silences_if_changed(&dir, seen))
                .await;
        if let Ok(Some((stamp, silences))) = read {
            debug!(
                event = "silences_read",
                silences = silences.len(),
                "run-time silences read"
            );
            self.silences_seen = stamp;
            self.suppression.set_runtime_silences(silences);
        }
    }

    /// What a closed window says (`None`: held, nothing to send): suppression takes out what
    /// is silenced, inhibited or muted, the incident stage decides about the rest, and a
    /// message that goes out carries what was suppressed since the last one.
    pub(super) fn close_window(&mut self, summary: Summary, now: Timestamp) -> Option<Summary> {
        // Absence rules' hits are heartbeats: counted, never held as alerts.
        let matches: u64 = summary
            .rules
            .iter()
            .filter(|r| !self.incidents.is_absence_rule(&r.name))
            .map(|r| r.count)
            .sum();
        let message = self
            .suppression
            .close_window(&mut self.incidents, summary, now)
            .sent;
        if message.is_none() && matches > 0 {
            debug!(
                event = "window_held",
                matches, "window held: its incidents are ongoing"
            );
        }
        message
    }

    /// Resolves what is due at `now`; a message when a resolution is to be sent on its own.
    /// Also releases hits deferred by mute hours whose interval ended (as a window of their
    /// own, through the incident stage).
    pub(super) fn tick(&mut self, host: &str, now: Timestamp) -> Option<Summary> {
        self.suppression.tick(&mut self.incidents, host, now).1
    }

    /// When the next open incident resolves, or deferred hits may be released.
    pub(super) fn deadline(&self) -> Option<Timestamp> {
        [self.incidents.deadline(), self.suppression.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// New settings after a reload.
    pub(super) fn reload(&mut self, config: &Config) {
        self.incidents
            .set_policies(config.incidents.clone(), config.window);
        self.incidents.set_schedules(schedules(config));
        self.suppression.set_settings(config.suppression.clone());
    }

    /// Writes the state (on the blocking pool). Returns true if and only if it is durable (or
    /// there is nowhere to write it: a dry run).
    pub(super) async fn save(&self) -> bool {
        let Some(dir) = self.state_dir.clone() else {
            return true;
        };
        let state = self.incidents.state().clone();
        let suppressed = self.suppression.state().clone();
        let saved = tokio::task::spawn_blocking(move || {
            save(&dir, &state)?;
            suppress::save(&dir, &suppressed).map_err(SaveError)
        });
        match saved.await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                error!(
                    event = "incidents_not_saved",
                    error = %crate::logging::error_chain(&err),
                    "incident state not saved; the lines it covers are not committed"
                );
                false
            }
            Err(err) => {
                error!(error = %err, "saving the incident state panicked");
                false
            }
        }
    }
}

/// Absence rules' `schedule:`: the config's `time_intervals`.
pub(super) fn schedules(config: &Config) -> Schedules {
    let intervals = config.time_intervals.clone();
    Schedules::new(move |name, at| intervals.contains(name, at))
}

/// Reads the state in `state_dir`; no file (first run) is an empty state.
pub(super) fn load(state_dir: &Path) -> State {
    let path = state_dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return State::default(),
        Err(err) => {
            warn!(
                path = %path.display(),
                error = %err,
                "incident state unreadable; starting with no open incidents"
            );
            return State::default();
        }
    };
    match State::from_json(&bytes) {
        Ok(state) => state,
        Err(err) => {
            let aside = set_aside(&path);
            warn!(
                path = %path.display(),
                moved_to = %aside.display(),
                error = %crate::logging::error_chain(&err),
                "incident state not understood; moved aside, starting with no open incidents"
            );
            State::default()
        }
    }
}

/// Writes the state atomically (blocking: call it on a blocking thread).
///
/// # Errors
///
/// The file cannot be written.
pub(super) fn save(state_dir: &Path, state: &State) -> Result<(), SaveError> {
    crate::state::write_atomic(&state_dir.join(FILE_NAME), &state.to_json()).map_err(SaveError)
}

fn set_aside(path: &Path) -> PathBuf {
    let aside = path.with_extension("json.bad");
    if let Err(err) = std::fs::rename(path, &aside) {
        warn!(
            path = %path.display(),
            moved_to = %aside.display(),
            error = %err,
            "could not move the unreadable incident state aside"
        );
    }
    aside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_bad_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), State::default());
        let state = State {
            dropped: 3,
            ..State::default()
        };
        save(dir.path(), &state).unwrap();
        assert_eq!(load(dir.path()).dropped, 3);

        std::fs::write(dir.path().join(FILE_NAME), b"{\"version\": 99}").unwrap();
        assert_eq!(load(dir.path()), State::default());
        assert!(dir.path().join("incidents.json.bad").exists());
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}

#[cfg(test)]
mod lifecycle_tests;

#[cfg(test)]
mod absence_tests;
#[cfg(test)]
mod suppress_tests;
