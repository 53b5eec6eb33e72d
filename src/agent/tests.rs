//! The process task's commit rule under failures: a summary the outbox refuses, a scan that
//! panics. Paused time; the tailer and the outbox are replaced by recorders.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{Follow, Process, Store};
use super::scanning::scan_batch;
use crate::config::{Config, Source, TailOptions};
use crate::scan::{Hit, Matcher, ScanStats};
use crate::summary::Summary;
use crate::tail::{Batch, FileId};

/// What the fakes saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Seen {
    Commit(u64),
    Stored(u64),
    Refused,
}

#[derive(Clone, Default)]
pub(super) struct Record(Arc<Mutex<Vec<Seen>>>);

impl Record {
    fn push(&self, seen: Seen) {
        self.0.lock().expect("not poisoned").push(seen);
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// The offsets committed, in order.
    pub(super) fn commits(&self) -> Vec<u64> {
        let all = self.all();
        let commits = all.into_iter().filter_map(|seen| match seen {
            Seen::Commit(offset) => Some(offset),
            _ => None,
        });
        commits.collect()
    }
}

impl Follow for Record {
    fn commit(&self, _file: &FileId, offset: u64) {
        self.push(Seen::Commit(offset));
    }

    fn reload(&self, _sources: Vec<Source>, _options: TailOptions) {}
}

/// An outbox on a disk that is full until `has_space` is set.
struct Outbox {
    record: Record,
    has_space: Arc<Mutex<bool>>,
}

impl Store for Outbox {
    async fn store(&mut self, summary: &Summary) -> anyhow::Result<()> {
        if *self.has_space.lock().expect("not poisoned") {
            self.record.push(Seen::Stored(summary.matches()));
            Ok(())
        } else {
            self.record.push(Seen::Refused);
            anyhow::bail!("No space left on device (os error 28)")
        }
    }
}

fn config() -> Config {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("logding.yaml");
    std::fs::write(
        &path,
        "window: 1m
sources: [{name: app, paths: [/var/log/app/*.log]}]
rules: [{name: oom, pattern: OutOfMemoryError}]
",
    )
    .expect("write config");
    crate::config::load_with(&path, false, &|_| None).expect("valid config")
}

pub(super) fn batch(start: u64, text: &str) -> Batch {
    Batch::of(start, text)
}

fn process(record: &Record, has_space: &Arc<Mutex<bool>>) -> Process<Outbox, Record> {
    let mut config = config();
    // Every window with hits is a message (an ongoing incident is reported in full again at
    // once): these tests are about the outbox refusing messages, not about incidents.
    config.incidents.defaults.repeat_interval = Duration::from_secs(1);
    let matchers = super::process::matchers_for(&config);
    let outbox = Outbox {
        record: record.clone(),
        has_space: Arc::clone(has_space),
    };
    Process::new(config, matchers, record.clone(), outbox)
}

const HIT: &str = "ERROR java.lang.OutOfMemoryError\n";

#[tokio::test(start_paused = true)]
async fn a_summary_the_outbox_refuses_is_held_and_no_offset_passes_its_lines() {
    let record = Record::default();
    let has_space = Arc::new(Mutex::new(false));
    let mut process = process(&record, &has_space);
    let (batches, batch_rx) = mpsc::channel(4);
    let (_reload, reload_rx) = mpsc::channel(1);
    let first = batch(0, HIT);
    let second = batch(first.end, HIT);
    let (first_end, second_end) = (first.end, second.end);
    let drive = async {
        batches.send(first).await.expect("send");
        // The window closes at 1m; the outbox refuses it; lines keep coming meanwhile.
        tokio::time::sleep(Duration::from_secs(61)).await;
        batches.send(second).await.expect("send");
        tokio::time::sleep(Duration::from_secs(120)).await;
        let seen = record.all();
        assert!(seen.len() >= 4, "retried with backoff: {seen:?}");
        assert!(
            seen.iter().all(|s| *s == Seen::Refused),
            "nothing committed, nothing read while the summary is held: {seen:?}"
        );
        *has_space.lock().expect("not poisoned") = true;
        tokio::time::sleep(Duration::from_secs(31)).await;
        drop(batches);
    };
    tokio::join!(
        process.run(batch_rx, reload_rx, CancellationToken::new()),
        drive
    );
    let seen: Vec<Seen> = record
        .all()
        .into_iter()
        .filter(|s| *s != Seen::Refused)
        .collect();
    assert_eq!(
        seen,
        [
            Seen::Stored(1),
            Seen::Commit(first_end),
            Seen::Stored(1),
            Seen::Commit(second_end)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_summary_still_refused_at_shutdown_commits_nothing() {
    let record = Record::default();
    let has_space = Arc::new(Mutex::new(false));
    let mut process = process(&record, &has_space);
    let (batches, batch_rx) = mpsc::channel(4);
    let (_reload, reload_rx) = mpsc::channel(1);
    let shutdown = CancellationToken::new();
    let drive = async {
        batches.send(batch(0, HIT)).await.expect("send");
        tokio::time::sleep(Duration::from_secs(65)).await;
        shutdown.cancel();
    };
    tokio::join!(process.run(batch_rx, reload_rx, shutdown.clone()), drive);
    assert!(
        record.all().iter().all(|s| *s == Seen::Refused),
        "{:?}",
        record.all()
    );
}

/// Runs `process` over `batches`, then lets the channel close (the tailer stopped).
async fn run_all(process: &mut Process<Outbox, Record>, batches: Vec<Batch>) {
    let (sender, batch_rx) = mpsc::channel(batches.len().max(1));
    let (_reload, reload_rx) = mpsc::channel(1);
    for batch in batches {
        sender.send(batch).await.expect("send");
    }
    drop(sender);
    process
        .run(batch_rx, reload_rx, CancellationToken::new())
        .await;
}

/// Scans like the agent, but panics on a batch holding `PANIC`.
fn panicking(matcher: &Matcher, batch: &Batch) -> (Vec<Hit>, ScanStats) {
    assert!(
        !batch.data.windows(5).any(|w| w == b"PANIC"),
        "injected scan panic"
    );
    scan_batch(matcher, batch)
}

#[tokio::test(start_paused = true)]
async fn a_scan_that_panics_keeps_its_batch_and_later_ones_uncommitted() {
    let record = Record::default();
    let has_space = Arc::new(Mutex::new(true));
    let mut process = process(&record, &has_space).with_scan(panicking);
    let first = batch(0, "INFO ok\n");
    let second = batch(first.end, "PANIC\n");
    let third = batch(second.end, "INFO later\n");
    let (first_end, second_start) = (first.end, second.start);
    run_all(&mut process, vec![first, second, third]).await;
    assert_commits_stop_at_the_panic(&record, first_end, second_start);
}

/// The batch before the one whose scan panicked (ending at `first_end`) was committed, and no
/// commit went past the start of the panicked one (`panicked_start`).
#[track_caller]
fn assert_commits_stop_at_the_panic(record: &Record, first_end: u64, panicked_start: u64) {
    let commits = record.commits();
    assert_eq!(commits.first(), Some(&first_end));
    assert!(
        commits.iter().all(|offset| *offset <= panicked_start),
        "{commits:?}"
    );
}

/// Threads that scanned a batch holding `LONE`, by name.
static LONE_SCANNED_ON: Mutex<Vec<Option<String>>> = Mutex::new(Vec::new());

/// Like [`panicking`], noting which thread scanned each batch holding `LONE`.
fn noting_thread(matcher: &Matcher, batch: &Batch) -> (Vec<Hit>, ScanStats) {
    if batch.data.windows(4).any(|w| w == b"LONE") {
        let name = std::thread::current().name().map(str::to_owned);
        LONE_SCANNED_ON.lock().expect("not poisoned").push(name);
    }
    panicking(matcher, batch)
}

#[tokio::test(start_paused = true)]
async fn a_followed_logs_lone_batches_are_scanned_on_the_process_task_even_one_that_panics() {
    let record = Record::default();
    let has_space = Arc::new(Mutex::new(true));
    let mut process = process(&record, &has_space).with_scan(noting_thread);
    let (sender, batch_rx) = mpsc::channel(4);
    let (_reload, reload_rx) = mpsc::channel(1);
    let first = batch(0, "LONE INFO ok\n");
    let second = batch(first.end, "LONE PANIC\n");
    let third = batch(second.end, "LONE INFO later\n");
    let (first_end, second_start) = (first.end, second.start);
    let drive = async {
        // One batch at a time, each once the one before is applied: as a follower's come.
        for batch in [first, second, third] {
            sender.send(batch).await.expect("send");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        drop(sender);
    };
    let task = std::thread::current().name().map(str::to_owned);
    tokio::join!(
        process.run(batch_rx, reload_rx, CancellationToken::new()),
        drive
    );
    // The panic was caught like one on the blocking pool: later commits stop at its batch.
    assert_commits_stop_at_the_panic(&record, first_end, second_start);
    // No pool thread was woken for them.
    assert_eq!(
        *LONE_SCANNED_ON.lock().expect("not poisoned"),
        [task.clone(), task.clone(), task]
    );
}

/// Set once a batch without `SLOW` has been scanned.
static LATER_SCANNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Scans like the agent, but a batch holding `SLOW` finishes only after a later batch's scan
/// has (bounded: 10 s), so results come back out of order.
fn slow_first(matcher: &Matcher, batch: &Batch) -> (Vec<Hit>, ScanStats) {
    use std::sync::atomic::Ordering;
    if batch.data.windows(4).any(|w| w == b"SLOW") {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while !LATER_SCANNED.load(Ordering::SeqCst) && std::time::Instant::now() < give_up {
            std::thread::yield_now();
        }
        assert!(
            LATER_SCANNED.load(Ordering::SeqCst),
            "the later batch was scanned meanwhile"
        );
    }
    let scanned = scan_batch(matcher, batch);
    LATER_SCANNED.store(true, Ordering::SeqCst);
    scanned
}

#[tokio::test(start_paused = true)]
async fn batches_scanned_at_once_are_applied_in_arrival_order() {
    let (record, has_space) = (Record::default(), Arc::new(Mutex::new(true)));
    let mut process = process(&record, &has_space).with_scan(slow_first);
    // One after the other in the file: a slow one, a quick one, two with a hit each.
    let mut batches: Vec<Batch> = Vec::new();
    for text in ["SLOW INFO first\n", "INFO second\n", HIT, HIT] {
        batches.push(batch(batches.last().map_or(0, |b| b.end), text));
    }
    let ends = [batches[0].end, batches[1].end, batches[3].end];
    run_all(&mut process, batches).await;
    // The slow batch's result came back second, yet nothing past its lines was committed
    // before it was applied; the two hits are counted once each, in one window.
    assert_eq!(
        record.all(),
        [
            Seen::Commit(ends[0]),
            Seen::Commit(ends[1]),
            Seen::Stored(2),
            Seen::Commit(ends[2])
        ]
    );
}
