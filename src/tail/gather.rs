//! Gathering a busy file's batches before they are handed out.
//!
//! A busy log is written many times a second, and each write wakes the tail thread, which
//! reads it at once: reading at once is what keeps copytruncate's loss window as small as it is
//! (lines written between logrotate's copy and its truncate are lost unless they were read
//! before the truncate). Handing each of those small batches out at once, though, woke the
//! process task, the scan and the aggregation once per write. So the batches of a busy file
//! (one whose last batch was read less than [`BUSY`] ago) are held here, each appended to the
//! one before, and handed out together once the first of them is [`GATHER`] old or they reach
//! [`HELD_MAX`] bytes: one hand-off, one scan, one aggregation and one commit then cover
//! many writes, for at most [`GATHER`] of lag. The first batch after a quiet spell goes at
//! once (a lone error line is not held back), and so does the first one after a large batch
//! (the end of a catch-up). A held batch also goes with the read after which the next one, as
//! far apart as the last two, would come past its [`GATHER`] (with a quarter of that gap to
//! spare): a log written every 10 ms then goes at a write's wake-up, instead of waking the tail
//! thread once more at the deadline, and a log written about [`GATHER`] apart goes at once.
//!
//! Clock-free: `now` is passed in. Nothing held is committed (commits follow processing), so
//! what is held when the process stops is read again after the restart.

use std::time::{Duration, Instant};

use crate::tail::{Batch, FileId};

/// Batches of a file closer together than this make it busy: its small batches are gathered.
pub(crate) const BUSY: Duration = Duration::from_millis(100);
/// How long a busy file's batches are gathered before they are handed out (the lag it adds,
/// at most). Each hand-off wakes the process task and a scanning thread whose caches have gone
/// cold since the last one (on this kind of VM a scan after a 40 ms sleep runs at half the
/// speed of one right after another), so fewer, larger batches cost less CPU per line: at
/// 50,000 lines/s, 60 ms takes about a tenth less CPU than 40 ms did, for a lag p99 of about
/// 51 ms (a batch usually goes with the last write before its deadline; the target is 100 ms).
pub(crate) const GATHER: Duration = Duration::from_millis(60);
/// A batch this large goes at once (a backlog's reads, or a very busy file's).
pub(crate) const GATHER_BELOW: usize = 128 << 10;
/// Gathered batches are handed out once they hold this many bytes: with one more small read
/// (under [`GATHER_BELOW`]) a batch stays under the size a scan splits across threads
/// (`scan::SPLIT_FROM_BYTES`), and a log written at 50,000 lines/s (7.5 MB/s) gathers
/// its [`GATHER`] (450 KB) in one batch.
pub(crate) const HELD_MAX: usize = crate::scan::SPLIT_FROM_BYTES - GATHER_BELOW;
/// Bytes held in all: past this, the oldest held batches are handed out early (many busy
/// files do not each hold [`HELD_MAX`]).
pub(crate) const HELD_TOTAL: usize = 1 << 20;
/// Files whose last read is remembered to tell busy ones (older entries are dropped first).
const MAX_RECENT: usize = 64;

/// The held batches, by file generation, and when each file was last read.
#[derive(Debug, Default)]
pub(crate) struct Gather {
    held: Vec<Held>,
    recent: Vec<(FileId, Instant)>,
}

#[derive(Debug)]
struct Held {
    batch: Batch,
    /// When its first part was read: it goes out at `since + GATHER`.
    since: Instant,
}

/// What to hand out now, in this order (a batch held before, then the one just taken).
pub(crate) type Ready = [Option<Batch>; 2];

impl Gather {
    /// Takes `batch`, read at `now`; returns what to hand out now, in order. With `at_once`
    /// (shutdown), nothing is held.
    pub(crate) fn take(&mut self, batch: Batch, now: Instant, at_once: bool) -> Ready {
        let gap = self.note_read(&batch.file.id, now);
        let is_large = batch.data.len() >= GATHER_BELOW || batch.unread.is_some();
        self.after_read(&batch.file.id, is_large);
        let mut earlier = None;
        if let Some(i) = self
            .held
            .iter()
            .position(|h| h.batch.file.id == batch.file.id)
        {
            if self.held[i].batch.is_continued_by(&batch) {
                self.held[i].batch.append(batch);
                let at_once = at_once || is_large;
                return [self.grown(i, now, gap, at_once), None];
            }
            earlier = Some(self.held.swap_remove(i).batch);
        }
        let is_due_first = gap.is_none_or(|gap| is_due_before_next(now, now, gap));
        if !is_due_first && !at_once && !is_large {
            let mut batch = batch;
            // Room for what is gathered after it, appended in place (see `held`).
            batch
                .data
                .reserve((HELD_MAX + GATHER_BELOW).saturating_sub(batch.data.len()));
            self.held.push(Held { batch, since: now });
            return [earlier, None];
        }
        [earlier, Some(batch)]
    }

    /// The batch of `file` held, when it ends at file offset `end`: the lines read next are
    /// appended to it in place (no copy), then [`Gather::grew`] says how many.
    pub(crate) fn held(&mut self, file: &FileId, end: u64) -> Option<&mut Batch> {
        self.held
            .iter_mut()
            .map(|h| &mut h.batch)
            .find(|batch| batch.file.id == *file && batch.end == end)
    }

    /// `bytes` were appended at `now` to the held batch of `file` (see [`Gather::held`]):
    /// returns it when it is to go now (as [`Gather::take`] would hand out a batch it
    /// appended).
    pub(crate) fn grew(
        &mut self,
        file: &FileId,
        bytes: usize,
        now: Instant,
        at_once: bool,
    ) -> Option<Batch> {
        let gap = self.note_read(file, now);
        let is_large = bytes >= GATHER_BELOW;
        self.after_read(file, is_large);
        let i = self.held.iter().position(|h| h.batch.file.id == *file)?;
        self.grown(i, now, gap, at_once || is_large)
    }

    /// After a read of `file`: a large one (a catch-up's) goes at once, and so does the small
    /// one that ends the catch-up (held, it would only be late), like the first one after a
    /// quiet spell.
    fn after_read(&mut self, file: &FileId, is_large: bool) {
        if is_large {
            self.recent.retain(|(recent, _)| recent != file);
        }
    }

    /// The held batch `i`, more appended to it at `now`, `gap` after the read before: taken out
    /// when it is to go now.
    fn grown(
        &mut self,
        i: usize,
        now: Instant,
        gap: Option<Duration>,
        at_once: bool,
    ) -> Option<Batch> {
        let held = &self.held[i];
        let is_full = held.batch.data.len() >= HELD_MAX;
        let is_due = gap.is_none_or(|gap| is_due_before_next(held.since, now, gap));
        (at_once || is_full || is_due).then(|| self.held.swap_remove(i).batch)
    }

    /// Takes out the batches due at `now` (all of them with `all`), oldest first: those held
    /// [`GATHER`], and the oldest while more than [`HELD_TOTAL`] bytes are held.
    pub(crate) fn due(&mut self, now: Instant, all: bool) -> Vec<Batch> {
        self.held.sort_by_key(|h| h.since);
        let mut over = self
            .held
            .iter()
            .map(|h| h.batch.data.len())
            .sum::<usize>()
            .saturating_sub(HELD_TOTAL);
        let count = if all {
            self.held.len()
        } else {
            self.held
                .iter()
                .take_while(|h| {
                    let is_due = now >= h.since + GATHER || over > 0;
                    over = over.saturating_sub(h.batch.data.len());
                    is_due
                })
                .count()
        };
        self.held.drain(..count).map(|h| h.batch).collect()
    }

    /// When the oldest held batch is due; `None` when nothing is held.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.held.iter().map(|h| h.since + GATHER).min()
    }

    /// Notes that `file` was read at `now`; returns how long after the read before, when that
    /// was less than [`BUSY`] before (the file is busy).
    fn note_read(&mut self, file: &FileId, now: Instant) -> Option<Duration> {
        if let Some(entry) = self.recent.iter_mut().find(|(f, _)| f == file) {
            let gap = now.saturating_duration_since(entry.1);
            entry.1 = now;
            return (gap < BUSY).then_some(gap);
        }
        if self.recent.len() >= MAX_RECENT {
            self.recent.retain(|(_, at)| now < *at + BUSY);
            if self.recent.len() >= MAX_RECENT {
                self.recent.remove(0);
            }
        }
        self.recent.push((file.clone(), now));
        None
    }
}

/// Whether a batch held since `since` is to go with the read at `now`: the next read, if it
/// comes `gap` after this one as this one came after the last, would come once the batch is
/// [`GATHER`] old or less than a quarter of `gap` before (writes jitter), so the thread would
/// likely wake for the deadline alone.
fn is_due_before_next(since: Instant, now: Instant, gap: Duration) -> bool {
    now + gap + gap / 4 >= since + GATHER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(batches: &[Batch]) -> Vec<(u64, u64, String)> {
        batches
            .iter()
            .map(|b| {
                (
                    b.start,
                    b.end,
                    String::from_utf8_lossy(&b.data).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_busy_files_writes_go_out_together_in_order_and_a_lone_one_at_once() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let gather_ms = GATHER.as_millis() as u64;
        let mut gather = Gather::default();
        // A lone line after a quiet spell goes at once.
        let ready = gather.take(Batch::of(0, "a\n"), start, false);
        assert_eq!(ready, [None, Some(Batch::of(0, "a\n"))]);
        let end = std::cell::Cell::new(2);
        let take = |gather: &mut Gather, ms: u64, at_once: bool| {
            let batch = Batch::of(end.get(), "w\n");
            end.set(batch.end);
            let ready = gather.take(batch, at(ms), at_once);
            texts(&ready.into_iter().flatten().collect::<Vec<_>>())
        };
        // Then a write every 10 ms: held, and handed out with the read after which the next
        // one would come (give or take a quarter of the gap) once the first held one is
        // GATHER old: no wake-up for the deadline alone.
        let mut ms = 10;
        let ready = loop {
            let ready = take(&mut gather, ms, false);
            if !ready.is_empty() {
                break ready;
            }
            assert_eq!(gather.deadline(), Some(at(10) + GATHER));
            ms += 10;
        };
        assert!(
            ms < 10 + gather_ms && ms + 10 + 10 / 4 >= 10 + gather_ms,
            "{ms}"
        );
        let lines = "w\n".repeat(ms as usize / 10);
        assert_eq!(ready, [(2, end.get(), lines)]);
        assert_eq!(gather.deadline(), None);
        // A write soon after is held; the next one is late: it goes at its deadline.
        let soon = ms + 5;
        assert_eq!(take(&mut gather, soon, false), []);
        assert!(gather.due(at(soon + gather_ms - 1), false).is_empty());
        let due = gather.due(at(soon + gather_ms), false);
        assert_eq!(texts(&due), [(end.get() - 2, end.get(), "w\n".into())]);
        // Writes GATHER apart go at once (held, each would only wait for its deadline).
        let apart = soon + gather_ms;
        assert_eq!(
            take(&mut gather, apart, false),
            [(end.get() - 2, end.get(), "w\n".into())]
        );
        // Shutdown: everything held goes, and nothing more is held.
        assert_eq!(take(&mut gather, apart + 5, false), []);
        let ready = take(&mut gather, apart + 6, true);
        assert_eq!(ready, [(end.get() - 4, end.get(), "w\nw\n".into())]);
        assert!(gather.due(at(apart + 6), true).is_empty());
    }

    #[test]
    fn large_batches_and_other_files_are_not_held_behind_each_other() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut gather = Gather::default();
        let mut other = Batch::of(0, "x\n");
        other.file.id.generation = 2;
        assert!(gather.take(Batch::of(0, "a\n"), at(0), false)[1].is_some());
        assert!(gather.take(other.clone(), at(1), false)[1].is_some());
        // Both busy now: each file's batch is held on its own.
        assert_eq!(gather.take(Batch::of(2, "b\n"), at(5), false), [None, None]);
        let mut next = Batch::of(2, "y\n");
        next.file.id.generation = 2;
        assert_eq!(gather.take(next, at(6), false), [None, None]);
        // A large batch goes at once, appended to what was held before it.
        let big = "z".repeat(GATHER_BELOW) + "\n";
        let ready = gather.take(Batch::of(4, &big), at(7), false);
        assert_eq!(
            ready[0].as_ref().map(|b| (b.start, b.end)),
            Some((2, 4 + big.len() as u64))
        );
        assert!(ready[1].is_none());
        // The small batch that ends a catch-up goes at once too.
        let end = 4 + big.len() as u64;
        let ready = gather.take(Batch::of(end, "t\n"), at(7), false);
        assert_eq!(ready, [None, Some(Batch::of(end, "t\n"))]);
        // The other file's batch is due GATHER after it was read, not before.
        let gather_ms = GATHER.as_millis() as u64;
        assert!(gather.due(at(6 + gather_ms - 1), false).is_empty());
        let due = gather.due(at(6 + gather_ms), false);
        assert_eq!(texts(&due), [(2, 4, "y\n".into())]);
        // Small writes of a busy file past HELD_MAX go without waiting for GATHER.
        let line = "w".repeat(999) + "\n";
        let mut end = 0;
        let mut sent = Vec::new();
        for i in 0..=HELD_MAX / line.len() + 1 {
            let mut batch = Batch::of(end, &line);
            batch.file.id.generation = 3;
            end = batch.end;
            sent.extend(
                gather
                    .take(batch, at(50 + i as u64 / 100), false)
                    .into_iter()
                    .flatten(),
            );
        }
        assert_eq!(sent.len(), 2, "the first at once, then the gathered ones");
        assert!(sent[1].data.len() >= HELD_MAX && sent[1].end == end);
        // Many busy files hold at most HELD_TOTAL in all: the oldest go first.
        let mut gather = Gather::default();
        let files = HELD_TOTAL / (GATHER_BELOW - 1) + 1;
        let half = "h".repeat(GATHER_BELOW - 2) + "\n";
        for ms in [0, 1] {
            for file in 0..files {
                let mut batch = Batch::of(0, &half);
                batch.file.id.generation = 10 + file as u64;
                gather.take(batch, at(ms), false);
            }
        }
        let early = gather.due(at(2), false);
        assert_eq!(early.len(), 1);
        assert_eq!(early[0].file.id.generation, 10);
        let held: usize = gather.held.iter().map(|h| h.batch.data.len()).sum();
        assert!(held <= HELD_TOTAL, "{held}");
    }

    /// A tailer's downstream gathering with a clock of its own, recording what goes out.
    struct Gathering {
        gather: Gather,
        now: Instant,
        out: Vec<Batch>,
        /// Reads appended in place to a held batch.
        lent: usize,
    }

    impl crate::tail::Downstream for Gathering {
        fn send(&mut self, batch: Batch) -> bool {
            let ready = self.gather.take(batch, self.now, false);
            self.out.extend(ready.into_iter().flatten());
            true
        }

        fn held(&mut self, file: &FileId, end: u64) -> Option<&mut Batch> {
            self.gather.held(file, end)
        }

        fn grew(&mut self, file: &FileId, bytes: usize) -> bool {
            self.lent += 1;
            self.out
                .extend(self.gather.grew(file, bytes, self.now, false));
            true
        }
    }

    /// Each line handed out (its file offset and bytes): `out` in order, checked to follow
    /// each other without a gap.
    fn lines_of(out: &[Batch]) -> Vec<(u64, Vec<u8>)> {
        for pair in out.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "batches follow each other");
        }
        let lines = out
            .iter()
            .flat_map(|b| b.lines().map(|(at, l)| (at, l.to_vec())));
        lines.collect()
    }

    /// The complete lines of `bytes` (long ones cut to `max`), as the tailer must hand them
    /// out: read at once.
    fn lines_read_at_once(bytes: &[u8], max: usize) -> Vec<(u64, Vec<u8>)> {
        let mut reader = crate::tail::reader::LineReader::new(max, 0);
        let mut lines = Vec::new();
        reader.feed(bytes, &mut |s: crate::tail::reader::Segment<'_>| {
            let mut at = s.start;
            for line in s.bytes.split_inclusive(|&b| b == b'\n') {
                lines.push((at, line.to_vec()));
                at += line.len() as u64;
            }
        });
        lines
    }

    /// Follows a file written `writes` (bytes, then milliseconds until the next write),
    /// reading `budget` bytes per pass with lines cut at 16 bytes; returns what was handed
    /// out, the file's bytes and the number of reads appended in place.
    fn follow(writes: &[(Vec<u8>, u64)], budget: usize) -> (Vec<Batch>, Vec<u8>, usize) {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut file = std::fs::File::create(&path).unwrap();
        let source = crate::config::Source {
            name: "app".into(),
            paths: vec![path.display().to_string()],
            exclude: Vec::new(),
            start_at: crate::config::StartAt::Beginning,
            multiline: None,
            max_line_bytes: 16,
            timestamp: None,
        };
        let options = crate::config::TailOptions {
            read_budget_bytes: budget,
            poll_interval: Duration::ZERO,
            ..Default::default()
        };
        let counters = std::sync::Arc::default();
        let mut tailer = crate::tail::Tailer::new(vec![source], options, None, counters).unwrap();
        let mut sink = Gathering {
            gather: Gather::default(),
            now: Instant::now(),
            out: Vec::new(),
            lent: 0,
        };
        let mut written = Vec::new();
        for (bytes, gap) in writes {
            file.write_all(bytes).unwrap();
            written.extend_from_slice(bytes);
            while tailer.poll_once(sink.now, &mut sink).has_more {}
            sink.now += Duration::from_millis(*gap);
            let due = sink.gather.due(sink.now, false);
            sink.out.extend(due);
        }
        sink.out.extend(sink.gather.due(sink.now, true));
        (sink.out, written, sink.lent)
    }

    #[test]
    fn a_busy_files_reads_are_appended_in_place_to_its_held_batch() {
        let writes: Vec<(Vec<u8>, u64)> = (0..12)
            .map(|i| (format!("line {i}\npart").into_bytes(), 10))
            .collect();
        let (out, written, lent) = follow(&writes, 1 << 20);
        assert_eq!(lines_of(&out), lines_read_at_once(&written, 16));
        // The first read goes at once, the second is held, the next ones are appended to it
        // until it is GATHER old.
        assert!(lent >= 6, "{lent} reads appended in place");
        assert!(out.len() <= 5, "{} batches", out.len());
    }

    proptest::proptest! {
        #[test]
        fn gathered_batches_hold_the_lines_read_at_once(
            writes in proptest::collection::vec((
                proptest::sample::select(vec![
                    "a\n", "ERROR 42\n", "par", "tial\n", "\n",
                    "a line longer than sixteen bytes\n", "long, unfinished: 0123456789abcdef",
                ]),
                proptest::sample::select(vec![1_u64, 10, 45, 150]),
            ), 1..40),
            budget in proptest::sample::select(vec![8_usize, 64, 1 << 20]),
        ) {
            let writes: Vec<(Vec<u8>, u64)> =
                writes.into_iter().map(|(w, gap)| (w.as_bytes().to_vec(), gap)).collect();
            let (out, written, _) = follow(&writes, budget);
            proptest::prop_assert_eq!(lines_of(&out), lines_read_at_once(&written, 16));
        }
    }
}
