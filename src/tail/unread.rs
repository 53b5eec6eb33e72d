//! A backlog's batches read by the thread that scans them: the tail thread hands out a range of
//! whole lines it has not read (`Unread`), and the scanning thread reads it (`pread`), checks it
//! and cuts its long lines ([`Batch::read_unread`]); the batches are then settled in file order
//! ([`Batch::settle`]).
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

use crate::tail::Batch;
use crate::tail::builder::Builder;
use crate::tail::counters::Counters;
use crate::tail::reader::{LineReader, Segment};

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

/// How a batch settled: keep it, or drop it (see [`Batch::settle`]).
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

impl Batch {
    /// Reads what the batch has not read yet (a backlog range; nothing otherwise): its bytes
    /// checked against what the tail thread saw, its long lines cut. On the scanning thread.
    pub fn read_unread(&mut self) {
        let Some(unread) = self.unread.as_deref_mut() else {
            return;
        };
        if unread.state != ReadState::NotRead {
            return;
        }
        let held = unread.held_len(self.start);
        let len = (self.end - unread.from) as usize;
        let is_whole = read_after(&unread.file, held, unread.from, &mut self.data, len)
            .is_ok_and(|read| read == len && self.data.ends_with(&unread.check));
        if !is_whole {
            unread.state = ReadState::Lost;
            self.data.clear();
            return;
        }
        unread.state = ReadState::Read;
        let (max_line_bytes, counters) = (unread.max_line_bytes, Arc::clone(&unread.counters));
        cut_long_lines(self, max_line_bytes);
        // Counted here: the tail thread counts the lines it cut when it hands a batch out.
        counters.add(&counters.lines_cut, self.lines_cut);
    }

    /// Settles the batch, in file order (after [`Self::read_unread`]): whether its lines are the
    /// file's (see [`Settled`]). Only a backlog range can be dropped.
    pub fn settle(&mut self) -> Settled {
        self.read_unread();
        let Some(unread) = self.unread.take() else {
            return Settled::Keep;
        };
        let mut ranges = unread.ledger.lock();
        ranges.unsettled.remove(&self.start);
        if ranges.copied_from.is_some_and(|from| from <= self.start) {
            self.data.clear();
            return Settled::FromCopy;
        }
        if unread.state == ReadState::Lost {
            ranges.lost = Some(ranges.lost.map_or(self.start, |at| at.min(self.start)));
            return Settled::Lost;
        }
        Settled::Keep
    }
}

impl Unread {
    /// Bytes of the held line's head at the front of the batch (`from - start`).
    fn held_len(&self, start: u64) -> usize {
        (self.from - start) as usize
    }
}

/// Cuts the lines of `batch` (whole lines from its start) longer than `max_line_bytes`, as the
/// tail thread's line reader would have.
fn cut_long_lines(batch: &mut Batch, max_line_bytes: usize) {
    let reader = LineReader::new(max_line_bytes, batch.start);
    if !reader.has_long_line(&batch.data) {
        return;
    }
    let mut reader = reader;
    let mut builder = Builder::new(&batch.file, batch.source, false, Vec::new());
    reader.feed(&batch.data, &mut |segment: Segment<'_>| {
        builder.push_segment(&segment)
    });
    if let Some(cut) = builder.into_batch() {
        batch.lines_cut = cut.lines_cut;
        batch.data = cut.data;
        batch.cuts = cut.cuts;
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use proptest::prelude::*;

    use super::*;
    use crate::tail::builder::Built;
    use crate::tail::counters::{Counters, Descriptor};
    use crate::tail::watcher::{FileSettings, FileWatcher};
    use crate::tail::{FileId, Spare};

    const FILE: FileId = FileId {
        dev: 0,
        ino: 0,
        generation: 0,
    };

    /// Each line of `batches` (settled in order) with its file offset.
    fn lines_of(batches: &[Batch]) -> Vec<(u64, Vec<u8>)> {
        let lines = batches.iter().flat_map(Batch::lines);
        lines.map(|(at, line)| (at, line.to_vec())).collect()
    }

    /// What the tail thread's reader hands out reading `input` at once, and flushing its end,
    /// and the lines it cuts.
    fn read_here(input: &[u8], max_line_bytes: usize) -> (Vec<(u64, Vec<u8>)>, u64) {
        let mut reader = LineReader::new(max_line_bytes, 0);
        let file = crate::tail::FileRef {
            id: FILE,
            path: Arc::from(Path::new("app.log")),
        };
        let mut builder = Builder::new(&file, 0, false, Vec::new());
        reader.feed(input, &mut |s: Segment<'_>| builder.push_segment(&s));
        reader.flush_fragment(&mut |s: Segment<'_>| builder.push_segment(&s));
        let batches: Vec<Batch> = builder.into_batch().into_iter().collect();
        (
            lines_of(&batches),
            batches.iter().map(|b| b.lines_cut).sum(),
        )
    }

    /// What a watcher hands out reading `path` with `budget`, its ranges read in the order
    /// `seed` shuffles them into (as scanning threads would) and settled in file order; with
    /// the number of ranges and of lines cut counted (by the tail thread, or where a range is
    /// read).
    fn read_by_ranges(
        path: &Path,
        budget: usize,
        max_line_bytes: usize,
        seed: u64,
    ) -> (Vec<(u64, Vec<u8>)>, usize, u64) {
        let file = File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        let counters = Arc::new(Counters::default());
        let fd = Descriptor::new(file, &counters);
        let settings = FileSettings {
            max_line_bytes,
            multiline: None,
        };
        let now = Instant::now();
        let mut w = FileWatcher::new(FILE, Arc::from(path), 0, fd, &meta, 0, &settings, now);
        let spare = Spare::default();
        for _ in 0..2 {
            // Buffers of earlier batches: their old bytes must never show.
            spare.give(vec![b'x'; 70_000]);
        }
        let (mut buf, mut batches) = (vec![0; 64], Vec::new());
        while !w.is_at_eof() {
            let read = w.read(&mut buf, &spare, budget, now, None).unwrap();
            batches.extend(read.and_then(Built::into_batch));
        }
        batches.extend(w.finish(now));
        let ranges = batches.iter().filter(|b| b.unread.is_some()).count();
        // The tail thread counts what it cut when it hands a batch out.
        let handed_out_cut: u64 = batches.iter().map(|b| b.lines_cut).sum();
        let mut order: Vec<usize> = (0..batches.len()).collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            order.swap(i, (state >> 33) as usize % (i + 1));
        }
        for i in order {
            batches[i].read_unread();
        }
        for batch in &mut batches {
            assert_eq!(batch.settle(), Settled::Keep);
        }
        let cut = handed_out_cut + counters.snapshot().lines_cut;
        (lines_of(&batches), ranges, cut)
    }

    proptest! {
        #[test]
        fn ranges_read_by_other_threads_are_the_lines_read_here(
            lines in prop::collection::vec(prop::collection::vec(b'a'..=b'c', 0..30), 0..80),
            is_terminated in any::<bool>(),
            budget in 1usize..160,
            max_line_bytes in 1usize..40,
            seed in any::<u64>(),
        ) {
            let mut input = lines.join(&b'\n');
            if is_terminated && !lines.is_empty() {
                input.push(b'\n');
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("app.log");
            std::fs::write(&path, &input).unwrap();
            let (by_ranges, _, cut) = read_by_ranges(&path, budget, max_line_bytes, seed);
            prop_assert_eq!((by_ranges, cut), read_here(&input, max_line_bytes));
        }
    }

    #[test]
    fn a_backlog_is_handed_out_in_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "a line\n".repeat(1000)).unwrap();
        let (lines, ranges, _) = read_by_ranges(&path, 1024, 100, 7);
        assert_eq!((lines.len(), ranges), (1000, 6));
    }
}
