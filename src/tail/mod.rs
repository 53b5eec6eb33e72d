//! Tail: follow the files named by the sources' globs and hand out their bytes with exact
//! offsets, so that the agent can promise "every line, at least once" across rotation,
//! truncation, deletion and restarts (see `reference/tailing.md` for the failure modes).
//!
//! - [`discover`]: globs to paths, rotated siblings.
//! - `watcher`: one file generation: descriptor, position, partial line, identity checks.
//! - `reader`: bytes to complete lines, long lines cut, partial lines held.
//! - `multiline`: lines to events.
//! - [`tailer`]: the synchronous, clock-free algorithm ([`tailer::Tailer::poll_once`]).
//! - this module: the `logding-tail` thread around it, the notify hints, the bounded channel to
//!   the agent, commits and checkpoints.
//!
//! Change detection: notify watches on parent directories are *hints* that wake the thread
//! early; a stat reconcile every `poll_interval` is the truth. Without notify (poll-only, watch
//! limit reached) everything still works, only later.

pub mod discover;
mod hints;
pub(crate) mod multiline;
mod reader;
pub mod tailer;
mod watcher;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Source, TailOptions};
use crate::logging::error_chain;
pub use tailer::{Poll, Sink, Tailer};

/// Identifies one generation of one file: `(dev, ino)` of the open descriptor, plus a number
/// this process gives each generation (a truncated file restarts as a new generation, so
/// commits for its old content are ignored). Not stable across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Generation number, unique within this process.
    pub generation: u64,
}

/// A file generation and the path it was last seen under. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// Identity.
    pub id: FileId,
    /// Path (for a rotated file, the name it was followed under).
    pub path: Arc<Path>,
}

/// A line cut to `max_line_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Position in [`Batch::data`] of the `\n` added after the kept head.
    pub at: usize,
    /// Bytes of the line dropped.
    pub skipped: u64,
}

/// Complete lines (or multiline events) of one file, with their offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Index into the sources.
    pub source: usize,
    /// The file.
    pub file: FileRef,
    /// File offset of `data[0]`.
    pub start: u64,
    /// File offset just past the last line: commit it once this batch's hits are safe.
    pub end: u64,
    /// Complete lines (`\n`-terminated, except a flushed final fragment of a rotated or deleted
    /// idle file); long lines already cut to `max_line_bytes`; CRLF kept.
    pub data: Vec<u8>,
    /// For multiline sources: each event's range within `data` (never split across batches).
    pub events: Option<Vec<Range<usize>>>,
    /// Lines cut by `max_line_bytes` in this batch.
    pub lines_cut: u64,
    /// Where lines were cut (to map positions in `data` to file offsets).
    pub cuts: Vec<Cut>,
}

impl Batch {
    /// The file offset of position `pos` of `data`.
    pub fn file_offset(&self, pos: usize) -> u64 {
        let skipped: u64 = self
            .cuts
            .iter()
            .filter(|cut| cut.at < pos)
            .map(|cut| cut.skipped)
            .sum();
        self.start + pos as u64 + skipped
    }

    /// Each line (with its `\n`, if any) and its file offset.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.data.len() {
                return None;
            }
            let end =
                memchr::memchr(b'\n', &self.data[pos..]).map_or(self.data.len(), |i| pos + i + 1);
            let line = (self.file_offset(pos), &self.data[pos..end]);
            pos = end;
            Some(line)
        })
    }
}

/// Errors of the tailer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source's glob does not compile.
    #[error("invalid path glob in source `{source_name}`")]
    Glob {
        /// The source.
        source_name: String,
        /// Why.
        #[source]
        source: discover::GlobError,
    },
    /// The state directory cannot be created.
    #[error("failed to create state directory `{}`", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tail thread could not be started.
    #[error("failed to start the tail thread")]
    Spawn(#[source] std::io::Error),
    /// The tail thread panicked.
    #[error("the tail thread panicked")]
    Panicked,
    /// The final checkpoint could not be written.
    #[error("failed to write the final checkpoint")]
    Checkpoint(#[source] crate::checkpoint::Error),
}

/// Counters of the tailer (monotonic, except the open-file gauge).
#[derive(Debug, Default)]
pub struct Counters {
    truncations: AtomicU64,
    rotations: AtomicU64,
    lines_cut: AtomicU64,
    dropped_bytes: AtomicU64,
    identity_resets: AtomicU64,
    copies_drained: AtomicU64,
    checkpoint_errors: AtomicU64,
    open_files: AtomicU64,
    open_files_peak: AtomicU64,
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
    /// Descriptors of followed files open now.
    pub open_files: u64,
    /// Most descriptors ever open at once.
    pub open_files_peak: u64,
}

impl Counters {
    fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn set_open(&self, open: usize) {
        self.open_files.store(open as u64, Ordering::Relaxed);
        self.open_files_peak
            .fetch_max(open as u64, Ordering::Relaxed);
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
            open_files: get(&self.open_files),
            open_files_peak: get(&self.open_files_peak),
        }
    }
}

/// What the handle and notify tell the thread.
#[derive(Default)]
struct Inbox {
    commits: Vec<(FileId, u64)>,
    reload: Option<(Vec<Source>, TailOptions)>,
    hints: Vec<(PathBuf, bool)>,
    is_rescan: bool,
    is_finished: bool,
}

/// The inbox and its wake-up.
#[derive(Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Inbox)) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inbox);
        self.wake.notify_all();
    }

    /// Like `update`, without waking the thread: commits only matter at the next checkpoint
    /// write, and the thread looks at its inbox at least every `MAX_NAP` anyway.
    fn update_quietly(&self, f: impl FnOnce(&mut Inbox)) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inbox);
    }

    /// Waits until something arrives or `timeout` passes; returns the inbox taken.
    fn wait(&self, timeout: Duration) -> Inbox {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        if is_empty(&inbox) && !timeout.is_zero() {
            inbox = self
                .wake
                .wait_timeout(inbox, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let is_finished = inbox.is_finished;
        let taken = std::mem::take(&mut *inbox);
        inbox.is_finished = is_finished;
        taken
    }
}

fn is_empty(inbox: &Inbox) -> bool {
    // Commits do not count: they wait for the next pass (see `update_quietly`).
    inbox.reload.is_none() && inbox.hints.is_empty() && !inbox.is_rescan
}

/// The running tailer.
pub struct TailHandle {
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

/// The longest the thread sleeps without looking at the cancel token.
const MAX_NAP: Duration = Duration::from_millis(100);
/// The shortest sleep between passes when nothing is pending (no busy loop on a past deadline).
const MIN_NAP: Duration = Duration::from_millis(5);
/// After shutdown, how long a batch may wait for room downstream before it is given up (it is
/// not committed, so it is read again after the restart).
const SHUTDOWN_SEND_GRACE: Duration = Duration::from_secs(10);

/// Starts the `logding-tail` thread following `sources`, sending batches to `out`.
///
/// `state_dir` `None` persists nothing and starts as on a first run (dry runs).
///
/// # Errors
///
/// An invalid glob, an unusable state directory, or a thread that cannot be started.
pub fn spawn(
    sources: Vec<Source>,
    options: TailOptions,
    state_dir: Option<PathBuf>,
    out: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
) -> Result<TailHandle, Error> {
    let counters = Arc::new(Counters::default());
    let poll_only = options.poll_only;
    let tailer = Tailer::new(sources, options, state_dir, counters.clone())?;
    let shared = Arc::new(Shared::default());
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("logding-tail".into())
        .spawn(move || run(tailer, poll_only, thread_shared, out, shutdown))
        .map_err(Error::Spawn)?;
    Ok(TailHandle {
        shared,
        counters,
        thread: Some(thread),
    })
}

impl TailHandle {
    /// Downstream says: everything of `file` before `offset` is safe. Only committed offsets
    /// are ever persisted.
    pub fn commit(&self, file: &FileId, offset: u64) {
        self.shared
            .update_quietly(|inbox| inbox.commits.push((file.clone(), offset)));
    }

    /// New or changed sources take effect; followed files keep their offsets.
    pub fn reload(&self, sources: Vec<Source>, options: TailOptions) {
        self.shared
            .update(|inbox| inbox.reload = Some((sources, options)));
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// After shutdown: waits for the thread, which applies the last commits and writes the
    /// final checkpoint.
    ///
    /// # Errors
    ///
    /// The thread panicked or the final checkpoint could not be written.
    pub fn finish(mut self) -> Result<(), Error> {
        self.shared.update(|inbox| inbox.is_finished = true);
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Panicked),
            None => Ok(()),
        }
    }
}

impl Drop for TailHandle {
    fn drop(&mut self) {
        // Without `finish`, the thread must still end once shutdown is cancelled.
        self.shared.update(|inbox| inbox.is_finished = true);
    }
}

/// Sends batches on the bounded channel, waiting for room while keeping an eye on shutdown.
struct ChannelSink<'a> {
    out: &'a mpsc::Sender<Batch>,
    shared: &'a Shared,
    shutdown: &'a CancellationToken,
    /// Commits and hints that arrived while waiting.
    pending: Inbox,
    /// The receiver is gone.
    is_closed: bool,
}

impl Sink for ChannelSink<'_> {
    fn send(&mut self, batch: Batch) -> bool {
        let mut batch = batch;
        let mut cancelled_at = None;
        loop {
            match self.out.try_send(batch) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.is_closed = true;
                    return false;
                }
                Err(mpsc::error::TrySendError::Full(back)) => batch = back,
            }
            if self.shutdown.is_cancelled() {
                let since = *cancelled_at.get_or_insert_with(Instant::now);
                if since.elapsed() > SHUTDOWN_SEND_GRACE {
                    warn!(
                        "downstream took no batch for a while after shutdown: giving up (the lines are read again at the next start)"
                    );
                    return false;
                }
            }
            let inbox = self.shared.wait(Duration::from_millis(5));
            merge(&mut self.pending, inbox);
        }
    }
}

fn merge(into: &mut Inbox, from: Inbox) {
    into.commits.extend(from.commits);
    if from.reload.is_some() {
        into.reload = from.reload;
    }
    into.hints.extend(from.hints);
    into.is_rescan |= from.is_rescan;
    into.is_finished |= from.is_finished;
}

fn run(
    mut tailer: Tailer,
    poll_only: bool,
    shared: Arc<Shared>,
    out: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut hints = (!poll_only).then(|| hints::Hints::new(shared.clone()));
    let mut last_save = Instant::now();
    let mut is_checkpoint_failing = false;
    let mut is_finished = false;
    let mut sink = ChannelSink {
        out: &out,
        shared: &shared,
        shutdown: &shutdown,
        pending: Inbox::default(),
        is_closed: false,
    };
    let mut poll = Poll::default();
    while !shutdown.is_cancelled() {
        let now = Instant::now();
        let timeout = if poll.has_more {
            Duration::ZERO
        } else {
            poll.deadline
                .map_or(MAX_NAP, |d| d.saturating_duration_since(now))
                .clamp(MIN_NAP, MAX_NAP)
        };
        let mut inbox = shared.wait(timeout);
        if let Some(batch_wait) = tailer.options().batch_wait
            && !poll.has_more
            && !inbox.hints.is_empty()
            && !shutdown.is_cancelled()
        {
            // A busy log writes many times per millisecond and each write is a notify event:
            // let them gather so that one pass reads them all in one large batch, instead of
            // waking every thread of the pipeline once per write (`tail.batch_wait`).
            std::thread::sleep(batch_wait);
            merge(&mut inbox, shared.wait(Duration::ZERO));
        }
        merge(&mut inbox, std::mem::take(&mut sink.pending));
        is_finished |= inbox.is_finished;
        apply(&mut tailer, inbox, &mut hints);
        if shutdown.is_cancelled() {
            break;
        }
        poll = tailer.poll_once(Instant::now(), &mut sink);
        if sink.is_closed {
            info!("tail: nobody takes batches any more: stopping");
            break;
        }
        if let Some(hints) = &mut hints {
            hints.sync(tailer.watch_dirs());
        }
        if last_save.elapsed() >= tailer.options().checkpoint_interval {
            last_save = Instant::now();
            let pending = std::mem::take(&mut sink.pending);
            is_finished |= pending.is_finished;
            apply(&mut tailer, pending, &mut hints);
            match tailer.save_checkpoint_if_changed() {
                Ok(()) if is_checkpoint_failing => {
                    is_checkpoint_failing = false;
                    info!("checkpoint written again");
                }
                Ok(()) => {}
                // Said once per failure streak; the counter keeps the count.
                Err(err) if !is_checkpoint_failing => {
                    is_checkpoint_failing = true;
                    error!(error = %error_chain(&err), "failed to write checkpoint: will retry");
                }
                Err(err) => tracing::debug!(error = %err, "checkpoint still failing"),
            }
        }
    }
    info!("tail: shutting down");
    tailer.flush_for_shutdown(&mut sink);
    let pending = std::mem::take(&mut sink.pending);
    is_finished |= pending.is_finished;
    apply(&mut tailer, pending, &mut hints);
    drop(hints);
    drop(out);
    while !is_finished {
        let inbox = shared.wait(MAX_NAP);
        is_finished |= inbox.is_finished;
        apply(&mut tailer, inbox, &mut None);
    }
    tailer.save_checkpoint().map_err(Error::Checkpoint)?;
    if tailer.persists_checkpoints() {
        info!("tail: final checkpoint written");
    }
    Ok(())
}

fn apply(tailer: &mut Tailer, inbox: Inbox, hints: &mut Option<hints::Hints>) {
    for (file, offset) in &inbox.commits {
        tailer.commit(file, *offset);
    }
    if let Some((sources, options)) = inbox.reload {
        let poll_only = options.poll_only;
        match tailer.reload(sources, options) {
            Ok(()) => {
                info!("tail: sources reloaded");
                if poll_only {
                    *hints = None;
                }
            }
            Err(err) => error!(error = %err, "tail: reload rejected, keeping the previous sources"),
        }
    }
    for (path, is_structural) in &inbox.hints {
        tailer.hint(path, *is_structural);
    }
    if inbox.is_rescan {
        tailer.hint_rescan();
    }
}

/// The files a source's globs match right now (sorted), for the startup log line. Files that
/// appear later are followed too; this is only a snapshot.
pub fn files_matching(source: &Source) -> Vec<PathBuf> {
    match discover::Globs::new(&source.paths, &source.exclude) {
        Ok(globs) => globs.find().files,
        Err(_) => Vec::new(),
    }
}
