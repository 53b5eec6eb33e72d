//! The tailer: every followed file of every source, driven one pass at a time.
//!
//! [`Tailer::poll_once`] is the whole algorithm, synchronous and clock-free (`now` is passed in):
//! reconcile tracked files against `fstat`/`stat` (the source of truth: rotation, deletion,
//! truncation), re-expand the globs when due, read every file with data up to its budget,
//! flush timed-out multiline events, close rotated or deleted files idle at EOF for
//! `rotate_wait`, and keep open descriptors under the cap. The thread in `tail/mod.rs` calls it
//! in a loop; tests call it directly, without threads or sleeps.
//!
//! The files themselves live in a `FileTable` (`tail/table.rs`); this file holds the pass and the checkpoint,
//! and its sections live next to it:
//! - `reconcile`: `fstat`/`stat` against what was read: rotation, deletion, truncation, and
//!   the copytruncate copy;
//! - `resume`: discovery and the start policy: checkpoint entries, `start_at`, files rotated
//!   while stopped;
//! - `descriptors`: opening files safely, reopening, the descriptor cap, warnings given once.

mod descriptors;
mod reconcile;
mod resume;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info};

use crate::checkpoint::{self, Checkpoint, Entry};
use crate::config::{Source, TailOptions};
use crate::discover::{self, Globs};
use crate::tail::builder::Built;
use crate::tail::counters::SourceEvent;
use crate::tail::fingerprint::Mark;
use crate::tail::table::FileTable;
use crate::tail::watcher::{FileSettings, State};
use crate::tail::{Batch, Counters, Error, FileId, FileKey, Spare};
use descriptors::Warnings;
use resume::Previous;

/// Read chunk size (one `pread`).
const CHUNK_BYTES: usize = 256 * 1024;
/// Checkpoint entries of files not seen for this long are dropped.
const ENTRY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// An unchanged checkpoint is still rewritten this often (fresh `last_seen`).
const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// What a checkpoint entry says, without its times: equal positions need no write.
#[derive(Debug, PartialEq, Eq)]
struct Position {
    key: FileKey,
    offset: u64,
    head: Mark,
    path: PathBuf,
}

fn positions(checkpoint: &Checkpoint) -> Vec<Position> {
    checkpoint
        .files
        .iter()
        .map(|e| Position {
            key: FileKey::of_entry(e),
            offset: e.offset,
            head: Mark {
                len: e.head_len,
                hash: e.head_hash,
            },
            path: e.path.clone(),
        })
        .collect()
}

/// Where the tailer's batches go. Returns false when nobody takes them any more (shutdown).
pub trait Downstream {
    /// Hands a batch over; false means stop.
    fn send(&mut self, batch: Batch) -> bool;

    /// A batch of `file` held back here (not handed on yet) that ends at file offset `end`:
    /// the lines read next are appended to it in place, then [`Downstream::grew`] is called.
    fn held(&mut self, _file: &FileId, _end: u64) -> Option<&mut Batch> {
        None
    }

    /// Lines (`bytes` of them) were appended to the held batch of `file`; false means stop.
    fn grew(&mut self, _file: &FileId, _bytes: usize) -> bool {
        true
    }
}

impl<F: FnMut(Batch) -> bool> Downstream for F {
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

struct SourceState {
    config: Source,
    globs: Globs,
    /// The first discovery of this source has happened (start policy applied).
    is_started: bool,
}

/// All followed files and the start policy.
pub struct Tailer {
    sources: Vec<SourceState>,
    options: TailOptions,
    state_dir: Option<PathBuf>,
    files: FileTable,
    /// Loaded checkpoint entries not matched to a followed file yet.
    retained: HashMap<FileKey, Entry>,
    previous: Option<Previous>,
    /// A checkpoint existed but could not be used: files start at 0.
    is_checkpoint_lost: bool,
    is_started: bool,
    next_reconcile: Option<Instant>,
    next_rescan: Option<Instant>,
    is_rescan_requested: bool,
    watch_dirs: BTreeSet<PathBuf>,
    buf: Vec<u8>,
    /// Buffers of scanned batches, read into again (a backlog's batches).
    spare: Spare,
    warnings: Warnings,
    counters: Arc<Counters>,
    last_saved: Option<(Instant, Vec<Position>)>,
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
        let start = match &state_dir {
            Some(dir) => resume::load_checkpoint(dir, &counters)?,
            None => resume::Start::default(),
        };
        Ok(Tailer {
            sources,
            buf: vec![0; CHUNK_BYTES.min(options.read_budget_bytes.max(4096))],
            spare: Spare::default(),
            options,
            state_dir,
            files: FileTable::new(counters.clone()),
            retained: start.retained,
            previous: start.previous,
            is_checkpoint_lost: start.is_lost,
            is_started: false,
            next_reconcile: None,
            next_rescan: None,
            is_rescan_requested: true,
            watch_dirs: BTreeSet::new(),
            warnings: Warnings::default(),
            counters,
            last_saved: None,
        })
    }

    /// Where scanned batches' buffers go back, to be read into again.
    pub fn spare(&self) -> Spare {
        self.spare.clone()
    }

    /// The directories worth watching for changes (hints only).
    pub fn watch_dirs(&self) -> &BTreeSet<PathBuf> {
        &self.watch_dirs
    }

    /// A hint: `path` changed. Creation, removal or rename also asks for a rescan.
    pub fn hint(&mut self, path: &Path, is_structural: bool) {
        for w in self.files.watchers_mut() {
            if *w.file.path == *path {
                w.dirty = true;
            }
        }
        if is_structural {
            // A rename or delete of a followed file: reconcile everything now.
            self.hint_rescan();
        }
    }

    /// A hint: events were lost; reconcile and rescan everything.
    pub fn hint_rescan(&mut self) {
        self.is_rescan_requested = true;
        self.next_reconcile = None;
    }

    /// One pass: reconcile, discover, read, flush, close. Stops early when `downstream`
    /// refuses.
    pub fn poll_once(&mut self, now: Instant, downstream: &mut dyn Downstream) -> Poll {
        let is_full = self.next_reconcile.is_none_or(|at| now >= at);
        if is_full {
            self.next_reconcile = Some(now + self.options.poll_interval);
        }
        if !self.reconcile(now, is_full, downstream) {
            return Poll::default();
        }
        if self.is_rescan_requested || self.next_rescan.is_none_or(|at| now >= at) {
            self.is_rescan_requested = false;
            self.next_rescan = Some(now + self.options.rescan_interval);
            self.discover(now);
        }
        if !self.read_all(now, downstream) {
            return Poll::default();
        }
        if !self.flush_expired(now, downstream) || !self.close_idle(now, downstream) {
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
        for w in self.files.watchers() {
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
        self.files.commit(file, offset);
    }

    /// Hands out every open multiline event (shutdown). Partial lines are kept: they are read
    /// again, whole, after the restart.
    pub fn flush_for_shutdown(&mut self, downstream: &mut dyn Downstream) {
        for w in self.files.watchers_mut() {
            if let Some(batch) = w.flush_events()
                && !downstream.send(batch)
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
        for w in self.files.watchers_mut() {
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
                None => dropped.push(w.file.id.generation),
            }
        }
        for generation in dropped {
            if let Some(w) = self.files.remove(generation) {
                info!(path = %w.file.path.display(), "no source matches the file any more: not followed");
                self.retained
                    .insert(w.key(), w.entry(unix_ns(SystemTime::now())));
            }
        }
        self.hint_rescan();
        Ok(())
    }

    /// The checkpoint of the committed offsets.
    pub fn checkpoint(&self, wall: SystemTime) -> Checkpoint {
        let now_ns = unix_ns(wall);
        let ttl_ns = ENTRY_TTL.as_nanos() as i128;
        let mut files: Vec<Entry> = self
            .files
            .watchers()
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
        let Some((dir, checkpoint)) = self.checkpoint_to_save(true) else {
            return Ok(());
        };
        let result = checkpoint::save(&dir, &checkpoint);
        self.saved(&checkpoint, result.is_ok());
        result
    }

    /// The state directory and the checkpoint to write there: with `always`, the one of now;
    /// otherwise only if it changed since the last one written (or once an hour, to keep
    /// `last_seen` fresh for garbage collection). `None` without a state directory. Whoever
    /// writes it (`checkpoint::save`) tells [`Tailer::saved`] how it went.
    pub fn checkpoint_to_save(&self, always: bool) -> Option<(PathBuf, Checkpoint)> {
        let dir = self.state_dir.clone()?;
        let checkpoint = self.checkpoint(SystemTime::now());
        if !always
            && let Some((at, saved)) = &self.last_saved
            && at.elapsed() < REFRESH_INTERVAL
            && *saved == positions(&checkpoint)
        {
            return None;
        }
        Some((dir, checkpoint))
    }

    /// `checkpoint` (from [`Tailer::checkpoint_to_save`]) was written, or not (counted; it is
    /// tried again at the next chance).
    pub fn saved(&mut self, checkpoint: &Checkpoint, is_written: bool) {
        if is_written {
            self.last_saved = Some((Instant::now(), positions(checkpoint)));
        } else {
            self.counters.add(&self.counters.checkpoint_errors, 1);
        }
    }

    /// The options in force.
    pub fn options(&self) -> &TailOptions {
        &self.options
    }

    /// Counts change hints that were folded into a full reconcile.
    pub(crate) fn count_dropped_hints(&self, n: u64) {
        self.counters.add(&self.counters.hints_dropped, n);
    }

    /// Number of open descriptors of followed files.
    pub fn open_files(&self) -> usize {
        self.files.open_files()
    }

    /// Counts `event` for the source at index `source`.
    fn count(&self, source: usize, event: SourceEvent) {
        count(&self.counters, &self.sources, source, event);
    }

    /// Publishes each source's followed files and lag (size minus committed offset) to the
    /// counters, for the metrics.
    pub fn publish_sources(&self) {
        let mut per_source = vec![(0_u64, 0_u64); self.sources.len()];
        for w in self.files.watchers().filter(|w| !w.is_retired()) {
            if let Some((files, lag)) = per_source.get_mut(w.source) {
                *files += u64::from(!w.is_done());
                *lag += w.size.saturating_sub(w.committed);
            }
        }
        let names = self.sources.iter().map(|s| s.config.name.clone());
        self.counters.publish_sources(
            names
                .zip(per_source)
                .map(|(name, (files, lag))| (name, files, lag)),
        );
    }

    // ---- read, flush, close ---------------------------------------------------------------

    fn read_all(&mut self, now: Instant, downstream: &mut dyn Downstream) -> bool {
        let generations = self
            .files
            .generations(|w| !w.is_done() && (w.has_more || w.dirty || w.size > w.pos()));
        let budget = self.options.read_budget_bytes.max(1);
        for generation in generations {
            let Some(generation) = self.ensure_open(generation, now, downstream) else {
                continue;
            };
            let Some(w) = self.files.get_mut(generation) else {
                continue;
            };
            let file = w.file.id.clone();
            let held = downstream
                .held(&file, w.line_start())
                .filter(|batch| w.lends_to_held(batch));
            match w.read(&mut self.buf, &self.spare, budget, now, held) {
                Ok(Some(Built::Batch(batch))) => {
                    self.counters.add(&self.counters.lines_cut, batch.lines_cut);
                    if !downstream.send(batch) {
                        return false;
                    }
                }
                Ok(Some(Built::Appended { bytes, lines_cut })) => {
                    self.counters.add(&self.counters.lines_cut, lines_cut);
                    if !downstream.grew(&file, bytes) {
                        return false;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    count(
                        &self.counters,
                        &self.sources,
                        w.source,
                        SourceEvent::ReadError,
                    );
                    debug!(path = %w.file.path.display(), error = %err, "read failed");
                }
            }
        }
        true
    }

    fn flush_expired(&mut self, now: Instant, downstream: &mut dyn Downstream) -> bool {
        for w in self.files.watchers_mut() {
            if let Some(batch) = w.flush_expired(now)
                && !downstream.send(batch)
            {
                return false;
            }
        }
        true
    }

    fn close_idle(&mut self, now: Instant, downstream: &mut dyn Downstream) -> bool {
        let rotate_wait = self.options.rotate_wait;
        let due = self.files.generations(|w| match w.state {
            State::Rotated { since } | State::Deleted { since } => {
                w.is_at_eof() && now >= since.max(w.last_growth) + rotate_wait
            }
            _ => false,
        });
        for generation in due {
            if self.reactivate(generation) {
                continue;
            }
            if let Some(w) = self.files.get(generation) {
                debug!(path = %w.file.path.display(), end = w.pos(), "rotated file drained and closed");
            }
            if let Some(batch) = self.files.finish(generation, now)
                && !downstream.send(batch)
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
        let Some(w) = self.files.get(generation) else {
            return false;
        };
        if !matches!(w.state, State::Rotated { .. }) {
            return false;
        }
        let key = w.key();
        let Some(path) = discover::rotated_siblings(&w.file.path)
            .into_iter()
            .find(|p| key_at(p) == Some(key) && self.sources.iter().any(|s| s.globs.matches(p)))
        else {
            return false;
        };
        let Some(w) = self.files.get_mut(generation) else {
            return false;
        };
        debug!(from = %w.file.path.display(), to = %path.display(), "rotated file matched under its new name: following it");
        w.file.path = Arc::from(path.as_path());
        w.state = State::Active;
        true
    }
}

/// The key of the file at `path` now, if there is one.
fn key_at(path: &Path) -> Option<FileKey> {
    std::fs::metadata(path).ok().map(|m| FileKey::of(&m))
}

/// Counts `event` for the source at index `source` (the tailer's fields, borrowed apart from
/// its file table).
fn count(counters: &Counters, sources: &[SourceState], source: usize, event: SourceEvent) {
    if let Some(state) = sources.get(source) {
        counters.source_event(&state.config.name, event);
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

fn unix_ns(time: SystemTime) -> i128 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}
