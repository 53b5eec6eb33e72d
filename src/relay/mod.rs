//! `logding relay`: receives Alertmanager's webhook and posts each alert group to a DingTalk
//! robot, losing nothing and never flooding the group.
//!
//! With one agent per host posting to Alertmanager's HA cluster, Alertmanager de-duplicates,
//! groups across hosts and silences; the relay is the single DingTalk client of the fleet, so
//! the robot's 20 posts a minute are budgeted where DingTalk enforces them: per robot.
//!
//! - `webhook` (`crate::notification`): the payload (version 4) and the outbox
//!   [`webhook::Notifications`] of one robot.
//! - `server`: the HTTP side (auth, size limit, validation). A notification is in the robot's
//!   outbox (fsynced) before the answer is 200; the answer is 5xx only when it cannot be
//!   persisted, so Alertmanager retries exactly what the relay does not hold.
//! - `dedupe`: the copy both Alertmanager instances send after an outage is posted once.
//! - `Routes`: the robots' delivery tasks (the agent's [`crate::sink::Delivery`], generic
//!   over the payload: same budget, merging, throttle pause, retry classes), reload and drain.

mod dedupe;
mod server;
/// The payload, under the name the relay has always used for it.
pub use crate::notification as webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{RwLock, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::{RelayConfig, Robot, Secret};
use crate::outbox::SendTimes;
use crate::render::RenderOptions;
use crate::sink::{Delivery, DeliveryHandle};

use self::webhook::{Notification, Notifications};

/// How `relay` runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Print each notification as text on stdout instead of posting it.
    pub dry_run: bool,
    /// How long delivery may go on after a shutdown signal.
    pub grace: Duration,
}

/// What stops and reloads a running relay.
#[derive(Debug)]
pub struct Controls {
    /// Cancelled on SIGTERM/SIGINT: stop accepting, drain, return.
    pub shutdown: CancellationToken,
    /// One message per reload request (SIGHUP): the config is read again.
    pub reload: mpsc::Receiver<()>,
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A robot's delivery could not be set up.
    #[error("failed to set up robot `{robot}`")]
    Robot {
        /// The robot's name.
        robot: String,
        /// The cause.
        #[source]
        source: crate::sink::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    Serve {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Where a robot's notifications go.
#[derive(Debug)]
enum Target {
    /// Its delivery task (durable outbox, then DingTalk).
    Deliver(DeliveryHandle<Notifications>),
    /// Stdout (`--dry-run`).
    Print(RenderOptions),
}

/// What the HTTP handlers read: swapped as a whole on reload.
#[derive(Debug)]
struct Routes {
    token: Option<Secret>,
    robots: BTreeMap<String, Target>,
    /// Never held across an await.
    dedupe: std::sync::Mutex<dedupe::Dedupe>,
}

/// Runs the relay on `listener` until `controls.shutdown`, then drains within `grace`.
///
/// # Errors
///
/// A robot's outbox cannot be opened, or the server fails.
pub async fn run(
    config: RelayConfig,
    listener: TcpListener,
    options: RelayOptions,
    mut controls: Controls,
) -> Result<(), Error> {
    let routes = Arc::new(RwLock::new(Routes {
        token: config.bearer_token.clone(),
        robots: targets(&config, &options)?,
        dedupe: std::sync::Mutex::new(dedupe::Dedupe::new(config.dedupe_window)),
    }));
    crate::metrics::get().config_reloaded(true);
    let stop_serving = controls.shutdown.clone();
    let server = tokio::spawn(server::serve(
        listener,
        Arc::clone(&routes),
        config.max_request_bytes,
        stop_serving,
    ));
    tracing::info!(
        robots = config.robots.len(),
        state_dir = %config.state_dir.display(),
        "relay started"
    );
    let mut config = config;
    loop {
        tokio::select! {
            () = controls.shutdown.cancelled() => break,
            Some(()) = controls.reload.recv() => config = reload(config, &routes, &options).await,
        }
    }
    let served = server.await;
    let robots = std::mem::take(&mut routes.write().await.robots);
    drain(robots, options.grace).await;
    tracing::info!("relay stopped");
    match served {
        Ok(result) => result.map_err(|source| Error::Serve { source }),
        Err(err) => Err(Error::Serve {
            source: std::io::Error::other(err.to_string()),
        }),
    }
}

/// The render options of a robot (alerts carry their own times; the zone is the host's).
pub fn render_options(robot: &Robot) -> RenderOptions {
    RenderOptions {
        keyword: robot.dingtalk.keyword.clone(),
        msgtype: robot.dingtalk.msgtype,
        mention: robot.dingtalk.mention.clone(),
        max_body_bytes: robot.dingtalk.max_body_bytes,
        timezone: jiff::tz::TimeZone::system(),
        window: Duration::ZERO,
    }
}

fn targets(
    config: &RelayConfig,
    options: &RelayOptions,
) -> Result<BTreeMap<String, Target>, Error> {
    let mut targets = BTreeMap::new();
    for robot in &config.robots {
        targets.insert(robot.name.clone(), target(config, robot, options)?);
    }
    Ok(targets)
}

/// A robot's target: its delivery task, with its own outbox and post times under
/// `state_dir/robots/<name>/`, or stdout.
fn target(config: &RelayConfig, robot: &Robot, options: &RelayOptions) -> Result<Target, Error> {
    let render = render_options(robot);
    if options.dry_run {
        return Ok(Target::Print(render));
    }
    let dir = config.state_dir.join("robots").join(&robot.name);
    let delivery = Delivery::open_at(
        &robot.dingtalk,
        render,
        &dir.join("outbox"),
        SendTimes::new(&dir),
        &config.outbox,
    )
    .map_err(|source| Error::Robot {
        robot: robot.name.clone(),
        source,
    })?;
    Ok(Target::Deliver(delivery.named(&robot.name).spawn()))
}

/// Reads the config again; when valid, applies it: the token, new robots started, removed
/// ones stopped (their outboxes stay on disk), the others reconfigured in place without
/// losing what they hold. The listen address and the state directory need a restart.
async fn reload(
    current: RelayConfig,
    routes: &RwLock<Routes>,
    options: &RelayOptions,
) -> RelayConfig {
    let next = match crate::config::load_relay(&current.path) {
        Ok(next) => next,
        Err(err) => {
            crate::metrics::get().config_reloaded(false);
            tracing::error!(error = %err, "reload rejected: the config is invalid; keeping the running one");
            return current;
        }
    };
    if next.listen != current.listen || next.state_dir != current.state_dir {
        tracing::warn!("`listen` and `state_dir` changes take effect at the next start");
    }
    let config = RelayConfig {
        listen: current.listen,
        state_dir: current.state_dir.clone(),
        ..next
    };
    let mut guard = routes.write().await;
    let mut old = std::mem::take(&mut guard.robots);
    for robot in &config.robots {
        let kept = match old.remove(&robot.name) {
            Some(Target::Deliver(handle)) => {
                match handle
                    .reconfigure(&robot.dingtalk, render_options(robot))
                    .await
                {
                    Ok(()) => Some(Target::Deliver(handle)),
                    Err(err) => {
                        tracing::error!(robot = %robot.name, error = %crate::logging::error_chain(&err), "robot not reconfigured: keeping its running settings");
                        Some(Target::Deliver(handle))
                    }
                }
            }
            Some(Target::Print(_)) | None => None,
        };
        let target = match kept {
            Some(target) => target,
            None => match target(&config, robot, options) {
                Ok(target) => target,
                Err(err) => {
                    tracing::error!(robot = %robot.name, error = %crate::logging::error_chain(&err), "robot not started");
                    continue;
                }
            },
        };
        guard.robots.insert(robot.name.clone(), target);
    }
    drain(old, Duration::ZERO).await;
    guard.token = config.bearer_token.clone();
    crate::metrics::get().config_reloaded(true);
    tracing::info!(robots = guard.robots.len(), "config reloaded");
    config
}

/// Stops the robots' delivery tasks together, each delivering what it can within `grace`
/// (what is left stays in its outbox).
async fn drain(robots: BTreeMap<String, Target>, grace: Duration) {
    let mut tasks = tokio::task::JoinSet::new();
    for target in robots.into_values() {
        if let Target::Deliver(handle) = target {
            tasks.spawn(handle.shutdown(grace));
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// A robot's queued notifications are an outbox payload, rendered by `render::render_alerts`.
impl crate::outbox::Payload for Notifications {
    fn merge(&mut self, newer: Notifications) {
        Notifications::merge(self, newer);
    }

    fn render(&self, options: &crate::render::RenderOptions) -> Vec<String> {
        crate::render::render_alerts(self, options)
    }

    fn describe(&self) -> String {
        Notifications::describe(self)
    }

    fn tally(&self) -> (u64, u64) {
        let notifications = (self.notifications.len() as u64).saturating_add(self.superseded);
        let alerts = self
            .notifications
            .iter()
            .map(Notification::total_alerts)
            .sum();
        (notifications, alerts)
    }
}
