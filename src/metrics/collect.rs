//! Values read at scrape time rather than pushed: the tailer's counters and gauges (its
//! thread owns them; it publishes per-source figures every 250 ms), and each delivery task's
//! outbox and rate budget, whose "age" and "left" depend on the moment of the scrape.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::lock;
use crate::tail::{self, SourceStats};

/// The running tailer's counters (none before it starts: nothing is reported).
pub(super) static TAIL_COUNTERS: Mutex<Option<Arc<tail::Counters>>> = Mutex::new(None);

/// The running delivery tasks, by robot.
pub(super) static DELIVERIES: Mutex<BTreeMap<String, Arc<DeliveryGauges>>> =
    Mutex::new(BTreeMap::new());

/// What one delivery task (one robot) shows: set by the task whenever its outbox or budget
/// changes, read at scrape time.
#[derive(Debug, Default)]
pub struct DeliveryGauges {
    entries: AtomicU64,
    /// When the oldest queued entry was queued (wall clock); `None` when the outbox is empty.
    oldest: Mutex<Option<SystemTime>>,
    /// The budget (posts per minute) and when each slot held by a recent post frees up.
    budget: Mutex<(u64, Vec<Instant>)>,
}

impl DeliveryGauges {
    /// The outbox holds `entries`, the oldest queued at `oldest`.
    pub fn outbox(&self, entries: usize, oldest: Option<SystemTime>) {
        self.entries.store(entries as u64, Ordering::Relaxed);
        *lock(&self.oldest) = oldest;
    }

    /// `max` posts a minute, the slots of recent posts freeing at `frees_at`.
    pub fn budget(&self, max: u32, frees_at: impl IntoIterator<Item = Instant>) {
        let mut budget = lock(&self.budget);
        budget.0 = u64::from(max);
        budget.1.clear();
        budget.1.extend(frees_at);
    }

    fn budget_left(&self, now: Instant) -> u64 {
        let budget = lock(&self.budget);
        let held = budget.1.iter().filter(|at| **at > now).count() as u64;
        budget.0.saturating_sub(held)
    }

    fn oldest_age_seconds(&self) -> f64 {
        lock(&self.oldest).map_or(0.0, |at| {
            SystemTime::now()
                .duration_since(at)
                .map_or(0.0, |d| d.as_secs_f64())
        })
    }
}

/// Encodes one metric: `samples` of (`label` value, metric) under a descriptor.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, label): (&str, &str, &str),
    samples: impl IntoIterator<Item = (String, M)>,
    metric_type: MetricType,
) -> Result<(), std::fmt::Error> {
    let mut descriptor = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (value, metric) in samples {
        let labels = [(label, value.as_str())];
        metric.encode(descriptor.encode_family(&labels)?)?;
    }
    Ok(())
}

fn unlabelled<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &M,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Reports the tailer's counters at scrape time.
#[derive(Debug)]
pub(super) struct TailCollector;

impl Collector for TailCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(counters) = lock(&TAIL_COUNTERS).clone() else {
            return Ok(());
        };
        let stats = counters.snapshot();
        let open = ConstGauge::new(stats.open_files as i64);
        unlabelled(&mut encoder, "files_open", "Followed files open now", &open)?;
        for (name, help, value) in [
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
        ] {
            unlabelled(&mut encoder, name, help, &ConstCounter::new(value))?;
        }
        let sources = counters.sources();
        for (name, help, metric_type, value) in SOURCE_FIGURES {
            let mut descriptor = encoder.encode_descriptor(name, help, None, metric_type)?;
            for (source, stats) in &sources {
                let labels = [("source", source.as_str())];
                let encoder = descriptor.encode_family(&labels)?;
                match metric_type {
                    MetricType::Counter => ConstCounter::new(value(stats)).encode(encoder)?,
                    _ => ConstGauge::new(value(stats) as i64).encode(encoder)?,
                }
            }
        }
        Ok(())
    }
}

/// A per-source figure of the tailer: name, help, type, and where it is in the stats.
type SourceFigure = (
    &'static str,
    &'static str,
    MetricType,
    fn(&SourceStats) -> u64,
);

const SOURCE_FIGURES: [SourceFigure; 5] = [
    (
        "source_files",
        "Files followed now, per source",
        MetricType::Gauge,
        |s| s.files,
    ),
    (
        "source_lag_bytes",
        "Bytes not yet committed (file size minus committed offset), per source",
        MetricType::Gauge,
        |s| s.lag_bytes,
    ),
    (
        "source_rotations",
        "Rotations and deletions detected, per source",
        MetricType::Counter,
        |s| s.rotations,
    ),
    (
        "source_truncations",
        "Truncations detected, per source",
        MetricType::Counter,
        |s| s.truncations,
    ),
    (
        "source_read_errors",
        "Opens and reads that failed (a vanished file is not one), per source",
        MetricType::Counter,
        |s| s.read_errors,
    ),
];

/// Reports each delivery task's outbox and budget at scrape time.
#[derive(Debug)]
pub(super) struct DeliveryCollector;

impl Collector for DeliveryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let deliveries: Vec<(String, Arc<DeliveryGauges>)> = lock(&DELIVERIES)
            .iter()
            .map(|(robot, gauges)| (robot.clone(), gauges.clone()))
            .collect();
        let gauge = MetricType::Gauge;
        let now = Instant::now();
        let entries = deliveries.iter().map(|(robot, g)| {
            let value = g.entries.load(Ordering::Relaxed) as i64;
            (robot.clone(), ConstGauge::new(value))
        });
        let help = "Entries waiting in the outbox, per robot";
        family(
            &mut encoder,
            ("outbox_entries", help, "robot"),
            entries,
            gauge,
        )?;
        let ages = deliveries
            .iter()
            .map(|(robot, g)| (robot.clone(), ConstGauge::new(g.oldest_age_seconds())));
        let help = "Age of the oldest entry waiting in the outbox (0 when empty), per robot";
        let name = "outbox_oldest_entry_age_seconds";
        family(&mut encoder, (name, help, "robot"), ages, gauge)?;
        let left = deliveries
            .iter()
            .map(|(robot, g)| (robot.clone(), ConstGauge::new(g.budget_left(now) as i64)));
        let help = "Posts the rate budget allows now (max_per_minute minus posts of the last 61 s), per robot";
        family(
            &mut encoder,
            ("rate_budget_left", help, "robot"),
            left,
            gauge,
        )
    }
}
