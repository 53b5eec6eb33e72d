//! Checkpoint: the committed offset of every followed file, with what identifies the file, in a
//! versioned JSON file under `state_dir`.
//!
//! Why a file of its own: a restart must resume every file exactly where downstream last said
//! "safe", and must notice when the file under a saved `(dev, ino)` is no longer the same file
//! (inode reuse, truncation while stopped). So each entry carries a head fingerprint and an
//! offset marker (xxh3 of the bytes just before the offset), validated on load by the tailer.
//!
//! Durability ([`crate::state::write_atomic_keeping_prev`]): written to a temporary file,
//! fsynced, the current file renamed to `.prev`, the temporary renamed over the current one,
//! then the directory fsynced. A kill at any point leaves
//! either a good current file or a good `.prev`; [`load`] falls back to `.prev` when the current
//! file is missing or invalid, and says so loudly. A copy that cannot be used is moved aside
//! ([`set_aside`], `tail-checkpoint.json.corrupt-<time>`): kept for inspection, never
//! overwritten by the next write.
//!
//! Only committed offsets are ever written here (ARCHITECTURE.md: "a checkpoint never passes
//! lines whose hits are not in the outbox").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The checkpoint file name inside `state_dir`.
pub const FILE_NAME: &str = "tail-checkpoint.json";
/// The format version written by this build.
pub const VERSION: u32 = 1;

/// The whole checkpoint file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version; must be [`VERSION`].
    pub version: u32,
    /// When it was written, in Unix nanoseconds.
    pub saved_at_ns: i128,
    /// Names of the sources followed when it was written. A source absent here is on its first
    /// run: its files start at its `start_at`.
    pub sources: Vec<String>,
    /// One entry per followed file generation.
    pub files: Vec<Entry>,
}

/// The committed position of one file, and what identifies that file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Length of the head fingerprint (at most 1 KiB).
    pub head_len: u64,
    /// xxh3 of the first `head_len` bytes.
    pub head_hash: u64,
    /// Committed offset: every byte before it is safe downstream.
    pub offset: u64,
    /// Length of the offset marker (at most 64, at most `offset`).
    pub marker_len: u64,
    /// xxh3 of the `marker_len` bytes just before `offset`.
    pub marker_hash: u64,
    /// The path the file was last seen under.
    pub path: PathBuf,
    /// When the file was last seen, in Unix nanoseconds (for garbage collection).
    pub last_seen_ns: i128,
    /// The file's birth time in Unix nanoseconds, where the filesystem records one: a reused
    /// inode has another.
    #[serde(default)]
    pub born_ns: Option<i128>,
}

/// Errors of loading or saving a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("failed to read checkpoint `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("failed to parse checkpoint `{}`", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The file parsed but holds impossible values.
    #[error("invalid checkpoint `{}`: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be written.
    #[error("failed to write checkpoint `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Which step failed, and why.
        #[source]
        source: crate::state::Error,
    },
}

impl Error {
    /// The checkpoint file concerned.
    pub fn path(&self) -> &Path {
        match self {
            Error::Read { path, .. }
            | Error::Parse { path, .. }
            | Error::Invalid { path, .. }
            | Error::Write { path, .. } => path,
        }
    }
}

/// Moves an unusable checkpoint copy aside as `<name>.corrupt-<time>` (UTC), where it is kept
/// for inspection and never overwritten; returns where it went.
///
/// # Errors
///
/// The rename failed (the copy stays where it was).
pub fn set_aside(path: &Path, now: jiff::Timestamp) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let mut target = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    let mut n = 1;
    while target.exists() {
        target = path.with_file_name(format!("{name}.corrupt-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    if let Some(dir) = path.parent() {
        // The rename is done; making it durable is a nicety here (the copy was useless anyway).
        drop(crate::state::sync_dir(dir));
    }
    Ok(target)
}

/// The path of the checkpoint in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

fn prev_path(dir: &Path) -> PathBuf {
    dir.join(format!("{FILE_NAME}.prev"))
}

/// What [`load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// No checkpoint at all: the first run.
    FirstRun,
    /// A valid checkpoint (maybe the previous copy; the errors say why the current one was not
    /// used).
    Found {
        /// The checkpoint.
        checkpoint: Checkpoint,
        /// Problems with the current file when `.prev` was used instead.
        errors: Vec<Error>,
    },
    /// Both the current and the previous copy are unusable.
    Unusable {
        /// Why, one per file.
        errors: Vec<Error>,
    },
}

/// Loads the checkpoint of `dir`, falling back to the previous copy when the current one is
/// missing or invalid.
pub fn load(dir: &Path) -> Loaded {
    let mut errors = Vec::new();
    let mut any_exists = false;
    for path in [path_in(dir), prev_path(dir)] {
        match read_one(&path) {
            Ok(Some(checkpoint)) => return Loaded::Found { checkpoint, errors },
            Ok(None) => {}
            Err(err) => {
                any_exists = true;
                errors.push(err);
            }
        }
    }
    if any_exists {
        Loaded::Unusable { errors }
    } else {
        Loaded::FirstRun
    }
}

fn read_one(path: &Path) -> Result<Option<Checkpoint>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })?;
    validate(&checkpoint).map_err(|reason| Error::Invalid {
        path: path.to_owned(),
        reason,
    })?;
    Ok(Some(checkpoint))
}

fn validate(checkpoint: &Checkpoint) -> Result<(), String> {
    if checkpoint.version != VERSION {
        return Err(format!(
            "version {} is not the supported version {VERSION}",
            checkpoint.version
        ));
    }
    for entry in &checkpoint.files {
        if entry.marker_len > entry.offset || entry.marker_len > 64 || entry.head_len > 1024 {
            return Err(format!(
                "entry for `{}` has impossible marker or head lengths",
                entry.path.display()
            ));
        }
    }
    Ok(())
}

/// Writes `checkpoint` atomically into `dir`: tmp → fsync → current renamed to `.prev` → tmp
/// renamed to current → fsync(dir).
///
/// # Errors
///
/// Any IO failure; the previous checkpoint is then still in place.
pub fn save(dir: &Path, checkpoint: &Checkpoint) -> Result<(), Error> {
    let current = path_in(dir);
    let json = serde_json::to_vec_pretty(checkpoint).expect("a checkpoint always serializes");
    crate::state::write_atomic_keeping_prev(&current, &prev_path(dir), &json).map_err(|source| {
        Error::Write {
            path: current.clone(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: u64) -> Checkpoint {
        Checkpoint {
            version: VERSION,
            saved_at_ns: 1,
            sources: vec!["app".into()],
            files: vec![Entry {
                dev: 1,
                ino: 2,
                head_len: 3,
                head_hash: 4,
                offset,
                marker_len: 3,
                marker_hash: 5,
                path: "/var/log/app.log".into(),
                last_seen_ns: 6,
                born_ns: Some(7),
            }],
        }
    }

    #[test]
    fn save_then_load_round_trips_and_keeps_prev() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path()), Loaded::FirstRun));
        save(dir.path(), &sample(10)).unwrap();
        save(dir.path(), &sample(20)).unwrap();
        match load(dir.path()) {
            Loaded::Found { checkpoint, errors } => {
                assert_eq!(checkpoint, sample(20));
                assert!(errors.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(prev_path(dir.path()).exists());
    }

    #[test]
    fn corrupt_current_falls_back_to_prev() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample(10)).unwrap();
        save(dir.path(), &sample(20)).unwrap();
        std::fs::write(path_in(dir.path()), b"{\"version\": 1, \"sav").unwrap();
        match load(dir.path()) {
            Loaded::Found { checkpoint, errors } => {
                assert_eq!(checkpoint, sample(10));
                assert_eq!(errors.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unusable_copy_is_set_aside_with_its_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path_in(dir.path()), b"garbage").unwrap();
        let now: jiff::Timestamp = "2026-12-01T21:15:00Z".parse().unwrap();
        let first = set_aside(&path_in(dir.path()), now).unwrap();
        assert_eq!(
            first,
            dir.path()
                .join("tail-checkpoint.json.corrupt-20261201T211500Z")
        );
        std::fs::write(path_in(dir.path()), b"more garbage").unwrap();
        let second = set_aside(&path_in(dir.path()), now).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"garbage");
        assert_eq!(std::fs::read(&second).unwrap(), b"more garbage");
        assert!(matches!(load(dir.path()), Loaded::FirstRun));
    }

    #[test]
    fn impossible_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = sample(1);
        bad.files[0].marker_len = 3;
        save(dir.path(), &bad).unwrap();
        assert!(matches!(load(dir.path()), Loaded::Unusable { .. }));
    }
}
