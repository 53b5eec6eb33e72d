//! A backlog range's batch read and settled on the scanning thread ([`Batch::read_unread`],
//! [`Batch::settle`]): the range itself and its file's ledger are `unread.rs`, which knows no
//! batch; the long lines of what it read are cut here as the tail thread's reader would have.

use std::sync::Arc;

use crate::tail::Batch;
use crate::tail::builder::Builder;
use crate::tail::reader::{LineReader, Segment};
use crate::tail::unread::Settled;

impl Batch {
    /// Reads what the batch has not read yet (a backlog range; nothing otherwise): its bytes
    /// checked against what the tail thread saw, its long lines cut. On the scanning thread.
    pub fn read_unread(&mut self) {
        let Some(unread) = self.unread.as_deref_mut() else {
            return;
        };
        if unread.is_done() || !unread.read_into(self.start, self.end, &mut self.data) {
            return;
        }
        let (counters, max_line_bytes) = (Arc::clone(unread.counters()), unread.max_line_bytes());
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
        let settled = unread.settle(self.start);
        if settled == Settled::FromCopy {
            self.data.clear();
        }
        settled
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

#[cfg(test)]
mod tests {
    use std::fs::File;
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
