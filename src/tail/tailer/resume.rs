//! Resume: discovery and the start policy. Which files the globs match, and where each starts:
//! at its checkpoint entry when the content is still the one read, from 0 when it appeared
//! after the last checkpoint (or while running), at the source's `start_at` on a first run.
//! Checkpointed files found under a rotated name are drained from their offset, and a
//! copytruncate copy made while stopped gives back the unread end.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use super::descriptors::Cause;
use super::reconcile::OldContent;
use super::{Tailer, key_at, settings_of};
use crate::checkpoint::{self, Entry, Loaded};
use crate::config::StartAt;
use crate::discover;
use crate::logging::error_chain;
use crate::tail::counters::Descriptor;
use crate::tail::fingerprint::{self, Fingerprint, Resume};
use crate::tail::watcher::{FileWatcher, State};
use crate::tail::{Counters, Error, FileKey};

/// Files born this long before the last checkpoint still count as "appeared after it".
const BIRTH_SLACK: Duration = Duration::from_secs(5);

/// What the last checkpoint said, for the start policy.
pub(super) struct Previous {
    pub(super) saved_at: SystemTime,
    pub(super) sources: HashSet<String>,
}

/// What the checkpoint gives the start policy.
#[derive(Default)]
pub(super) struct Start {
    /// Entries to resume from, by file.
    pub(super) retained: HashMap<FileKey, Entry>,
    /// What the last checkpoint said (none on a first run, or when it is lost).
    pub(super) previous: Option<Previous>,
    /// A checkpoint existed but no copy of it could be used: what was read is unknown.
    pub(super) is_lost: bool,
}

/// Loads the checkpoint of `dir` for the start policy.
///
/// When no copy can be used (both unreadable or invalid), they are moved aside and the loss is
/// said in one ERROR line. Which lines were read is then unknown; every file the sources match
/// is read from its beginning once, whatever its `start_at`: lines may be reported again, but
/// none written while the agent was stopped is skipped (the rotated files' unread ends cannot
/// be found without the checkpoint, though).
pub(super) fn load_checkpoint(dir: &Path, counters: &Counters) -> Result<Start, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::StateDir {
        path: dir.to_owned(),
        source,
    })?;
    match checkpoint::load(dir) {
        Loaded::FirstRun => {
            info!(dir = %dir.display(), "no checkpoint: first run");
            Ok(Start::default())
        }
        Loaded::Found { checkpoint, errors } => {
            for err in errors {
                counters.add(&counters.checkpoint_errors, 1);
                let aside = set_aside(&err);
                warn!(error = %error_chain(&err), moved_to = %aside, "checkpoint unusable, using the previous copy");
            }
            let previous = Previous {
                saved_at: SystemTime::UNIX_EPOCH
                    + Duration::from_nanos(checkpoint.saved_at_ns.max(0) as u64),
                sources: checkpoint.sources.iter().cloned().collect(),
            };
            let retained = checkpoint
                .files
                .into_iter()
                .map(|entry| (FileKey::of_entry(&entry), entry))
                .collect();
            Ok(Start {
                retained,
                previous: Some(previous),
                is_lost: false,
            })
        }
        Loaded::Unusable { errors } => {
            counters.add(&counters.checkpoint_errors, errors.len() as u64);
            let causes: Vec<String> = errors
                .iter()
                .map(|err| format!("{} (moved to {})", error_chain(err), set_aside(err)))
                .collect();
            tracing::error!(
                errors = %causes.join("; "),
                "no checkpoint copy is usable: every followed file is read from its beginning (lines may be reported again; none is skipped)"
            );
            Ok(Start {
                is_lost: true,
                ..Start::default()
            })
        }
    }
}

/// Moves the copy `err` is about aside; says where it went (or why it stayed).
fn set_aside(err: &checkpoint::Error) -> String {
    match checkpoint::set_aside(err.path(), jiff::Timestamp::now()) {
        Ok(aside) => format!("`{}`", aside.display()),
        Err(why) => format!("nowhere: {why}"),
    }
}

impl Tailer {
    pub(super) fn discover(&mut self, now: Instant) {
        let mut dirs = std::collections::BTreeSet::new();
        for index in 0..self.sources.len() {
            let found = self.sources[index].globs.find();
            if found.is_cut {
                let name = PathBuf::from(format!("<source {}>", self.sources[index].config.name));
                self.warn_once(
                    &name,
                    Cause::WalkCut,
                    "the globs walk too many directory entries: some files may not be followed",
                    None,
                );
            }
            dirs.extend(found.dirs);
            for path in found.not_files {
                self.warn_once(&path, Cause::NotAFile, "not a regular file: skipped", None);
            }
            for path in found.files {
                self.consider(index, &path, now);
            }
            self.sources[index].is_started = true;
        }
        if !self.is_started {
            self.is_started = true;
            self.resume_rotated(now);
        }
        // Only the files there at the start are concerned; sources added later start by
        // their `start_at`.
        self.is_checkpoint_lost = false;
        self.watch_dirs = dirs;
    }

    fn consider(&mut self, source: usize, path: &Path, now: Instant) {
        let Some(key) = key_at(path) else {
            return;
        };
        let Some(generation) = self.files.following(key) else {
            self.adopt(source, path, key, now);
            return;
        };
        let Some(w) = self.files.get_mut(generation) else {
            return;
        };
        if *w.file.path != *path && key_at(&w.file.path) != Some(key) {
            w.file.path = Arc::from(path);
            if matches!(w.state, State::Rotated { .. }) {
                w.state = State::Active;
            }
        }
    }

    fn adopt(&mut self, source: usize, path: &Path, key: FileKey, now: Instant) {
        let Some((fd, meta)) = self.open_checked(path, key, source) else {
            return;
        };
        let size = meta.len();
        let config = &self.sources[source].config;
        let mut resume = None;
        let mut old = None;
        let pos = if let Some(entry) = self.retained.remove(&key) {
            if fingerprint::compare(&fd, &meta, &entry) == Resume::Same {
                debug!(path = %path.display(), offset = entry.offset, "resuming at the checkpoint");
                let offset = entry.offset;
                resume = Some(entry);
                offset
            } else {
                self.counters.add(&self.counters.identity_resets, 1);
                info!(path = %path.display(), "checkpointed file changed (truncated or inode reused): reading it from the start");
                old = Some(OldContent {
                    seen: Fingerprint::of(&entry),
                    start: entry.offset,
                });
                0
            }
        } else if self.sources[source].is_started || self.is_checkpoint_lost {
            // Appeared while running, or what was read is unknown: read, never skip.
            0
        } else {
            match &self.previous {
                Some(previous) if previous.sources.contains(&config.name) => {
                    let born = meta.created().or_else(|_| meta.modified());
                    if born.is_ok_and(|b| b + BIRTH_SLACK >= previous.saved_at) {
                        0
                    } else {
                        info!(path = %path.display(), start_at = ?config.start_at, "file predates the checkpoint but is not in it");
                        start_position(config.start_at, &fd, size)
                    }
                }
                _ => start_position(config.start_at, &fd, size),
            }
        };
        let mut w = self.new_watcher(key, path, source, fd, &meta, pos, now);
        if let Some(entry) = &resume {
            w.resume_from(entry);
        }
        debug!(path = %path.display(), offset = pos, "following file");
        self.files.insert(w);
        if let Some(old) = old {
            // Copied and truncated while stopped: the copy holds what was not read.
            self.drain_copy(path, source, &old, now);
        }
    }

    /// First pass: checkpointed files found under a rotated name are drained from their offset.
    fn resume_rotated(&mut self, now: Instant) {
        let mut listed: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
        let entries: Vec<Entry> = self.retained.values().cloned().collect();
        for entry in entries {
            let Some(source) = self
                .sources
                .iter()
                .position(|s| s.globs.matches(&entry.path))
            else {
                continue;
            };
            let siblings = listed
                .entry(entry.path.clone())
                .or_insert_with(|| discover::rotated_siblings(&entry.path))
                .clone();
            let key = FileKey::of_entry(&entry);
            // Unless the file itself is found intact, a copytruncate copy may hold its unread
            // end (copied, truncated and deleted or rotated while stopped).
            let mut old = Some(OldContent {
                seen: Fingerprint::of(&entry),
                start: entry.offset,
            });
            for sibling in siblings {
                if key_at(&sibling) != Some(key) || self.files.is_following(key) {
                    continue;
                }
                let Some((fd, meta)) = self.open_checked(&sibling, key, source) else {
                    continue;
                };
                self.retained.remove(&key);
                let resume = fingerprint::compare(&fd, &meta, &entry);
                let offset = match resume {
                    Resume::Same => {
                        old = None;
                        entry.offset
                    }
                    Resume::Changed => {
                        // Truncated and then rotated while stopped: none of it was read.
                        self.counters.add(&self.counters.identity_resets, 1);
                        info!(path = %sibling.display(), "rotated file changed since the checkpoint: reading it from the start");
                        0
                    }
                    Resume::Other => {
                        // A rotated file we never followed: reading it would duplicate.
                        self.counters.add(&self.counters.identity_resets, 1);
                        info!(path = %sibling.display(), "rotated file reuses a checkpointed inode: not read");
                        break;
                    }
                };
                let mut w = self.new_watcher(key, &sibling, source, fd, &meta, offset, now);
                if resume == Resume::Same {
                    w.resume_from(&entry);
                }
                w.state = State::Rotated { since: now };
                info!(path = %sibling.display(), offset = entry.offset, "draining a file rotated while stopped");
                self.files.insert(w);
                break;
            }
            if let Some(old) = old
                && self.drain_copy(&entry.path, source, &old, now)
            {
                self.retained.remove(&key);
            }
        }
    }

    /// A watcher for a file just opened, as a new generation, reading from `pos`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_watcher(
        &mut self,
        key: FileKey,
        path: &Path,
        source: usize,
        fd: Descriptor,
        meta: &std::fs::Metadata,
        pos: u64,
        now: Instant,
    ) -> FileWatcher {
        let id = self.files.new_id(key);
        let settings = settings_of(&self.sources[source].config);
        FileWatcher::new(id, Arc::from(path), source, fd, meta, pos, &settings, now)
    }
}

fn start_position(start_at: StartAt, fd: &std::fs::File, size: u64) -> u64 {
    match start_at {
        StartAt::Beginning => 0,
        StartAt::End => end_line_start(fd, size),
    }
}

/// The first line start at or before `size` found in the last 64 KiB (or `size` when none):
/// where "start at end" begins, so that a line being written is not cut in two.
fn end_line_start(file: &std::fs::File, size: u64) -> u64 {
    let window = size.min(64 * 1024);
    let mut buf = vec![0; window as usize];
    if file.read_exact_at(&mut buf, size - window).is_err() {
        return size;
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(i) => size - window + i as u64 + 1,
        None if window == size => 0,
        None => size,
    }
}
