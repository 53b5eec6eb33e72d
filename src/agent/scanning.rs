//! Where the process task's batches are scanned, and what comes back: on the blocking pool, up
//! to [`in_flight_max`] at once while earlier results are applied (a backlog keeps every core
//! busy), or on the process task itself when nothing else is scanned or waits (a followed log's
//! batch, see [`is_small`]: no pool thread to wake, and no wake-up of the task for the result).
//! The results are applied in arrival order either way (`process.rs`). What a scan does
//! ([`scan_with`]: read a backlog range, scan, shape the hits) and what it hands back
//! ([`Scanned`]) live here too, so `process.rs` imports this file and not the other way round.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::scan::{Hit, Matcher, ScanStats};
use crate::tail::{Batch, FileId};
use crate::window::{Shapes, Shaping};

/// A batch being scanned on the blocking pool.
pub(super) struct InFlight {
    pub(super) scan: Scan,
    pub(super) task: tokio::task::JoinHandle<Scanned>,
}

/// Which batch a scan is of, and with what.
pub(super) struct Scan {
    pub(super) file: FileId,
    pub(super) start: u64,
    /// The matchers it is scanned with: a reload since then means scanning it again.
    pub(super) matchers: Arc<Vec<Matcher>>,
}

/// A scan's result, or what its panic said.
pub(super) type Outcome = Result<Scanned, String>;

/// Waits for the oldest scan in flight (never, when there is none) and takes it off the queue.
pub(super) async fn oldest(in_flight: &mut VecDeque<InFlight>) -> (Scan, Outcome) {
    let Some(flight) = in_flight.front_mut() else {
        return std::future::pending().await;
    };
    let scanned = (&mut flight.task).await.map_err(|err| err.to_string());
    let flight = in_flight.pop_front().expect("the front is there");
    (flight.scan, scanned)
}

/// Whether `batch` is scanned on the process task when nothing else is: read already (a
/// backlog range is read by a pool thread) and one part for the scan (larger ones are split
/// across the cores).
pub(super) fn is_small(batch: &Batch) -> bool {
    batch.unread.is_none() && batch.data.len() < crate::scan::SPLIT_FROM_BYTES
}

/// What a caught panic said (as a scan on the blocking pool reports it).
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    format!("panicked with message {:?}", text.unwrap_or("Box<dyn Any>"))
}

/// How many batches are scanned at once or wait for their turn to be applied: four per core.
/// While the oldest result is applied, the next scans are already queued on the blocking pool,
/// so the cores do not wait for this task to hand them the next batch (with one per core they
/// did, between every two batches of a backlog); a backlog's batches (`tail.read_budget_bytes`,
/// 256 KiB) then hold about 1 MiB per core.
pub(super) fn in_flight_max() -> usize {
    scan_threads() * IN_FLIGHT_PER_CORE
}

/// See [`in_flight_max`].
const IN_FLIGHT_PER_CORE: usize = 4;

/// The cores a large batch is split across (asked once: it reads cgroup files).
pub(super) fn scan_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Scans one batch (on the blocking pool): its hits and figures.
pub(super) type ScanFn = fn(&Matcher, &Batch) -> (Vec<Hit>, ScanStats);

/// What the blocking pool hands back for one batch.
pub(super) struct Scanned {
    pub(super) batch: Batch,
    pub(super) hits: Vec<Hit>,
    pub(super) stats: ScanStats,
    /// The hits' shapes, found on the scanning thread (the aggregator's per-hit work that
    /// needs none of its state: masking the line into its pattern, reading its level).
    pub(super) shapes: Shapes,
}

/// Scans `batch` with its source's matcher (none: a source a reload removed, nothing to scan)
/// and shapes its hits with `shaping`.
pub(super) fn scan_with(
    matchers: &[Matcher],
    scan: ScanFn,
    mut batch: Batch,
    shaping: &Shaping,
) -> Scanned {
    // A backlog range is read here, by the thread that scans it.
    batch.read_unread();
    let (hits, stats) = match matchers.get(batch.source) {
        Some(matcher) => scan(matcher, &batch),
        None => (Vec::new(), ScanStats::default()),
    };
    let shapes = shaping.shape(&batch.data, &hits);
    Scanned {
        batch,
        hits,
        stats,
        shapes,
    }
}

/// Scans `batch` with `matcher`: on the calling thread, or split across the cores when large.
pub(super) fn scan_batch(matcher: &Matcher, batch: &Batch) -> (Vec<Hit>, ScanStats) {
    let mut hits = Vec::new();
    // A batch of at least `scan::SPLIT_FROM_BYTES` (768 KiB) is split across the
    // cores (a backlog read with a larger budget); smaller ones, a busy file's gathered batches
    // included, stay on this thread.
    let stats = match &batch.events {
        None => matcher.scan_parallel(&batch.data, scan_threads(), &mut hits),
        Some(events) => matcher.scan_events(&batch.data, events, &mut hits),
    };
    (hits, stats)
}
