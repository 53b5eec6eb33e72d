//! [`Outbox`]: the durable queue of summaries awaiting delivery, and the persisted post times
//! of the rate budget ([`SendTimes`]). With `checkpoint`, the only writer of state files.
//!
//! The queue is generic over its [`Payload`]: the agent queues window [`Summary`]s, the relay
//! queues batches of Alertmanager notifications; both are merged, rendered and delivered by the
//! same code. Each sink (each robot) has an outbox directory and a send-times file of its own.
//!
//! A summary is in the outbox (written, fsynced, renamed into place, directory fsynced: see
//! [`crate::state`]) before
//! [`Outbox::push`] returns, and the agent commits tail offsets only after that: a crash or a
//! DingTalk outage loses nothing, and on restart the outbox is delivered first.
//!
//! Layout, under `state_dir/outbox/`: one file per entry, `<seq>.json`, with a zero-padded,
//! ever-increasing sequence number, so the directory listing *is* the delivery order. One file
//! per entry rather than an append log because entries are few (one per window) and small:
//! every write is a plain atomic replace, removing an entry is one `unlink`, a torn or corrupt
//! entry damages nobody else (it is moved to `corrupt/`), and merging entries when the outbox
//! is full is a rewrite of one file, with no compaction to get right.
//!
//! Bounded: when `max_entries` summaries wait, the two oldest (not being sent right now) are
//! merged into one, so counts are never lost, only folded together.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::OutboxOptions;
use crate::render::RenderOptions;
use crate::state;
use crate::summary::Summary;

/// Format version of entry files.
const ENTRY_VERSION: u32 = 1;
/// Entries refused by DingTalk for good are kept here, at most this many.
const MAX_DROPPED: usize = 100;

/// A failure to read or write the outbox: the step, the path and the cause.
pub type Error = crate::state::Error;

/// What an outbox holds and the delivery task posts: a window [`Summary`] (`logding run`) or
/// a batch of Alertmanager notifications (`logding relay`).
pub trait Payload:
    Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// Folds a newer payload into this one, losing no count (everything queued is merged into
    /// one message when a post becomes possible, and the oldest entries when the outbox is full).
    fn merge(&mut self, newer: Self);
    /// The DingTalk bodies, each within `options.max_body_bytes` and with the keyword.
    fn render(&self, options: &RenderOptions) -> Vec<String>;
    /// One line naming what it holds, for logs.
    fn describe(&self) -> String;
    /// (windows or notifications merged in it, matches or alerts it counts), for the log line
    /// of each delivered post.
    fn tally(&self) -> (u64, u64);
}

impl Payload for Summary {
    fn merge(&mut self, newer: Summary) {
        Summary::merge(self, newer);
    }

    fn render(&self, options: &RenderOptions) -> Vec<String> {
        crate::render::render(self, options)
    }

    fn describe(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|rule| format!("{} x{}", rule.name, rule.count))
            .collect();
        format!("{} window(s): {}", self.windows, rules.join(", "))
    }

    fn tally(&self) -> (u64, u64) {
        (u64::from(self.windows), self.matches())
    }
}

/// One queued payload and its position in the delivery order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<P = Summary> {
    /// Sequence number: delivery order, and the file name.
    pub seq: u64,
    /// What is to be delivered.
    pub payload: P,
    /// When it was queued (its file's time after a restart; a merged entry keeps the older).
    pub queued_at: SystemTime,
}

/// The durable queue. Owned by one task (the delivery task); not shared.
#[derive(Debug)]
pub struct Outbox<P = Summary> {
    dir: PathBuf,
    entries: VecDeque<Entry<P>>,
    next_seq: u64,
    max_entries: usize,
    pinned: BTreeSet<u64>,
}

/// An entry on disk. The field keeps its version-1 name, `summary`, whatever the payload, so
/// that outboxes written before payloads were generic still load.
#[derive(Serialize, Deserialize)]
struct EntryFile<P> {
    version: u32,
    #[serde(rename = "summary")]
    payload: P,
}

impl<P: Payload> Outbox<P> {
    /// Opens (creating it if needed) the outbox in `state_dir`, loading what it holds.
    ///
    /// Leftover temporary files are removed; entries that cannot be read are moved to
    /// `outbox/corrupt/` and logged at error level.
    ///
    /// # Errors
    ///
    /// The directory cannot be created or listed.
    pub fn open(state_dir: &Path, options: &OutboxOptions) -> Result<Outbox<P>, Error> {
        Outbox::open_dir(&state_dir.join("outbox"), options)
    }

    /// Opens (creating it if needed) the outbox in directory `dir` itself: one per sink.
    ///
    /// # Errors
    ///
    /// The directory cannot be created or listed.
    pub fn open_dir(dir: &Path, options: &OutboxOptions) -> Result<Outbox<P>, Error> {
        let dir = dir.to_owned();
        std::fs::create_dir_all(&dir).map_err(state::error("create the outbox directory", &dir))?;
        let mut seqs = Vec::new();
        let listing =
            std::fs::read_dir(&dir).map_err(state::error("list the outbox directory", &dir))?;
        for item in listing {
            let item = item.map_err(state::error("list the outbox directory", &dir))?;
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(state::TMP_SUFFIX) {
                // A write interrupted by a crash: its entry was never acknowledged.
                if let Err(err) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %err, "failed to remove a leftover temporary file");
                }
            } else if let Some(seq) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut outbox = Outbox {
            next_seq: seqs.last().map_or(1, |last| last + 1),
            dir,
            entries: VecDeque::new(),
            max_entries: options.max_entries.max(2),
            pinned: BTreeSet::new(),
        };
        for seq in seqs {
            match outbox.read_entry(seq) {
                Ok(payload) => {
                    let queued_at = std::fs::metadata(outbox.entry_path(seq))
                        .and_then(|m| m.modified())
                        .unwrap_or_else(|_| SystemTime::now());
                    outbox.entries.push_back(Entry {
                        seq,
                        payload,
                        queued_at,
                    });
                }
                Err(reason) => outbox.set_aside_corrupt(seq, &reason),
            }
        }
        while outbox.entries.len() > outbox.max_entries {
            outbox.merge_oldest()?;
        }
        Ok(outbox)
    }

    /// Appends a payload, durably. When the outbox is full, the two oldest entries that are not
    /// pinned are merged first.
    ///
    /// # Errors
    ///
    /// The entry could not be written and synced: it is not in the outbox.
    pub fn push(&mut self, payload: P) -> Result<u64, Error> {
        while self.entries.len() >= self.max_entries {
            if !self.merge_oldest()? {
                break;
            }
        }
        let seq = self.next_seq;
        self.write_entry(seq, &payload)?;
        self.next_seq += 1;
        self.entries.push_back(Entry {
            seq,
            payload,
            queued_at: SystemTime::now(),
        });
        Ok(seq)
    }

    /// The queued entries, in delivery order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry<P>> {
        self.entries.iter()
    }

    /// Number of queued entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// When the oldest queued entry was queued; `None` when nothing is queued.
    pub fn oldest_queued_at(&self) -> Option<SystemTime> {
        self.entries.iter().map(|e| e.queued_at).min()
    }

    /// Returns true if and only if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Protects entries from being merged by [`Outbox::push`] (they are being sent).
    pub fn pin(&mut self, seqs: &[u64]) {
        self.pinned.extend(seqs);
    }

    /// Lifts [`Outbox::pin`].
    pub fn unpin_all(&mut self) {
        self.pinned.clear();
    }

    /// Removes delivered entries.
    ///
    /// # Errors
    ///
    /// A file could not be removed (it will be delivered again after a restart).
    pub fn remove(&mut self, seqs: &[u64]) -> Result<(), Error> {
        self.entries.retain(|entry| !seqs.contains(&entry.seq));
        for seq in seqs {
            self.pinned.remove(seq);
            let path = self.entry_path(*seq);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(state::error("remove a delivered entry", &path)(err)),
            }
        }
        state::sync_dir(&self.dir)
    }

    /// Replaces entries `seqs` (in order, the first the oldest) by one merged payload, kept at
    /// the position of the first. The merged file is in place before the others are removed,
    /// so a crash in between may deliver counts twice, never lose them.
    ///
    /// # Errors
    ///
    /// A file could not be written or removed.
    pub fn replace(&mut self, seqs: &[u64], merged: P) -> Result<(), Error> {
        let Some((&first, rest)) = seqs.split_first() else {
            return Ok(());
        };
        self.write_entry(first, &merged)?;
        if let Some(entry) = self.entries.iter_mut().find(|e| e.seq == first) {
            entry.payload = merged;
        }
        self.remove(rest)
    }

    /// Moves entries DingTalk refuses for good to `outbox/dropped/` (kept for the operator,
    /// the newest hundred) and out of the queue.
    ///
    /// # Errors
    ///
    /// A file could not be moved.
    pub fn set_aside_dropped(&mut self, seqs: &[u64]) -> Result<(), Error> {
        let dropped = self.dir.join("dropped");
        std::fs::create_dir_all(&dropped).map_err(state::error("create a directory", &dropped))?;
        for seq in seqs {
            let from = self.entry_path(*seq);
            let to = dropped.join(format!("{seq:020}.json"));
            std::fs::rename(&from, &to).map_err(state::error("move a dropped entry", &from))?;
        }
        self.entries.retain(|entry| !seqs.contains(&entry.seq));
        prune(&dropped, MAX_DROPPED);
        state::sync_dir(&self.dir)
    }

    /// Merges the two oldest unpinned entries. Returns false when there are not two.
    fn merge_oldest(&mut self) -> Result<bool, Error> {
        let mut unpinned = self
            .entries
            .iter()
            .filter(|e| !self.pinned.contains(&e.seq));
        let (Some(first), Some(second)) = (unpinned.next(), unpinned.next()) else {
            return Ok(false);
        };
        let seqs = [first.seq, second.seq];
        let mut merged = first.payload.clone();
        merged.merge(second.payload.clone());
        tracing::warn!(
            max_entries = self.max_entries,
            merged = %merged.describe(),
            "outbox full: merged its two oldest entries"
        );
        self.replace(&seqs, merged)?;
        Ok(true)
    }

    fn entry_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    fn read_entry(&self, seq: u64) -> Result<P, String> {
        let path = self.entry_path(seq);
        let bytes = std::fs::read(&path)
            .map_err(|err| format!("failed to read `{}`: {err}", path.display()))?;
        let file: EntryFile<P> = serde_json::from_slice(&bytes).map_err(|err| err.to_string())?;
        if file.version != ENTRY_VERSION {
            return Err(format!("unsupported entry version {}", file.version));
        }
        Ok(file.payload)
    }

    fn write_entry(&self, seq: u64, payload: &P) -> Result<(), Error> {
        let file = EntryFile {
            version: ENTRY_VERSION,
            payload,
        };
        let bytes = serde_json::to_vec(&file).expect("a payload always serializes");
        state::write_atomic(&self.entry_path(seq), &bytes)
    }

    fn set_aside_corrupt(&self, seq: u64, reason: &str) {
        let from = self.entry_path(seq);
        let corrupt = self.dir.join("corrupt");
        let to = corrupt.join(format!("{seq:020}.json"));
        let moved = std::fs::create_dir_all(&corrupt).and_then(|()| std::fs::rename(&from, &to));
        match moved {
            Ok(()) => tracing::error!(
                path = %to.display(),
                reason,
                "outbox entry unreadable: moved aside, its alerts are not delivered"
            ),
            Err(err) => tracing::error!(
                path = %from.display(),
                reason,
                error = %err,
                "outbox entry unreadable and could not be moved aside: skipped"
            ),
        }
        prune(&corrupt, MAX_DROPPED);
    }
}

/// Post times of the rate budget, persisted so a restart does not allow a burst.
/// Stored as wall-clock milliseconds (instants do not survive a restart). One file per robot.
#[derive(Debug, Clone)]
pub struct SendTimes {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct SendTimesFile {
    version: u32,
    sent_ms: Vec<u64>,
}

impl SendTimes {
    /// The send times file in `state_dir` (created on first save).
    pub fn new(state_dir: &Path) -> SendTimes {
        SendTimes::at(state_dir.join("dingtalk-send-times.json"))
    }

    /// The send times file at `path`: one per robot when there are several.
    pub fn at(path: PathBuf) -> SendTimes {
        SendTimes { path }
    }

    /// The saved post times (wall-clock ms), or none if the file is absent or unreadable.
    pub fn load(&self) -> Vec<u64> {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return Vec::new();
        };
        match serde_json::from_slice::<SendTimesFile>(&bytes) {
            Ok(file) => file.sent_ms,
            Err(err) => {
                tracing::warn!(path = %self.path.display(), error = %err, "ignoring unreadable send times");
                Vec::new()
            }
        }
    }

    /// Saves the post times of the last minute (wall-clock ms).
    ///
    /// # Errors
    ///
    /// The file could not be written.
    pub fn save(&self, sent_ms: Vec<u64>) -> Result<(), Error> {
        let bytes = serde_json::to_vec(&SendTimesFile {
            version: 1,
            sent_ms,
        })
        .expect("numbers always serialize");
        state::write_atomic(&self.path, &bytes)
    }
}

/// Keeps the `keep` newest files (by name) of `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<PathBuf> = listing.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for path in &names[..excess] {
        if let Err(err) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %err, "failed to prune a set-aside outbox entry");
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::rules::Severity;
    use crate::summary::{PatternCount, RuleSummary};

    fn summary(window: i64, rule: &str, hits: u64) -> Summary {
        let start = Timestamp::from_second(1_800_000_000 + window * 60).expect("valid");
        let end = Timestamp::from_second(1_800_000_060 + window * 60).expect("valid");
        Summary {
            host: "web-01".into(),
            start,
            end,
            rules: vec![RuleSummary {
                name: rule.into(),
                severity: Severity::Error,
                count: hits,
                first: start,
                last: end,
                files: vec![format!("/var/log/{rule}.log")],
                other_files: 0,
                groups: vec![],
                other_groups_count: 0,
                patterns: vec![PatternCount {
                    pattern: format!("{rule} failed <n>"),
                    count: hits,
                    sample: format!("{rule} failed {window}"),
                    ..PatternCount::default()
                }],
                other_patterns: 0,
                other_patterns_count: 0,
            }],
            below_threshold: vec![],
            excluded: 0,
            windows: 1,
            skewed: 0,
            incidents: Default::default(),
        }
    }

    fn open(dir: &Path, max_entries: usize) -> Outbox<Summary> {
        Outbox::open(dir, &OutboxOptions { max_entries }).expect("opens")
    }

    fn hits(outbox: &Outbox) -> Vec<u64> {
        outbox
            .entries()
            .map(|e| e.payload.rules.iter().map(|r| r.count).sum())
            .collect()
    }

    #[test]
    fn entries_survive_a_reopen_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = open(dir.path(), 10);
        for window in 0..3 {
            outbox
                .push(summary(window, "db", 1 << window))
                .expect("pushed");
        }
        let first = outbox.entries().next().expect("one").seq;
        outbox.remove(&[first]).expect("removed");
        drop(outbox);
        let mut outbox = open(dir.path(), 10);
        assert_eq!(hits(&outbox), [2, 4]);
        let seq = outbox.push(summary(3, "db", 8)).expect("pushed");
        assert!(seq > 3, "sequence numbers are never reused: {seq}");
        assert_eq!(hits(&open(dir.path(), 10)), [2, 4, 8]);
    }

    #[test]
    fn corrupt_entries_are_moved_aside_and_leftovers_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = open(dir.path(), 10);
        outbox.push(summary(0, "db", 1)).expect("pushed");
        outbox.push(summary(1, "db", 2)).expect("pushed");
        drop(outbox);
        let entries = dir.path().join("outbox");
        std::fs::write(
            entries.join(format!("{:020}.json", 1)),
            b"{\"version\":1,\"summ",
        )
        .expect("torn");
        std::fs::write(entries.join(format!("{:020}.json.tmp", 3)), b"half").expect("leftover");
        let outbox = open(dir.path(), 10);
        assert_eq!(hits(&outbox), [2]);
        assert!(
            entries
                .join("corrupt")
                .join(format!("{:020}.json", 1))
                .exists()
        );
        assert!(!entries.join(format!("{:020}.json.tmp", 3)).exists());
    }

    #[test]
    fn a_full_outbox_merges_its_oldest_entries_and_keeps_every_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = open(dir.path(), 3);
        for window in 0..6 {
            outbox
                .push(summary(window, "db", 1 << window))
                .expect("pushed");
        }
        assert_eq!(outbox.len(), 3);
        assert_eq!(hits(&outbox), [1 + 2 + 4 + 8, 16, 32]);
        assert_eq!(outbox.entries().next().expect("one").payload.windows, 4);
        assert_eq!(
            hits(&open(dir.path(), 3)),
            [15, 16, 32],
            "merges are durable"
        );
    }

    #[test]
    fn pinned_entries_are_not_merged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = open(dir.path(), 2);
        let first = outbox.push(summary(0, "db", 1)).expect("pushed");
        outbox.pin(&[first]);
        outbox.push(summary(1, "db", 2)).expect("pushed");
        outbox.push(summary(2, "db", 4)).expect("pushed");
        outbox.push(summary(3, "db", 8)).expect("pushed");
        assert_eq!(hits(&outbox), [1, 6, 8]);
    }

    #[test]
    fn send_times_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let times = SendTimes::new(dir.path());
        assert!(times.load().is_empty());
        times.save(vec![1, 2, 3]).expect("saved");
        assert_eq!(SendTimes::new(dir.path()).load(), [1, 2, 3]);
        std::fs::write(dir.path().join("dingtalk-send-times.json"), "garbage").expect("written");
        assert!(times.load().is_empty(), "unreadable is empty, not a panic");
    }
}
