//! Descriptors: opening a followed file safely (non-blocking, checked to still be the file
//! looked at), reopening one closed by the cap, keeping open descriptors under
//! `max_open_files`, and warning once per path about files that cannot be followed.

use std::collections::HashSet;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{debug, warn};

use super::{Downstream, Tailer};
use crate::tail::counters::{Descriptor, SourceEvent};
use crate::tail::watcher::{Observed, State};
use crate::tail::{Counters, FileKey};

/// Most distinct (path, cause) warnings remembered; beyond, new ones are given at debug level
/// and counted (`warnings_quieted`), so that a directory of thousands of unreadable files
/// cannot grow memory or flood the log.
const MAX_WARNED: usize = 4096;

/// Why a warning was given (each is given once per path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Cause {
    PermissionDenied,
    NotAFile,
    OpenFailed,
    Truncated,
    Dropped,
    FdCap,
    WalkCut,
}

/// The warnings given so far, bounded.
#[derive(Default)]
pub(super) struct Warnings {
    given: HashSet<(PathBuf, Cause)>,
}

impl Warnings {
    /// Warns about `path` once per cause; repeats go to debug level.
    pub(super) fn warn_once(
        &mut self,
        counters: &Counters,
        path: &Path,
        cause: Cause,
        message: &str,
        error: Option<&dyn std::fmt::Display>,
    ) {
        // No `error` field at all when there is none (it used to show as `error=""`).
        let error = error.map(ToString::to_string);
        let error = error.as_deref();
        let key = (path.to_owned(), cause);
        if self.given.contains(&key) {
            debug!(path = %path.display(), error, "{message}");
        } else if self.given.len() >= MAX_WARNED {
            counters.add(&counters.warnings_quieted, 1);
            debug!(path = %path.display(), error, "{message}");
        } else {
            self.given.insert(key);
            warn!(path = %path.display(), error, "{message}");
            if self.given.len() == MAX_WARNED {
                warn!(
                    "{MAX_WARNED} paths warned about: further warnings are given at debug level only"
                );
            }
        }
    }

    /// `path` is followed: its open problems are over, and warned about again if they return.
    pub(super) fn forget(&mut self, path: &Path) {
        for cause in [Cause::PermissionDenied, Cause::NotAFile, Cause::OpenFailed] {
            self.given.remove(&(path.to_owned(), cause));
        }
    }

    /// Number of (path, cause) pairs remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.given.len()
    }
}

impl Tailer {
    pub(super) fn warn_once(
        &mut self,
        path: &Path,
        cause: Cause,
        message: &str,
        error: Option<&dyn std::fmt::Display>,
    ) {
        self.warnings
            .warn_once(&self.counters, path, cause, message, error);
    }

    /// Opens `path` and checks it is still the file `key`.
    pub(super) fn open_checked(
        &mut self,
        path: &Path,
        key: FileKey,
        source: usize,
    ) -> Option<(Descriptor, std::fs::Metadata)> {
        self.enforce_cap(Some(1));
        let fd = match open_for_reading(path) {
            Ok(fd) => fd,
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                self.count(source, SourceEvent::ReadError);
                self.warn_once(
                    path,
                    Cause::PermissionDenied,
                    "permission denied: will retry",
                    Some(&err),
                );
                return None;
            }
            Err(err) => {
                if err.kind() != std::io::ErrorKind::NotFound {
                    self.count(source, SourceEvent::ReadError);
                    self.warn_once(
                        path,
                        Cause::OpenFailed,
                        "failed to open file: will retry",
                        Some(&err),
                    );
                }
                return None;
            }
        };
        let meta = fd.metadata().ok()?;
        if !meta.is_file() {
            self.warn_once(path, Cause::NotAFile, "not a regular file: skipped", None);
            return None;
        }
        if FileKey::of(&meta) != key {
            return None;
        }
        self.warnings.forget(path);
        Some((self.files.descriptor(fd), meta))
    }

    /// Makes sure `generation` has an open descriptor (reopening it by path after the cap
    /// closed it). Returns the generation to read: a new one when the file was truncated while
    /// closed, none when it cannot be opened now.
    pub(super) fn ensure_open(
        &mut self,
        generation: u64,
        now: Instant,
        downstream: &mut dyn Downstream,
    ) -> Option<u64> {
        let w = self.files.get(generation)?;
        if w.fd.is_some() {
            return Some(generation);
        }
        let (path, key, source) = (w.file.path.clone(), w.key(), w.source);
        let (fd, meta) = self.open_checked(&path, key, source)?;
        let w = self.files.get_mut(generation)?;
        if w.reopen(fd, &meta, now) == Observed::Same {
            return Some(generation);
        }
        // A refused batch is seen again at the next send; the pass goes on meanwhile.
        let (new_generation, _) = self.restart_truncated(generation, &meta, now, downstream);
        new_generation
    }

    /// Closes idle active files until `room` more descriptors fit under the cap.
    pub(super) fn enforce_cap(&mut self, room: Option<usize>) {
        let cap = self.options.max_open_files.max(1);
        let limit = cap.saturating_sub(room.unwrap_or(0));
        if self.files.open_files() <= limit {
            return;
        }
        // Close a few more than needed so that the next opens do not each pay for a scan.
        let wanted = limit.saturating_sub(cap / 8);
        let mut victims: Vec<(bool, Instant, u64)> = self
            .files
            .watchers()
            .filter(|w| w.fd.is_some() && matches!(w.state, State::Active))
            .map(|w| (!w.is_at_eof(), w.last_read, w.file.id.generation))
            .collect();
        victims.sort();
        for (_, _, generation) in victims {
            if self.files.open_files() <= wanted {
                break;
            }
            if let Some(w) = self.files.get_mut(generation) {
                w.close();
            }
        }
        if self.files.open_files() > limit && room.is_none() {
            let path = PathBuf::from("<descriptor cap>");
            self.warn_once(
                &path,
                Cause::FdCap,
                "rotated files pin more descriptors than `max_open_files`",
                None,
            );
        }
    }
}

/// Opens a followed file for reading. Non-blocking: if the path became a FIFO since it was
/// looked at, opening it must not hang the tailer (regular files ignore the flag). Without
/// access times where the kernel allows it (files we own, or with `CAP_FOWNER`): under
/// `relatime`, every read after a write would otherwise update the inode's access time, a
/// journalled inode change for every read of a busy log.
fn open_for_reading(path: &Path) -> std::io::Result<std::fs::File> {
    let open = |flags: rustix::fs::OFlags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path)
    };
    let nonblock = rustix::fs::OFlags::NONBLOCK;
    match open(nonblock | rustix::fs::OFlags::NOATIME) {
        // EPERM: not the owner; the access time is then kept up to date.
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => open(nonblock),
        opened => opened,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_bounded_and_what_overflows_is_counted() {
        let counters = Counters::default();
        let mut warnings = Warnings::default();
        for i in 0..MAX_WARNED + 10 {
            let path = PathBuf::from(format!("/logs/{i}.log"));
            warnings.warn_once(&counters, &path, Cause::PermissionDenied, "denied", None);
            warnings.warn_once(&counters, &path, Cause::PermissionDenied, "denied", None);
        }
        assert_eq!(warnings.len(), MAX_WARNED);
        assert_eq!(counters.snapshot().warnings_quieted, 20);
        warnings.forget(Path::new("/logs/0.log"));
        assert_eq!(warnings.len(), MAX_WARNED - 1);
    }
}
