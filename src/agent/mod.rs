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
//! The process task (`process.rs`) keeps the commit rule: an offset is handed back to the
//! tailer (which persists it) only once every hit before it is stored.
//!
//! **Shutdown**: the tailer watches the cancellation token. It stops reading and drops its
//! sender; the process task sees the channel close, flushes the open window into the outbox and
//! commits; then the tailer writes its final checkpoint and the delivery task gets a grace
//! period to post what is pending. What is not posted stays in the outbox for the next start.
//! The process task watches the token only while it holds a summary it cannot store (it is
//! then not reading the channel, so it would not see it close).
//!
//! **Events**: the agent's lifecycle log records carry a stable `event` field (`started`,
//! `batch_scanned`, `window_opened`, `window_closed`, `summary_not_saved`, `summary_saved`,
//! `scan_panicked`, `reloaded`, `reload_rejected`), so scripts and tests can follow the agent
//! with `--log-format json` without depending on the wording of messages.

mod clock;
mod incidents;
mod process;
mod scanning;
mod sinks;
pub mod suppress;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Config, Source, TailOptions};
use crate::metrics;
use crate::scan::Matcher;
use crate::sink::Delivery;
use crate::sink::alertmanager::Sink;
use crate::summary::Summary;
use crate::tail::{self, FileId, TailHandle};
use process::{Follow, Process};
use sinks::Target;

/// Where `run` puts the summaries of closed windows.
pub enum Destination {
    /// The outboxes in `state_dir`, delivered to DingTalk and to the Alertmanager instances
    /// (whichever are configured). After a shutdown signal, delivery goes on for `grace`.
    DingTalk {
        /// How long delivery may go on after a shutdown signal.
        grace: Duration,
    },
    /// Each summary is handed to this function (a dry run prints them); no state is written.
    Each(Box<dyn FnMut(&Summary) + Send>),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::DingTalk { grace } => {
                f.debug_struct("DingTalk").field("grace", grace).finish()
            }
            Destination::Each(_) => f.write_str("Each(..)"),
        }
    }
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

/// How many followed files the startup line names (the rest are counted).
const STARTUP_FILES_SHOWN: usize = 20;

/// Runs the agent until `controls.shutdown` is cancelled and everything is flushed.
///
/// # Errors
///
/// Startup failures (state directory, outbox, tailer) and a tailer that fails to write its
/// final checkpoint. Per-file and per-send problems are logged and survived.
pub async fn run(
    config: Config,
    destination: Destination,
    controls: Controls,
) -> anyhow::Result<()> {
    let is_dry_run = matches!(destination, Destination::Each(_));
    // Reading the outbox, compiling the matchers and walking the globs block: off the runtime.
    let Prepared {
        config,
        delivery,
        alertmanager,
        matchers,
        files,
        incidents,
        suppressed,
    } = tokio::task::spawn_blocking(move || prepare(config, is_dry_run))
        .await
        .context("preparing the agent panicked")??;
    let (store, grace) = match destination {
        Destination::DingTalk { grace } => (
            Target::Outbox(delivery.map(Delivery::spawn), alertmanager.map(Sink::spawn)),
            Some(grace),
        ),
        Destination::Each(each) => (Target::Each(each), None),
    };
    let metrics_server = serve_metrics(&config, &controls.shutdown).await?;
    let state_dir = (!is_dry_run).then(|| config.state_dir.clone());
    let (batch_tx, batch_rx) = mpsc::channel(BATCH_CHANNEL);
    let tail = tail::spawn(
        config.sources.clone(),
        config.tail.clone(),
        state_dir,
        batch_tx,
        controls.shutdown.clone(),
    )
    .context("failed to start following files")?;
    metrics::get().follow_tail(tail.counters());
    log_startup(&config, &files, is_dry_run);

    let incidents_dir = (!is_dry_run).then(|| config.state_dir.clone());
    let mut process = Process::new(config, matchers, tail, store);
    process.resume_incidents(incidents, incidents_dir);
    process.resume_suppression(suppressed);
    process
        .run(batch_rx, controls.reload, controls.shutdown)
        .await;
    let (tail, store) = (process.follow, process.store);
    let finished = tokio::task::spawn_blocking(move || tail.finish())
        .await
        .context("the tail thread panicked")?;
    if let Err(err) = finished {
        error!(error = %crate::logging::error_chain(&err), "failed to write the final checkpoint");
    }
    if let (Target::Outbox(dingtalk, alertmanager), Some(grace)) = (store, grace) {
        let alertmanager = async move {
            if let Some(sink) = alertmanager {
                sink.shutdown(grace).await;
            }
        };
        let dingtalk = async move {
            if let Some(handle) = dingtalk {
                handle.shutdown(grace).await;
            }
        };
        tokio::join!(dingtalk, alertmanager);
    }
    if let Some(server) = metrics_server {
        drop(server.await);
    }
    info!("shutdown complete");
    Ok(())
}

/// Starts the metrics and health listener when `metrics:` is configured; it stops at shutdown.
async fn serve_metrics(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    metrics::get().config_loaded(config);
    let Some(options) = config.metrics else {
        return Ok(None);
    };
    let listener = metrics::bind(options.listen)
        .await
        .with_context(|| format!("failed to listen on `{}` for metrics", options.listen))?;
    let address = listener.local_addr().unwrap_or(options.listen);
    info!(event = "metrics_listening", address = %address, "metrics listening on http://{address}/metrics");
    Ok(Some(tokio::spawn(metrics::serve(
        listener,
        shutdown.clone(),
    ))))
}

/// What startup computes on the blocking pool.
struct Prepared {
    config: Config,
    /// The outbox read from disk (none for a dry run, or without a DingTalk webhook).
    delivery: Option<Delivery>,
    /// The Alertmanager sink (none for a dry run, or without `alertmanager:`).
    alertmanager: Option<Sink>,
    matchers: Vec<Matcher>,
    /// The files the sources match now.
    files: Vec<PathBuf>,
    /// The incident state of the last run (empty for a dry run).
    incidents: crate::incident::State,
    /// The suppression state of the last run (empty for a dry run).
    suppressed: crate::suppress::State,
}

fn prepare(config: Config, is_dry_run: bool) -> anyhow::Result<Prepared> {
    let delivery =
        if is_dry_run || (config.dingtalk.webhook.is_none() && config.alertmanager.is_some()) {
            None
        } else {
            Some(sinks::open_dingtalk(&config)?)
        };
    let alertmanager = match &config.alertmanager {
        Some(options) if !is_dry_run => Some(sinks::open_alertmanager(&config, options)?),
        _ => None,
    };
    let matchers = process::matchers_for(&config);
    let files = config
        .sources
        .iter()
        .flat_map(tail::files_matching)
        .collect();
    let (incidents, suppressed) = if is_dry_run {
        Default::default()
    } else {
        (
            incidents::load(&config.state_dir),
            suppress::load(&config.state_dir),
        )
    };
    Ok(Prepared {
        config,
        delivery,
        alertmanager,
        matchers,
        files,
        incidents,
        suppressed,
    })
}

fn log_startup(config: &Config, files: &[PathBuf], is_dry_run: bool) {
    let sources: Vec<String> = config
        .sources
        .iter()
        .map(|s| format!("{} ({})", s.name, s.paths.join(", ")))
        .collect();
    let shown: Vec<String> = files
        .iter()
        .take(STARTUP_FILES_SHOWN)
        .map(|path| path.display().to_string())
        .collect();
    let more = files.len().saturating_sub(STARTUP_FILES_SHOWN);
    info!(
        event = "started",
        config = %config.path.display(),
        rules = config.rules.len(),
        rule_files = config.rule_files.len(),
        sources = %sources.join("; "),
        files = %shown.join(", "),
        more_files = more,
        window = %format!("{:#}", jiff::SignedDuration::try_from(config.window).unwrap_or(jiff::SignedDuration::MAX)),
        dry_run = is_dry_run,
        "logding started"
    );
    if files.is_empty() {
        warn!("no file matches the sources' paths yet; waiting for files to appear");
    }
}

impl Follow for TailHandle {
    fn commit(&self, file: &FileId, offset: u64) {
        TailHandle::commit(self, file, offset);
    }

    fn reload(&self, sources: Vec<Source>, options: TailOptions) {
        TailHandle::reload(self, sources, options);
    }

    fn recycle(&self, data: Vec<u8>) {
        TailHandle::recycle(self, data);
    }
}
