//! The one metrics registry (Prometheus text format, `prometheus-client`) and the optional
//! listener that serves it with health endpoints: `/metrics`, `/healthz`, `/readyz`.
//!
//! An agent that died, fell behind or cannot reach DingTalk must not look like "no errors":
//! these are what an operator scrapes and alerts on. Every stage feeds [`get`] through small
//! hooks (the registry is process-wide, like the default registry of Prometheus's own
//! clients, so no constructor has to carry it). Labels are bounded by the configuration:
//! source and rule names, and a fixed set of result classes; never file names or group
//! values. The tailer's counters are read at scrape time ([`Metrics::follow_tail`]).
//!
//! The listener is a deliberately small HTTP/1.1 responder (GET only, one request per
//! connection, bounded request size and time): scrapers and probes need nothing more, and it
//! keeps an HTTP server framework out of the agent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::sink::Answer;
use crate::tail;

type Labels = Vec<(&'static str, String)>;

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
    last_reload: Gauge<f64, std::sync::atomic::AtomicU64>,
    lines_read: Family<Labels, Counter>,
    bytes_read: Family<Labels, Counter>,
    lines_excluded: Family<Labels, Counter>,
    rule_hits: Family<Labels, Counter>,
    windows_closed: Counter,
    summaries_queued: Counter,
    posts: Family<Labels, Counter>,
    post_seconds: Histogram,
    last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
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
    /// The class of DingTalk's `answer`; `is_unknown`: no answer came back in time.
    pub fn of(answer: &Answer, is_unknown: bool) -> PostResult {
        match answer {
            Answer::Ok => PostResult::Ok,
            Answer::Throttled { .. } => PostResult::Throttled,
            Answer::Config { .. } => PostResult::ConfigError,
            Answer::Retry { .. } if is_unknown => PostResult::Timeout,
            Answer::Retry { .. } => PostResult::Transient,
            Answer::InvalidTimestamp { .. }
            | Answer::TooLarge { .. }
            | Answer::Content { .. }
            | Answer::Unknown { .. } => PostResult::Rejected,
        }
    }

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

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logding");
        // A gauge at 1 (node_exporter's style): the OpenMetrics `info` type is not in the
        // classic text format that promtool and older scrapers parse.
        let build: Family<Labels, Gauge> = Family::default();
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
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
            windows_closed: Counter::default(),
            summaries_queued: Counter::default(),
            posts: Family::default(),
            post_seconds: Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0]),
            last_success: Gauge::default(),
            health: Health::default(),
        };
        register! { registry;
            "config_reloads", "Configuration loads by result (success, failure)" => metrics.reloads;
            "config_last_reload_success_timestamp_seconds", "When the configuration was last loaded" => metrics.last_reload;
            "source_lines_read", "Lines (multiline events count once) read, per source" => metrics.lines_read;
            "source_bytes_read", "Bytes read, per source" => metrics.bytes_read;
            "source_lines_excluded", "Lines a rule matched and one of its excludes removed, per source" => metrics.lines_excluded;
            "rule_hits", "Hits, per rule" => metrics.rule_hits;
            "windows_closed", "Windows closed with at least one rule to report" => metrics.windows_closed;
            "summaries_queued", "Summaries written to the outbox (printed by a dry run)" => metrics.summaries_queued;
            "posts", "Posts to DingTalk by result (ok, throttled, config_error, transient, timeout, rejected)" => metrics.posts;
            "post_duration_seconds", "Time from sending a post to its answer" => metrics.post_seconds;
            "last_successful_post_timestamp_seconds", "When DingTalk last accepted a post" => metrics.last_success;
        }
        registry.register_collector(Box::new(TailCollector));
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
        self.reloads
            .get_or_create(&vec![("result", "success".to_owned())])
            .inc();
        self.last_reload.set(unix_now());
        self.health.is_config_loaded.store(true, Ordering::Relaxed);
        *lock(&self.health.ready_max_failing) = ready_max_failing;
    }

    /// A reload was rejected; the old configuration keeps running.
    pub fn config_rejected(&self) {
        self.reloads
            .get_or_create(&vec![("result", "failure".to_owned())])
            .inc();
    }

    /// The tailer runs; its counters are reported from now on.
    pub fn follow_tail(&self, counters: Arc<tail::Counters>) {
        *lock(&TAIL_COUNTERS) = Some(counters);
        self.health.is_tail_running.store(true, Ordering::Relaxed);
    }

    /// A batch of `source` was scanned.
    pub fn batch_scanned(&self, source: &str, lines: u64, bytes: u64, excluded: u64) {
        let labels = vec![("source", source.to_owned())];
        self.lines_read.get_or_create(&labels).inc_by(lines);
        self.bytes_read.get_or_create(&labels).inc_by(bytes);
        if excluded > 0 {
            self.lines_excluded.get_or_create(&labels).inc_by(excluded);
        }
    }

    /// `rule` had `hits` more hits.
    pub fn rule_hits(&self, rule: &str, hits: u64) {
        self.rule_hits
            .get_or_create(&vec![("rule", rule.to_owned())])
            .inc_by(hits);
    }

    /// A window closed with something to report.
    pub fn window_closed(&self) {
        self.windows_closed.inc();
    }

    /// A summary was queued for delivery.
    pub fn summary_queued(&self) {
        self.summaries_queued.inc();
    }

    /// A post was answered (or timed out) after `latency`.
    pub fn post_answered(&self, result: PostResult, latency: Duration) {
        self.posts
            .get_or_create(&vec![("result", result.as_str().to_owned())])
            .inc();
        self.post_seconds.observe(latency.as_secs_f64());
        let mut failing_since = lock(&self.health.failing_since);
        if result == PostResult::Ok {
            self.last_success.set(unix_now());
            *failing_since = None;
        } else if failing_since.is_none() {
            *failing_since = Some(Instant::now());
        }
    }

    /// The registry in the Prometheus text format.
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

static TAIL_COUNTERS: Mutex<Option<Arc<tail::Counters>>> = Mutex::new(None);

/// Reports the tailer's counters at scrape time.
#[derive(Debug)]
struct TailCollector;

impl Collector for TailCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = lock(&TAIL_COUNTERS).as_ref().map(|c| c.snapshot()) else {
            return Ok(());
        };
        let gauge = ConstGauge::new(stats.open_files as i64);
        gauge.encode(encoder.encode_descriptor(
            "files_open",
            "Followed files open now",
            None,
            gauge.metric_type(),
        )?)?;
        let counters = [
            (
                "rotations",
                "Rotations and deletions detected",
                stats.rotations,
            ),
            ("truncations", "Truncations detected", stats.truncations),
            ("lines_cut", "Lines cut to max_line_bytes", stats.lines_cut),
            (
                "dropped_bytes",
                "Unread bytes given up (a file vanished unread)",
                stats.dropped_bytes,
            ),
            (
                "checkpoint_errors",
                "Checkpoint loads or writes that failed",
                stats.checkpoint_errors,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer(stream));
                }
                Err(err) => tracing::warn!(error = %err, "metrics listener: accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = shutdown.cancelled() => break,
        }
    }
    connections.abort_all();
}

/// Binds the metrics listener.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// Requests larger than this are refused: a scrape is one short line.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// A client that does not send its request within this is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

async fn answer(mut stream: TcpStream) {
    let mut buf = vec![0_u8; MAX_REQUEST_BYTES];
    let mut len = 0;
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while len < buf.len() {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(());
            }
        }
        None
    })
    .await;
    let (status, content_type, body) = match read {
        Ok(Some(())) => respond(&buf[..len]),
        _ => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // A client gone mid-answer is its own problem: nothing to report or retry.
    let mut response = head.into_bytes();
    response.extend_from_slice(body.as_bytes());
    if stream.write_all(&response).await.is_ok() {
        drop(stream.shutdown().await);
    }
}

/// Status, content type and body for a request.
fn respond(request: &[u8]) -> (&'static str, &'static str, String) {
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", "text/plain", "GET only\n".into());
    }
    let path = target.split('?').next().unwrap_or(target);
    let accepts_openmetrics = String::from_utf8_lossy(request)
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("accept:") && l.contains("openmetrics"));
    match path {
        "/metrics" if accepts_openmetrics => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            get().encode(),
        ),
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            classic_text(&get().encode()),
        ),
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        "/readyz" => match get().not_ready() {
            None => ("200 OK", "text/plain", "ready\n".into()),
            Some(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// OpenMetrics text as the classic Prometheus text format (what `promtool check metrics` and
/// scrapers that do not ask for OpenMetrics read): a counter's `# HELP`/`# TYPE` name its
/// samples' `_total` name, and there is no `# EOF`.
fn classic_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().filter(|l| *l != "# EOF").collect();
    let mut out = String::with_capacity(openmetrics.len());
    for (i, line) in lines.iter().enumerate() {
        let is_counter = |name: &str| {
            let type_line = format!("# TYPE {name} counter");
            lines[i..].iter().take(2).any(|l| *l == type_line)
        };
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            is_counter(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples_and_drops_eof() {
        let openmetrics = "# HELP logding_posts Posts.\n# TYPE logding_posts counter\nlogding_posts_total{result=\"ok\"} 1\n# HELP logding_files_open Open.\n# TYPE logding_files_open gauge\nlogding_files_open 2\n# EOF\n";
        assert_eq!(
            classic_text(openmetrics),
            "# HELP logding_posts_total Posts.\n# TYPE logding_posts_total counter\nlogding_posts_total{result=\"ok\"} 1\n# HELP logding_files_open Open.\n# TYPE logding_files_open gauge\nlogding_files_open 2\n"
        );
    }

    #[test]
    fn requests_other_than_a_get_of_a_known_path_are_refused() {
        let status = |request: &str| respond(request.as_bytes()).0;
        assert_eq!(status("GET /healthz HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(status("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(
            status("POST /metrics HTTP/1.1\r\n\r\n"),
            "405 Method Not Allowed"
        );
        assert_eq!(
            status("GET /../etc/passwd HTTP/1.1\r\n\r\n"),
            "404 Not Found"
        );
        let (_, content_type, body) =
            respond(b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n");
        assert!(content_type.starts_with("application/openmetrics-text"));
        assert!(body.ends_with("# EOF\n"));
    }

    #[test]
    fn post_results_are_classed_by_answer() {
        let retry = Answer::Retry {
            reason: "timeout".into(),
        };
        assert_eq!(PostResult::of(&retry, true), PostResult::Timeout);
        assert_eq!(PostResult::of(&retry, false), PostResult::Transient);
        assert_eq!(PostResult::of(&Answer::Ok, false), PostResult::Ok);
    }
}
