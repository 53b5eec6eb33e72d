//! `sink`: delivery of summaries to a DingTalk custom robot, which never loses a summary and
//! never floods the group, and of incidents as alerts to Alertmanager instances. The only
//! module that knows HTTP, the DingTalk endpoint and Alertmanager's API (the message format
//! is `render`'s).
//!
//! - [`Delivery`] / [`DeliveryHandle`]: the delivery task. [`DeliveryHandle::enqueue`] returns
//!   once a summary is durable in the [`crate::outbox::Outbox`]; the task delivers the outbox
//!   in order, within the rate budget, merging summaries that queue up.
//! - `dingtalk`: the HTTP client, signing, and the classification of DingTalk's answers into
//!   [`Answer`] (HTTP 200 is not success: `errcode` decides).
//! - `sign`: the URL signature. `budget`: at most `max_per_minute` posts in any rolling minute.
//! - [`send_test`]: one test message, for `logding send-test`.
//! - [`alertmanager`]: the `alertmanager:` sink: incidents as alerts, posted to every instance
//!   by one delivery task each (the same task, outbox and retry classes, with another
//!   `Poster`), firing ones posted again every `resend_every`.
//!
//! No secret leaves this module: the webhook stays in a [`crate::config::Secret`], errors are
//! stripped of URLs, and DingTalk's messages are redacted before they are logged.

pub mod alertmanager;
mod budget;
mod deliver;
mod dingtalk;
mod sign;

use std::path::Path;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use dingtalk::{Answer, ConfigProblem};

use crate::config;
use crate::outbox::{Outbox, Payload, SendTimes};
use crate::render::RenderOptions;
use crate::summary::Summary;

/// Why delivery could not be set up, or a summary could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `dingtalk.webhook` is not set.
    #[error("no DingTalk webhook configured: set `dingtalk.webhook` (or `webhook_file`)")]
    NoWebhook,
    /// The webhook is not an `http(s)://` URL. The value is not shown: it is a credential.
    #[error("the DingTalk webhook is not a valid `https://` URL")]
    InvalidWebhook,
    /// Plain `http://` to a host other than loopback.
    #[error(
        "the DingTalk webhook uses plain `http://` to a host other than loopback: use `https://` \
         or set `dingtalk.allow_insecure_http: true`"
    )]
    InsecureWebhook,
    /// The HTTP client could not be built.
    #[error("failed to build the HTTP client")]
    Client {
        /// The cause (its URL stripped).
        #[source]
        source: reqwest::Error,
    },
    /// The outbox could not be opened or written.
    #[error("failed to queue the summary in the outbox")]
    Outbox {
        /// The cause.
        #[from]
        source: crate::outbox::Error,
    },
    /// The delivery task is gone.
    #[error("the delivery task has stopped")]
    Stopped,
}

/// Who the delivery task posts to: the answers of both are classified into [`Answer`], so
/// that retries, backoff and configuration errors are handled by the same code.
#[derive(Debug, Clone)]
pub(crate) enum Poster {
    /// A DingTalk robot (signed URL, message ids, metrics).
    DingTalk(dingtalk::Client),
    /// An Alertmanager instance (`POST /api/v2/alerts`).
    Alertmanager(alertmanager::Client),
}

impl Poster {
    /// Posts one body and classifies the answer.
    pub(crate) async fn post_reporting(&self, body: String) -> (Answer, dingtalk::Outcome) {
        match self {
            Poster::DingTalk(client) => client.post_reporting(body).await,
            Poster::Alertmanager(client) => client.post_reporting(body).await,
        }
    }

    /// Its kind, as log messages name it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Poster::DingTalk(_) => "DingTalk",
            Poster::Alertmanager(_) => "Alertmanager",
        }
    }

    /// Returns true if and only if its messages are read by people (DingTalk): they carry an
    /// id line and count in the DingTalk metrics.
    pub(crate) fn carries_ids(&self) -> bool {
        matches!(self, Poster::DingTalk(_))
    }
}

impl std::fmt::Display for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The webhook is a credential: never shown.
            Poster::DingTalk(_) => f.write_str("dingtalk"),
            Poster::Alertmanager(client) => f.write_str(client.shown()),
        }
    }
}

/// The delivery task, ready to be spawned: owns the outbox, the DingTalk client and the rate
/// budget of one robot. Generic over what it delivers: window summaries for the agent,
/// notification batches for the relay (one `Delivery` per robot, each with its own state).
#[derive(Debug)]
pub struct Delivery<P = Summary> {
    worker: deliver::Worker<P>,
}

/// The handle the agent (or the relay, per robot) keeps on the running delivery task.
#[derive(Debug)]
pub struct DeliveryHandle<P = Summary> {
    commands: mpsc::Sender<deliver::Command<P>>,
    task: tokio::task::JoinHandle<()>,
}

impl Delivery<Summary> {
    /// Opens (or creates) the outbox (`state_dir/outbox/`) and the persisted send times
    /// (`state_dir/dingtalk-send-times.json`) of the agent's robot, and builds its client.
    ///
    /// # Errors
    ///
    /// No webhook configured, an invalid or insecure webhook, or an unusable state directory.
    pub fn open(
        dingtalk: &config::DingTalk,
        render: RenderOptions,
        state_dir: &Path,
        outbox: &config::OutboxOptions,
    ) -> Result<Delivery, Error> {
        Delivery::open_at(
            dingtalk,
            render,
            &state_dir.join("outbox"),
            SendTimes::new(state_dir),
            outbox,
        )
    }
}

impl<P: Payload> Delivery<P> {
    /// Opens (or creates) the outbox in directory `outbox_dir` and the send times in
    /// `send_times`, and builds the DingTalk client: the state of one robot.
    ///
    /// # Errors
    ///
    /// No webhook configured, an invalid or insecure webhook, or an unusable outbox directory.
    pub fn open_at(
        dingtalk: &config::DingTalk,
        render: RenderOptions,
        outbox_dir: &Path,
        send_times: SendTimes,
        outbox: &config::OutboxOptions,
    ) -> Result<Delivery<P>, Error> {
        let settings = deliver::Settings::new(dingtalk, render)?;
        let outbox = Outbox::open_dir(outbox_dir, outbox)?;
        Ok(Delivery {
            worker: deliver::Worker::new(settings, outbox, send_times),
        })
    }

    /// Names the robot in the metrics (the relay's robots; the agent's is `dingtalk`).
    #[must_use]
    pub fn named(mut self, robot: &str) -> Self {
        robot.clone_into(&mut self.worker.robot);
        self
    }

    /// The delivery task of one Alertmanager instance (`base`), with its outbox and post
    /// times in `dir`.
    ///
    /// # Errors
    ///
    /// The HTTP client cannot be built, or the outbox directory is unusable.
    pub fn open_alertmanager(
        base: &reqwest::Url,
        timeout: Duration,
        render: RenderOptions,
        dir: &Path,
        outbox: &config::OutboxOptions,
    ) -> Result<Delivery<P>, Error> {
        let client = alertmanager::Client::new(base, timeout)?;
        let settings = deliver::Settings::alertmanager(client, render);
        let outbox = Outbox::open_dir(&dir.join("outbox"), outbox)?;
        Ok(Delivery {
            worker: deliver::Worker::new(
                settings,
                outbox,
                SendTimes::at(dir.join("send-times.json")),
            ),
        })
    }

    /// Starts the delivery task. It first delivers what the outbox already holds.
    pub fn spawn(self) -> DeliveryHandle<P> {
        let (commands, receiver) = mpsc::channel(16);
        let task = tokio::spawn(self.worker.run(receiver));
        DeliveryHandle { commands, task }
    }
}

impl<P: Payload> DeliveryHandle<P> {
    /// Queues a payload; returns once it is durable (fsynced) in the outbox.
    ///
    /// # Errors
    ///
    /// The outbox could not be written (the payload is not queued), or the task is gone.
    pub async fn enqueue(&self, payload: P) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(deliver::Command::Enqueue(Box::new(payload), reply))
            .await
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Applies new `dingtalk` settings (a SIGHUP) to the running task without losing anything:
    /// webhook, secret, keyword, message type, mentions, budget, throttle pause, timeouts.
    /// What a configuration error or a backoff held back is retried at once.
    ///
    /// # Errors
    ///
    /// No webhook, an invalid or insecure one (the old settings stay), or the task is gone.
    pub async fn reconfigure(
        &self,
        dingtalk: &config::DingTalk,
        render: RenderOptions,
    ) -> Result<(), Error> {
        let settings = deliver::Settings::new(dingtalk, render)?;
        let (reply, done) = oneshot::channel();
        self.commands
            .send(deliver::Command::Reconfigure(Box::new(settings), reply))
            .await
            .map_err(|_| Error::Stopped)?;
        done.await.map_err(|_| Error::Stopped)
    }

    /// Stops accepting payloads, tries to deliver what is pending within `grace`, then
    /// returns. What is not delivered stays in the outbox for the next start.
    ///
    /// Dropping the handle instead stops the task at once, like a crash (the outbox keeps
    /// everything).
    pub async fn shutdown(self, grace: Duration) {
        let DeliveryHandle { commands, task } = self;
        if commands
            .send(deliver::Command::Shutdown(grace))
            .await
            .is_err()
        {
            tracing::debug!("delivery task already stopped");
        }
        if let Err(err) = task.await {
            tracing::error!(error = %err, "delivery task failed");
        }
    }
}

/// Posts one short test message carrying the keyword, and returns DingTalk's answer.
///
/// # Errors
///
/// No webhook, or an invalid or insecure one, or the HTTP client could not be built. What
/// DingTalk answered (even a rejection) is an `Ok`.
pub async fn send_test(
    dingtalk: &config::DingTalk,
    render: &RenderOptions,
) -> Result<Answer, Error> {
    let client = dingtalk::Client::new(dingtalk)?;
    let text = format!(
        "[{keyword}] logding send-test: this robot accepts logding's messages (keyword '{keyword}')",
        keyword = render.keyword
    );
    let title = format!("[{}] logding send-test", render.keyword);
    let body = crate::render::message_body(render.msgtype, &title, &text, None);
    let answer = client.post(body.clone()).await;
    if matches!(answer, Answer::InvalidTimestamp { .. }) {
        // Re-sign once with a fresh timestamp, as delivery does.
        return Ok(client.post(body).await);
    }
    Ok(answer)
}
