//! A file on every core: cut into blocks at fixed offsets, each block read (`pread`) and
//! scanned by the thread that takes it, the blocks observed in file order. A multiline
//! source's blocks cut their own events; the events across two blocks are joined when they are
//! observed (see `events`).
//!
//! Where a line starts depends only on the byte before it, so a block finds its lines without
//! the blocks before it: it owns the lines that start within its bytes, reads on past its end to
//! finish the last one, and cuts long lines as [`LineReader`] does (it runs one from its first
//! line on). The blocks' lines end to end are what reading the file from its beginning hands
//! out, up to a last line without its `\n`: that one, and whatever the file grew by meanwhile,
//! is read after the blocks, from where their lines end.
//!
//! Against one thread reading for the scanning threads (how multiline files were read
//! before, at 1.4–1.6 cores): the copy out of the page cache is shared by every core instead of being a stage
//! of its own, a block is scanned by the core that read it while it is still in that core's
//! cache, and there is no barrier between blocks: a thread that is done takes the next block.
//! The blocks done are observed (counted, aggregated) in file order by whichever pool thread
//! finds the next one in line ready, not by a thread of their own: a third busy thread on two
//! cores measured 1.6 cores obtained, this 1.8.
//!
//! Not `mmap`: a log truncated while it is scanned (copytruncate) would end the process with
//! SIGBUS. Here a short read is an end of file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use super::events::{BlockEvents, Carry};
use crate::config::Multiline;
use crate::scan::{Hit, Matcher, ScanStats};
use crate::tail::reader::{LineReader, Segment, read_lines};

/// Bytes per block: small enough for a block read and scanned to stay in a core's cache (this
/// machine's L2 is 1 MiB), large enough that handing one over (tens of microseconds) is noise.
pub(super) const BLOCK_BYTES: usize = 512 << 10;
/// How far a block reads past its end at first to finish its last line (more if it is longer).
const OVERRUN: usize = 4 << 10;
/// Blocks read ahead of the next one to observe, per thread: a slow block (or a thread the
/// kernel paused) holds up the others only after this many, and memory stays bounded.
const AHEAD_PER_THREAD: usize = 4;

/// One block: its lines, read and scanned.
#[derive(Default)]
struct Block {
    /// What was read: the byte before the block, the block, and some past it.
    bytes: Vec<u8>,
    /// The block's lines, when they are not one run of `bytes` (a cut line, a last line read
    /// on in pieces).
    copied: Vec<u8>,
    lines: Lines,
    /// A multiline source's events.
    events: BlockEvents,
    hits: Vec<Hit>,
    stats: ScanStats,
    /// File offset just past the block's last complete line (`None`: no line starts in it).
    end: Option<u64>,
    error: Option<io::Error>,
}

#[derive(Default)]
enum Lines {
    #[default]
    None,
    InPlace(Range<usize>),
    Copied,
}

/// A segment the line reader handed out: where it is in [`Block::bytes`], or in the copy.
enum Part {
    InPlace(Range<usize>),
    Copied(Range<usize>),
}

impl Lines {
    /// The block's lines, in its `bytes` or `copied`.
    fn of<'a>(&self, bytes: &'a [u8], copied: &'a [u8]) -> &'a [u8] {
        match self {
            Lines::None => &[],
            Lines::InPlace(range) => &bytes[range.clone()],
            Lines::Copied => copied,
        }
    }
}

impl Block {
    /// Reads the lines that start at file offsets `start..start + len` and scans them (or the
    /// events cut from its first start line on).
    fn fill(&mut self, file: &File, start: u64, plan: &Plan<'_>) {
        self.hits.clear();
        self.stats = ScanStats::default();
        if let Err(err) = self.read(file, start, plan) {
            self.error = Some(err);
            return;
        }
        let lines = self.lines.of(&self.bytes, &self.copied);
        self.stats = match plan.multiline {
            None => plan.matcher.scan(lines, &mut self.hits),
            Some(config) => (self.events).cut_and_scan(config, plan.matcher, lines, &mut self.hits),
        };
    }

    fn read(&mut self, file: &File, start: u64, plan: &Plan<'_>) -> io::Result<()> {
        self.lines = Lines::None;
        self.end = None;
        let (len, overrun) = (plan.block_bytes(), plan.overrun());
        let lead = usize::from(start > 0);
        let from = start - lead as u64;
        let want = lead + len + overrun;
        if self.bytes.len() < want {
            self.bytes.resize(want, 0);
        }
        let n = read_full_at(file, &mut self.bytes[..want], from)?;
        let bytes = &self.bytes[..n];
        // The first line starting in the block: just after the first `\n` from the byte before.
        let last = lead + len - 1;
        let first = match lead {
            0 => 0,
            _ => match memchr::memchr(b'\n', &bytes[..n.min(last)]) {
                Some(i) => i + 1,
                None => return Ok(()),
            },
        };
        if first >= n {
            return Ok(());
        }
        let mut reader = LineReader::new(plan.max_line_bytes, from + first as u64);
        let mut parts = Vec::new();
        let copied = &mut self.copied;
        copied.clear();
        let mut collect = |segment: Segment<'_>| {
            let at = (segment.bytes.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
            let len = segment.bytes.len();
            parts.push(if at < n && len <= n - at {
                Part::InPlace(at..at + len)
            } else {
                copied.extend_from_slice(segment.bytes);
                Part::Copied(copied.len() - len..copied.len())
            });
        };
        // The last line starting in the block ends at the first `\n` from the block's last byte.
        match bytes
            .get(last..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
        {
            Some(i) => reader.feed(&bytes[first..=last + i], &mut collect),
            None => {
                reader.feed(&bytes[first..], &mut collect);
                if n == want {
                    let mut piece = vec![0; overrun * 16];
                    read_on(file, from + n as u64, &mut piece, &mut reader, &mut collect)?;
                }
            }
        }
        self.end = Some(reader.line_start());
        self.lines = match parts.as_slice() {
            [] => Lines::None,
            [Part::InPlace(range)] => Lines::InPlace(range.clone()),
            _ => {
                let mut lines = Vec::new();
                for part in &parts {
                    lines.extend_from_slice(match part {
                        Part::InPlace(range) => &bytes[range.clone()],
                        Part::Copied(range) => &self.copied[range.clone()],
                    });
                }
                self.copied = lines;
                Lines::Copied
            }
        };
        Ok(())
    }
}

/// Feeds `reader` the file from `at` on, up to and with the next `\n` (or to the end).
fn read_on(
    file: &File,
    mut at: u64,
    piece: &mut [u8],
    reader: &mut LineReader,
    emit: &mut impl FnMut(Segment<'_>),
) -> io::Result<()> {
    loop {
        let n = read_full_at(file, piece, at)?;
        let end = memchr::memchr(b'\n', &piece[..n]).map(|i| i + 1);
        reader.feed(&piece[..end.unwrap_or(n)], emit);
        if end.is_some() || n < piece.len() {
            return Ok(());
        }
        at += n as u64;
    }
}

/// Reads at `offset` until `buffer` is full or the file ends; returns the bytes read.
fn read_full_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// How a file is scanned.
pub(super) struct Plan<'a> {
    pub(super) matcher: &'a Matcher,
    pub(super) max_line_bytes: usize,
    /// [`BLOCK_BYTES`] (tests: a few).
    pub(super) block_bytes: usize,
    /// Lines are grouped into these events.
    pub(super) multiline: Option<&'a Multiline>,
}

impl Plan<'_> {
    fn block_bytes(&self) -> usize {
        self.block_bytes.max(1)
    }

    fn overrun(&self) -> usize {
        OVERRUN.min(self.block_bytes())
    }

    fn offset_of(&self, block: usize) -> u64 {
        block as u64 * self.block_bytes() as u64
    }
}

/// Reads and scans `file` (`size` bytes when it was opened) block by block, on `pool` (`None`:
/// on this thread), and `observe`s each block's lines (or events) and hits in file order; then
/// reads on to the end of the file. What was read before an error is observed.
pub(super) fn scan_file(
    file: &File,
    size: u64,
    plan: &Plan<'_>,
    pool: Option<&rayon::ThreadPool>,
    mut observe: impl FnMut(&[u8], &[Hit], ScanStats) + Send,
) -> io::Result<()> {
    let blocks = size.div_ceil(plan.block_bytes() as u64);
    let blocks = usize::try_from(blocks).unwrap_or(usize::MAX);
    let mut end = 0;
    let mut carry = plan.multiline.map(Carry::new);
    let mut take = |block: &mut Block| -> io::Result<()> {
        if let Some(err) = block.error.take() {
            return Err(err);
        }
        end = block.end.unwrap_or(end);
        let stats = std::mem::take(&mut block.stats);
        let lines = block.lines.of(&block.bytes, &block.copied);
        match &mut carry {
            None => observe(lines, &block.hits, stats),
            Some(carry) => {
                let events = &mut block.events;
                carry.block(
                    plan.matcher,
                    lines,
                    events,
                    &block.hits,
                    stats,
                    &mut observe,
                );
            }
        }
        Ok(())
    };
    match pool {
        Some(pool) if blocks > 1 => in_workers(file, blocks, plan, pool, &mut take)?,
        _ => {
            let mut block = Block::default();
            for i in 0..blocks {
                block.fill(file, plan.offset_of(i), plan);
                take(&mut block)?;
            }
        }
    }
    // A last line without its `\n`, and what was written since the file was opened.
    let mut hits = Vec::new();
    let mut buffer = vec![0; plan.block_bytes()];
    let mut rest = ReadAt { file, at: end };
    read_lines(
        &mut rest,
        &mut buffer,
        plan.max_line_bytes,
        &mut |lines| match &mut carry {
            None => {
                hits.clear();
                let stats = plan.matcher.scan(lines, &mut hits);
                observe(lines, &hits, stats);
            }
            Some(carry) => carry.lines(plan.matcher, lines, &mut observe),
        },
    )?;
    if let Some(carry) = &mut carry {
        carry.finish(plan.matcher, &mut observe);
    }
    Ok(())
}

/// What the pool threads share: the blocks done, the next one to observe.
struct Order {
    /// The next block to observe.
    next: usize,
    /// Blocks done and not yet observed.
    ready: BTreeMap<usize, Block>,
    /// A thread is observing blocks (the others leave theirs in `ready`).
    taking: bool,
    /// Stop: a block could not be read, or a thread panicked.
    stop: bool,
    failed: Option<io::Error>,
    panicked: Option<Box<dyn std::any::Any + Send>>,
    /// Blocks observed, for reuse (their buffers stay allocated).
    free: Vec<Block>,
}

/// The blocks read and scanned on `pool`'s threads, each observed (`take`) in file order by the
/// thread that finds it next in line.
fn in_workers(
    file: &File,
    blocks: usize,
    plan: &Plan<'_>,
    pool: &rayon::ThreadPool,
    take: &mut (impl FnMut(&mut Block) -> io::Result<()> + Send),
) -> io::Result<()> {
    let threads = pool.current_num_threads();
    let ahead = threads * AHEAD_PER_THREAD;
    let claimed = AtomicUsize::new(0);
    let order = Mutex::new(Order {
        next: 0,
        ready: BTreeMap::new(),
        taking: false,
        stop: false,
        failed: None,
        panicked: None,
        free: Vec::new(),
    });
    // Signalled when `next` moves on, or on a stop.
    let advanced = Condvar::new();
    let lock = || order.lock().expect("no thread panics holding it");
    // Taken by one thread at a time (the one with `taking` set): never waited for.
    let take = Mutex::new(take);
    let work = || {
        loop {
            let i = claimed.fetch_add(1, Ordering::Relaxed);
            if i >= blocks {
                return;
            }
            let mut block = {
                let mut state = lock();
                while !state.stop && i >= state.next + ahead {
                    state = advanced.wait(state).expect("no thread panics holding it");
                }
                if state.stop {
                    return;
                }
                state.free.pop().unwrap_or_default()
            };
            let filled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                block.fill(file, plan.offset_of(i), plan);
            }));
            let mut state = lock();
            if let Err(panic) = filled {
                state.panic(panic);
                advanced.notify_all();
                return;
            }
            state.ready.insert(i, block);
            if state.taking {
                continue;
            }
            state.taking = true;
            while !state.stop {
                let next = state.next;
                let Some(mut block) = state.ready.remove(&next) else {
                    break;
                };
                drop(state);
                let taken = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let mut take = take.lock().expect("a panic in it stops the scan");
                    take(&mut block)
                }));
                state = lock();
                state.next += 1;
                state.free.push(block);
                match taken {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        state.failed = Some(err);
                        state.stop = true;
                    }
                    Err(panic) => state.panic(panic),
                }
                advanced.notify_all();
            }
            state.taking = false;
        }
    };
    pool.in_place_scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| work());
        }
    });
    let state = order.into_inner().expect("no thread panics holding it");
    if let Some(panic) = state.panicked {
        std::panic::resume_unwind(panic);
    }
    state.failed.map_or(Ok(()), Err)
}

impl Order {
    fn panic(&mut self, panic: Box<dyn std::any::Any + Send>) {
        self.panicked.get_or_insert(panic);
        self.stop = true;
    }
}

/// Reads a file from an offset on.
struct ReadAt<'a> {
    file: &'a File,
    at: u64,
}

impl io::Read for ReadAt<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buffer, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::rules::{Rule, RuleDef, RuleSet};

    /// The lines and the hits' lines of `text` as `scan_file` observes them, on `threads`.
    fn scanned(text: &[u8], plan: &Plan<'_>, threads: usize) -> (Vec<u8>, Vec<Vec<u8>>, u64) {
        let (mut lines, mut hit_lines, mut count) = (Vec::new(), Vec::new(), 0);
        observed(text, plan, threads, |bytes, hits, stats| {
            lines.extend_from_slice(bytes);
            hit_lines.extend(hits.iter().map(|hit| bytes[hit.line.clone()].to_vec()));
            count += stats.lines;
        });
        (lines, hit_lines, count)
    }

    /// `scan_file` over a file holding `text`, on `threads` threads.
    pub(in crate::cmd::scan) fn observed(
        text: &[u8],
        plan: &Plan<'_>,
        threads: usize,
        observe: impl FnMut(&[u8], &[Hit], ScanStats) + Send,
    ) {
        let mut file = tempfile::tempfile().expect("a temporary file");
        file.write_all(text).expect("writing it");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .ok();
        let pool = pool.as_ref().filter(|_| threads > 1);
        scan_file(&file, text.len() as u64, plan, pool, observe).expect("reading a temporary file");
    }

    fn matcher() -> Matcher {
        let rule = Rule::compile(&RuleDef {
            name: "b".into(),
            patterns: vec!["b".into()],
            ..RuleDef::default()
        })
        .expect("a valid rule");
        Matcher::new(Arc::new(RuleSet::new(vec![rule])), "app")
    }

    proptest! {
        #[test]
        fn blocks_hand_out_what_reading_from_the_start_does(
            lines in prop::collection::vec("[a-c]{0,40}\n?", 0..30),
            max_line_bytes in 1usize..30,
            block_bytes in 1usize..50,
            threads in 1usize..4,
        ) {
            // Lines of all lengths around the blocks' and the cut's, some run together.
            let text = lines.concat().into_bytes();
            let matcher = matcher();
            let mut whole = Vec::new();
            read_lines(&mut &text[..], &mut [0; 7], max_line_bytes, &mut |l| {
                whole.extend_from_slice(l);
            })
            .expect("reading memory");
            let mut hits = Vec::new();
            let stats = matcher.scan(&whole, &mut hits);
            let hit_lines: Vec<Vec<u8>> = hits.iter().map(|h| whole[h.line.clone()].to_vec()).collect();
            let plan = Plan { matcher: &matcher, max_line_bytes, block_bytes, multiline: None };
            let (lines, blocks_hit_lines, count) = scanned(&text, &plan, threads);
            prop_assert_eq!(lines, whole);
            prop_assert_eq!(blocks_hit_lines, hit_lines);
            prop_assert_eq!(count, stats.lines);
        }
    }
}
