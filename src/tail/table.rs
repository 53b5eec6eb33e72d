//! The file table: every followed file generation, found by generation or by [`FileKey`], and
//! the descriptors they hold, counted.
//!
//! Why a type of its own: the two indexes and the open-descriptor gauge must agree, and keeping
//! them in agreement by hand (`open_files ± 1` next to every open and close) went wrong more than
//! once. Here the indexes change together, inside the table's methods only, and the gauge
//! cannot disagree with the descriptors: a `Descriptor` (made by [`FileTable::descriptor`])
//! counts itself in when it is made and out when it is dropped, whoever drops it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use crate::tail::counters::Descriptor;
use crate::tail::watcher::FileWatcher;
use crate::tail::{Batch, Counters, FileId, FileKey};

/// Every followed file generation.
pub(crate) struct FileTable {
    watchers: BTreeMap<u64, FileWatcher>,
    /// The newest generation of each file. Every value names a watcher of `watchers` with that
    /// key (inserted and removed together); whether it is still followed (not done) is checked
    /// at lookup.
    by_key: HashMap<FileKey, u64>,
    next_generation: u64,
    counters: Arc<Counters>,
}

impl FileTable {
    /// An empty table counting its descriptors in `counters`.
    pub(crate) fn new(counters: Arc<Counters>) -> FileTable {
        FileTable {
            watchers: BTreeMap::new(),
            by_key: HashMap::new(),
            next_generation: 1,
            counters,
        }
    }

    /// Wraps a descriptor just opened, counting it in.
    pub(crate) fn descriptor(&self, file: File) -> Descriptor {
        Descriptor::new(file, &self.counters)
    }

    /// Number of open descriptors of followed files.
    pub(crate) fn open_files(&self) -> usize {
        self.counters.open_files()
    }

    /// A new generation of the file `key`.
    pub(crate) fn new_id(&mut self, key: FileKey) -> FileId {
        let generation = self.next_generation;
        self.next_generation += 1;
        FileId {
            dev: key.dev,
            ino: key.ino,
            generation,
        }
    }

    /// Starts tracking `watcher`, which becomes the generation followed for its key.
    pub(crate) fn insert(&mut self, watcher: FileWatcher) {
        let generation = watcher.file.id.generation;
        self.by_key.insert(watcher.key(), generation);
        self.watchers.insert(generation, watcher);
    }

    /// Stops tracking `generation` (its descriptor, if open, is closed).
    pub(crate) fn remove(&mut self, generation: u64) -> Option<FileWatcher> {
        let watcher = self.watchers.remove(&generation)?;
        if self.by_key.get(&watcher.key()) == Some(&generation) {
            self.by_key.remove(&watcher.key());
        }
        Some(watcher)
    }

    /// The watcher of `generation`.
    pub(crate) fn get(&self, generation: u64) -> Option<&FileWatcher> {
        self.watchers.get(&generation)
    }

    /// The watcher of `generation`, to change.
    pub(crate) fn get_mut(&mut self, generation: u64) -> Option<&mut FileWatcher> {
        self.watchers.get_mut(&generation)
    }

    /// The generation that follows `key` now, if any (a drained and closed one does not).
    pub(crate) fn following(&self, key: FileKey) -> Option<u64> {
        let generation = *self.by_key.get(&key)?;
        self.watchers
            .get(&generation)
            .is_some_and(|w| !w.is_done())
            .then_some(generation)
    }

    /// Returns true if and only if some generation follows `key` now.
    pub(crate) fn is_following(&self, key: FileKey) -> bool {
        self.following(key).is_some()
    }

    /// Every watcher, in generation order.
    pub(crate) fn watchers(&self) -> impl Iterator<Item = &FileWatcher> {
        self.watchers.values()
    }

    /// Every watcher, to change.
    pub(crate) fn watchers_mut(&mut self) -> impl Iterator<Item = &mut FileWatcher> {
        self.watchers.values_mut()
    }

    /// The generations whose watchers satisfy `pred`, in order (to act on them one by one).
    pub(crate) fn generations(&self, pred: impl Fn(&FileWatcher) -> bool) -> Vec<u64> {
        self.watchers
            .iter()
            .filter(|(_, w)| pred(w))
            .map(|(generation, _)| *generation)
            .collect()
    }

    /// Restarts `generation` at offset 0 as a new generation after a truncation. Returns the
    /// new generation and the batch of the open multiline event, if any.
    pub(crate) fn restart(
        &mut self,
        generation: u64,
        meta: &std::fs::Metadata,
        now: Instant,
    ) -> Option<(u64, Option<Batch>)> {
        let mut watcher = self.remove(generation)?;
        let id = self.new_id(watcher.key());
        let new_generation = id.generation;
        let flushed = watcher.restart(id, meta, now);
        self.insert(watcher);
        Some((new_generation, flushed))
    }

    /// Downstream says everything of `file` before `offset` is safe; a drained file whose end
    /// is committed is forgotten.
    pub(crate) fn commit(&mut self, file: &FileId, offset: u64) {
        let Some(watcher) = self.watchers.get_mut(&file.generation) else {
            return;
        };
        if watcher.file.id != *file {
            return;
        }
        watcher.commit(offset);
        if watcher.is_retired() {
            self.remove(file.generation);
        }
    }

    /// A rotated or deleted file idle at EOF: hands out what it holds, closes it, and keeps it
    /// only until its end is committed.
    pub(crate) fn finish(&mut self, generation: u64, now: Instant) -> Option<Batch> {
        let watcher = self.watchers.get_mut(&generation)?;
        let batch = watcher.finish(now);
        if watcher.is_retired() {
            self.remove(generation);
        }
        batch
    }
}
