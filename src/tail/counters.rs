//! The tailer's counters: what it detected and gave up, and the open-descriptor gauge, shared
//! with whoever reports them (atomics: read from any thread, written by the tail thread).
//!
//! The gauge is changed by [`Descriptor`] alone, when one is made and when one is dropped, so
//! it is the number of open descriptors of followed files by construction.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// An open descriptor of a followed file, counted in the open-files gauge while it lives.
#[derive(Debug)]
pub(crate) struct Descriptor {
    file: File,
    counters: Arc<Counters>,
}

impl Descriptor {
    /// Counts `file` in until the descriptor is dropped.
    pub(crate) fn new(file: File, counters: &Arc<Counters>) -> Descriptor {
        counters.opened();
        Descriptor {
            file,
            counters: counters.clone(),
        }
    }
}

impl Descriptor {
    /// The counters it is counted in.
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}

impl std::ops::Deref for Descriptor {
    type Target = File;

    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        self.counters.closed();
    }
}

/// Counters of the tailer (monotonic, except the open-file gauge).
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) truncations: AtomicU64,
    pub(crate) rotations: AtomicU64,
    pub(crate) lines_cut: AtomicU64,
    pub(crate) dropped_bytes: AtomicU64,
    pub(crate) identity_resets: AtomicU64,
    pub(crate) copies_drained: AtomicU64,
    pub(crate) checkpoint_errors: AtomicU64,
    pub(crate) hints_dropped: AtomicU64,
    pub(crate) warnings_quieted: AtomicU64,
    /// Only [`Descriptor`] changes it.
    open_files: AtomicU64,
    open_files_peak: AtomicU64,
    /// Per configured source, by name (the metrics' `source` label: bounded by the config).
    sources: Mutex<BTreeMap<String, SourceStats>>,
}

/// What the tailer reports per source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Files followed now (active, or rotated and still being drained).
    pub files: u64,
    /// Bytes not committed yet: the sum of each followed file's size minus its committed offset.
    pub lag_bytes: u64,
    /// Rotations and deletions detected.
    pub rotations: u64,
    /// Truncations detected.
    pub truncations: u64,
    /// Opens (other than of a vanished file) and reads that failed.
    pub read_errors: u64,
}

/// Something the tailer counts per source.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SourceEvent {
    Rotation,
    Truncation,
    ReadError,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Truncations detected (size below the offset, or offset marker mismatch).
    pub truncations: u64,
    /// Rotations and deletions detected.
    pub rotations: u64,
    /// Lines cut by `max_line_bytes`.
    pub lines_cut: u64,
    /// Unread bytes given up (a file vanished while its descriptor was closed).
    pub dropped_bytes: u64,
    /// Checkpointed files whose content no longer matched (inode reuse, truncated while
    /// stopped): read from the start.
    pub identity_resets: u64,
    /// Truncated files whose unread end was read from their copy (copytruncate).
    pub copies_drained: u64,
    /// Checkpoint loads or writes that failed.
    pub checkpoint_errors: u64,
    /// Change hints that did not fit in the bounded hint list: folded into one full reconcile.
    pub hints_dropped: u64,
    /// Warnings given at debug level because the set of paths already warned about is full.
    pub warnings_quieted: u64,
    /// Descriptors of followed files open now.
    pub open_files: u64,
    /// Most descriptors ever open at once.
    pub open_files_peak: u64,
}

impl Counters {
    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One more descriptor is open.
    fn opened(&self) {
        let open = self.open_files.fetch_add(1, Ordering::Relaxed) + 1;
        self.open_files_peak.fetch_max(open, Ordering::Relaxed);
    }

    /// One descriptor fewer is open.
    fn closed(&self) {
        self.open_files.fetch_sub(1, Ordering::Relaxed);
    }

    /// Descriptors open now.
    pub(crate) fn open_files(&self) -> usize {
        self.open_files.load(Ordering::Relaxed) as usize
    }

    /// Counts `event` for `source` (rotations and truncations in the totals too).
    pub(crate) fn source_event(&self, source: &str, event: SourceEvent) {
        match event {
            SourceEvent::Rotation => self.add(&self.rotations, 1),
            SourceEvent::Truncation => self.add(&self.truncations, 1),
            SourceEvent::ReadError => {}
        }
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let stats = sources.entry(source.to_owned()).or_default();
        let counter = match event {
            SourceEvent::Rotation => &mut stats.rotations,
            SourceEvent::Truncation => &mut stats.truncations,
            SourceEvent::ReadError => &mut stats.read_errors,
        };
        *counter += 1;
    }

    /// Sets the gauges of every configured source, `(name, files, lag_bytes)`; sources no
    /// longer configured are forgotten.
    pub(crate) fn publish_sources(&self, now: impl IntoIterator<Item = (String, u64, u64)>) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let mut kept = BTreeMap::new();
        for (name, files, lag_bytes) in now {
            let mut stats = sources.remove(&name).unwrap_or_default();
            stats.files = files;
            stats.lag_bytes = lag_bytes;
            kept.insert(name, stats);
        }
        *sources = kept;
    }

    /// Per source, by name.
    pub fn sources(&self) -> BTreeMap<String, SourceStats> {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A snapshot.
    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            truncations: get(&self.truncations),
            rotations: get(&self.rotations),
            lines_cut: get(&self.lines_cut),
            dropped_bytes: get(&self.dropped_bytes),
            identity_resets: get(&self.identity_resets),
            copies_drained: get(&self.copies_drained),
            checkpoint_errors: get(&self.checkpoint_errors),
            hints_dropped: get(&self.hints_dropped),
            warnings_quieted: get(&self.warnings_quieted),
            open_files: get(&self.open_files),
            open_files_peak: get(&self.open_files_peak),
        }
    }
}
