//! A synchronous driver of the tailer for tests: no thread, no sleeps; time is advanced by hand.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logding::config::{Multiline, Source, StartAt, TailOptions};
use logding::tail::{Batch, Counters, Settled, Stats, Tailer};

/// One delivered line (or multiline event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) path: PathBuf,
    pub(crate) ino: u64,
    pub(crate) offset: u64,
    pub(crate) text: String,
}

pub(crate) struct Harness {
    #[allow(dead_code)]
    pub(crate) dir: tempfile::TempDir,
    pub(crate) logs: PathBuf,
    pub(crate) state: PathBuf,
    pub(crate) source: Source,
    pub(crate) options: TailOptions,
    tailer: Option<Tailer>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) now: Instant,
    pub(crate) seen: Vec<Seen>,
    pub(crate) batches: Vec<Batch>,
    /// Commit every batch as soon as it is delivered (the agent's happy path).
    pub(crate) auto_commit: bool,
}

pub(crate) fn options() -> TailOptions {
    TailOptions {
        poll_interval: Duration::ZERO,
        rescan_interval: Duration::ZERO,
        rotate_wait: Duration::ZERO,
        poll_only: true,
        batch_wait: None,
        max_open_files: 256,
        read_budget_bytes: 1 << 20,
        checkpoint_interval: Duration::ZERO,
    }
}

pub(crate) fn multiline(start: &str) -> Multiline {
    Multiline {
        start: regex::bytes::Regex::new(start).unwrap(),
        max_lines: 200,
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(1),
    }
}

impl Harness {
    /// A harness following `logs/<glob>` with `start_at`.
    pub(crate) fn new(glob: &str, start_at: StartAt) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&logs).unwrap();
        let source = Source {
            name: "app".into(),
            paths: vec![format!("{}/{glob}", logs.display())],
            exclude: vec!["*.gz".into()],
            start_at,
            multiline: None,
            max_line_bytes: 64 * 1024,
            timestamp: None,
        };
        Harness {
            dir,
            logs,
            state,
            source,
            options: options(),
            tailer: None,
            counters: Arc::new(Counters::default()),
            now: Instant::now(),
            seen: Vec::new(),
            batches: Vec::new(),
            auto_commit: true,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }

    pub(crate) fn append(&self, name: &str, bytes: &[u8]) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    /// Truncates `name` to nothing (as copytruncate does after its copy).
    pub(crate) fn truncate(&self, name: &str) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path(name));
        file.unwrap().set_len(0).unwrap();
    }

    #[allow(dead_code)]
    pub(crate) fn ino(&self, name: &str) -> u64 {
        std::fs::metadata(self.path(name)).unwrap().ino()
    }

    pub(crate) fn start(&mut self) {
        assert!(self.tailer.is_none(), "already started");
        self.tailer = Some(
            Tailer::new(
                vec![self.source.clone()],
                self.options.clone(),
                Some(self.state.clone()),
                self.counters.clone(),
            )
            .unwrap(),
        );
    }

    pub(crate) fn tailer(&mut self) -> &mut Tailer {
        self.tailer.as_mut().expect("started")
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Polls until no file has more to read (bounded), recording what is delivered.
    pub(crate) fn poll(&mut self) {
        for _ in 0..100_000 {
            if !self.poll_once() {
                return;
            }
        }
        panic!("the tailer never settled");
    }

    /// One pass; returns true if some file has more to read.
    pub(crate) fn poll_once(&mut self) -> bool {
        let (batches, has_more) = self.poll_once_holding();
        for batch in batches {
            self.record(batch);
        }
        has_more
    }

    /// One pass whose batches are handed back, not recorded: a backlog range in them is not
    /// read yet (as when the agent's scanning threads have not got to it).
    pub(crate) fn poll_once_holding(&mut self) -> (Vec<Batch>, bool) {
        let now = self.now;
        let mut batches = Vec::new();
        let poll = self
            .tailer
            .as_mut()
            .expect("started")
            .poll_once(now, &mut |batch: Batch| {
                batches.push(batch);
                true
            });
        (batches, poll.has_more)
    }

    /// Records a batch held back by [`Self::poll_once_holding`].
    pub(crate) fn deliver(&mut self, batch: Batch) {
        self.record(batch);
    }

    fn record(&mut self, mut batch: Batch) {
        if batch.settle() != Settled::Keep {
            return;
        }
        match &batch.events {
            None => {
                for (offset, line) in batch.lines() {
                    self.seen.push(Seen {
                        path: batch.file.path.to_path_buf(),
                        ino: batch.file.id.ino,
                        offset,
                        text: String::from_utf8_lossy(line).into_owned(),
                    });
                }
            }
            Some(events) => {
                for event in events {
                    self.seen.push(Seen {
                        path: batch.file.path.to_path_buf(),
                        ino: batch.file.id.ino,
                        offset: batch.file_offset(event.start),
                        text: String::from_utf8_lossy(&batch.data[event.clone()]).into_owned(),
                    });
                }
            }
        }
        if self.auto_commit {
            let (id, end) = (batch.file.id.clone(), batch.end);
            self.tailer().commit(&id, end);
        }
        self.batches.push(batch);
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    pub(crate) fn save(&mut self) {
        self.tailer().save_checkpoint().unwrap();
    }

    /// A clean stop: open events flushed and committed, checkpoint written.
    pub(crate) fn stop(&mut self) {
        let mut batches = Vec::new();
        self.tailer().flush_for_shutdown(&mut |batch: Batch| {
            batches.push(batch);
            true
        });
        for batch in batches {
            self.record(batch);
        }
        self.save();
        self.tailer = None;
    }

    /// A crash: nothing saved since the last `save`.
    pub(crate) fn kill(&mut self) {
        self.tailer = None;
    }

    /// Delivered texts, in order.
    pub(crate) fn texts(&self) -> Vec<String> {
        self.seen.iter().map(|s| s.text.clone()).collect()
    }

    /// Forgets what was delivered so far.
    pub(crate) fn clear(&mut self) {
        self.seen.clear();
        self.batches.clear();
    }
}

/// `n` numbered lines `prefix-i\n` starting at `from`.
pub(crate) fn lines(prefix: &str, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("{prefix}-{i:06}\n"))
        .collect()
}

/// The same as `lines`, as a list of strings each with its `\n`.
pub(crate) fn line_list(prefix: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("{prefix}-{i:06}\n"))
        .collect()
}

pub(crate) fn rename(from: &Path, to: &Path) {
    std::fs::rename(from, to).unwrap();
}
