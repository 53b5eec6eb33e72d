//! `agent`: the wiring of `logding run`: tail → scan → window → outbox → deliver.
//!
//! Tasks, each owning its state, joined by bounded channels (mini-redis style):
//!
//! ```text
//! tail thread --Batch--> process task --Summary--> Delivery task --> DingTalk
//!      ^                     | (scan on the blocking pool, Aggregator, commit bookkeeping)
//!      +----commit(offset)---+
//! ```
//!
//! **Commit rule** (at-least-once): an offset is handed back to the tailer (which persists it)
//! only once every hit before it is safe. The aggregator has at most one window open; while
//! none is open, every processed line is safe (its hits, if any, are already in the outbox), so
//! offsets are committed at once. While a window is open, processed offsets are held in
//! `pending` and committed when the window's summary is durable in the outbox.
//!
//! **Shutdown**: only the tailer watches the cancellation token. It stops reading and drops its
//! sender; the process task sees the channel close, flushes the open window into the outbox and
//! commits; then the tailer writes its final checkpoint and the delivery task gets a grace
//! period to post what is pending. What is not posted stays in the outbox for the next start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::cli::Output;
use crate::config::{self, Config};
use crate::render::{self, RenderOptions};
use crate::scan::{Hit, Matcher, ScanStats};
use crate::sink::{Delivery, DeliveryHandle};
use crate::summary::Summary;
use crate::tail::{self, Batch, FileId, TailHandle};
use crate::window::{Aggregator, HitRef, WindowOptions};

/// How `run` behaves.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Print summaries to stdout instead of posting them; write no state.
    pub dry_run: bool,
    /// Format of printed summaries (dry run).
    pub output: Output,
    /// With a dry run in text form, also print the JSON payloads.
    pub show_payload: bool,
    /// How long delivery may go on after a shutdown signal.
    pub grace: Duration,
}

/// External triggers of a running agent. Tests drive them directly; `logding run` connects
/// them to SIGINT/SIGTERM and SIGHUP.
#[derive(Debug)]
pub struct Controls {
    /// Cancelled to stop (first SIGINT/SIGTERM).
    pub shutdown: CancellationToken,
    /// One message per reload request (SIGHUP).
    pub reload: mpsc::Receiver<()>,
}

/// Capacity of the tail → process channel, in batches (each up to the read budget).
const BATCH_CHANNEL: usize = 16;

/// Runs the agent until `controls.shutdown` is cancelled and everything is flushed.
///
/// # Errors
///
/// Startup failures (state directory, outbox, tailer) and a tailer that fails to write its
/// final checkpoint. Per-file and per-send problems are logged and survived.
pub async fn run(config: Config, options: RunOptions, controls: Controls) -> anyhow::Result<()> {
    let render_options = RenderOptions::from_config(&config);
    let sink = if options.dry_run {
        Sink::Print {
            output: options.output,
            show_payload: options.show_payload,
            render: render_options,
        }
    } else {
        let delivery = Delivery::open(
            &config.dingtalk,
            render_options,
            &config.state_dir,
            &config.outbox,
        )
        .context("failed to open the outbox")?;
        Sink::Post(delivery.spawn())
    };
    let state_dir = (!options.dry_run).then(|| config.state_dir.clone());
    let (batch_tx, batch_rx) = mpsc::channel(BATCH_CHANNEL);
    let tail = tail::spawn(
        config.sources.clone(),
        config.tail.clone(),
        state_dir,
        batch_tx,
        controls.shutdown.clone(),
    )
    .context("failed to start following files")?;
    log_startup(&config, options);

    let mut process = Process::new(config, tail, sink);
    process.run(batch_rx, controls.reload).await;
    let Process { tail, sink, .. } = process;
    let finished = tokio::task::spawn_blocking(move || tail.finish())
        .await
        .context("the tail thread panicked")?;
    if let Err(err) = finished {
        error!(error = %crate::logging::error_chain(&err), "failed to write the final checkpoint");
    }
    if let Sink::Post(handle) = sink {
        handle.shutdown(options.grace).await;
    }
    info!("shutdown complete");
    Ok(())
}

fn log_startup(config: &Config, options: RunOptions) {
    let sources: Vec<String> = config
        .sources
        .iter()
        .map(|s| format!("{} ({})", s.name, s.paths.join(", ")))
        .collect();
    let files: Vec<PathBuf> = config
        .sources
        .iter()
        .flat_map(tail::files_matching)
        .collect();
    let shown: Vec<String> = files
        .iter()
        .take(STARTUP_FILES_SHOWN)
        .map(|path| path.display().to_string())
        .collect();
    let more = files.len().saturating_sub(STARTUP_FILES_SHOWN);
    info!(
        config = %config.path.display(),
        rules = config.rules.len(),
        rule_files = config.rule_files.len(),
        sources = %sources.join("; "),
        files = %shown.join(", "),
        more_files = more,
        window = %humantime::format_duration(config.window),
        dry_run = options.dry_run,
        "logding started"
    );
    if files.is_empty() {
        warn!("no file matches the sources' paths yet; waiting for files to appear");
    }
}

/// How many followed files the startup line names (the rest are counted).
const STARTUP_FILES_SHOWN: usize = 20;

/// Where closed windows go.
enum Sink {
    /// Durable outbox + DingTalk.
    Post(DeliveryHandle),
    /// Stdout (dry run).
    Print {
        output: Output,
        show_payload: bool,
        render: RenderOptions,
    },
}

impl Sink {
    /// Hands a summary over; returns once it is safe (durable, or printed).
    async fn put(&mut self, summary: Summary) -> anyhow::Result<()> {
        match self {
            Sink::Post(handle) => handle
                .enqueue(summary)
                .await
                .context("failed to put a summary in the outbox"),
            Sink::Print {
                output,
                show_payload,
                render,
            } => {
                print_summary(&summary, *output, *show_payload, render);
                Ok(())
            }
        }
    }
}

/// Prints a summary for `--dry-run`: the rendered text (plus the JSON payloads with `-v`), or
/// one JSON object per line.
#[allow(clippy::print_stdout)]
fn print_summary(summary: &Summary, output: Output, show_payload: bool, render: &RenderOptions) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let result = match output {
        Output::Json => serde_json::to_string(summary)
            .map_err(std::io::Error::other)
            .and_then(|line| writeln!(stdout, "{line}")),
        Output::Text => {
            let mut text = render::render_text(summary, render);
            if show_payload {
                for body in render::render(summary, render) {
                    text.push_str("\n--- payload ---\n");
                    text.push_str(&body);
                    text.push('\n');
                }
            }
            writeln!(stdout, "{text}").and_then(|()| stdout.flush())
        }
    };
    if let Err(err) = result {
        warn!(error = %err, "failed to write a summary to stdout");
    }
}

/// Wall-clock time derived from the monotonic clock, so that paused tokio time drives windows
/// in tests and a wall-clock jump does not stretch or cut a window.
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall: Timestamp,
    mono: Instant,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Timestamp::now(),
            mono: Instant::now(),
        }
    }

    fn now(&self) -> Timestamp {
        let elapsed = Instant::now().saturating_duration_since(self.mono);
        self.wall.checked_add(elapsed).unwrap_or(self.wall)
    }

    fn instant_of(&self, at: Timestamp) -> Instant {
        let offset = at.duration_since(self.wall);
        match Duration::try_from(offset) {
            Ok(d) => self.mono + d,
            Err(_) => self.mono,
        }
    }
}

/// The process task's state: matchers, the aggregator and commit bookkeeping.
struct Process {
    config: Config,
    matchers: Arc<Vec<Matcher>>,
    aggregator: Aggregator,
    tail: TailHandle,
    sink: Sink,
    clock: Clock,
    /// Processed end offsets per file, not yet committed (a window is open).
    pending: HashMap<FileId, u64>,
}

/// What the blocking pool hands back for one batch.
struct Scanned {
    batch: Batch,
    hits: Vec<Hit>,
    stats: ScanStats,
}

impl Process {
    fn new(config: Config, tail: TailHandle, sink: Sink) -> Process {
        let matchers = Arc::new(matchers_for(&config));
        let aggregator = Aggregator::new(config.rules.clone(), WindowOptions::from_config(&config));
        Process {
            config,
            matchers,
            aggregator,
            tail,
            sink,
            clock: Clock::start(),
            pending: HashMap::new(),
        }
    }

    async fn run(&mut self, mut batches: mpsc::Receiver<Batch>, mut reload: mpsc::Receiver<()>) {
        let mut reload_open = true;
        loop {
            let deadline = self
                .aggregator
                .deadline()
                .map(|at| self.clock.instant_of(at));
            tokio::select! {
                batch = batches.recv() => match batch {
                    Some(batch) => self.process(batch).await,
                    None => break,
                },
                () = sleep_until_opt(deadline) => self.close_window(false).await,
                request = reload.recv(), if reload_open => match request {
                    Some(()) => self.reload().await,
                    None => reload_open = false,
                },
            }
        }
        // The tailer stopped (shutdown): close the open window early.
        self.close_window(true).await;
    }

    async fn process(&mut self, batch: Batch) {
        let matcher = self.matchers.get(batch.source).cloned();
        let Some(matcher) = matcher else {
            // A batch of a source removed by a reload: nothing applies to it.
            self.processed(&batch.file.id, batch.end);
            return;
        };
        let scanned = tokio::task::spawn_blocking(move || scan_batch(&matcher, batch)).await;
        let Scanned { batch, hits, stats } = match scanned {
            Ok(scanned) => scanned,
            Err(err) => {
                error!(error = %err, "scanning a batch panicked");
                return;
            }
        };
        let now = self.clock.now();
        let was_open = self.aggregator.is_open();
        let path = batch.file.path.to_string_lossy();
        let mut groups: Vec<Option<&[u8]>> = Vec::new();
        for hit in &hits {
            groups.clear();
            groups.extend(hit.groups.iter().map(|g| g.clone().map(|r| &batch.data[r])));
            self.aggregator.observe(
                now,
                HitRef {
                    rule: hit.rule,
                    line: &batch.data[hit.line.clone()],
                    groups: &groups,
                    file: &path,
                },
            );
        }
        // After the hits: excluded lines count in the window this batch's hits opened too.
        if stats.excluded > 0 {
            self.aggregator.observe_excluded(now, stats.excluded);
        }
        if batch.lines_cut > 0 {
            debug!(path = %path, lines = batch.lines_cut, "long lines cut to max_line_bytes");
        }
        debug!(path = %path, start = batch.start, end = batch.end, lines = stats.lines, hits = hits.len(), "batch scanned");
        if !was_open && self.aggregator.is_open() {
            debug!(deadline = ?self.aggregator.deadline(), "window opened");
        }
        self.processed(&batch.file.id, batch.end);
    }

    /// Records that everything of `file` before `end` has been looked at.
    fn processed(&mut self, file: &FileId, end: u64) {
        if self.aggregator.is_open() {
            let entry = self.pending.entry(file.clone()).or_insert(end);
            *entry = (*entry).max(end);
        } else {
            self.tail.commit(file, end);
        }
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
                self.commit_pending();
            }
            return;
        };
        if summary.rules.is_empty() {
            debug!(
                below_threshold = summary.below_threshold.len(),
                "window closed with no rule at its min_count; nothing to send"
            );
        } else if let Err(err) = self.sink.put(summary).await {
            // Not committing keeps these lines for the next start: at-least-once.
            error!(
                error = format!("{err:#}"),
                "summary not saved; its lines will be read again after a restart"
            );
            self.pending.clear();
            return;
        }
        self.commit_pending();
    }

    fn commit_pending(&mut self) {
        for (file, offset) in self.pending.drain() {
            self.tail.commit(&file, offset);
        }
    }

    async fn reload(&mut self) {
        let path = self.config.path.clone();
        info!(config = %path.display(), "reloading the configuration");
        let loaded = tokio::task::spawn_blocking(move || config::load(&path)).await;
        let new = match loaded {
            Ok(Ok(new)) => new,
            Ok(Err(err)) => {
                error!("new configuration rejected, the old one keeps running:\n{err}");
                return;
            }
            Err(err) => {
                error!(error = %err, "loading the new configuration panicked; the old one keeps running");
                return;
            }
        };
        warn_restart_only(&self.config, &new);
        self.matchers = Arc::new(matchers_for(&new));
        self.aggregator.set_rules(new.rules.clone());
        self.aggregator
            .set_options(WindowOptions::from_config(&new));
        self.tail.reload(new.sources.clone(), new.tail.clone());
        info!(
            rules = new.rules.len(),
            sources = new.sources.len(),
            "configuration reloaded"
        );
        self.config = new;
    }
}

fn warn_restart_only(old: &Config, new: &Config) {
    let mut changed: Vec<&str> = Vec::new();
    if old.state_dir != new.state_dir {
        changed.push("state_dir");
    }
    if old.dingtalk.keyword != new.dingtalk.keyword
        || old.dingtalk.webhook != new.dingtalk.webhook
        || old.dingtalk.secret != new.dingtalk.secret
        || old.dingtalk.max_per_minute != new.dingtalk.max_per_minute
        || old.dingtalk.msgtype != new.dingtalk.msgtype
        || old.dingtalk.mention != new.dingtalk.mention
    {
        changed.push("dingtalk");
    }
    if old.outbox.max_entries != new.outbox.max_entries {
        changed.push("outbox");
    }
    if !changed.is_empty() {
        warn!(
            keys = %changed.join(", "),
            "these settings changed but take effect only after a restart"
        );
    }
}

fn matchers_for(config: &Config) -> Vec<Matcher> {
    config
        .sources
        .iter()
        .map(|source| Matcher::new(config.rules.clone(), &source.name))
        .collect()
}

fn scan_batch(matcher: &Matcher, batch: Batch) -> Scanned {
    let mut hits = Vec::new();
    let stats = match &batch.events {
        None => matcher.scan(&batch.data, &mut hits),
        Some(events) => {
            let mut total = ScanStats::default();
            for event in events {
                let first = hits.len();
                let stats = matcher.scan_record(&batch.data[event.clone()], &mut hits);
                for hit in &mut hits[first..] {
                    hit.line = hit.line.start + event.start..hit.line.end + event.start;
                    for group in hit.groups.iter_mut().flatten() {
                        *group = group.start + event.start..group.end + event.start;
                    }
                }
                total.lines += stats.lines;
                total.excluded += stats.excluded;
            }
            total
        }
    };
    Scanned { batch, hits, stats }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
