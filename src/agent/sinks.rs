//! The agent's sinks as the process task sees them ([`Target`]): DingTalk's delivery task and
//! the Alertmanager sink, either of which may be absent, or a function for a dry run.
//!
//! A reload (SIGHUP) may add or remove a sink: a sink added is opened and started as at
//! startup (its outbox, and for Alertmanager the firing alerts, are read from `state_dir`); a
//! sink removed is stopped at once, and what it had not delivered stays in its outbox, for
//! when it is configured again. New sinks start before old ones stop, and a reload never
//! leaves the agent with no sink: a summary always has somewhere durable to go. Changing
//! `alertmanager:` itself (URLs, labels) needs a restart (`config::reload`).

use std::time::Duration;

use anyhow::Context as _;
use tracing::{info, warn};

use super::process::Store;
use crate::config::{AlertmanagerOptions, Config};
use crate::metrics;
use crate::render::RenderOptions;
use crate::sink::alertmanager::{Sink, SinkHandle};
use crate::sink::{Delivery, DeliveryHandle};
use crate::summary::Summary;

/// Where the process task stores summaries.
pub(super) enum Target {
    /// Durable outboxes: DingTalk's, and the Alertmanager sink's (either may be absent).
    Outbox(Option<DeliveryHandle>, Option<SinkHandle>),
    /// A function (dry run).
    Each(Box<dyn FnMut(&Summary) + Send>),
}

/// Opens DingTalk's outbox in `state_dir` (blocking: call it off the runtime).
pub(super) fn open_dingtalk(config: &Config) -> anyhow::Result<Delivery> {
    Delivery::open(
        &config.dingtalk,
        RenderOptions::from_config(config),
        &config.state_dir,
        &config.outbox,
    )
    .context("failed to open the outbox")
}

/// Opens the Alertmanager instances' outboxes and the firing alerts (blocking).
pub(super) fn open_alertmanager(
    config: &Config,
    options: &AlertmanagerOptions,
) -> anyhow::Result<Sink> {
    Sink::open(config, options).context("failed to open the Alertmanager outboxes")
}

impl Store for Target {
    async fn store(&mut self, summary: &Summary) -> anyhow::Result<()> {
        match self {
            Target::Outbox(dingtalk, alertmanager) => {
                // Alertmanager first: a failure there makes the agent store the summary again,
                // and a second copy of alerts is harmless (Alertmanager keys them by labels).
                if let Some(sink) = alertmanager {
                    sink.enqueue(summary)
                        .await
                        .context("failed to put alerts in the Alertmanager outboxes")?;
                }
                if let Some(handle) = dingtalk {
                    handle
                        .enqueue(summary.clone())
                        .await
                        .context("failed to put a summary in the outbox")?;
                }
            }
            Target::Each(each) => each(summary),
        }
        metrics::get().summary_queued();
        Ok(())
    }

    async fn reconfigure(&mut self, config: &Config) -> anyhow::Result<()> {
        let Target::Outbox(dingtalk, alertmanager) = self else {
            return Ok(());
        };
        let wants_dingtalk = config.dingtalk.webhook.is_some();
        let mut result = Ok(());
        // Start what was added.
        if wants_dingtalk && dingtalk.is_none() {
            match off_runtime(config, open_dingtalk).await {
                Ok(delivery) => {
                    *dingtalk = Some(delivery.spawn());
                    info!(
                        event = "sink_started",
                        sink = "dingtalk",
                        "DingTalk added: delivering to it from now on"
                    );
                }
                Err(err) => result = Err(err.context("DingTalk was added but cannot start")),
            }
        }
        if let (Some(options), None) = (&config.alertmanager, &alertmanager) {
            let options = options.clone();
            match off_runtime(config, move |c| open_alertmanager(c, &options)).await {
                Ok(sink) => {
                    *alertmanager = Some(sink.spawn());
                    info!(
                        event = "sink_started",
                        sink = "alertmanager",
                        "Alertmanager added: posting alerts to it from now on"
                    );
                }
                Err(err) => {
                    result = Err(err.context("Alertmanager was added but cannot start"));
                }
            }
        }
        // Apply DingTalk's settings, or stop what was removed (never the last sink).
        if wants_dingtalk {
            if let Some(handle) = dingtalk {
                let applied = handle
                    .reconfigure(&config.dingtalk, RenderOptions::from_config(config))
                    .await
                    .context("failed to apply the dingtalk settings");
                result = result.and(applied);
            }
        } else if alertmanager.is_some()
            && let Some(handle) = dingtalk.take()
        {
            handle.shutdown(Duration::ZERO).await;
            stopped("dingtalk");
        }
        if config.alertmanager.is_none()
            && dingtalk.is_some()
            && let Some(sink) = alertmanager.take()
        {
            // Its firing alerts end by themselves at their `endsAt`.
            sink.shutdown(Duration::ZERO).await;
            stopped("alertmanager");
        }
        let kept: Vec<&str> = [
            (dingtalk.is_some() && !wants_dingtalk, "dingtalk"),
            (
                alertmanager.is_some() && config.alertmanager.is_none(),
                "alertmanager",
            ),
        ]
        .into_iter()
        .filter_map(|(kept, name)| kept.then_some(name))
        .collect();
        if !kept.is_empty() {
            warn!(
                sinks = %kept.join(", "),
                "the new configuration removes the only working sink: it keeps running"
            );
        }
        result
    }
}

/// Says that a sink removed from the configuration stopped.
fn stopped(sink: &str) {
    info!(
        event = "sink_stopped",
        sink,
        "{sink} removed from the configuration: stopped; what it had not delivered stays in its outbox"
    );
}

/// Runs `open` on the blocking pool with a copy of `config`.
async fn off_runtime<T: Send + 'static>(
    config: &Config,
    open: impl FnOnce(&Config) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || open(&config))
        .await
        .context("opening a sink panicked")?
}
