//! The delivery task: drains the outbox to DingTalk in order, within the rate budget, and
//! reacts to each classified answer.
//!
//! One owned task ([`Worker::run`]) with a command channel (enqueue, shutdown); commands are
//! served even while a post is in flight, so a hanging DingTalk never blocks the pipeline.
//!
//! Sending policy:
//! - The entries waiting are sent one message each while the rate budget has room for all of
//!   them; when more wait than the budget allows right now, the oldest are merged into one
//!   summary so that the backlog goes out in the slots there are (no burst, nothing lost).
//! - After DingTalk says the robot is throttled, nothing is posted for `throttle_pause`; then
//!   everything pending goes out as one merged message.
//! - A merged message is removed from the outbox only when DingTalk accepted it.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::config;
use crate::outbox::{Outbox, SendTimes};
use crate::render::{self, RenderOptions};
use crate::sink::budget::{RateBudget, WINDOW};
use crate::sink::dingtalk::{Answer, Client, ConfigProblem};
use crate::sink::{Error, sign};
use crate::summary::Summary;

/// First retry delay after a transient failure; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay after transient failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Retry delay while the robot's configuration is wrong (in case the operator fixes it).
const CONFIG_RETRY: Duration = Duration::from_secs(300);
/// Smallest byte budget tried when DingTalk says a body is too large.
const MIN_BODY_BYTES: usize = 2_000;

/// A request to the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Queue a summary; the reply comes once it is durable.
    Enqueue(Box<Summary>, oneshot::Sender<Result<(), Error>>),
    /// Stop accepting; deliver what is pending within the grace period.
    Shutdown(Duration),
}

/// The state of the delivery task.
#[derive(Debug)]
pub(crate) struct Worker {
    client: Client,
    render: RenderOptions,
    outbox: Outbox,
    send_times: SendTimes,
    budget: RateBudget,
    throttle_pause: Duration,
    /// No post before this (throttled robot).
    paused_until: Option<Instant>,
    /// No post before this (backoff after a failure).
    retry_at: Option<Instant>,
    /// Consecutive transient failures, for the backoff.
    failures: u32,
    /// Send everything pending as one message next (after a throttle).
    merge_all: bool,
    /// Send the oldest entry alone next (a merged message was refused for good: find which).
    single_next: bool,
    /// The message being delivered, when it spans several attempts.
    current: Option<Batch>,
    /// Configuration errors already logged at error level since the last success.
    logged: HashSet<(i64, &'static str)>,
    /// `None` while accepting; the grace deadline once shutting down.
    deadline: Option<Instant>,
    /// The handle was dropped without a shutdown: stop at once.
    abandoned: bool,
}

/// Outbox entries being delivered as one summary.
#[derive(Debug)]
struct Batch {
    seqs: Vec<u64>,
    summary: Summary,
    max_body_bytes: usize,
    parts_done: usize,
    resigned: bool,
}

impl Worker {
    pub(crate) fn new(
        dingtalk: &config::DingTalk,
        client: Client,
        render: RenderOptions,
        outbox: Outbox,
        send_times: SendTimes,
    ) -> Worker {
        let earlier = earlier_posts(&send_times.load());
        Worker {
            client,
            render,
            outbox,
            send_times,
            budget: RateBudget::new(dingtalk.max_per_minute, earlier),
            throttle_pause: dingtalk.throttle_pause,
            paused_until: None,
            retry_at: None,
            failures: 0,
            merge_all: false,
            single_next: false,
            current: None,
            logged: HashSet::new(),
            deadline: None,
            abandoned: false,
        }
    }

    /// Runs until shut down (or abandoned), delivering the outbox.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        if !self.outbox.is_empty() {
            tracing::info!(
                pending = self.outbox.len(),
                "delivering summaries left in the outbox"
            );
        }
        loop {
            if self.abandoned || (self.deadline.is_some() && self.outbox.is_empty()) {
                break;
            }
            if self.outbox.is_empty() {
                let command = commands.recv().await;
                self.handle(command);
                continue;
            }
            let ready_at = self.ready_at();
            if self.deadline.is_some_and(|deadline| ready_at >= deadline) {
                break;
            }
            tokio::select! {
                command = commands.recv(), if self.deadline.is_none() => self.handle(command),
                () = sleep_until(ready_at) => self.attempt(&mut commands).await,
            }
        }
        if !self.outbox.is_empty() && !self.abandoned {
            tracing::warn!(
                pending = self.outbox.len(),
                "not delivered before shutdown: kept in the outbox for the next start"
            );
        }
    }

    fn handle(&mut self, command: Option<Command>) {
        match command {
            Some(Command::Enqueue(summary, reply)) => {
                let queued = self.outbox.push(*summary).map(drop).map_err(Error::from);
                if let Err(err) = &queued {
                    tracing::error!(error = %crate::logging::error_chain(err), "failed to queue a summary");
                }
                // The caller may have given up waiting; the summary is queued all the same.
                drop(reply.send(queued));
            }
            Some(Command::Shutdown(grace)) => self.deadline = Some(Instant::now() + grace),
            None => self.abandoned = true,
        }
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
    async fn attempt(&mut self, commands: &mut mpsc::Receiver<Command>) {
        let now = Instant::now();
        self.paused_until = None;
        self.retry_at = None;
        let batch = match self.current.take() {
            Some(batch) => batch,
            None => self.next_batch(now),
        };
        let bodies = render::render(
            &batch.summary,
            &RenderOptions {
                max_body_bytes: batch.max_body_bytes,
                ..self.render.clone()
            },
        );
        let Some(body) = bodies.get(batch.parts_done).cloned() else {
            tracing::warn!("the summary rendered to no message: dropped");
            self.finish(batch);
            return;
        };
        let parts = bodies.len();
        self.outbox.pin(&batch.seqs);
        self.record_post(now);
        let client = self.client.clone();
        let post = client.post(body);
        tokio::pin!(post);
        let answer = loop {
            let deadline = self
                .deadline
                .unwrap_or(now + Duration::from_secs(365 * 86_400));
            tokio::select! {
                answer = &mut post => break Some(answer),
                command = commands.recv(), if self.deadline.is_none() => {
                    self.handle(command);
                    if self.abandoned {
                        break None;
                    }
                }
                () = sleep_until(deadline) => break None,
            }
        };
        // Without an answer (grace over, or abandoned mid-post) the entries stay in the outbox.
        if let Some(answer) = answer {
            self.on_answer(answer, batch, parts);
        }
        // A message kept for the next attempt stays pinned: merging its entries away in the
        // meantime would make its removal on success lose what was merged into them.
        self.outbox.unpin_all();
        if let Some(batch) = &self.current {
            self.outbox.pin(&batch.seqs);
        }
    }

    /// The next message: the oldest entry alone, or the oldest entries merged when more wait
    /// than the budget allows now (or after a throttle).
    fn next_batch(&mut self, now: Instant) -> Batch {
        let free = self.budget.free(now).max(1);
        let pending = self.outbox.len();
        let take = if self.single_next {
            1
        } else if self.merge_all || pending > free {
            if self.merge_all {
                pending
            } else {
                pending - free + 1
            }
        } else {
            1
        };
        self.merge_all = false;
        self.single_next = false;
        let mut entries = self.outbox.entries().take(take);
        let first = entries.next().expect("the outbox is not empty");
        let mut seqs = vec![first.seq];
        let mut summary = first.summary.clone();
        for entry in entries {
            seqs.push(entry.seq);
            summary.merge(entry.summary.clone());
        }
        if seqs.len() > 1 {
            tracing::info!(
                summaries = seqs.len(),
                windows = summary.windows,
                "merged queued summaries into one message"
            );
        }
        Batch {
            seqs,
            summary,
            max_body_bytes: self.render.max_body_bytes,
            parts_done: 0,
            resigned: false,
        }
    }

    fn on_answer(&mut self, answer: Answer, mut batch: Batch, parts: usize) {
        let now = Instant::now();
        match answer {
            Answer::Ok => {
                batch.parts_done += 1;
                if batch.parts_done < parts {
                    self.current = Some(batch);
                    return;
                }
                if self.failures > 0 || !self.logged.is_empty() {
                    tracing::info!("delivery to DingTalk recovered");
                }
                self.failures = 0;
                self.logged.clear();
                tracing::debug!(summaries = batch.seqs.len(), "delivered");
                self.finish(batch);
            }
            Answer::Retry { reason } => {
                let delay = self.backoff();
                tracing::warn!(reason, retry_in = ?delay, "post to DingTalk failed; will retry");
                self.keep_if_partial(batch);
            }
            Answer::Throttled { errcode, errmsg } => {
                tracing::warn!(
                    errcode,
                    errmsg,
                    pause = ?self.throttle_pause,
                    "DingTalk throttled the robot: pausing, pending summaries will be merged"
                );
                self.paused_until = Some(now + self.throttle_pause);
                self.merge_all = batch.parts_done == 0;
                self.keep_if_partial(batch);
            }
            Answer::InvalidTimestamp { errmsg } if !batch.resigned => {
                tracing::warn!(errmsg, "DingTalk rejected the timestamp: signing again");
                batch.resigned = true;
                self.current = Some(batch);
            }
            Answer::InvalidTimestamp { errmsg } => {
                self.on_config_error(310_000, errmsg, ConfigProblem::Clock);
                batch.resigned = false;
                self.current = Some(batch);
            }
            Answer::TooLarge { errcode, errmsg } if batch.max_body_bytes > MIN_BODY_BYTES => {
                batch.max_body_bytes = (batch.max_body_bytes / 2).max(MIN_BODY_BYTES);
                tracing::warn!(
                    errcode,
                    errmsg,
                    max_body_bytes = batch.max_body_bytes,
                    "DingTalk says the message is too long: rendering it smaller"
                );
                batch.parts_done = 0;
                self.current = Some(batch);
            }
            Answer::TooLarge { errcode, errmsg } | Answer::Content { errcode, errmsg } => {
                self.drop_batch(batch, errcode, &errmsg);
            }
            Answer::Config {
                errcode,
                errmsg,
                problem,
            } => {
                self.on_config_error(errcode, errmsg, problem);
                self.current = Some(batch);
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
                self.keep_if_partial(batch);
            }
        }
    }

    fn on_config_error(&mut self, errcode: i64, errmsg: String, problem: ConfigProblem) {
        self.retry_at = Some(Instant::now() + CONFIG_RETRY);
        let hint = problem.hint(&self.render.keyword);
        if self.logged.insert((errcode, problem.cause())) {
            tracing::error!(
                errcode,
                errmsg,
                hint,
                retry_every = ?CONFIG_RETRY,
                "DingTalk rejected the message: {}; summaries are kept until it is fixed",
                problem.cause()
            );
        } else {
            tracing::debug!(errcode, errmsg, "DingTalk still rejects the message");
        }
    }

    fn drop_batch(&mut self, batch: Batch, errcode: i64, errmsg: &str) {
        if batch.seqs.len() > 1 {
            tracing::warn!(
                errcode,
                errmsg,
                summaries = batch.seqs.len(),
                "DingTalk refuses a merged message: sending its summaries one by one"
            );
            self.single_next = true;
            return;
        }
        let rules: Vec<String> = batch
            .summary
            .rules
            .iter()
            .map(|rule| format!("{} x{}", rule.name, rule.count))
            .collect();
        tracing::error!(
            errcode,
            errmsg,
            windows = batch.summary.windows,
            rules = %rules.join(", "),
            "DingTalk refuses this message for good: dropped, kept in outbox/dropped"
        );
        if let Err(err) = self.outbox.set_aside_dropped(&batch.seqs) {
            tracing::error!(error = %crate::logging::error_chain(&err), "failed to set a dropped summary aside");
            if let Err(err) = self.outbox.remove(&batch.seqs) {
                tracing::error!(error = %crate::logging::error_chain(&err), "failed to remove a dropped summary");
            }
        }
    }

    fn finish(&mut self, batch: Batch) {
        if let Err(err) = self.outbox.remove(&batch.seqs) {
            tracing::error!(
                error = %crate::logging::error_chain(&err),
                "failed to remove delivered summaries from the outbox: they may be sent again"
            );
        }
    }

    /// Keeps a message that is partly delivered (its remaining parts must follow); otherwise
    /// lets the next attempt form a new message (possibly merging newer entries in).
    fn keep_if_partial(&mut self, batch: Batch) {
        if batch.parts_done > 0 || batch.max_body_bytes < self.render.max_body_bytes {
            self.current = Some(batch);
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

    fn record_post(&mut self, now: Instant) {
        self.budget.record(now);
        let wall_now = sign::now_ms();
        let sent_ms = self
            .budget
            .recent(now)
            .map(|t| wall_now.saturating_sub(millis(now - t)))
            .collect();
        if let Err(err) = self.send_times.save(sent_ms) {
            tracing::warn!(error = %crate::logging::error_chain(&err), "failed to persist post times");
        }
    }
}

/// Post times saved before a restart, as instants (those older than a minute are dropped).
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
