//! `logding run`: load the config, connect signals, run the agent.
//!
//! SIGINT/SIGTERM: graceful shutdown (close windows early, put summaries in the outbox, deliver
//! within the grace period, write the final checkpoint, exit 0). A second signal exits at once;
//! the outbox keeps what was not sent. SIGHUP: reload the config; an invalid one is rejected
//! and the old one keeps running.

use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::agent::{self, Controls, Destination};
use crate::cli::{Output, RunArgs};
use crate::cmd::Exit;
use crate::config::{self, Diagnostic, LoadError};
use crate::render::{self, RenderOptions};
use crate::sink::alertmanager::{self, PostableAlert};
use crate::summary::Summary;

/// How long delivery may go on after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

/// Runs the command.
///
/// # Errors
///
/// Configuration errors (exit 2) and startup failures (exit 1).
pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let config = config::load(&args.config.config)?;
    for warning in &config.warnings {
        warn!(event = "config_warning", "{warning}");
    }
    if !args.dry_run && config.dingtalk.webhook.is_none() && config.alertmanager.is_none() {
        return Err(LoadError {
            diagnostics: vec![Diagnostic {
                file: config.path.clone(),
                position: None,
                message: "no DingTalk webhook and no Alertmanager is configured".into(),
                help: Some(
                    "set `dingtalk.webhook` (e.g. `${DINGTALK_WEBHOOK}`) or `dingtalk.webhook_file`, \
                     or `alertmanager.urls`, or use `--dry-run` to print summaries instead"
                        .into(),
                ),
                snippet: None,
            }],
        }
        .into());
    }
    let destination = if args.dry_run {
        let render = RenderOptions::from_config(&config);
        let output = args.output;
        let show_payload = tracing::enabled!(tracing::Level::DEBUG);
        let alerts = config
            .alertmanager
            .as_ref()
            .map(|options| alertmanager::context(&config, options));
        // The alerts go through a firing set of their own, as the sink's: starts, ends and
        // absences no longer shown come out as they would be posted.
        let mut firing = alertmanager::FiringSet::default();
        Destination::Each(Box::new(move |summary: &Summary| {
            print_summary(summary, output, show_payload, &render);
            if let Some(context) = &alerts {
                let posted = firing.update(
                    alertmanager::alerts_of(summary, context),
                    summary.end,
                    summary.end,
                );
                print_alerts(&posted, output);
            }
        }))
    } else {
        Destination::DingTalk { grace: GRACE }
    };
    // The blocking pool scans (a backlog keeps every core busy) and does file IO: one thread
    // per core (two at least, so a slow file write never stops every scan). More threads than
    // cores made a backlog's scans take turns on the cores: a scan paused mid-batch held up the
    // batches after it, which are applied in order, and a core waited (1.72-1.80 cores obtained
    // on two, against 1.82-1.86 with a thread per core).
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(cores.max(2))
        .thread_name("logding")
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let (reload_tx, reload_rx) = mpsc::channel(1);
        let signals = tokio::spawn(watch_signals(shutdown.clone(), reload_tx));
        let result = agent::run(
            config,
            destination,
            Controls {
                shutdown,
                reload: reload_rx,
            },
        )
        .await;
        signals.abort();
        result
    })?;
    Ok(Exit::Success)
}

/// First SIGINT/SIGTERM cancels `shutdown`; a second one exits the process at once.
/// SIGHUP sends a reload request.
pub(crate) async fn watch_signals(shutdown: CancellationToken, reload: mpsc::Sender<()>) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        error!("failed to install signal handlers; stop logding with SIGKILL");
        return;
    };
    let mut signalled = false;
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {
                // A full channel means a reload is already queued: nothing lost.
                if reload.try_send(()).is_err() {
                    info!("reload already pending");
                }
                continue;
            }
        }
        if signalled {
            warn!("second signal: exiting now; undelivered summaries stay in the outbox");
            std::process::exit(1);
        }
        signalled = true;
        info!(
            "shutting down: flushing and delivering what is pending (signal again to exit at once)"
        );
        shutdown.cancel();
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

/// Prints, for `--dry-run` with `alertmanager:`, the alerts that would be posted to every
/// instance: the JSON array of `POST /api/v2/alerts` (pretty in text mode; one line
/// `{"alertmanager": [...]}` with `--output json`).
#[allow(clippy::print_stdout)]
fn print_alerts(alerts: &[PostableAlert], output: Output) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let result = match output {
        Output::Json => serde_json::to_string(&serde_json::json!({ "alertmanager": alerts }))
            .map_err(std::io::Error::other)
            .and_then(|line| writeln!(stdout, "{line}")),
        Output::Text => serde_json::to_string_pretty(&alerts)
            .map_err(std::io::Error::other)
            .and_then(|json| writeln!(stdout, "--- alertmanager: POST /api/v2/alerts ---\n{json}")),
    };
    if let Err(err) = result.and_then(|()| stdout.flush()) {
        warn!(error = %err, "failed to write alerts to stdout");
    }
}
