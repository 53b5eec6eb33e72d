//! The files of the suppression stage: `state_dir/suppressed.json` (what was counted and not
//! yet told, and what is deferred: persisted before the lines it covers are committed, like
//! `incidents.json`) and `state_dir/silences.json` (written by `logding silence add` and
//! `expire`, re-read by the running agent when it changes, so a silence applies without a
//! restart).
//!
//! Both are written through `state::write_atomic`. A state file that cannot be read is set
//! aside (`.bad`) with a warning: its counts are lost from the footer, never an alert. A
//! silence file that cannot be read keeps the silences last read and is retried.

use std::path::Path;
use std::time::SystemTime;

use tracing::warn;

use crate::suppress::{Silence, SilenceFile, State};

/// The suppression state's file name in `state_dir`.
pub(super) const STATE_FILE: &str = "suppressed.json";

/// The run-time silences' file name in `state_dir`.
pub const SILENCES_FILE: &str = "silences.json";

/// Reads the suppression state; no file is an empty state.
pub(super) fn load(state_dir: &Path) -> State {
    let path = state_dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return State::default(),
        Err(err) => {
            warn!(error = %err, "suppression state unreadable; starting without it");
            return State::default();
        }
    };
    let state: Result<State, _> = serde_json::from_slice(&bytes);
    match state {
        Ok(state) if state.version == crate::suppress::STATE_VERSION => state,
        _ => {
            let aside = path.with_extension("json.bad");
            if let Err(err) = std::fs::rename(&path, &aside) {
                warn!(error = %err, "could not move the unreadable suppression state aside");
            }
            warn!(path = %path.display(), moved_to = %aside.display(), "suppression state not understood; moved aside");
            State::default()
        }
    }
}

/// Writes the suppression state atomically (blocking).
///
/// # Errors
///
/// The file cannot be written.
pub(super) fn save(state_dir: &Path, state: &State) -> Result<(), crate::state::Error> {
    let mut state = state.clone();
    state.version = crate::suppress::STATE_VERSION;
    let bytes = serde_json::to_vec(&state).expect("suppression state always serializes");
    crate::state::write_atomic(&state_dir.join(STATE_FILE), &bytes)
}

/// What identifies a version of `silences.json` without reading it: modification time and
/// length (`None`: no file).
pub(super) type Stamp = Option<(SystemTime, u64)>;

/// The run-time silences, when `silences.json` changed since `seen` (blocking): `None` when it
/// did not (or cannot be read now: the silences last read stay), else the new stamp and
/// silences (none when the file is gone).
pub(super) fn read_silences_if_changed(
    state_dir: &Path,
    seen: Stamp,
) -> Option<(Stamp, Vec<Silence>)> {
    let path = state_dir.join(SILENCES_FILE);
    let stamp = std::fs::metadata(&path)
        .ok()
        .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
    if stamp == seen {
        return None;
    }
    if stamp.is_none() {
        return Some((None, Vec::new()));
    }
    let file = match std::fs::read(&path)
        .map_err(|err| err.to_string())
        .and_then(|bytes| SilenceFile::from_json(&bytes).map_err(|err| err.to_string()))
    {
        Ok(file) => file,
        Err(err) => {
            warn!(path = %path.display(), error = %err, "silences not read; the ones read before still apply");
            return None;
        }
    };
    let (silences, bad) = file.parsed();
    for err in bad {
        warn!(path = %path.display(), error = %err, "a silence is skipped");
    }
    Some((stamp, silences))
}

/// Why the silence file could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or locking failed.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a silence file this version understands.
    #[error("`{}` is not a silence file this logding understands", path.display())]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: crate::suppress::silence::SilenceError,
    },
    /// Writing failed.
    #[error("failed to write the silences")]
    Write(#[source] crate::state::Error),
}

/// Reads `state_dir/silences.json` (no file: no silences).
///
/// # Errors
///
/// The file cannot be read or is not a silence file.
pub fn read_silences(state_dir: &Path) -> Result<SilenceFile, StoreError> {
    let path = state_dir.join(SILENCES_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            SilenceFile::from_json(&bytes).map_err(|source| StoreError::Parse { path, source })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(SilenceFile::default()),
        Err(source) => Err(StoreError::Read { path, source }),
    }
}

/// Changes `state_dir/silences.json` with `change` and writes it atomically, holding an
/// exclusive lock on `silences.lock` so that two commands at once do not lose a silence.
///
/// # Errors
///
/// The file cannot be locked, read or written.
pub fn update_silences<T>(
    state_dir: &Path,
    change: impl FnOnce(&mut SilenceFile) -> T,
) -> Result<T, StoreError> {
    let lock_path = state_dir.join("silences.lock");
    std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Read {
        path: state_dir.to_owned(),
        source,
    })?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::Read {
            path: lock_path.clone(),
            source,
        })?;
    lock.lock().map_err(|source| StoreError::Read {
        path: lock_path,
        source,
    })?;
    let mut file = read_silences(state_dir)?;
    let result = change(&mut file);
    crate::state::write_atomic(&state_dir.join(SILENCES_FILE), &file.to_json())
        .map_err(StoreError::Write)?;
    Ok(result)
}
