//! Tail: follow the files named by the sources' globs and hand out their bytes with exact
//! offsets, so that the agent can promise "every line, at least once" across rotation,
//! truncation, deletion and restarts. Events are hints, identity is `(dev, ino)` checked by
//! content, and an offset is persisted only once downstream committed it.
//!
//! - `batch`: what is handed out ([`Batch`]) and the identities it carries ([`FileKey`],
//!   [`FileId`]).
//! - [`crate::discover`] (beside it): globs to paths, rotated siblings.
//! - `fingerprint`: is it still the content we read (head fingerprint, offset marker)?
//! - `table`: every followed file generation, by generation and by key, and the counted
//!   descriptors.
//! - `watcher`: one file generation: descriptor, position, partial line, commits.
//! - `reader`: bytes to complete lines, long lines cut, partial lines held.
//! - `multiline`: lines to events.
//! - [`tailer`]: the synchronous, clock-free algorithm ([`tailer::Tailer::poll_once`]), with its
//!   sections `reconcile`, `resume` and `descriptors`.
//! - `counters`: what the tailer counts ([`Stats`]).
//! - `gather`: a busy file's batches, read at once, handed out together.
//! - `saver`: checkpoint writes on a thread of their own (the tail thread never waits for an
//!   fsync).
//! - this module: the `logding-tail` thread around it, the inotify hints, the bounded channel to
//!   the agent, commits and checkpoints.
//!
//! Change detection: inotify watches on parent directories are *hints* that wake the thread
//! early; a stat reconcile every `poll_interval` is the truth. Without inotify (poll-only, watch
//! limit reached) everything still works, only later.

mod batch;
mod builder;
mod counters;
mod fingerprint;
mod gather;
mod hints;
pub(crate) mod multiline;
pub(crate) mod reader;
mod saver;
mod settle;
mod table;
pub mod tailer;
mod unread;
mod watcher;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Source, TailOptions};
use crate::logging::error_chain;
pub use batch::{Batch, Cut, FileId, FileKey, FileRef, Spare};
pub use counters::{Counters, SourceStats, Stats};
pub use tailer::{Downstream, Poll, Tailer};
pub use unread::{Ledger, Settled, Unread};

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
        source: crate::discover::GlobError,
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
    /// The tail thread (or its checkpoint writer) could not be started.
    #[error("failed to start the tail thread")]
    Spawn(#[source] std::io::Error),
    /// The tail thread panicked.
    #[error("the tail thread panicked")]
    Panicked,
    /// The final checkpoint could not be written.
    #[error("failed to write the final checkpoint")]
    Checkpoint(#[source] crate::checkpoint::Error),
}

/// Change hints kept between two passes; more are folded into one full reconcile (bounded
/// memory while downstream is slow and a busy directory keeps sending events).
const MAX_HINTS: usize = 4096;
/// Commits kept between two passes before those of one file generation are folded into the
/// highest (commits of a file only grow, so nothing is lost).
const MAX_COMMITS: usize = 4096;

/// What the handle and notify tell the thread.
#[derive(Default)]
struct Inbox {
    commits: Vec<(FileId, u64)>,
    reload: Option<(Vec<Source>, TailOptions)>,
    hints: Vec<(PathBuf, bool)>,
    /// Hints dropped by the cap (a full reconcile stands for them).
    hints_dropped: u64,
    is_rescan: bool,
    is_finished: bool,
}

impl Inbox {
    /// Adds a hint; over [`MAX_HINTS`], all are replaced by a full reconcile.
    fn hint(&mut self, path: PathBuf, is_structural: bool) {
        if self.hints.last() != Some(&(path.clone(), is_structural)) {
            self.hints.push((path, is_structural));
        }
        self.bound();
    }

    /// Adds what `from` holds.
    fn merge(&mut self, from: Inbox) {
        self.commits.extend(from.commits);
        if from.reload.is_some() {
            self.reload = from.reload;
        }
        self.hints.extend(from.hints);
        self.hints_dropped += from.hints_dropped;
        self.is_rescan |= from.is_rescan;
        self.is_finished |= from.is_finished;
        self.bound();
    }

    fn bound(&mut self) {
        if self.hints.len() > MAX_HINTS {
            self.hints_dropped += self.hints.len() as u64;
            self.hints.clear();
            self.is_rescan = true;
        }
        if self.commits.len() > MAX_COMMITS {
            let mut highest: std::collections::HashMap<FileId, u64> =
                std::collections::HashMap::new();
            for (file, offset) in self.commits.drain(..) {
                let kept = highest.entry(file).or_insert(offset);
                *kept = (*kept).max(offset);
            }
            self.commits = highest.into_iter().collect();
        }
    }
}

/// The inbox and its wake-up (the condition variable, and the eventfd the thread polls with
/// inotify, when it does: see `hints`).
#[derive(Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
    wake_fd: std::sync::OnceLock<rustix::fd::OwnedFd>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Inbox)) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inbox);
        self.wake.notify_all();
        if let Some(fd) = self.wake_fd.get() {
            // Full (never, in practice) or failed: the thread looks again within `MAX_NAP`.
            rustix::io::write(fd, &1_u64.to_ne_bytes()).ok();
        }
    }

    /// Creates the eventfd [`Shared::update`] wakes a polling thread with.
    fn open_wake_fd(&self) {
        let flags = rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK;
        if let Ok(fd) = rustix::event::eventfd(0, flags) {
            drop(self.wake_fd.set(fd));
        }
    }

    fn wake_fd(&self) -> Option<&rustix::fd::OwnedFd> {
        self.wake_fd.get()
    }

    /// Resets the eventfd after a wake-up.
    fn clear_wake(&self) {
        if let Some(fd) = self.wake_fd.get() {
            rustix::io::read(fd, &mut [0_u8; 8]).ok();
        }
    }

    /// Returns true if and only if the inbox holds something that should wake the thread.
    fn has_news(&self) -> bool {
        let inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        !is_empty(&inbox) || inbox.is_finished
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
    spare: Spare,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

/// The longest the thread sleeps without looking at the cancel token.
const MAX_NAP: Duration = Duration::from_millis(100);
/// How often the per-source gauges (files followed, lag) are published for the metrics.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);
/// The shortest sleep between passes when nothing is pending (no busy loop on a past deadline).
const MIN_NAP: Duration = Duration::from_millis(5);
/// After shutdown, how long a batch may wait for room downstream before it is given up (it is
/// not committed, so it is read again after the restart).
const SHUTDOWN_SEND_GRACE: Duration = Duration::from_secs(10);
/// How long the thread waits before trying again to send to a full channel. A full channel
/// holds about 4 MiB, which the scanning cores go through in a few milliseconds: a longer
/// nap let a backlog's scans run dry while this thread slept.
const FULL_CHANNEL_NAP: Duration = Duration::from_millis(1);

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
    let saver = match tailer.persists_checkpoints() {
        true => Some(saver::Saver::spawn().map_err(Error::Spawn)?),
        false => None,
    };
    let spare = tailer.spare();
    let shared = Arc::new(Shared::default());
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("logding-tail".into())
        .spawn(move || run(tailer, saver, poll_only, thread_shared, out, shutdown))
        .map_err(Error::Spawn)?;
    Ok(TailHandle {
        shared,
        counters,
        spare,
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

    /// A scanned batch's buffer, read into again.
    pub fn recycle(&self, data: Vec<u8>) {
        self.spare.give(data);
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

    /// The live counters (the metrics registry reads them at scrape time).
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
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

/// Sends batches on the bounded channel, waiting for room while keeping an eye on shutdown;
/// a busy file's batches are gathered first (`gather`).
struct ChannelDownstream<'a> {
    out: &'a mpsc::Sender<Batch>,
    gather: gather::Gather,
    shared: &'a Shared,
    shutdown: &'a CancellationToken,
    /// Commits and hints that arrived while waiting (bounded: see [`Inbox::merge`]).
    pending: Inbox,
    /// The receiver is gone.
    is_closed: bool,
}

impl Downstream for ChannelDownstream<'_> {
    fn send(&mut self, batch: Batch) -> bool {
        let ready = self
            .gather
            .take(batch, Instant::now(), self.shutdown.is_cancelled());
        ready
            .into_iter()
            .flatten()
            .all(|batch| self.hand_out(batch))
    }

    fn held(&mut self, file: &FileId, end: u64) -> Option<&mut Batch> {
        self.gather.held(file, end)
    }

    fn grew(&mut self, file: &FileId, bytes: usize) -> bool {
        let at_once = self.shutdown.is_cancelled();
        match self.gather.grew(file, bytes, Instant::now(), at_once) {
            Some(batch) => self.hand_out(batch),
            None => true,
        }
    }
}

impl ChannelDownstream<'_> {
    /// Hands out the gathered batches due at `now` (all of them with `all`); false when
    /// nobody takes them any more.
    fn hand_out_due(&mut self, now: Instant, all: bool) -> bool {
        let due = self.gather.due(now, all);
        due.into_iter().all(|batch| self.hand_out(batch))
    }

    fn hand_out(&mut self, batch: Batch) -> bool {
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
            let inbox = self.shared.wait(FULL_CHANNEL_NAP);
            self.pending.merge(inbox);
        }
    }
}

fn run(
    mut tailer: Tailer,
    saver: Option<saver::Saver>,
    poll_only: bool,
    shared: Arc<Shared>,
    out: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut hints = (!poll_only).then(|| hints::Hints::new(&shared));
    let mut last_save = Instant::now();
    let mut last_publish = Instant::now() - PUBLISH_INTERVAL;
    let mut is_checkpoint_failing = false;
    let mut is_finished = false;
    let mut sink = ChannelDownstream {
        out: &out,
        gather: gather::Gather::default(),
        shared: &shared,
        shutdown: &shutdown,
        pending: Inbox::default(),
        is_closed: false,
    };
    // The first pass runs at once (the files are found and read without waiting for a nap).
    let mut poll = Poll {
        has_more: true,
        deadline: None,
    };
    while !shutdown.is_cancelled() {
        let now = Instant::now();
        let timeout = if poll.has_more {
            Duration::ZERO
        } else {
            let deadline = poll
                .deadline
                .into_iter()
                .chain(sink.gather.deadline())
                .min();
            deadline
                .map_or(MAX_NAP, |d| d.saturating_duration_since(now))
                .clamp(MIN_NAP, MAX_NAP)
        };
        let mut inbox = match &mut hints {
            Some(hints) if hints.is_active() => hints.wait(&shared, timeout),
            _ => shared.wait(timeout),
        };
        if let Some(batch_wait) = tailer.options().batch_wait
            && !poll.has_more
            && !inbox.hints.is_empty()
            && !shutdown.is_cancelled()
        {
            // A busy log writes many times per millisecond and each write is a notify event:
            // let them gather so that one pass reads them all in one large batch, instead of
            // waking every thread of the pipeline once per write (`tail.batch_wait`).
            std::thread::sleep(batch_wait);
            inbox.merge(shared.wait(Duration::ZERO));
            if let Some(hints) = &mut hints {
                hints.read(&mut inbox);
            }
        }
        inbox.merge(std::mem::take(&mut sink.pending));
        is_finished |= inbox.is_finished;
        apply(&mut tailer, inbox, &mut hints);
        if shutdown.is_cancelled() {
            break;
        }
        poll = tailer.poll_once(Instant::now(), &mut sink);
        if !sink.is_closed {
            sink.hand_out_due(Instant::now(), false);
        }
        if last_publish.elapsed() >= PUBLISH_INTERVAL {
            last_publish = Instant::now();
            tailer.publish_sources();
        }
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
            if let Some(saver) = &saver {
                // Written on the saver's thread: this one goes on reading meanwhile.
                if let Some(outcome) = saver.outcome() {
                    told(&mut tailer, outcome, &mut is_checkpoint_failing);
                }
                if saver.is_idle()
                    && let Some((dir, checkpoint)) = tailer.checkpoint_to_save(false)
                {
                    saver.write(dir, checkpoint);
                }
            }
        }
    }
    info!("tail: shutting down");
    // What was gathered goes first; nothing is held from now on (shutdown is cancelled).
    if !sink.is_closed && sink.hand_out_due(Instant::now(), true) {
        tailer.flush_for_shutdown(&mut sink);
    }
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
    if let Some(outcome) = saver.and_then(saver::Saver::finish) {
        told(&mut tailer, outcome, &mut is_checkpoint_failing);
    }
    tailer.save_checkpoint().map_err(Error::Checkpoint)?;
    if tailer.persists_checkpoints() {
        info!("tail: final checkpoint written");
    }
    Ok(())
}

/// Takes the outcome of a checkpoint write: failures are said once per streak (the counter
/// keeps the count), and a failed checkpoint is written again at the next chance.
fn told(tailer: &mut Tailer, (checkpoint, result): saver::Outcome, is_failing: &mut bool) {
    tailer.saved(&checkpoint, result.is_ok());
    match result {
        Ok(()) if *is_failing => {
            *is_failing = false;
            info!("checkpoint written again");
        }
        Ok(()) => {}
        Err(err) if !*is_failing => {
            *is_failing = true;
            error!(error = %error_chain(&err), "failed to write checkpoint: will retry");
        }
        Err(err) => tracing::debug!(error = %err, "checkpoint still failing"),
    }
}

fn apply(tailer: &mut Tailer, inbox: Inbox, hints: &mut Option<hints::Hints>) {
    tailer.count_dropped_hints(inbox.hints_dropped);
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
    match crate::discover::Globs::new(&source.paths, &source.exclude) {
        Ok(globs) => globs.find().files,
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(generation: u64) -> FileId {
        FileId {
            dev: 1,
            ino: 2,
            generation,
        }
    }

    #[test]
    fn pending_hints_are_bounded_by_a_full_reconcile_and_counted() {
        let mut pending = Inbox::default();
        for round in 0..3 {
            let mut inbox = Inbox::default();
            for i in 0..MAX_HINTS {
                inbox.hint(PathBuf::from(format!("/logs/{round}-{i}.log")), false);
            }
            pending.merge(inbox);
        }
        assert!(pending.hints.len() <= MAX_HINTS);
        assert!(pending.is_rescan);
        assert_eq!(
            pending.hints_dropped + pending.hints.len() as u64,
            3 * MAX_HINTS as u64
        );
    }

    #[test]
    fn pending_commits_are_bounded_keeping_the_highest_of_each_file() {
        let mut pending = Inbox::default();
        for offset in 0..3 * MAX_COMMITS as u64 {
            let mut inbox = Inbox::default();
            inbox.commits.push((id(offset % 2), offset));
            pending.merge(inbox);
        }
        assert!(pending.commits.len() <= MAX_COMMITS);
        let highest = |generation| {
            pending
                .commits
                .iter()
                .filter(|(file, _)| file.generation == generation)
                .map(|(_, offset)| *offset)
                .max()
        };
        let last = 3 * MAX_COMMITS as u64 - 1;
        assert_eq!(highest(1), Some(last));
        assert_eq!(highest(0), Some(last - 1));
    }
}
