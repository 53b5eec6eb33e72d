//! A backlog's batches read by the thread that scans them: the tail thread hands out a range of
//! whole lines it has not read (`Unread`), and the scanning thread reads it (`pread`), checks it
//! and cuts its long lines (`Batch::read_unread`, in `settle.rs`); the batches are then settled
//! in file order (`Batch::settle`). This file holds the range and its file's [`Ledger`]: it
//! knows no batch.
//!
//! Why: reading a backlog was the tail thread's work, a copy out of the page cache done on one
//! core for all of them (about a fifth of a catch-up's CPU, and serial). Now each scanning thread
//! copies what it scans, on every core, and scans it while it is in that core's cache. The tail
//! thread reads only the last few KiB of each range, to find where its last line ends, the marker
//! of its position and the line it holds after it.
//!
//! **The content may change before the range is read** (copytruncate during a catch-up). The
//! scanning thread checks what it read: all of the range, ending with the bytes the tail thread
//! saw there; otherwise the range is *lost*. Each file generation keeps a [`Ledger`] of its ranges
//! handed out and not yet settled. When the tail thread finds the file truncated, the copytruncate
//! copy is drained from the first such range (not from where the tail thread stands), and those
//! ranges are dropped when they are settled, read or not: the copy hands out their lines once. A
//! range lost with no copy found is lost with the file's truncated end (warned, never committed
//! past).

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::tail::counters::Counters;

/// What a batch still has to read: the file's bytes from `from` to the batch's end, after the
/// held line's head already in `data` (see the module docs).
#[derive(Clone, Debug)]
pub struct Unread {
    file: Arc<File>,
    /// The tailer's counters (lines cut here are counted there).
    counters: Arc<Counters>,
    from: u64,
    /// The batch's last bytes as the tail thread read them.
    check: Vec<u8>,
    max_line_bytes: usize,
    ledger: Arc<Ledger>,
    state: ReadState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadState {
    NotRead,
    Read,
    /// Short, or not the content the tail thread saw: the file changed.
    Lost,
}

impl PartialEq for Unread {
    fn eq(&self, other: &Unread) -> bool {
        (self.from, &self.check, self.state) == (other.from, &other.check, other.state)
    }
}

impl Eq for Unread {}

impl Unread {
    /// A range of `file` (counted in its counters) from `from`, its last bytes `check`, handed
    /// out under `ledger` as the batch starting at `start`.
    pub(crate) fn new(
        (file, counters): (File, Arc<Counters>),
        from: u64,
        check: Vec<u8>,
        max_line_bytes: usize,
        ledger: &Arc<Ledger>,
        start: u64,
    ) -> Unread {
        ledger.lock().unsettled.insert(start);
        Unread {
            file: Arc::new(file),
            counters,
            from,
            check,
            max_line_bytes,
            ledger: Arc::clone(ledger),
            state: ReadState::NotRead,
        }
    }
}

/// How a batch settled: keep it, or drop it (see `Batch::settle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Read (or never a range): its lines are the file's.
    Keep,
    /// Its file was truncated before it was settled and the copy hands out its lines.
    FromCopy,
    /// Its file changed before it was read and no copy was found: its lines are lost.
    Lost,
}

/// One file generation's ranges handed out and not yet settled.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<Ranges>);

/// See [`Ledger`].
#[derive(Debug, Default)]
pub(crate) struct Ranges {
    /// Starts of the ranges handed out, not yet settled.
    unsettled: BTreeSet<u64>,
    /// Start of the first range settled as lost.
    lost: Option<u64>,
    /// Ranges from here on are dropped when settled: the copy hands out their lines.
    copied_from: Option<u64>,
}

impl Ledger {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Ranges> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Ranges {
    /// Where the lines not yet settled (or lost) start: a copy is drained from there.
    pub(crate) fn first_unsettled(&self) -> Option<u64> {
        let first = self.unsettled.first().copied();
        match (first, self.lost) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The copy hands out the lines from `from` on: ranges from there are dropped.
    pub(crate) fn copied_from(&mut self, from: u64) {
        self.copied_from = Some(from);
    }
}

impl Unread {
    /// Whether the range was read already (or found changed).
    pub(crate) fn is_done(&self) -> bool {
        self.state != ReadState::NotRead
    }

    /// Reads the range into `data` after the held line's head (the batch runs from `start` to
    /// `end`), and checks it; false when it is short or not what the tail thread saw (the file
    /// changed), `data` then emptied.
    pub(crate) fn read_into(&mut self, start: u64, end: u64, data: &mut Vec<u8>) -> bool {
        let held = (self.from - start) as usize;
        let len = (end - self.from) as usize;
        let is_whole = read_after(&self.file, held, self.from, data, len)
            .is_ok_and(|read| read == len && data.ends_with(&self.check));
        if !is_whole {
            self.state = ReadState::Lost;
            data.clear();
            return false;
        }
        self.state = ReadState::Read;
        true
    }

    /// Longest line before a cut, as the tail thread cuts them.
    pub(crate) fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// The tailer's counters (lines cut on the scanning thread are counted there).
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Settles the range of the batch starting at `start`, in file order, after
    /// [`Self::read_into`]: whether its lines are the file's.
    pub(crate) fn settle(self, start: u64) -> Settled {
        let mut ranges = self.ledger.lock();
        ranges.unsettled.remove(&start);
        if ranges.copied_from.is_some_and(|from| from <= start) {
            return Settled::FromCopy;
        }
        if self.state == ReadState::Lost {
            ranges.lost = Some(ranges.lost.map_or(start, |at| at.min(start)));
            return Settled::Lost;
        }
        Settled::Keep
    }
}

/// Reads up to `len` bytes of `file` at `pos` into `data` after its first `held` bytes (kept);
/// returns the bytes read, `data` ending with them. Only the bytes of `data` beyond its old
/// length are zeroed first (a spare buffer keeps its old content).
pub(crate) fn read_after(
    file: &File,
    held: usize,
    pos: u64,
    data: &mut Vec<u8>,
    len: usize,
) -> std::io::Result<usize> {
    data.resize(held + len, 0);
    let mut read = 0;
    while read < len {
        let at = held + read;
        let n = file.read_at(&mut data[at..], pos + read as u64)?;
        if n == 0 {
            break;
        }
        read += n;
    }
    data.truncate(held + read);
    Ok(read)
}
