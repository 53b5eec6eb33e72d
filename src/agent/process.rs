//! The process task: scans each batch on the blocking pool, feeds the hits to the
//! [`Aggregator`], closes windows into the [`Store`] and hands offsets back to the tailer only
//! once every hit before them is safe.
//!
//! **Commit rule** (at-least-once): the aggregator has at most one window open. While none is
//! open, every processed line is safe (its hits, if any, are already stored), so its offset is
//! committed at once. While a window is open, processed offsets wait in `pending` and are
//! committed when the window's summary is stored.
//!
//! **A summary that cannot be stored** (the outbox on a full disk) is held in memory with the
//! offsets it covers, and the task stops taking batches: the bounded channel fills and the
//! tailer stops reading, so memory stays bounded (one summary) and no offset past the held
//! lines is committed. The write is retried with backoff ([`RETRY_MIN`] doubling to
//! [`RETRY_MAX`]), logged once per streak; once it succeeds, the offsets are committed and
//! batches flow again.
//!
//! **A scan that panics** loses its batch's hits, so that file's commits stop at the batch's
//! start for the rest of the run: its lines are read again after a restart.
//!
//! **Several batches are scanned at once** (a backlog keeps every core busy): up to
//! [`in_flight_max`] scans run on the blocking pool while earlier results are applied, and results
//! are applied strictly in arrival order, so the aggregator, the counts and the commit rule see
//! exactly what one scan at a time would show them. A result scanned with matchers a reload has
//! since replaced is scanned again with the new ones before it is applied. A lone small batch (a
//! followed log's) is scanned on this task instead (see `scanning`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::clock::Clock;
use super::incidents::Stage;
use super::scanning::{
    InFlight, Outcome, Scan, ScanFn, Scanned, in_flight_max, is_small, oldest, panic_message,
    scan_batch, scan_with,
};
use crate::config::{self, Config, Source, TailOptions};
use crate::incident::State;
use crate::metrics;
use crate::scan::{Hit, Matcher, ScanStats};
use crate::summary::Summary;
use crate::tail::{Batch, FileId, Settled};
use crate::window::Aggregator;

/// First delay before retrying to store a summary.
pub(super) const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest delay between attempts to store a summary.
pub(super) const RETRY_MAX: Duration = Duration::from_secs(30);

/// Where closed windows' summaries go.
pub(super) trait Store {
    /// Stores a summary; returns once it is safe (durable in the outbox, or printed).
    async fn store(&mut self, summary: &Summary) -> anyhow::Result<()>;

    /// Applies a reloaded configuration's delivery settings (`dingtalk`).
    async fn reconfigure(&mut self, _config: &Config) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What the process task needs of the tailer (a trait, so tests can record commits).
pub(super) trait Follow {
    /// Everything of `file` before `offset` is safe: the tailer may persist it.
    fn commit(&self, file: &FileId, offset: u64);
    /// New sources and options take effect.
    fn reload(&self, sources: Vec<Source>, options: TailOptions);
    /// A scanned batch's buffer, to be read into again.
    fn recycle(&self, _data: Vec<u8>) {}
}

/// The process task's state: matchers, the aggregator and commit bookkeeping.
pub(super) struct Process<S, F> {
    config: Config,
    matchers: Arc<Vec<Matcher>>,
    aggregator: Aggregator,
    pub(super) follow: F,
    pub(super) store: S,
    clock: Clock,
    scan: ScanFn,
    /// Processed end offsets per file, not yet committed (a window is open).
    pending: HashMap<FileId, u64>,
    /// A summary that could not be stored yet, and what it holds back.
    held: Option<Held>,
    /// Files whose commits stop here for the rest of the run (a scan of theirs panicked).
    barriers: HashMap<FileId, u64>,
    /// What closed windows say: new, ongoing (held), resolved incidents.
    incidents: Stage,
    /// Batches being scanned, oldest first: applied in this order.
    in_flight: VecDeque<InFlight>,
}

/// A summary the store refused, kept until it takes it.
struct Held {
    summary: Summary,
    /// The offsets its lines reach, committed once it is stored.
    pending: HashMap<FileId, u64>,
    /// Failed attempts so far.
    failures: u32,
    retry_at: Instant,
}

impl<S: Store, F: Follow> Process<S, F> {
    /// A process task with matchers already compiled for `config` (see [`matchers_for`]).
    pub(super) fn new(config: Config, matchers: Vec<Matcher>, follow: F, store: S) -> Self {
        let aggregator = Aggregator::new(config.rules.clone(), config.window_options());
        let clock = Clock::start();
        let mut incidents = Stage::new(&config, State::default(), None);
        incidents.start(clock.now());
        Process {
            config,
            matchers: Arc::new(matchers),
            aggregator,
            follow,
            store,
            clock,
            scan: scan_batch,
            pending: HashMap::new(),
            held: None,
            barriers: HashMap::new(),
            incidents,
            in_flight: VecDeque::new(),
        }
    }

    /// Resumes the incidents of the last run, kept in `state_dir` (`None`: nothing written).
    pub(super) fn resume_incidents(&mut self, state: State, state_dir: Option<PathBuf>) {
        self.incidents = Stage::new(&self.config, state, state_dir);
        self.incidents.start(self.clock.now());
    }

    /// Starts the clock at `wall` (tests: a restart continues where the last run's clock was).
    #[cfg(test)]
    pub(super) fn with_clock_at(mut self, wall: jiff::Timestamp) -> Self {
        self.clock = Clock::at(wall);
        self
    }

    /// The agent's clock now.
    #[cfg(test)]
    pub(super) fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// Resumes the suppression state of the last run (counts not yet told, deferred hits).
    pub(super) fn resume_suppression(&mut self, state: crate::suppress::State) {
        self.incidents.resume_suppression(&self.config, state);
    }

    /// Replaces the scan function (tests inject a panicking one).
    #[cfg(test)]
    pub(super) fn with_scan(mut self, scan: ScanFn) -> Self {
        self.scan = scan;
        self
    }

    /// Runs until the batch channel closes (the tailer stopped), or until `shutdown` while a
    /// held summary keeps the task from reading the channel; then closes the open window early.
    pub(super) async fn run(
        &mut self,
        mut batches: mpsc::Receiver<Batch>,
        mut reload: mpsc::Receiver<()>,
        shutdown: CancellationToken,
    ) {
        let mut reload_open = true;
        let mut batches_open = true;
        while batches_open || !self.in_flight.is_empty() {
            if let Some(retry_at) = self.held.as_ref().map(|held| held.retry_at) {
                tokio::select! {
                    () = tokio::time::sleep_until(retry_at) => self.retry_held().await,
                    () = shutdown.cancelled() => break,
                    request = reload.recv(), if reload_open => match request {
                        Some(()) => self.reload().await,
                        None => reload_open = false,
                    },
                }
                continue;
            }
            let deadline = self
                .aggregator
                .deadline()
                .map(|at| self.clock.instant_of(at));
            // A window closing at the same time resolves and evaluates too, in one message.
            let resolve_at = self
                .incidents
                .deadline()
                .map(|at| self.clock.instant_of(at))
                .filter(|at| deadline.is_none_or(|d| d > *at));
            let has_room = self.in_flight.len() < in_flight_max();
            tokio::select! {
                scanned = oldest(&mut self.in_flight) => self.apply(scanned).await,
                batch = batches.recv(), if batches_open && has_room => match batch {
                    Some(batch) if self.in_flight.is_empty() && batches.is_empty()
                        && is_small(&batch) => self.scan_here(batch).await,
                    Some(batch) => self.start_scan(batch),
                    None => batches_open = false,
                },
                () = sleep_until_opt(deadline) => self.close_window(false).await,
                () = sleep_until_opt(resolve_at) => self.tick_incidents().await,
                request = reload.recv(), if reload_open => match request {
                    Some(()) => self.reload().await,
                    None => reload_open = false,
                },
            }
        }
        if self.held.is_some() {
            // One last attempt; what is still held is read again after a restart.
            self.retry_held().await;
            if let Some(held) = &self.held {
                error!(
                    event = "summary_lost_on_shutdown",
                    matches = held.summary.matches(),
                    "summary not saved before shutdown; its lines were not committed and will \
                     be read again after a restart"
                );
            }
        } else {
            // The tailer stopped (shutdown): close the open window early.
            self.close_window(true).await;
        }
    }

    /// Which batch `batch` is, scanned with the matchers of now.
    fn scan_of(&self, batch: &Batch) -> Scan {
        Scan {
            file: batch.file.id.clone(),
            start: batch.start,
            matchers: Arc::clone(&self.matchers),
        }
    }

    /// Starts scanning `batch` on the blocking pool; [`Self::apply`] takes the result in turn.
    fn start_scan(&mut self, batch: Batch) {
        let scan = self.scan_of(&batch);
        let task = tokio::task::spawn_blocking({
            let (matchers, scan) = (Arc::clone(&scan.matchers), self.scan);
            let shaping = self.aggregator.shaping();
            move || scan_with(&matchers, scan, batch, &shaping)
        });
        self.in_flight.push_back(InFlight { scan, task });
    }

    /// Scans `batch` on this task and applies it, when nothing else is being scanned or waits
    /// (a followed log's batch): what [`Self::start_scan`] then [`Self::apply`] would do, without
    /// waking a pool thread for the scan and then this task for its result (two wake-ups per
    /// batch, each of a core that went idle meanwhile).
    async fn scan_here(&mut self, batch: Batch) {
        let scan = self.scan_of(&batch);
        let shaping = self.aggregator.shaping();
        let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scan_with(&self.matchers, self.scan, batch, &shaping)
        }));
        self.apply((scan, scanned.map_err(|panic| panic_message(&*panic))))
            .await;
    }

    /// Applies the oldest scan's result: its hits to the aggregator, its end to the commits.
    async fn apply(&mut self, (flight, scanned): (Scan, Outcome)) {
        let scanned = match scanned {
            Ok(scanned) if !Arc::ptr_eq(&flight.matchers, &self.matchers) => {
                // Scanned before a reload: again, with the rules the aggregator now has.
                let (matchers, scan) = (Arc::clone(&self.matchers), self.scan);
                let (batch, shaping) = (scanned.batch, self.aggregator.shaping());
                tokio::task::spawn_blocking(move || scan_with(&matchers, scan, batch, &shaping))
                    .await
                    .map_err(|err| err.to_string())
            }
            scanned => scanned,
        };
        let (file, start) = (flight.file, flight.start);
        let Scanned {
            batch,
            hits,
            stats,
            shapes,
        } = match scanned {
            Ok(scanned) => scanned,
            Err(err) => {
                error!(
                    event = "scan_panicked",
                    error = %err,
                    start,
                    "scanning a batch panicked; this file's offset is no longer committed past \
                     the batch, so its lines are read again after a restart"
                );
                self.stop_commits(&file, start);
                return;
            }
        };
        let mut batch = batch;
        if !self.settle(&mut batch) {
            return;
        }
        if self.matchers.get(batch.source).is_none() {
            // A batch of a source removed by a reload: nothing applies to it.
            self.processed(&batch.file.id, batch.end);
            return;
        }
        let now = self.clock.now();
        let was_open = self.aggregator.is_open();
        let path = batch.file.path.to_string_lossy();
        let timestamp = self
            .config
            .sources
            .get(batch.source)
            .and_then(|s| s.timestamp.as_ref());
        self.aggregator.observe_scan_shaped(
            now,
            &batch.data,
            &hits,
            Some(&shapes),
            &stats,
            &path,
            timestamp,
        );
        if let Some(source) = self.config.sources.get(batch.source) {
            self.incidents.grew(&source.name, &path, now);
        }
        self.count(&batch, &hits, &stats);
        if batch.lines_cut > 0 {
            debug!(path = %path, lines = batch.lines_cut, "long lines cut to max_line_bytes");
        }
        debug!(
            event = "batch_scanned",
            path = %path,
            start = batch.start,
            end = batch.end,
            lines = stats.lines,
            hits = hits.len(),
            "batch scanned"
        );
        if !was_open && self.aggregator.is_open() {
            debug!(event = "window_opened", deadline = ?self.aggregator.deadline(), "window opened");
        }
        self.processed(&batch.file.id, batch.end);
        self.follow.recycle(batch.data);
    }

    /// Settles a batch in file order; false when it is dropped: a backlog range whose file
    /// changed before it was read (the copytruncate copy hands out its lines, or they are lost).
    /// Commits of its file then stop at its start.
    fn settle(&mut self, batch: &mut Batch) -> bool {
        let settled = batch.settle();
        if settled == Settled::Lost {
            warn!(
                event = "range_lost",
                path = %batch.file.path.display(),
                start = batch.start,
                end = batch.end,
                "file truncated or changed before its backlog was read, and no copy of it was \
                 found: these lines are lost"
            );
        }
        if settled != Settled::Keep {
            self.stop_commits(&batch.file.id, batch.start);
        }
        settled == Settled::Keep
    }

    /// Commits of `file` stop at `start` for the rest of the run.
    fn stop_commits(&mut self, file: &FileId, start: u64) {
        let barrier = self.barriers.entry(file.clone()).or_insert(start);
        *barrier = (*barrier).min(start);
    }

    /// Feeds the batch's figures to the metrics: one update per rule, not per hit.
    fn count(&self, batch: &Batch, hits: &[Hit], stats: &ScanStats) {
        let metrics = metrics::get();
        if let Some(source) = self.config.sources.get(batch.source) {
            let bytes = batch.end.saturating_sub(batch.start);
            metrics.batch_scanned(&source.name, stats.lines, bytes, stats.excluded);
        }
        // By rule id: no hashing per hit.
        let mut per_rule = vec![0; self.config.rules.len()];
        for hit in hits {
            if let Some(count) = per_rule.get_mut(hit.rule.index()) {
                *count += 1;
            }
        }
        for (rule, &count) in self.config.rules.rules().iter().zip(&per_rule) {
            if count > 0 {
                metrics.rule_hits(&rule.name, count);
            }
        }
        for &(rule, lines) in &stats.excluded_by {
            metrics.rule_excluded(&self.config.rules.get(rule).name, lines);
        }
    }

    /// Records that everything of `file` before `end` has been looked at.
    fn processed(&mut self, file: &FileId, end: u64) {
        if self.aggregator.is_open() {
            let entry = self.pending.entry(file.clone()).or_insert(end);
            *entry = (*entry).max(end);
        } else {
            self.commit(file, end);
        }
    }

    fn commit(&self, file: &FileId, offset: u64) {
        let offset = self.barriers.get(file).map_or(offset, |b| offset.min(*b));
        self.follow.commit(file, offset);
    }

    async fn close_window(&mut self, early: bool) {
        let now = self.clock.now();
        let summary = if early {
            self.aggregator.flush(now)
        } else {
            self.aggregator.poll(now)
        };
        let Some(summary) = summary else {
            if !self.aggregator.is_open() {
                let pending = std::mem::take(&mut self.pending);
                self.commit_pending(pending);
            }
            return;
        };
        let pending = std::mem::take(&mut self.pending);
        if summary.rules.is_empty() {
            debug!(
                event = "window_closed",
                below_threshold = summary.below_threshold.len(),
                "window closed with no rule at its min_count; nothing to send"
            );
        } else {
            debug!(
                event = "window_closed",
                matches = summary.matches(),
                "window closed"
            );
        }
        metrics::get().window_closed();
        self.incidents.refresh_silences().await;
        // Held hits live in the incident state: it is durable before their lines are
        // committed (and a message is stored before the state says it was sent).
        let message = self.incidents.close_window(summary, now);
        self.put(message, pending).await;
    }

    /// Resolves the incidents due now and evaluates absence (after looking for the files of
    /// sources with `source_stalled`); stores the message this sends, if any.
    async fn tick_incidents(&mut self) {
        self.look_for_files().await;
        self.incidents.refresh_silences().await;
        let now = self.clock.now();
        let message = self.incidents.tick(&self.config.host, now);
        self.put(message, HashMap::new()).await;
    }

    /// Counts the files the globs of each source with `source_stalled` match (on the blocking
    /// pool: it walks directories).
    async fn look_for_files(&mut self) {
        let names = self.incidents.stalled_sources();
        if names.is_empty() {
            return;
        }
        let sources: Vec<Source> = self
            .config
            .sources
            .iter()
            .filter(|s| names.contains(&s.name))
            .cloned()
            .collect();
        let counted = tokio::task::spawn_blocking(move || {
            sources
                .iter()
                .map(|s| (s.name.clone(), crate::tail::files_matching(s).len() as u64))
                .collect::<Vec<_>>()
        })
        .await;
        let now = self.clock.now();
        for (name, count) in counted.unwrap_or_default() {
            self.incidents.matched(&name, count, now);
        }
    }

    /// Stores `message` (if any) and the incident state, then commits `pending`; a message
    /// the store refuses is held with `pending`.
    async fn put(&mut self, message: Option<Summary>, pending: HashMap<FileId, u64>) {
        let Some(summary) = message else {
            if self.incidents.save().await {
                self.commit_pending(pending);
            }
            return;
        };
        let stored = self.store.store(&summary).await;
        let saved = self.incidents.save().await;
        match stored {
            Ok(()) if saved => self.commit_pending(pending),
            Ok(()) => {}
            Err(err) => {
                error!(
                    event = "summary_not_saved",
                    error = %format_args!("{err:#}"),
                    retry_in = ?RETRY_MIN,
                    "summary not saved; holding it and its lines (nothing past them is \
                     committed, reading pauses) and retrying"
                );
                self.held = Some(Held {
                    summary,
                    pending,
                    failures: 1,
                    retry_at: Instant::now() + RETRY_MIN,
                });
            }
        }
    }

    /// Tries again to store the held summary.
    async fn retry_held(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        match self.store.store(&held.summary).await {
            Ok(()) => {
                info!(
                    event = "summary_saved",
                    failed_attempts = held.failures,
                    "held summary saved; reading resumes"
                );
                self.commit_pending(held.pending);
            }
            Err(err) => {
                held.failures = held.failures.saturating_add(1);
                let delay = backoff(held.failures);
                debug!(error = %format_args!("{err:#}"), retry_in = ?delay, "summary still not saved");
                held.retry_at = Instant::now() + delay;
                self.held = Some(held);
            }
        }
    }

    fn commit_pending(&self, pending: HashMap<FileId, u64>) {
        for (file, offset) in pending {
            self.commit(&file, offset);
        }
    }

    async fn reload(&mut self) {
        let path = self.config.path.clone();
        info!(config = %path.display(), "reloading the configuration");
        let loaded = tokio::task::spawn_blocking(move || {
            config::load(&path).map(|new| {
                let matchers = matchers_for(&new);
                (new, matchers)
            })
        })
        .await;
        let (new, matchers) = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(err)) => {
                metrics::get().config_rejected();
                error!(
                    event = "reload_rejected",
                    "new configuration rejected, the old one keeps running:\n{err}"
                );
                return;
            }
            Err(err) => {
                metrics::get().config_rejected();
                error!(event = "reload_rejected", error = %err, "loading the new configuration panicked; the old one keeps running");
                return;
            }
        };
        let changed = self.config.restart_only_changes(&new);
        if !changed.is_empty() {
            warn!(
                keys = %changed.join(", "),
                "these settings changed but take effect only after a restart"
            );
        }
        metrics::get().config_loaded(&new);
        if let Err(err) = self.store.reconfigure(&new).await {
            error!(
                error = %crate::logging::error_chain(err.as_ref()),
                "new sink settings not all applied; what could not change keeps running as it was"
            );
        }
        self.matchers = Arc::new(matchers);
        self.aggregator.set_rules(new.rules.clone());
        self.aggregator.set_options(new.window_options());
        self.follow.reload(new.sources.clone(), new.tail.clone());
        self.incidents.reload(&new);
        info!(
            event = "reloaded",
            rules = new.rules.len(),
            sources = new.sources.len(),
            "configuration reloaded"
        );
        self.config = new;
    }
}

/// The delay after `failures` failed attempts to store a summary.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_MIN.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// One matcher per source, in source order. Compiles automata: call it off the runtime.
pub(super) fn matchers_for(config: &Config) -> Vec<Matcher> {
    config
        .sources
        .iter()
        .map(|source| Matcher::new(config.rules.clone(), &source.name))
        .collect()
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
