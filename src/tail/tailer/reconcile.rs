//! Reconcile: `fstat` of each followed descriptor and `stat` of its path, the source of truth
//! that notify events only hint at. Finds rotation (the path names another file), deletion
//! (no links left), truncation (size below the offset, or the bytes before it changed), and a
//! file closed by the descriptor cap that moved; after a truncation, looks for the
//! copytruncate copy and drains its unread end.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::descriptors::Cause;
use super::{Downstream, Tailer, count, key_at};
use crate::discover;
use crate::tail::counters::SourceEvent;
use crate::tail::fingerprint::Fingerprint;
use crate::tail::watcher::{FileWatcher, Observed, State};
use crate::tail::{FileKey, Ledger};

/// What identifies the old content of a truncated file in its copy, and where to start
/// reading the copy.
pub(super) struct OldContent {
    /// What was read (or committed) before the truncation.
    pub(super) seen: Fingerprint,
    /// A line start at or before `seen.offset`.
    pub(super) start: u64,
}

impl Tailer {
    pub(super) fn reconcile(
        &mut self,
        now: Instant,
        is_full: bool,
        downstream: &mut dyn Downstream,
    ) -> bool {
        let generations = self.files.generations(|w| {
            !w.is_done() && (is_full || w.dirty || !matches!(w.state, State::Active))
        });
        for generation in generations {
            if !self.reconcile_one(generation, now, is_full, downstream) {
                return false;
            }
        }
        true
    }

    fn reconcile_one(
        &mut self,
        generation: u64,
        now: Instant,
        is_full: bool,
        downstream: &mut dyn Downstream,
    ) -> bool {
        let Some(w) = self.files.get_mut(generation) else {
            return true;
        };
        if !is_full
            && matches!(w.state, State::Active)
            && let Some(fd) = &w.fd
        {
            // A change hint about a file at its path: only its content can have changed (a
            // rename or removal sends a structural hint, which makes the pass full), so
            // `fstat` is enough; the path is looked up at the next full reconcile.
            let Ok(meta) = fd.metadata() else {
                return true;
            };
            if w.observe(&meta, now) == Observed::Truncated {
                return self.restart_truncated(generation, &meta, now, downstream).1;
            }
            return true;
        }
        let path_meta = std::fs::metadata(&*w.file.path);
        if let Err(err) = &path_meta
            && err.kind() != std::io::ErrorKind::NotFound
            && err.kind() != std::io::ErrorKind::NotADirectory
        {
            // The path cannot be looked at now (permissions, IO): no conclusion about it.
            debug!(path = %w.file.path.display(), error = %err, "stat failed");
            if let Some(fd) = &w.fd
                && let Ok(meta) = fd.metadata()
                && w.observe(&meta, now) == Observed::Truncated
            {
                return self.restart_truncated(generation, &meta, now, downstream).1;
            }
            return true;
        }
        let path_meta = path_meta.ok().filter(std::fs::Metadata::is_file);
        let Some(fd) = &w.fd else {
            // Closed by the fd cap: the path is all we have.
            match path_meta {
                Some(meta) if FileKey::of(&meta) == w.key() => {
                    if meta.len() != w.size {
                        w.has_more = true;
                    }
                }
                _ => self.find_moved(generation, now),
            }
            return true;
        };
        let meta = match fd.metadata() {
            Ok(meta) => meta,
            Err(err) => {
                debug!(path = %w.file.path.display(), error = %err, "fstat failed");
                return true;
            }
        };
        if w.observe(&meta, now) == Observed::Truncated {
            return self.restart_truncated(generation, &meta, now, downstream).1;
        }
        let path_key = path_meta.as_ref().map(FileKey::of);
        if matches!(w.state, State::Active) && path_key != Some(w.key()) {
            let since = now;
            w.state = if meta.nlink() == 0 {
                State::Deleted { since }
            } else {
                State::Rotated { since }
            };
            count(
                &self.counters,
                &self.sources,
                w.source,
                SourceEvent::Rotation,
            );
            info!(path = %w.file.path.display(), state = ?w.state, "file rotated or deleted: draining it");
            self.is_rescan_requested = true;
        } else if matches!(w.state, State::Rotated { .. }) && meta.nlink() == 0 {
            w.state = State::Deleted { since: now };
        }
        true
    }

    /// Restarts a truncated file at 0 as a new generation and drains its copy, if one is
    /// found. Returns the new generation, and false if downstream refused the flushed event.
    pub(super) fn restart_truncated(
        &mut self,
        generation: u64,
        meta: &std::fs::Metadata,
        now: Instant,
        downstream: &mut dyn Downstream,
    ) -> (Option<u64>, bool) {
        let Some(w) = self.files.get(generation) else {
            return (None, true);
        };
        let path = w.file.path.clone();
        let source = w.source;
        // Backlog ranges handed out unread are read from the copy, if one is found (held
        // while looking for it: the process task settles them meanwhile).
        let ledger = w.ledger();
        let mut ranges = ledger.as_deref().map(Ledger::lock);
        let unsettled = ranges.as_ref().and_then(|r| r.first_unsettled());
        let old = OldContent {
            seen: w.seen(),
            start: unsettled.map_or(w.line_start(), |at| at.min(w.line_start())),
        };
        let Some((new_generation, flushed)) = self.files.restart(generation, meta, now) else {
            return (None, true);
        };
        count(
            &self.counters,
            &self.sources,
            source,
            SourceEvent::Truncation,
        );
        self.warn_once(
            &path,
            Cause::Truncated,
            "file truncated: reading it again from the start",
            None,
        );
        if self.drain_copy(&path, source, &old, now)
            && let (Some(ranges), Some(from)) = (&mut ranges, unsettled)
        {
            ranges.copied_from(from);
        }
        drop(ranges);
        let is_sent = flushed.is_none_or(|batch| downstream.send(batch));
        (Some(new_generation), is_sent)
    }

    /// After a truncation: copytruncate leaves a copy of the old content among the rotated
    /// siblings. Its part after what was read is drained like a rotated file, which narrows the
    /// loss to logrotate's own copy-to-truncate gap.
    pub(super) fn drain_copy(
        &mut self,
        path: &Path,
        source: usize,
        old: &OldContent,
        now: Instant,
    ) -> bool {
        if old.seen.is_empty() {
            // Nothing was seen of the old content: nothing to recognise it by.
            return false;
        }
        for sibling in discover::rotated_siblings(path) {
            let Ok(meta) = std::fs::metadata(&sibling) else {
                continue;
            };
            let key = FileKey::of(&meta);
            if self.files.is_following(key) || meta.len() < old.seen.offset {
                continue;
            }
            let Some((fd, meta)) = self.open_checked(&sibling, key, source) else {
                continue;
            };
            if !old.seen.is_prefix_of(&fd, meta.len()) {
                continue;
            }
            let mut w = self.new_watcher(key, &sibling, source, fd, &meta, old.start, now);
            w.state = State::Rotated { since: now };
            info!(path = %sibling.display(), offset = old.start, "reading the unread end of the truncated file from its copy");
            self.counters.add(&self.counters.copies_drained, 1);
            self.files.insert(w);
            return true;
        }
        false
    }

    /// A file closed by the fd cap is no longer at its path: look for it among its rotated
    /// siblings, else give it up.
    fn find_moved(&mut self, generation: u64, now: Instant) {
        let Some(w) = self.files.get(generation) else {
            return;
        };
        let key = w.key();
        let source = w.source;
        let found = discover::rotated_siblings(&w.file.path)
            .into_iter()
            .find(|p| key_at(p) == Some(key));
        let reopened = found.and_then(|path| self.open_checked(&path, key, source));
        if let Some((fd, meta)) = reopened
            && let Some(w) = self.files.get_mut(generation)
        {
            w.state = State::Rotated { since: now };
            count(&self.counters, &self.sources, source, SourceEvent::Rotation);
            if w.reopen(fd, &meta, now) == Observed::Same {
                return;
            }
            warn!(path = %w.file.path.display(), "rotated file changed while closed: its unread part is lost");
            self.give_up(generation);
            return;
        }
        if let Some(path) = self.give_up(generation) {
            self.warn_once(
                &path,
                Cause::Dropped,
                "file vanished while closed by the descriptor cap",
                None,
            );
            self.is_rescan_requested = true;
        }
    }

    /// Stops following `generation`, counting its unread bytes as dropped; returns its path.
    fn give_up(&mut self, generation: u64) -> Option<std::path::PathBuf> {
        let w: FileWatcher = self.files.remove(generation)?;
        let lost = w.size.saturating_sub(w.pos());
        self.counters.add(&self.counters.dropped_bytes, lost);
        Some(w.file.path.to_path_buf())
    }
}
