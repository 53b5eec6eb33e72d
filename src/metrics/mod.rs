//! The one metrics registry (Prometheus text format, `prometheus-client`) and the optional
//! listener that serves it with health endpoints: `/metrics`, `/healthz`, `/readyz`.
//!
//! An agent that died, fell behind or cannot reach DingTalk must not look like "no errors":
//! these are what an operator scrapes and alerts on. Every stage feeds [`get`] through small
//! hooks (the registry is process-wide, like the default registry of Prometheus's own
//! clients, so no constructor has to carry it). Labels are bounded by the configuration:
//! source, rule and robot names, and fixed sets of result classes; never file names, group
//! values or names taken from a request.
//!
//! - this module: the registry, the hooks, and what `/readyz` answers from;
//! - `collect`: what is read at scrape time (the tailer's counters, each delivery task's
//!   outbox and rate budget);
//! - `serve`: the agent's listener, and the exposition the relay serves on its own.

mod collect;
mod serve;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use collect::DeliveryGauges;
pub use serve::{bind, exposition, serve};

use crate::tail;

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Registers each `name, help => metric` (a clone: metrics share their values).
macro_rules! register {
    ($registry:ident; $($name:literal, $help:literal => $metric:expr;)*) => {
        $($registry.register($name, $help, $metric.clone());)*
    };
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reloads: Family<Labels, Counter>,
    last_reload: Gauge<f64, AtomicU64>,
    lines_read: Family<Labels, Counter>,
    bytes_read: Family<Labels, Counter>,
    lines_excluded: Family<Labels, Counter>,
    rule_hits: Family<Labels, Counter>,
    rule_excluded: Family<Labels, Counter>,
    windows_closed: Counter,
    summaries_queued: Counter,
    posts: Family<Labels, Counter>,
    post_seconds: Histograms,
    last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    relay_requests: Family<Labels, Counter>,
    relay_alerts: Family<Labels, Counter>,
    health: Health,
}

/// What `/readyz` answers from.
#[derive(Debug, Default)]
struct Health {
    is_config_loaded: AtomicBool,
    is_tail_running: AtomicBool,
    failing_since: Mutex<Option<Instant>>,
    ready_max_failing: Mutex<Duration>,
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// How a post ended, as the `result` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostResult {
    /// Delivered.
    Ok,
    /// The robot is throttled.
    Throttled,
    /// The robot or webhook is misconfigured.
    ConfigError,
    /// Network, 5xx, busy: retried.
    Transient,
    /// No answer in time: the robot may have shown it.
    Timeout,
    /// DingTalk refused this message (too large, content, unknown code).
    Rejected,
}

impl PostResult {
    fn as_str(self) -> &'static str {
        match self {
            PostResult::Ok => "ok",
            PostResult::Throttled => "throttled",
            PostResult::ConfigError => "config_error",
            PostResult::Transient => "transient",
            PostResult::Timeout => "timeout",
            PostResult::Rejected => "rejected",
        }
    }
}

/// How the relay answered a request, as the `result` label says it (from the status code:
/// a fixed set, whatever the request).
fn relay_result(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        400 => "invalid",
        401 => "unauthorized",
        404 => "unknown_robot",
        413 => "too_large",
        503 => "unavailable",
        _ => "other",
    }
}

fn post_histogram() -> Histogram {
    Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0])
}

fn labels(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_owned())]
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logding");
        // A gauge at 1 (node_exporter's style): the OpenMetrics `info` type is not in the
        // classic text format that promtool and older scrapers parse.
        let build: Family<Labels, Gauge> = Family::default();
        build
            .get_or_create(&labels("version", env!("CARGO_PKG_VERSION")))
            .set(1);
        registry.register("build_info", "logding's version (always 1)", build);
        let metrics = Metrics {
            registry: Registry::default(),
            reloads: Family::default(),
            last_reload: Gauge::default(),
            lines_read: Family::default(),
            bytes_read: Family::default(),
            lines_excluded: Family::default(),
            rule_hits: Family::default(),
            rule_excluded: Family::default(),
            windows_closed: Counter::default(),
            summaries_queued: Counter::default(),
            posts: Family::default(),
            post_seconds: Family::new_with_constructor(post_histogram),
            last_success: Family::default(),
            relay_requests: Family::default(),
            relay_alerts: Family::default(),
            health: Health::default(),
        };
        register! { registry;
            "config_reloads", "Configuration loads by result (success, failure)" => metrics.reloads;
            "config_last_reload_success_timestamp_seconds", "When the configuration was last loaded" => metrics.last_reload;
            "source_lines_read", "Lines (multiline events count once) read, per source" => metrics.lines_read;
            "source_bytes_read", "Bytes read, per source" => metrics.bytes_read;
            "source_lines_excluded", "Lines a rule matched and one of its excludes removed, per source" => metrics.lines_excluded;
            "rule_hits", "Hits, per rule" => metrics.rule_hits;
            "rule_excluded", "Lines the rule matched and one of its excludes removed, per rule" => metrics.rule_excluded;
            "windows_closed", "Windows closed with at least one rule to report" => metrics.windows_closed;
            "summaries_queued", "Summaries written to the outbox (printed by a dry run)" => metrics.summaries_queued;
            "posts", "Posts to DingTalk by robot and result (ok, throttled, config_error, transient, timeout, rejected)" => metrics.posts;
            "post_duration_seconds", "Time from sending a post to its answer, per robot" => metrics.post_seconds;
            "last_successful_post_timestamp_seconds", "When DingTalk last accepted a post, per robot" => metrics.last_success;
            "relay_requests", "Webhook calls the relay answered, by result (ok, invalid, unauthorized, unknown_robot, too_large, unavailable, other)" => metrics.relay_requests;
            "relay_alerts_received", "Alerts in the notifications the relay accepted, per robot" => metrics.relay_alerts;
        }
        registry.register_collector(Box::new(collect::TailCollector));
        registry.register_collector(Box::new(collect::DeliveryCollector));
        Metrics {
            registry,
            ..metrics
        }
    }

    /// `config` was loaded (at start, or by a reload that succeeded).
    pub fn config_loaded(&self, config: &crate::config::Config) {
        let ready_max_failing = config
            .metrics
            .map_or(Duration::MAX, |m| m.ready_max_failing);
        *lock(&self.health.ready_max_failing) = ready_max_failing;
        self.config_reloaded(true);
    }

    /// A reload was rejected; the old configuration keeps running.
    pub fn config_rejected(&self) {
        self.config_reloaded(false);
    }

    /// A configuration (the agent's or the relay's) was loaded, or a reload was rejected.
    pub fn config_reloaded(&self, is_loaded: bool) {
        let result = if is_loaded { "success" } else { "failure" };
        self.reloads.get_or_create(&labels("result", result)).inc();
        if is_loaded {
            self.last_reload.set(unix_now());
            self.health.is_config_loaded.store(true, Ordering::Relaxed);
        }
    }

    /// The tailer runs; its counters are reported from now on.
    pub fn follow_tail(&self, counters: Arc<tail::Counters>) {
        *lock(&collect::TAIL_COUNTERS) = Some(counters);
        self.health.is_tail_running.store(true, Ordering::Relaxed);
    }

    /// A batch of `source` was scanned.
    pub fn batch_scanned(&self, source: &str, lines: u64, bytes: u64, excluded: u64) {
        let labels = labels("source", source);
        self.lines_read.get_or_create(&labels).inc_by(lines);
        self.bytes_read.get_or_create(&labels).inc_by(bytes);
        if excluded > 0 {
            self.lines_excluded.get_or_create(&labels).inc_by(excluded);
        }
    }

    /// `rule` had `hits` more hits.
    pub fn rule_hits(&self, rule: &str, hits: u64) {
        self.rule_hits
            .get_or_create(&labels("rule", rule))
            .inc_by(hits);
    }

    /// `rule`'s excludes removed `lines` more lines.
    pub fn rule_excluded(&self, rule: &str, lines: u64) {
        self.rule_excluded
            .get_or_create(&labels("rule", rule))
            .inc_by(lines);
    }

    /// A window closed with something to report.
    pub fn window_closed(&self) {
        self.windows_closed.inc();
    }

    /// A summary was queued for delivery.
    pub fn summary_queued(&self) {
        self.summaries_queued.inc();
    }

    /// The delivery task of `robot` runs: its `gauges` are reported until it stops.
    pub fn delivery_started(&self, robot: &str, gauges: Arc<DeliveryGauges>) {
        lock(&collect::DELIVERIES).insert(robot.to_owned(), gauges);
    }

    /// The delivery task of `robot` that reported `gauges` stopped.
    pub fn delivery_stopped(&self, robot: &str, gauges: &Arc<DeliveryGauges>) {
        let mut deliveries = lock(&collect::DELIVERIES);
        if deliveries
            .get(robot)
            .is_some_and(|g| Arc::ptr_eq(g, gauges))
        {
            deliveries.remove(robot);
        }
    }

    /// A post of `robot` was answered (or timed out) after `latency`.
    pub fn post_answered(&self, robot: &str, result: PostResult, latency: Duration) {
        let mut labels = labels("robot", robot);
        self.post_seconds
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        if result == PostResult::Ok {
            self.last_success.get_or_create(&labels).set(unix_now());
        }
        labels.push(("result", result.as_str().to_owned()));
        self.posts.get_or_create(&labels).inc();
        let mut failing_since = lock(&self.health.failing_since);
        if result == PostResult::Ok {
            *failing_since = None;
        } else if failing_since.is_none() {
            *failing_since = Some(Instant::now());
        }
    }

    /// The relay answered a webhook call with `status`.
    pub fn relay_request(&self, status: u16) {
        let result = relay_result(status);
        self.relay_requests
            .get_or_create(&labels("result", result))
            .inc();
    }

    /// The relay accepted a notification of `alerts` alerts for `robot` (a configured one).
    pub fn relay_alerts(&self, robot: &str, alerts: u64) {
        self.relay_alerts
            .get_or_create(&labels("robot", robot))
            .inc_by(alerts);
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Why the agent is not ready, or `None` when it is.
    pub fn not_ready(&self) -> Option<String> {
        if !self.health.is_config_loaded.load(Ordering::Relaxed) {
            return Some("configuration not loaded".into());
        }
        if !self.health.is_tail_running.load(Ordering::Relaxed) {
            return Some("not following files".into());
        }
        let limit = *lock(&self.health.ready_max_failing);
        match *lock(&self.health.failing_since) {
            Some(since) if since.elapsed() > limit => Some(format!(
                "posts to DingTalk failing for {}s",
                since.elapsed().as_secs()
            )),
            _ => None,
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
