//! The delivery task: drains the outbox to DingTalk (or to an Alertmanager instance: the
//! same task with another [`Poster`]) in order, within the rate budget, and reacts to each
//! classified answer.
//!
//! One owned task ([`Worker::run`]) with a command channel (enqueue, reconfigure, shutdown);
//! commands are served even while a post is in flight, so a hanging DingTalk never blocks the
//! pipeline. File IO (outbox writes, send times) runs on the blocking pool, never on a runtime
//! thread: the outbox sits behind a mutex that only this task locks, and only briefly.
//!
//! Sending policy:
//! - Whenever a post becomes possible (budget, backoff, throttle pause), **everything** waiting
//!   is merged into one message; render splits it into numbered parts only when the byte
//!   budget forces it. A backlog after an outage, a crash or a throttle is one message, not a
//!   burst that spends the minute's budget.
//! - A message that may have been shown without an answer (timeout, connection lost) is retried
//!   as itself: same text, same id, never merged with newer windows. Every message carries a
//!   short id (`#a3f9`) on its last line, so a reader can tell a repeat.
//! - Transient failures back off exponentially with jitter, capped at [`MAX_BACKOFF`] (30 s).
//! - After DingTalk says the robot is throttled, nothing is posted for `throttle_pause`.
//! - Configuration errors are retried every [`CONFIG_RETRY`], and at once after a reload.
//! - A message is removed from the outbox only when DingTalk accepted it (every part).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::config::{self, MIN_BODY_BYTES};
use crate::metrics::DeliveryGauges;
use crate::outbox::{Outbox, Payload, SendTimes};
use crate::render::{self, RenderOptions};
use crate::sink::budget::{RateBudget, WINDOW};
use crate::sink::dingtalk::{Answer, Client, ConfigProblem, Outcome};
use crate::sink::{Error, Poster, sign};

/// First retry delay after a transient failure; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay after transient failures (before jitter).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Retry delay while the robot's configuration is wrong (in case the operator fixes it).
const CONFIG_RETRY: Duration = Duration::from_secs(300);
/// Bytes kept free in every body for the message id line (`\n\n#a3f9` once escaped).
const ID_RESERVE: usize = 16;

/// A request to the task.
#[derive(Debug)]
pub(crate) enum Command<P> {
    /// Queue a payload; the reply comes once it is durable.
    Enqueue(Box<P>, oneshot::Sender<Result<(), Error>>),
    /// Apply new `dingtalk` settings; the reply comes once they are in effect.
    Reconfigure(Box<Settings>, oneshot::Sender<()>),
    /// Stop accepting; deliver what is pending within the grace period.
    Shutdown(Duration),
}

/// Everything a reload may change, checked and ready (the client is built).
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) poster: Poster,
    pub(crate) render: RenderOptions,
    pub(crate) max_per_minute: u32,
    pub(crate) throttle_pause: Duration,
    pub(crate) webhook: Option<config::Secret>,
}

impl Settings {
    pub(crate) fn new(dingtalk: &config::DingTalk, render: RenderOptions) -> Result<Self, Error> {
        Ok(Settings {
            poster: Poster::DingTalk(Client::new(dingtalk)?),
            render,
            max_per_minute: dingtalk.max_per_minute,
            throttle_pause: dingtalk.throttle_pause,
            webhook: dingtalk.webhook.clone(),
        })
    }

    /// An Alertmanager instance: no rate budget to speak of, no throttle, no message ids.
    pub(crate) fn alertmanager(
        client: crate::sink::alertmanager::Client,
        render: RenderOptions,
    ) -> Self {
        Settings {
            poster: Poster::Alertmanager(client),
            render,
            max_per_minute: u32::MAX,
            throttle_pause: Duration::ZERO,
            webhook: None,
        }
    }
}

/// The state of the delivery task.
#[derive(Debug)]
pub(crate) struct Worker<P> {
    /// The robot's name in the metrics (`dingtalk` for the agent's).
    pub(crate) robot: String,
    gauges: Arc<DeliveryGauges>,
    settings: Settings,
    outbox: Arc<Mutex<Outbox<P>>>,
    send_times: SendTimes,
    budget: RateBudget,
    /// No post before this (throttled robot).
    paused_until: Option<Instant>,
    /// No post before this (backoff after a failure).
    retry_at: Option<Instant>,
    /// Consecutive transient failures, for the backoff.
    failures: u32,
    /// Send the oldest entry alone next (a merged message was refused for good: find which).
    single_next: bool,
    /// The message being delivered, when it spans several attempts.
    current: Option<Message<P>>,
    /// Configuration errors already logged at error level since the last success.
    logged: HashSet<(i64, &'static str)>,
    /// `None` while accepting; the grace deadline once shutting down.
    deadline: Option<Instant>,
    /// The handle was dropped without a shutdown: stop at once.
    abandoned: bool,
}

/// One message to DingTalk: outbox entries merged into one payload, with its id.
#[derive(Debug)]
struct Message<P> {
    seqs: Vec<u64>,
    payload: P,
    /// Four hex digits on the last line of every part.
    id: String,
    max_body_bytes: usize,
    parts_done: usize,
    resigned: bool,
    /// A post of it may have been shown without an answer: it is retried as itself only.
    unsure: bool,
}

impl<P: Payload> Worker<P> {
    pub(crate) fn new(settings: Settings, outbox: Outbox<P>, send_times: SendTimes) -> Worker<P> {
        let earlier = earlier_posts(&send_times.load());
        Worker {
            robot: "dingtalk".into(),
            gauges: Arc::default(),
            budget: RateBudget::new(settings.max_per_minute, earlier),
            settings,
            outbox: Arc::new(Mutex::new(outbox)),
            send_times,
            paused_until: None,
            retry_at: None,
            failures: 0,
            single_next: false,
            current: None,
            logged: HashSet::new(),
            deadline: None,
            abandoned: false,
        }
    }

    /// Runs until shut down (or abandoned), delivering the outbox.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command<P>>) {
        if self.pending() > 0 {
            tracing::info!(
                pending = self.pending(),
                "delivering what the outbox holds from before"
            );
        }
        crate::metrics::get().delivery_started(&self.robot, self.gauges.clone());
        loop {
            self.publish();
            let pending = self.pending();
            if self.abandoned || (self.deadline.is_some() && pending == 0) {
                break;
            }
            if pending == 0 {
                let command = commands.recv().await;
                self.handle(command).await;
                continue;
            }
            let ready_at = self.ready_at();
            if self.deadline.is_some_and(|deadline| ready_at >= deadline) {
                break;
            }
            tokio::select! {
                command = commands.recv(), if self.deadline.is_none() => self.handle(command).await,
                () = sleep_until(ready_at) => self.attempt(&mut commands).await,
            }
        }
        crate::metrics::get().delivery_stopped(&self.robot, &self.gauges);
        let pending = self.pending();
        if pending > 0 && !self.abandoned {
            tracing::warn!(
                pending,
                "not delivered before shutdown: kept in the outbox for the next start"
            );
        }
    }

    /// Shows the outbox and the budget to the metrics.
    fn publish(&mut self) {
        let (entries, oldest) = {
            let outbox = self.lock_outbox();
            (outbox.len(), outbox.oldest_queued_at())
        };
        self.gauges.outbox(entries, oldest);
        let now = Instant::now();
        let frees_at = self.budget.recent(now).map(|at| (at + WINDOW).into_std());
        self.gauges.budget(self.settings.max_per_minute, frees_at);
    }

    async fn handle(&mut self, command: Option<Command<P>>) {
        match command {
            Some(Command::Enqueue(payload, reply)) => {
                let queued = self
                    .with_outbox(move |outbox| outbox.push(*payload))
                    .await
                    .map(drop)
                    .map_err(Error::from);
                if let Err(err) = &queued {
                    tracing::error!(error = %crate::logging::error_chain(err), "failed to queue a summary");
                }
                // The caller may have given up waiting; the payload is queued all the same.
                drop(reply.send(queued));
                self.publish();
            }
            Some(Command::Reconfigure(settings, reply)) => {
                self.reconfigure(*settings);
                if reply.send(()).is_err() {
                    tracing::debug!("the reload stopped waiting; the settings apply all the same");
                }
            }
            Some(Command::Shutdown(grace)) => self.deadline = Some(Instant::now() + grace),
            None => self.abandoned = true,
        }
    }

    /// Applies reloaded settings. What was held back by a configuration error or a backoff
    /// is retried at once; a throttle pause is lifted only when the robot changed.
    fn reconfigure(&mut self, settings: Settings) {
        if settings.webhook != self.settings.webhook {
            self.paused_until = None;
        }
        self.budget.set_max(settings.max_per_minute);
        self.settings = settings;
        self.retry_at = None;
        self.failures = 0;
        self.logged.clear();
        // A message not yet (possibly) shown is formed again, with the new settings.
        if let Some(message) = self.current.take()
            && (message.unsure || message.parts_done > 0)
        {
            self.current = Some(message);
        }
        tracing::info!(
            event = "dingtalk_reloaded",
            sink = %self.settings.poster,
            max_per_minute = self.settings.max_per_minute,
            "DingTalk settings reloaded"
        );
    }

    fn ready_at(&mut self) -> Instant {
        let now = Instant::now();
        [
            Some(self.budget.next_slot(now)),
            self.paused_until,
            self.retry_at,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(now)
    }

    /// Posts the next part of the next message, serving commands while the post is in flight.
    async fn attempt(&mut self, commands: &mut mpsc::Receiver<Command<P>>) {
        self.paused_until = None;
        self.retry_at = None;
        let message = match self.current.take() {
            Some(message) => message,
            None => self.next_message(),
        };
        let bodies = self.bodies(&message);
        let Some(body) = bodies.get(message.parts_done).cloned() else {
            tracing::warn!("the payload rendered to no message: dropped");
            self.finish(message).await;
            return;
        };
        let parts = bodies.len();
        let bytes = body.len();
        self.lock_outbox().pin(&message.seqs);
        let started = Instant::now();
        self.budget.record(started);
        self.save_send_times().await;
        let poster = self.settings.poster.clone();
        let post = poster.post_reporting(body);
        tokio::pin!(post);
        let reply = loop {
            let deadline = self
                .deadline
                .unwrap_or(started + Duration::from_secs(365 * 86_400));
            tokio::select! {
                reply = &mut post => break Some(reply),
                command = commands.recv(), if self.deadline.is_none() => {
                    self.handle(command).await;
                    if self.abandoned {
                        break None;
                    }
                }
                () = sleep_until(deadline) => break None,
            }
        };
        self.budget.complete(Instant::now());
        self.save_send_times().await;
        // Without an answer (grace over, or abandoned mid-post) the entries stay in the outbox.
        if let Some((answer, outcome)) = reply {
            let sent = Sent {
                parts,
                bytes,
                latency: started.elapsed(),
                outcome,
            };
            self.on_answer(answer, message, sent).await;
        }
        // A message kept for the next attempt stays pinned: merging its entries away in the
        // meantime would make its removal on success lose what was merged into them.
        let mut outbox = self.lock_outbox();
        outbox.unpin_all();
        if let Some(message) = &self.current {
            outbox.pin(&message.seqs);
        }
    }

    /// The message's bodies, each with its id on the last line, within the byte budget.
    fn bodies(&self, message: &Message<P>) -> Vec<String> {
        let options = RenderOptions {
            max_body_bytes: message.max_body_bytes.saturating_sub(ID_RESERVE),
            ..self.settings.render.clone()
        };
        let bodies = message.payload.render(&options);
        if !self.settings.poster.carries_ids() {
            return bodies;
        }
        let id_line = format!("#{}", message.id);
        bodies
            .iter()
            .map(|body| render::append_line(body, &id_line))
            .collect()
    }

    /// The next message: everything waiting, merged (or the oldest entry alone, to find which
    /// one of a merged message DingTalk refuses).
    fn next_message(&mut self) -> Message<P> {
        let take = if self.single_next { 1 } else { usize::MAX };
        self.single_next = false;
        let outbox = self.lock_outbox();
        let mut entries = outbox.entries().take(take);
        let first = entries.next().expect("the outbox is not empty");
        let mut seqs = vec![first.seq];
        let mut payload = first.payload.clone();
        for entry in entries {
            seqs.push(entry.seq);
            payload.merge(entry.payload.clone());
        }
        drop(outbox);
        if seqs.len() > 1 {
            tracing::info!(
                entries = seqs.len(),
                "merged queued entries into one message"
            );
        }
        Message {
            seqs,
            payload,
            id: format!("{:04x}", fastrand::u16(..)),
            max_body_bytes: self.settings.render.max_body_bytes,
            parts_done: 0,
            resigned: false,
            unsure: false,
        }
    }

    async fn on_answer(&mut self, answer: Answer, mut message: Message<P>, sent: Sent) {
        let now = Instant::now();
        let is_unknown = sent.outcome == Outcome::Unknown;
        // Alertmanager posts are not the robot's: they stay out of its post metrics and
        // `/readyz` (one instance down is no reason to restart the agent).
        if self.settings.poster.carries_ids() {
            let result = answer.post_result(is_unknown);
            crate::metrics::get().post_answered(&self.robot, result, sent.latency);
        }
        if is_unknown {
            message.unsure = true;
        }
        match answer {
            Answer::Ok => {
                message.parts_done += 1;
                self.on_delivered(&message, &sent);
                if message.parts_done < sent.parts {
                    self.current = Some(message);
                    return;
                }
                self.finish(message).await;
            }
            Answer::Retry { reason } => {
                let delay = self.backoff();
                tracing::warn!(
                    reason,
                    retry_in = ?delay,
                    shown_maybe = message.unsure,
                    sink = %self.settings.poster,
                    "post to {} failed; will retry",
                    self.settings.poster.name()
                );
                self.keep_if_started(message);
            }
            Answer::Throttled { errcode, errmsg } => {
                let pause = self.settings.throttle_pause;
                tracing::warn!(
                    errcode,
                    errmsg,
                    pause = ?pause,
                    "DingTalk throttled the robot: pausing, pending entries will be merged"
                );
                self.paused_until = Some(now + pause);
                self.keep_if_started(message);
            }
            Answer::InvalidTimestamp { errmsg } if !message.resigned => {
                tracing::warn!(errmsg, "DingTalk rejected the timestamp: signing again");
                message.resigned = true;
                self.current = Some(message);
            }
            Answer::InvalidTimestamp { errmsg } => {
                self.on_config_error(310_000, errmsg, ConfigProblem::Clock);
                message.resigned = false;
                self.keep_if_started(message);
            }
            Answer::TooLarge { errcode, errmsg } if message.max_body_bytes > MIN_BODY_BYTES => {
                message.max_body_bytes = (message.max_body_bytes / 2).max(MIN_BODY_BYTES);
                tracing::warn!(
                    errcode,
                    errmsg,
                    max_body_bytes = message.max_body_bytes,
                    "DingTalk says the message is too long: rendering it smaller"
                );
                message.parts_done = 0;
                self.current = Some(message);
            }
            Answer::TooLarge { errcode, errmsg } | Answer::Content { errcode, errmsg } => {
                self.drop_message(message, errcode, &errmsg).await;
            }
            Answer::Config {
                errcode,
                errmsg,
                problem,
            } => {
                self.on_config_error(errcode, errmsg, problem);
                self.keep_if_started(message);
            }
            Answer::Unknown { errcode, errmsg } => {
                let delay = self.backoff();
                if self.logged.insert((errcode, "unknown")) {
                    tracing::error!(
                        errcode,
                        errmsg,
                        retry_in = ?delay,
                        "DingTalk answered with an unknown error code: not delivered, will retry"
                    );
                }
                self.keep_if_started(message);
            }
        }
    }

    /// One INFO line per accepted post, so an operator sees alerts going out.
    fn on_delivered(&mut self, message: &Message<P>, sent: &Sent) {
        if self.failures > 0 || !self.logged.is_empty() {
            tracing::info!(
                sink = %self.settings.poster,
                "delivery to {} recovered",
                self.settings.poster.name()
            );
        }
        self.failures = 0;
        self.logged.clear();
        let (windows, matches) = message.payload.tally();
        if let Poster::Alertmanager(_) = &self.settings.poster {
            // One JSON array of alerts: no message id, no parts. `sink` is the URL posted to,
            // without credentials.
            let status = match sent.outcome {
                Outcome::Answered { status } => Some(status),
                Outcome::NotSent | Outcome::Unknown => None,
            };
            tracing::info!(
                event = "delivered",
                sink = %self.settings.poster,
                status,
                alerts = matches,
                bytes = sent.bytes,
                latency = ?sent.latency,
                "delivered to Alertmanager"
            );
            return;
        }
        tracing::info!(
            event = "delivered",
            id = %message.id,
            windows,
            matches,
            part = message.parts_done,
            parts = sent.parts,
            bytes = sent.bytes,
            latency = ?sent.latency,
            sink = %self.settings.poster,
            "delivered to {}",
            self.settings.poster.name()
        );
    }

    fn on_config_error(&mut self, errcode: i64, errmsg: String, problem: ConfigProblem) {
        self.retry_at = Some(Instant::now() + CONFIG_RETRY);
        let hint = problem.hint(&self.settings.render.keyword);
        if let Poster::Alertmanager(_) = &self.settings.poster {
            // An HTTP status and Alertmanager's answer, not a DingTalk errcode.
            if self.logged.insert((errcode, problem.cause())) {
                tracing::error!(
                    status = errcode,
                    answer = errmsg,
                    hint,
                    retry_every = ?CONFIG_RETRY,
                    sink = %self.settings.poster,
                    "Alertmanager rejected the message: {}; alerts are kept until it is fixed",
                    problem.cause()
                );
            }
            return;
        }
        if self.logged.insert((errcode, problem.cause())) {
            tracing::error!(
                errcode,
                errmsg,
                hint,
                retry_every = ?CONFIG_RETRY,
                sink = %self.settings.poster,
                "{} rejected the message: {}; summaries are kept until it is fixed",
                self.settings.poster.name(),
                problem.cause()
            );
        } else {
            tracing::debug!(errcode, errmsg, sink = %self.settings.poster, "the message is still rejected");
        }
    }

    async fn drop_message(&mut self, message: Message<P>, errcode: i64, errmsg: &str) {
        if message.seqs.len() > 1 {
            tracing::warn!(
                errcode,
                errmsg,
                entries = message.seqs.len(),
                "DingTalk refuses a merged message: sending its entries one by one"
            );
            self.single_next = true;
            return;
        }
        tracing::error!(
            errcode,
            errmsg,
            payload = %message.payload.describe(),
            "DingTalk refuses this message for good: dropped, kept in outbox/dropped"
        );
        let seqs = message.seqs;
        let result = self
            .with_outbox(move |outbox| {
                outbox.set_aside_dropped(&seqs).or_else(|err| {
                    tracing::error!(error = %crate::logging::error_chain(&err), "failed to set a dropped entry aside");
                    outbox.remove(&seqs)
                })
            })
            .await;
        if let Err(err) = result {
            tracing::error!(error = %crate::logging::error_chain(&err), "failed to remove a dropped entry");
        }
    }

    async fn finish(&mut self, message: Message<P>) {
        let seqs = message.seqs;
        if let Err(err) = self.with_outbox(move |outbox| outbox.remove(&seqs)).await {
            tracing::error!(
                error = %crate::logging::error_chain(&err),
                "failed to remove delivered entries from the outbox: they may be sent again"
            );
        }
    }

    /// Keeps a message that may already be (partly) in the group: its remaining parts must
    /// follow, and a message possibly shown is retried as itself. Otherwise the next attempt
    /// forms a new message, merging in whatever arrived meanwhile.
    fn keep_if_started(&mut self, message: Message<P>) {
        let smaller = message.max_body_bytes < self.settings.render.max_body_bytes;
        if message.parts_done > 0 || message.unsure || smaller {
            self.current = Some(message);
        }
    }

    /// Schedules a retry after a transient failure; returns the delay.
    fn backoff(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exponent = self.failures.saturating_sub(1).min(16);
        let full = MIN_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
        // Jitter between half and all of the delay, so that many hosts do not retry together.
        let delay = full.mul_f64(0.5 + fastrand::f64() / 2.0).max(MIN_BACKOFF);
        self.retry_at = Some(Instant::now() + delay);
        delay
    }

    /// Persists the post times of the last minute (on the blocking pool).
    async fn save_send_times(&mut self) {
        let now = Instant::now();
        let wall_now = sign::now_ms();
        let sent_ms = self
            .budget
            .recent(now)
            .map(|t| wall_now.saturating_sub(millis(now.saturating_duration_since(t))))
            .collect();
        let send_times = self.send_times.clone();
        let saved = blocking(move || send_times.save(sent_ms)).await;
        if let Err(err) = saved {
            tracing::warn!(error = %crate::logging::error_chain(&err), "failed to persist post times");
        }
    }

    fn pending(&self) -> usize {
        self.lock_outbox().len()
    }

    /// The outbox, for in-memory reads and pins (no IO happens under this lock on the runtime).
    fn lock_outbox(&self) -> std::sync::MutexGuard<'_, Outbox<P>> {
        self.outbox
            .lock()
            .expect("the outbox lock is never poisoned")
    }

    /// Runs `f` on the outbox on the blocking pool (it writes and fsyncs).
    async fn with_outbox<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox<P>) -> R + Send + 'static,
    ) -> R {
        let outbox = Arc::clone(&self.outbox);
        blocking(move || f(&mut outbox.lock().expect("the outbox lock is never poisoned"))).await
    }
}

/// What one post cost and how it ended, for the log line and the answer handling.
#[derive(Debug)]
struct Sent {
    parts: usize,
    bytes: usize,
    latency: Duration,
    outcome: Outcome,
}

/// Runs blocking work (file writes, fsync) on the blocking pool; a panic there is re-raised.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Post times saved before a restart, as instants (those older than the window are dropped).
fn earlier_posts(sent_ms: &[u64]) -> Vec<Instant> {
    let wall_now = sign::now_ms();
    let now = Instant::now();
    sent_ms
        .iter()
        .filter_map(|&t| {
            let age = Duration::from_millis(wall_now.saturating_sub(t));
            (age < WINDOW).then(|| now.checked_sub(age)).flatten()
        })
        .collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
