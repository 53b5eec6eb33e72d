//! The tailer: every followed file of every source, driven one pass at a time.
//!
//! [`Tailer::poll_once`] is the whole algorithm, synchronous and clock-free (`now` is passed in):
//! reconcile tracked files against `fstat`/`stat` (the source of truth: rotation, deletion,
//! truncation), re-expand the globs when due, read every file with data up to its budget,
//! flush timed-out multiline events, close rotated or deleted files idle at EOF for
//! `rotate_wait`, and keep open descriptors under the cap. The thread in `tail/mod.rs` calls it
//! in a loop; tests call it directly, without threads or sleeps.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use crate::checkpoint::{self, Checkpoint, Entry, Loaded};
use crate::config::{Source, StartAt, TailOptions};
use crate::logging::error_chain;
use crate::tail::discover::{self, Globs};
use crate::tail::watcher::{self, FileSettings, FileWatcher, Mark, Observed, Resume, State};
use crate::tail::{Batch, Counters, Error, FileId};

/// Read chunk size (one `pread`).
const CHUNK_BYTES: usize = 256 * 1024;
/// Files born this long before the last checkpoint still count as "appeared after it".
const BIRTH_SLACK: Duration = Duration::from_secs(5);
/// Checkpoint entries of files not seen for this long are dropped.
const ENTRY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// An unchanged checkpoint is still rewritten this often (fresh `last_seen`).
const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// What a checkpoint says, without its times: equal positions need no write.
type Positions = Vec<(u64, u64, u64, u64, u64, PathBuf)>;

fn positions(checkpoint: &Checkpoint) -> Positions {
    checkpoint
        .files
        .iter()
        .map(|e| {
            (
                e.dev,
                e.ino,
                e.offset,
                e.head_len,
                e.head_hash,
                e.path.clone(),
            )
        })
        .collect()
}

/// A place batches go. Returns false when nobody takes them any more (shutdown).
pub trait Sink {
    /// Hands a batch over; false means stop.
    fn send(&mut self, batch: Batch) -> bool;
}

impl<F: FnMut(Batch) -> bool> Sink for F {
    fn send(&mut self, batch: Batch) -> bool {
        self(batch)
    }
}

/// What a pass leaves to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// Some file has more bytes than its budget allowed: poll again at once.
    pub has_more: bool,
    /// The next moment something is due (a multiline timeout, a rotated file's close, the next
    /// reconcile or rescan).
    pub deadline: Option<Instant>,
}

/// Why a warning was given (each is given once per path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Cause {
    PermissionDenied,
    NotAFile,
    OpenFailed,
    Truncated,
    Dropped,
    FdCap,
}

/// What identifies the old content of a truncated file in its copy.
struct Copy {
    head: Mark,
    /// Bytes read (or committed) before the truncation.
    offset: u64,
    /// Marker of the bytes before `offset`.
    mark: Mark,
    /// Where to start reading the copy (a line start at or before `offset`).
    start: u64,
}

impl Copy {
    /// What a checkpoint entry knows of the content.
    fn of(entry: &Entry) -> Copy {
        Copy {
            head: Mark {
                len: entry.head_len,
                hash: entry.head_hash,
            },
            offset: entry.offset,
            mark: Mark {
                len: entry.marker_len,
                hash: entry.marker_hash,
            },
            start: entry.offset,
        }
    }
}

struct SourceState {
    config: Source,
    globs: Globs,
    /// The first discovery of this source has happened (start policy applied).
    is_started: bool,
}

/// What the last checkpoint said, for the start policy.
struct Previous {
    saved_at: SystemTime,
    sources: HashSet<String>,
}

/// All followed files and the start policy.
pub struct Tailer {
    sources: Vec<SourceState>,
    options: TailOptions,
    state_dir: Option<PathBuf>,
    watchers: BTreeMap<u64, FileWatcher>,
    by_key: HashMap<(u64, u64), u64>,
    /// Loaded checkpoint entries not matched to a followed file yet.
    retained: HashMap<(u64, u64), Entry>,
    previous: Option<Previous>,
    is_started: bool,
    next_generation: u64,
    next_reconcile: Option<Instant>,
    next_rescan: Option<Instant>,
    is_rescan_requested: bool,
    watch_dirs: BTreeSet<PathBuf>,
    buf: Vec<u8>,
    warned: HashSet<(PathBuf, Cause)>,
    counters: Arc<Counters>,
    open_files: usize,
    last_saved: Option<(Instant, Positions)>,
}

impl Tailer {
    /// A tailer for `sources`, resuming from the checkpoint in `state_dir` (none: a first run,
    /// and nothing is persisted).
    ///
    /// # Errors
    ///
    /// An invalid glob, or an unusable state directory.
    pub fn new(
        sources: Vec<Source>,
        options: TailOptions,
        state_dir: Option<PathBuf>,
        counters: Arc<Counters>,
    ) -> Result<Tailer, Error> {
        let sources = compile(sources)?;
        let mut retained = HashMap::new();
        let mut previous = None;
        if let Some(dir) = &state_dir {
            std::fs::create_dir_all(dir).map_err(|source| Error::StateDir {
                path: dir.clone(),
                source,
            })?;
            match checkpoint::load(dir) {
                Loaded::FirstRun => info!(dir = %dir.display(), "no checkpoint: first run"),
                Loaded::Found { checkpoint, errors } => {
                    for err in errors {
                        counters.add(&counters.checkpoint_errors, 1);
                        warn!(error = %error_chain(&err), "checkpoint unusable, using the previous copy");
                    }
                    previous = Some(Previous {
                        saved_at: SystemTime::UNIX_EPOCH
                            + Duration::from_nanos(checkpoint.saved_at_ns.max(0) as u64),
                        sources: checkpoint.sources.iter().cloned().collect(),
                    });
                    retained = checkpoint
                        .files
                        .into_iter()
                        .map(|entry| ((entry.dev, entry.ino), entry))
                        .collect();
                }
                Loaded::Unusable { errors } => {
                    for err in errors {
                        counters.add(&counters.checkpoint_errors, 1);
                        tracing::error!(error = %error_chain(&err), "checkpoint unusable: starting as on a first run");
                    }
                }
            }
        }
        Ok(Tailer {
            sources,
            buf: vec![0; CHUNK_BYTES.min(options.read_budget_bytes.max(4096))],
            options,
            state_dir,
            watchers: BTreeMap::new(),
            by_key: HashMap::new(),
            retained,
            previous,
            is_started: false,
            next_generation: 1,
            next_reconcile: None,
            next_rescan: None,
            is_rescan_requested: true,
            watch_dirs: BTreeSet::new(),
            warned: HashSet::new(),
            counters,
            open_files: 0,
            last_saved: None,
        })
    }

    /// The directories worth watching for changes (hints only).
    pub fn watch_dirs(&self) -> &BTreeSet<PathBuf> {
        &self.watch_dirs
    }

    /// A hint: `path` changed. Creation, removal or rename also asks for a rescan.
    pub fn hint(&mut self, path: &Path, is_structural: bool) {
        if is_structural {
            self.is_rescan_requested = true;
        }
        for w in self.watchers.values_mut() {
            if *w.file.path == *path {
                w.dirty = true;
            }
        }
        if is_structural {
            // A rename or delete of a followed file: reconcile everything now.
            self.next_reconcile = None;
        }
    }

    /// A hint: events were lost; reconcile and rescan everything.
    pub fn hint_rescan(&mut self) {
        self.is_rescan_requested = true;
        self.next_reconcile = None;
    }

    /// One pass: reconcile, discover, read, flush, close. Stops early when `sink` refuses.
    pub fn poll_once(&mut self, now: Instant, sink: &mut dyn Sink) -> Poll {
        let is_full = self.next_reconcile.is_none_or(|at| now >= at);
        if is_full {
            self.next_reconcile = Some(now + self.options.poll_interval);
        }
        if !self.reconcile(now, is_full, sink) {
            return Poll::default();
        }
        if self.is_rescan_requested || self.next_rescan.is_none_or(|at| now >= at) {
            self.is_rescan_requested = false;
            self.next_rescan = Some(now + self.options.rescan_interval);
            self.discover(now);
        }
        if !self.read_all(now, sink) {
            return Poll::default();
        }
        if !self.flush_expired(now, sink) || !self.close_idle(now, sink) {
            return Poll::default();
        }
        self.enforce_cap(None);
        self.next_poll(now)
    }

    fn next_poll(&self, now: Instant) -> Poll {
        let mut deadline = self
            .next_reconcile
            .into_iter()
            .chain(self.next_rescan)
            .min();
        let mut has_more = false;
        for w in self.watchers.values() {
            has_more |= w.has_more;
            let close_at = match w.state {
                State::Rotated { since } | State::Deleted { since } => {
                    Some(since.max(w.last_growth) + self.options.rotate_wait)
                }
                _ => None,
            };
            for at in w.deadline().into_iter().chain(close_at) {
                deadline = Some(deadline.map_or(at, |d: Instant| d.min(at)));
            }
        }
        Poll {
            has_more,
            deadline: deadline.map(|d| d.max(now)),
        }
    }

    /// Downstream says everything of `file` before `offset` is safe.
    pub fn commit(&mut self, file: &FileId, offset: u64) {
        let Some(w) = self.watchers.get_mut(&file.generation) else {
            return;
        };
        if w.file.id != *file {
            return;
        }
        w.commit(offset);
        if w.is_retired() {
            self.watchers.remove(&file.generation);
        }
    }

    /// Hands out every open multiline event (shutdown). Partial lines are kept: they are read
    /// again, whole, after the restart.
    pub fn flush_for_shutdown(&mut self, sink: &mut dyn Sink) {
        for w in self.watchers.values_mut() {
            if let Some(batch) = w.flush_events()
                && !sink.send(batch)
            {
                return;
            }
        }
    }

    /// Replaces sources and options: files keep their offsets; files no source matches any
    /// more are no longer followed; new sources start by their `start_at`.
    ///
    /// # Errors
    ///
    /// An invalid glob; nothing is changed then.
    pub fn reload(&mut self, sources: Vec<Source>, options: TailOptions) -> Result<(), Error> {
        let mut sources = compile(sources)?;
        for source in &mut sources {
            source.is_started = self
                .sources
                .iter()
                .any(|old| old.config.name == source.config.name && old.is_started);
        }
        let old_names: Vec<String> = self.sources.iter().map(|s| s.config.name.clone()).collect();
        self.sources = sources;
        self.options = options;
        let mut dropped = Vec::new();
        for (generation, w) in &mut self.watchers {
            let by_name = self
                .sources
                .iter()
                .position(|s| old_names.get(w.source) == Some(&s.config.name));
            let by_path = self
                .sources
                .iter()
                .position(|s| s.globs.matches(&w.file.path));
            let new_index = match w.state {
                State::Active => by_path,
                _ => by_name.or(by_path),
            };
            match new_index {
                Some(index) => {
                    w.source = index;
                    w.apply_settings(&settings_of(&self.sources[index].config));
                }
                None => dropped.push(*generation),
            }
        }
        for generation in dropped {
            if let Some(w) = self.watchers.remove(&generation) {
                self.by_key.remove(&w.key());
                if w.fd.is_some() {
                    self.open_files -= 1;
                }
                info!(path = %w.file.path.display(), "no source matches the file any more: not followed");
                self.retained
                    .insert(w.key(), w.entry(unix_ns(SystemTime::now())));
            }
        }
        self.is_rescan_requested = true;
        self.next_reconcile = None;
        Ok(())
    }

    /// The checkpoint of the committed offsets.
    pub fn checkpoint(&self, wall: SystemTime) -> Checkpoint {
        let now_ns = unix_ns(wall);
        let ttl_ns = ENTRY_TTL.as_nanos() as i128;
        let mut files: Vec<Entry> = self
            .watchers
            .values()
            .filter(|w| !w.is_retired())
            .map(|w| w.entry(now_ns))
            .collect();
        files.extend(
            self.retained
                .values()
                .filter(|e| e.last_seen_ns + ttl_ns >= now_ns)
                .cloned(),
        );
        files.sort_by(|a, b| (&a.path, a.dev, a.ino).cmp(&(&b.path, b.dev, b.ino)));
        let mut sources: Vec<String> = self.sources.iter().map(|s| s.config.name.clone()).collect();
        if let Some(previous) = &self.previous {
            sources.extend(previous.sources.iter().cloned());
        }
        sources.sort();
        sources.dedup();
        Checkpoint {
            version: checkpoint::VERSION,
            saved_at_ns: now_ns,
            sources,
            files,
        }
    }

    /// Returns true if and only if checkpoints are written (a state directory is configured;
    /// dry runs have none).
    pub fn persists_checkpoints(&self) -> bool {
        self.state_dir.is_some()
    }

    /// Persists the committed offsets (no-op without a state directory).
    ///
    /// # Errors
    ///
    /// The write failed; the previous checkpoint stays in place.
    pub fn save_checkpoint(&mut self) -> Result<(), checkpoint::Error> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        let checkpoint = self.checkpoint(SystemTime::now());
        let result = checkpoint::save(dir, &checkpoint);
        match &result {
            Ok(()) => self.last_saved = Some((Instant::now(), positions(&checkpoint))),
            Err(_) => self.counters.add(&self.counters.checkpoint_errors, 1),
        }
        result
    }

    /// Persists the committed offsets if they changed since the last save (or once an hour, to
    /// keep `last_seen` fresh for garbage collection).
    ///
    /// # Errors
    ///
    /// The write failed; the previous checkpoint stays in place.
    pub fn save_checkpoint_if_changed(&mut self) -> Result<(), checkpoint::Error> {
        if let Some((at, saved)) = &self.last_saved
            && at.elapsed() < REFRESH_INTERVAL
            && *saved == positions(&self.checkpoint(SystemTime::now()))
        {
            return Ok(());
        }
        self.save_checkpoint()
    }

    /// The options in force.
    pub fn options(&self) -> &TailOptions {
        &self.options
    }

    /// Number of open descriptors of followed files.
    pub fn open_files(&self) -> usize {
        self.open_files
    }

    /// A watcher for a file just opened, as a new generation, reading from `pos`.
    #[allow(clippy::too_many_arguments)]
    fn new_watcher(
        &mut self,
        key: (u64, u64),
        path: &Path,
        source: usize,
        fd: File,
        meta: &std::fs::Metadata,
        pos: u64,
        now: Instant,
    ) -> FileWatcher {
        let id = self.new_id(key);
        let settings = settings_of(&self.sources[source].config);
        FileWatcher::new(id, Arc::from(path), source, fd, meta, pos, &settings, now)
    }

    /// Starts following a new watcher: indexed by its key, counted as an open file.
    fn track(&mut self, w: FileWatcher) {
        let generation = w.file.id.generation;
        self.open_files += 1;
        self.counters.set_open(self.open_files);
        self.by_key.insert(w.key(), generation);
        self.watchers.insert(generation, w);
    }

    fn new_id(&mut self, key: (u64, u64)) -> FileId {
        let generation = self.next_generation;
        self.next_generation += 1;
        FileId {
            dev: key.0,
            ino: key.1,
            generation,
        }
    }

    fn warn_once(
        &mut self,
        path: &Path,
        cause: Cause,
        message: &str,
        error: Option<&dyn std::fmt::Display>,
    ) {
        let error = error.map(ToString::to_string).unwrap_or_default();
        if self.warned.insert((path.to_owned(), cause)) {
            warn!(path = %path.display(), error, "{message}");
        } else {
            debug!(path = %path.display(), error, "{message}");
        }
    }

    // ---- reconcile ------------------------------------------------------------------------

    fn reconcile(&mut self, now: Instant, is_full: bool, sink: &mut dyn Sink) -> bool {
        let generations: Vec<u64> = self
            .watchers
            .iter()
            .filter(|(_, w)| {
                !matches!(w.state, State::Done { .. })
                    && (is_full || w.dirty || !matches!(w.state, State::Active))
            })
            .map(|(g, _)| *g)
            .collect();
        for generation in generations {
            if !self.reconcile_one(generation, now, sink) {
                return false;
            }
        }
        true
    }

    fn reconcile_one(&mut self, generation: u64, now: Instant, sink: &mut dyn Sink) -> bool {
        let Some(w) = self.watchers.get_mut(&generation) else {
            return true;
        };
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
                return self.restart_truncated(generation, &meta, now, sink);
            }
            return true;
        }
        let path_key = path_meta
            .as_ref()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| (m.dev(), m.ino()));
        let Some(fd) = &w.fd else {
            // Closed by the fd cap: the path is all we have.
            if path_key == Some(w.key()) {
                let meta = path_meta.expect("a key implies metadata");
                if meta.len() != w.size {
                    w.has_more = true;
                }
                return true;
            }
            return self.find_moved(generation, now);
        };
        let meta = match fd.metadata() {
            Ok(meta) => meta,
            Err(err) => {
                debug!(path = %w.file.path.display(), error = %err, "fstat failed");
                return true;
            }
        };
        if w.observe(&meta, now) == Observed::Truncated {
            return self.restart_truncated(generation, &meta, now, sink);
        }
        if matches!(w.state, State::Active) && path_key != Some(w.key()) {
            let since = now;
            w.state = if meta.nlink() == 0 {
                State::Deleted { since }
            } else {
                State::Rotated { since }
            };
            self.counters.add(&self.counters.rotations, 1);
            info!(path = %w.file.path.display(), state = ?w.state, "file rotated or deleted: draining it");
            self.is_rescan_requested = true;
        } else if matches!(w.state, State::Rotated { .. }) && meta.nlink() == 0 {
            w.state = State::Deleted { since: now };
        }
        true
    }

    fn restart_truncated(
        &mut self,
        generation: u64,
        meta: &std::fs::Metadata,
        now: Instant,
        sink: &mut dyn Sink,
    ) -> bool {
        let mut w = self.watchers.remove(&generation).expect("caller checked");
        let id = self.new_id(w.key());
        let path = w.file.path.clone();
        let copy = Copy {
            head: w.head,
            offset: w.pos(),
            mark: w.pos_mark(),
            start: w.line_start(),
        };
        let source = w.source;
        let flushed = w.restart(id.clone(), meta, now);
        self.by_key.insert(w.key(), id.generation);
        self.watchers.insert(id.generation, w);
        self.counters.add(&self.counters.truncations, 1);
        self.warn_once(
            &path,
            Cause::Truncated,
            "file truncated: reading it again from the start",
            None,
        );
        self.drain_copy(&path, source, &copy, now);
        flushed.is_none_or(|batch| sink.send(batch))
    }

    /// After a truncation: copytruncate leaves a copy of the old content among the rotated
    /// siblings. Its part after what was read is drained like a rotated file, which narrows the
    /// loss to logrotate's own copy-to-truncate gap.
    fn drain_copy(&mut self, path: &Path, source: usize, copy: &Copy, now: Instant) -> bool {
        if copy.offset == 0 && copy.head.len == 0 {
            // Nothing was seen of the old content: nothing to recognise it by.
            return false;
        }
        for sibling in discover::rotated_siblings(path) {
            let Ok(meta) = std::fs::metadata(&sibling) else {
                continue;
            };
            let key = (meta.dev(), meta.ino());
            if self.by_key.contains_key(&key) || meta.len() < copy.offset {
                continue;
            }
            let Some((fd, meta)) = self.open_checked(&sibling, key) else {
                continue;
            };
            if !watcher::has_head(&fd, copy.head)
                || watcher::mark_before(&fd, copy.offset) != copy.mark
            {
                continue;
            }
            let mut w = self.new_watcher(key, &sibling, source, fd, &meta, copy.start, now);
            w.state = State::Rotated { since: now };
            info!(path = %sibling.display(), offset = copy.start, "reading the unread end of the truncated file from its copy");
            self.counters.add(&self.counters.copies_drained, 1);
            self.track(w);
            return true;
        }
        false
    }

    /// A file closed by the fd cap is no longer at its path: look for it among its rotated
    /// siblings, else give it up.
    fn find_moved(&mut self, generation: u64, now: Instant) -> bool {
        let w = self.watchers.get(&generation).expect("caller checked");
        let key = w.key();
        let found = discover::rotated_siblings(&w.file.path)
            .into_iter()
            .find(|p| std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == key));
        let reopened = found.and_then(|path| {
            self.open_checked(&path, key)
                .map(|(fd, meta)| (path, fd, meta))
        });
        match reopened {
            Some((_, fd, meta)) => {
                let w = self.watchers.get_mut(&generation).expect("caller checked");
                w.state = State::Rotated { since: now };
                let observed = w.reopen(fd, &meta, now);
                self.open_files += 1;
                self.counters.add(&self.counters.rotations, 1);
                if observed == Observed::Truncated {
                    warn!(path = %w.file.path.display(), "rotated file changed while closed: its unread part is lost");
                    let lost = w.size.saturating_sub(w.pos());
                    self.counters.add(&self.counters.dropped_bytes, lost);
                    self.watchers.remove(&generation);
                    self.by_key.remove(&key);
                    self.open_files -= 1;
                }
                self.counters.set_open(self.open_files);
                true
            }
            None => {
                let w = self.watchers.remove(&generation).expect("caller checked");
                self.by_key.remove(&key);
                let lost = w.size.saturating_sub(w.pos());
                self.counters.add(&self.counters.dropped_bytes, lost);
                let path = w.file.path.to_path_buf();
                self.warn_once(
                    &path,
                    Cause::Dropped,
                    "file vanished while closed by the descriptor cap",
                    None,
                );
                self.is_rescan_requested = true;
                true
            }
        }
    }

    // ---- discover -------------------------------------------------------------------------

    fn discover(&mut self, now: Instant) {
        let mut dirs = BTreeSet::new();
        for index in 0..self.sources.len() {
            let found = self.sources[index].globs.find();
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
        self.watch_dirs = dirs;
    }

    fn consider(&mut self, source: usize, path: &Path, now: Instant) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let key = (meta.dev(), meta.ino());
        if let Some(generation) = self.by_key.get(&key) {
            let w = self
                .watchers
                .get_mut(generation)
                .expect("by_key is in sync");
            if *w.file.path != *path {
                let old_holds_it =
                    std::fs::metadata(&*w.file.path).is_ok_and(|m| (m.dev(), m.ino()) == key);
                if !old_holds_it {
                    w.file.path = Arc::from(path);
                    if matches!(w.state, State::Rotated { .. }) {
                        w.state = State::Active;
                    }
                }
            }
            return;
        }
        self.adopt(source, path, key, now);
    }

    /// Opens `path` and checks it is still the file `key`.
    fn open_checked(&mut self, path: &Path, key: (u64, u64)) -> Option<(File, std::fs::Metadata)> {
        self.enforce_cap(Some(1));
        // Non-blocking: if the path became a FIFO since it was looked at, opening it must not
        // hang the tailer (regular files ignore the flag).
        let fd = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
        {
            Ok(fd) => fd,
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
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
        ((meta.dev(), meta.ino()) == key).then_some((fd, meta))
    }

    fn adopt(&mut self, source: usize, path: &Path, key: (u64, u64), now: Instant) {
        let Some((fd, meta)) = self.open_checked(path, key) else {
            return;
        };
        let size = meta.len();
        let config = &self.sources[source].config;
        let mut resume = None;
        let mut copy = None;
        let pos = if let Some(entry) = self.retained.remove(&key) {
            if watcher::compare(&fd, &meta, &entry) == Resume::Same {
                debug!(path = %path.display(), offset = entry.offset, "resuming at the checkpoint");
                let offset = entry.offset;
                resume = Some(entry);
                offset
            } else {
                self.counters.add(&self.counters.identity_resets, 1);
                info!(path = %path.display(), "checkpointed file changed (truncated or inode reused): reading it from the start");
                copy = Some(Copy::of(&entry));
                0
            }
        } else if self.sources[source].is_started {
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
        self.track(w);
        if let Some(copy) = copy {
            // Copied and truncated while stopped: the copy holds what was not read.
            self.drain_copy(path, source, &copy, now);
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
            let key = (entry.dev, entry.ino);
            // Unless the file itself is found intact, a copytruncate copy may hold its unread
            // end (copied, truncated and deleted or rotated while stopped).
            let mut copy = Some(Copy::of(&entry));
            for sibling in siblings {
                if !std::fs::metadata(&sibling).is_ok_and(|m| (m.dev(), m.ino()) == key)
                    || self.by_key.contains_key(&key)
                {
                    continue;
                }
                let Some((fd, meta)) = self.open_checked(&sibling, key) else {
                    continue;
                };
                self.retained.remove(&key);
                let resume = watcher::compare(&fd, &meta, &entry);
                let is_valid = resume == Resume::Same;
                let offset = match resume {
                    Resume::Same => {
                        copy = None;
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
                if is_valid {
                    w.resume_from(&entry);
                }
                w.state = State::Rotated { since: now };
                info!(path = %sibling.display(), offset = entry.offset, "draining a file rotated while stopped");
                self.track(w);
                break;
            }
            if let Some(copy) = copy
                && self.drain_copy(&entry.path, source, &copy, now)
            {
                self.retained.remove(&key);
            }
        }
    }

    // ---- read, flush, close ---------------------------------------------------------------

    fn read_all(&mut self, now: Instant, sink: &mut dyn Sink) -> bool {
        let generations: Vec<u64> = self
            .watchers
            .iter()
            .filter(|(_, w)| {
                !matches!(w.state, State::Done { .. })
                    && (w.has_more || w.dirty || w.size > w.pos())
            })
            .map(|(g, _)| *g)
            .collect();
        let budget = self.options.read_budget_bytes.max(1);
        for generation in generations {
            if self
                .watchers
                .get(&generation)
                .is_some_and(|w| w.fd.is_none())
                && !self.reopen(generation, now, sink)
            {
                continue;
            }
            let Some(w) = self.watchers.get_mut(&generation) else {
                continue;
            };
            match w.read(&mut self.buf, budget, now) {
                Ok(Some(batch)) => {
                    self.counters.add(&self.counters.lines_cut, batch.lines_cut);
                    if !sink.send(batch) {
                        return false;
                    }
                }
                Ok(None) => {}
                Err(err) => debug!(path = %w.file.path.display(), error = %err, "read failed"),
            }
        }
        true
    }

    fn reopen(&mut self, generation: u64, now: Instant, sink: &mut dyn Sink) -> bool {
        let w = self.watchers.get(&generation).expect("caller checked");
        let (path, key) = (w.file.path.clone(), w.key());
        let Some((fd, meta)) = self.open_checked(&path, key) else {
            return false;
        };
        self.open_files += 1;
        self.counters.set_open(self.open_files);
        let w = self.watchers.get_mut(&generation).expect("caller checked");
        if w.reopen(fd, &meta, now) == Observed::Truncated {
            self.restart_truncated(generation, &meta, now, sink);
        }
        true
    }

    fn flush_expired(&mut self, now: Instant, sink: &mut dyn Sink) -> bool {
        for w in self.watchers.values_mut() {
            if let Some(batch) = w.flush_expired(now)
                && !sink.send(batch)
            {
                return false;
            }
        }
        true
    }

    fn close_idle(&mut self, now: Instant, sink: &mut dyn Sink) -> bool {
        let rotate_wait = self.options.rotate_wait;
        let due: Vec<u64> = self
            .watchers
            .iter()
            .filter(|(_, w)| match w.state {
                State::Rotated { since } | State::Deleted { since } => {
                    w.is_at_eof() && now >= since.max(w.last_growth) + rotate_wait
                }
                _ => false,
            })
            .map(|(g, _)| *g)
            .collect();
        for generation in due {
            if self.reactivate(generation) {
                continue;
            }
            let w = self.watchers.get_mut(&generation).expect("collected above");
            let batch = w.flush_all(now);
            let end = w.pos();
            w.state = State::Done { end };
            if w.close() {
                self.open_files -= 1;
            }
            self.by_key.remove(&w.key());
            debug!(path = %w.file.path.display(), end, "rotated file drained and closed");
            if w.is_retired() {
                self.watchers.remove(&generation);
            }
            self.counters.set_open(self.open_files);
            if let Some(batch) = batch
                && !sink.send(batch)
            {
                return false;
            }
        }
        true
    }

    /// A rotated file renamed to a name a glob matches (`*.log*` matches `app.log.1`) is
    /// followed as an active file under that name instead of being closed (and read again from
    /// 0 at the next rescan).
    fn reactivate(&mut self, generation: u64) -> bool {
        let w = &self.watchers[&generation];
        if !matches!(w.state, State::Rotated { .. }) {
            return false;
        }
        let key = w.key();
        let Some(path) = discover::rotated_siblings(&w.file.path)
            .into_iter()
            .find(|p| {
                std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == key)
                    && self.sources.iter().any(|s| s.globs.matches(p))
            })
        else {
            return false;
        };
        let w = self.watchers.get_mut(&generation).expect("checked above");
        debug!(from = %w.file.path.display(), to = %path.display(), "rotated file matched under its new name: following it");
        w.file.path = Arc::from(path.as_path());
        w.state = State::Active;
        true
    }

    /// Closes idle active files until `room` more descriptors fit under the cap.
    fn enforce_cap(&mut self, room: Option<usize>) {
        let cap = self.options.max_open_files.max(1);
        let limit = cap.saturating_sub(room.unwrap_or(0));
        if self.open_files <= limit {
            return;
        }
        // Close a few more than needed so that the next opens do not each pay for a scan.
        let wanted = limit.saturating_sub(cap / 8);
        let mut victims: Vec<(bool, Instant, u64)> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.fd.is_some() && matches!(w.state, State::Active))
            .map(|(g, w)| (!w.is_at_eof(), w.last_read, *g))
            .collect();
        victims.sort();
        for (_, _, generation) in victims {
            if self.open_files <= wanted {
                break;
            }
            if let Some(w) = self.watchers.get_mut(&generation)
                && w.close()
            {
                self.open_files -= 1;
            }
        }
        if self.open_files > limit && room.is_none() {
            let path = PathBuf::from("<descriptor cap>");
            self.warn_once(
                &path,
                Cause::FdCap,
                "rotated files pin more descriptors than `max_open_files`",
                None,
            );
        }
        self.counters.set_open(self.open_files);
    }
}

fn compile(sources: Vec<Source>) -> Result<Vec<SourceState>, Error> {
    sources
        .into_iter()
        .map(|config| {
            let globs =
                Globs::new(&config.paths, &config.exclude).map_err(|source| Error::Glob {
                    source_name: config.name.clone(),
                    source,
                })?;
            Ok(SourceState {
                config,
                globs,
                is_started: false,
            })
        })
        .collect()
}

fn settings_of(source: &Source) -> FileSettings {
    FileSettings {
        max_line_bytes: source.max_line_bytes,
        multiline: source.multiline.clone(),
    }
}

fn start_position(start_at: StartAt, fd: &File, size: u64) -> u64 {
    match start_at {
        StartAt::Beginning => 0,
        StartAt::End => watcher::end_line_start(fd, size),
    }
}

fn unix_ns(time: SystemTime) -> i128 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}
