//! The `alertmanager:` sink: every incident and absence the agent reports becomes one alert,
//! posted to **every** configured instance (Alertmanager's HA cluster de-duplicates; posting
//! to one instance only would lose alerts when it dies), and firing alerts are posted again
//! every `resend_every` with their `endsAt` moved ahead, as Prometheus does.
//!
//! - `alerts`: incidents and absences → alerts (pure), and [`AlertBatch`], the outbox payload.
//! - `firing`: the set of firing alerts and how each message changes it (absences included).
//! - `client`: the HTTP client of one instance and the classification of its answers into the
//!   DingTalk delivery's retry classes.
//! - this file: [`Sink`], one task that owns the set of firing alerts (persisted in
//!   `state_dir/alertmanager-firing.json`, so a restart keeps re-posting what the incident
//!   stage still holds open) and hands each batch to one delivery task per instance
//!   (`sink::Delivery`, the DingTalk robot's code: durable outbox under
//!   `state_dir/alertmanager/<instance>/`, merging, backoff, configuration errors logged
//!   once). An instance that is down only fills its own outbox: the others go on.
//!
//! A summary is acknowledged once its alerts are durable in every instance's outbox.

mod alerts;
mod client;
mod firing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

pub use self::alerts::{
    AlertBatch, AlertContext, ENDS_AFTER_RESENDS, IncidentAlert, IncidentKey, PostableAlert,
    STALLED_ALERTNAME, alerts_of, label_name,
};
pub(crate) use self::client::Client;
pub use self::firing::FiringSet;
use crate::config::{AlertmanagerOptions, Config};
use crate::render::RenderOptions;
use crate::sink::{Delivery, DeliveryHandle, Error};
use crate::summary::Summary;

/// The firing alerts' file in `state_dir`.
pub const FIRING_FILE: &str = "alertmanager-firing.json";

/// The context of a configuration: labels, each rule's `source` label, render options.
pub fn context(config: &Config, options: &AlertmanagerOptions) -> AlertContext {
    let sources = config
        .rules
        .rules()
        .iter()
        .map(|rule| {
            let names: Vec<&str> = if rule.sources.is_empty() {
                config.sources.iter().map(|s| s.name.as_str()).collect()
            } else {
                rule.sources.iter().map(String::as_str).collect()
            };
            (rule.name.clone(), names.join(","))
        })
        .collect();
    AlertContext {
        labels: options.labels.clone(),
        sources,
        render: RenderOptions::from_config(config),
        resend_every: options.resend_every,
    }
}

/// The sink, ready to be spawned: the instances' delivery tasks and the firing alerts.
#[derive(Debug)]
pub struct Sink {
    context: AlertContext,
    deliveries: Vec<Delivery<AlertBatch>>,
    firing: FiringSet,
    state_path: PathBuf,
}

/// The agent's handle on the running sink.
#[derive(Debug)]
pub struct SinkHandle {
    commands: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
enum Command {
    Enqueue(Box<Summary>, oneshot::Sender<Result<(), Error>>),
    Shutdown(Duration),
}

impl Sink {
    /// Opens every instance's outbox (`state_dir/alertmanager/<instance>/`) and the firing
    /// alerts of the last run (blocking: call it off the runtime).
    ///
    /// # Errors
    ///
    /// An outbox directory is unusable, or an HTTP client cannot be built.
    pub fn open(config: &Config, options: &AlertmanagerOptions) -> Result<Sink, Error> {
        let context = context(config, options);
        let mut deliveries = Vec::new();
        for url in &options.urls {
            let dir = config
                .state_dir
                .join("alertmanager")
                .join(instance_dir(url));
            deliveries.push(
                Delivery::open_alertmanager(
                    url,
                    options.timeout,
                    context.render.clone(),
                    &dir,
                    &config.outbox,
                )?
                .named(&format!("alertmanager:{}", instance_dir(url))),
            );
        }
        let state_path = config.state_dir.join(FIRING_FILE);
        let firing = load(&state_path);
        Ok(Sink {
            context,
            deliveries,
            firing,
            state_path,
        })
    }

    /// Starts the instances' delivery tasks and the sink's own task. Alerts that were
    /// firing before a restart are posted again at once.
    pub fn spawn(self) -> SinkHandle {
        let (commands, receiver) = mpsc::channel(16);
        let task = tokio::spawn(self.run(receiver));
        SinkHandle { commands, task }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let handles: Vec<DeliveryHandle<AlertBatch>> = std::mem::take(&mut self.deliveries)
            .into_iter()
            .map(Delivery::spawn)
            .collect();
        let mut resend = tokio::time::interval(self.context.resend_every);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let grace = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Enqueue(summary, reply)) => {
                        let queued = self.enqueue(&handles, &summary).await;
                        drop(reply.send(queued));
                    }
                    Some(Command::Shutdown(grace)) => break Some(grace),
                    None => break None,
                },
                _ = resend.tick() => self.resend(&handles).await,
            }
        };
        let Some(grace) = grace else {
            // The handle was dropped: stop at once, like a crash (the outboxes keep all).
            return;
        };
        let mut tasks = tokio::task::JoinSet::new();
        for handle in handles {
            tasks.spawn(handle.shutdown(grace));
        }
        while tasks.join_next().await.is_some() {}
    }

    /// A message of the incident stage: its alerts update the firing set and go to every
    /// instance's outbox.
    async fn enqueue(
        &mut self,
        handles: &[DeliveryHandle<AlertBatch>],
        summary: &Summary,
    ) -> Result<(), Error> {
        let now = Timestamp::now();
        let mut batch = self
            .firing
            .update(alerts_of(summary, &self.context), summary.end, now);
        batch.extend(self.firing.bound(now));
        self.save().await;
        if batch.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            alerts = batch.len(),
            firing = self.firing.len(),
            "alerts queued for Alertmanager"
        );
        queue_everywhere(handles, &batch).await
    }

    /// Posts the firing alerts again, `endsAt` moved ahead.
    async fn resend(&mut self, handles: &[DeliveryHandle<AlertBatch>]) {
        let now = Timestamp::now();
        let mut alerts = self.firing.bound(now);
        if !alerts.is_empty() {
            self.save().await;
        }
        alerts.extend(self.firing.refreshed(self.context.ends_at(now)));
        if alerts.is_empty() {
            return;
        }
        if let Err(err) = queue_everywhere(handles, &alerts).await {
            tracing::warn!(error = %crate::logging::error_chain(&err), "failed to queue the firing alerts again");
        }
    }

    /// Writes the firing alerts (on the blocking pool). A failure is logged: it costs
    /// re-posts after a restart, never an alert.
    async fn save(&self) {
        let bytes = self.firing.to_bytes();
        let path = self.state_path.clone();
        let saved =
            tokio::task::spawn_blocking(move || crate::state::write_atomic(&path, &bytes)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(
                error = %crate::logging::error_chain(&err),
                "failed to save the firing alerts"
            ),
            Err(err) => tracing::warn!(error = %err, "saving the firing alerts panicked"),
        }
    }
}

/// Puts `alerts` in every instance's outbox, each tried whatever the others did (an instance
/// whose outbox fails does not hold back the others); the last failure is returned.
async fn queue_everywhere(
    handles: &[DeliveryHandle<AlertBatch>],
    alerts: &[PostableAlert],
) -> Result<(), Error> {
    let mut result = Ok(());
    for handle in handles {
        let batch = AlertBatch {
            alerts: alerts.to_vec(),
        };
        if let Err(err) = handle.enqueue(batch).await {
            result = Err(err);
        }
    }
    result
}

impl SinkHandle {
    /// Hands a message of the incident stage to the sink; returns once its alerts are durable
    /// in every instance's outbox.
    ///
    /// # Errors
    ///
    /// An outbox could not be written, or the task is gone.
    pub async fn enqueue(&self, summary: &Summary) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Enqueue(Box::new(summary.clone()), reply))
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Stops; each instance's delivery gets `grace` to post what is pending (the rest stays
    /// in its outbox).
    pub async fn shutdown(self, grace: Duration) {
        if self.commands.send(Command::Shutdown(grace)).await.is_err() {
            tracing::debug!("alertmanager sink already stopped");
        }
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "alertmanager sink failed");
        }
    }
}

/// A directory name for an instance: its host and port (`am-1_9093`), path included.
fn instance_dir(url: &reqwest::Url) -> String {
    let text = format!(
        "{}_{}{}",
        url.host_str().unwrap_or("host"),
        url.port_or_known_default().unwrap_or(0),
        url.path().trim_end_matches('/')
    );
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The firing alerts of the last run; none when there is no file or it cannot be read.
fn load(path: &Path) -> FiringSet {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return FiringSet::default(),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "firing alerts unreadable: starting with none");
            return FiringSet::default();
        }
    };
    FiringSet::from_bytes(&bytes).unwrap_or_else(|| {
        tracing::warn!(path = %path.display(), "firing alerts not understood: starting with none");
        FiringSet::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_get_distinct_directory_names() {
        let dir = |s: &str| instance_dir(&reqwest::Url::parse(s).expect("url"));
        assert_eq!(dir("http://am-1:9093"), "am-1_9093");
        assert_eq!(dir("https://proxy/am/"), "proxy_443_am");
        assert_ne!(dir("http://127.0.0.1:9093"), dir("http://127.0.0.1:9094"));
    }
}
