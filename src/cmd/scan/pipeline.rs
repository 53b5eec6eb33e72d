//! Reading, scanning and counting one file at the same time, on every core.
//!
//! A scan has three stages: reading (a copy out of the page cache, line splitting, multiline
//! assembly), scanning (the matcher: most of the work, and parallel by parts), and observing (the
//! counts and the aggregator, in line order). Done one after the other, the first and the last
//! are a third of the work on one core, which caps two cores at about 1.5× one. Here a reading
//! thread hands owned blocks of lines (or of closed events) to the caller's thread through a
//! channel of one, and each block is scanned on rayon's pool while the previous block's hits are
//! observed: the three stages overlap and the cores share all of it.
//!
//! With one thread (`scan -j1`) nothing is copied or handed over: each read is scanned and
//! observed in place, as before (the baseline the speedup is measured against).

use std::io::Read;
use std::ops::Range;
use std::sync::mpsc;
use std::time::Instant;

use crate::scan::{Hit, Matcher, ScanStats};
use crate::tail::multiline::{Assembler, Event};
use crate::tail::reader::{LineReader, Segment};

/// Bytes of lines gathered before a block is handed to the scanning threads (and the read size
/// then): a few rayon parts per thread, and a small memory bill (four blocks live at once).
pub(super) const BLOCK_BYTES: usize = 2 << 20;

/// Complete lines, or closed multiline events, owned.
#[derive(Default)]
pub(super) struct Block {
    /// Holds the block's bytes at `range` (a block read in place keeps room before them).
    bytes: Vec<u8>,
    range: Range<usize>,
    /// The events at these ranges of [`Block::data`]; `None`: the data are lines.
    events: Option<Vec<Range<usize>>>,
}

impl Block {
    /// The lines or events.
    pub(super) fn data(&self) -> &[u8] {
        &self.bytes[self.range.clone()]
    }

    /// Appends `bytes` to the data (of a block whose data end its buffer).
    fn extend(&mut self, bytes: &[u8]) {
        self.bytes.truncate(self.range.end);
        self.bytes.extend_from_slice(bytes);
        self.range.end = self.bytes.len();
    }

    fn push_event(&mut self, event: Event<'_>) {
        let start = self.range.len();
        self.extend(event.bytes);
        self.events
            .get_or_insert_with(Vec::new)
            .push(start..self.range.len());
    }

    pub(super) fn clear(&mut self) {
        self.range = 0..0;
        if let Some(events) = &mut self.events {
            events.clear();
        }
    }

    /// Scans the block on up to `threads` threads.
    pub(super) fn scan(&self, matcher: &Matcher, threads: usize, hits: &mut Vec<Hit>) -> ScanStats {
        hits.clear();
        match &self.events {
            Some(events) => matcher.scan_events_parallel(self.data(), events, threads, hits),
            None => matcher.scan_parallel(self.data(), threads, hits),
        }
    }
}

/// Where the reading side puts what it has: scanned in place, or handed to other threads.
pub(super) trait Consume {
    /// A run of complete lines (`\n`-terminated, except maybe the last one at end of file).
    fn lines(&mut self, lines: &[u8]);
    /// Closed events gathered in `block`: take them now (and clear it) or let more gather.
    fn events(&mut self, block: &mut Block);
    /// The end of the file, or of what could be read: everything gathered goes.
    fn finish(&mut self, block: &mut Block);
}

/// The reading side: complete lines straight to the consumer, or through the assembler.
pub(super) struct Producer {
    /// The tailer's assembler; its timeout never fires here (one fixed instant).
    assembler: Option<Assembler>,
    /// Offset of the next line (the assembler wants offsets; `scan` does not use them).
    offset: u64,
    started: Instant,
    /// A last line without its `\n` (end of file, or a cut line), with one added.
    scratch: Vec<u8>,
    /// The events closed so far and not yet taken.
    events: Block,
}

impl Producer {
    pub(super) fn new(assembler: Option<Assembler>) -> Producer {
        Producer {
            assembler,
            offset: 0,
            started: Instant::now(),
            scratch: Vec::new(),
            events: Block::default(),
        }
    }

    /// A run of complete lines, as [`crate::tail::reader::read_lines`] hands them out.
    pub(super) fn lines(&mut self, block: &[u8], consume: &mut impl Consume) {
        let Some(assembler) = &mut self.assembler else {
            consume.lines(block);
            return;
        };
        let events = &mut self.events;
        let mut emit = |event: Event<'_>| events.push_event(event);
        let mut start = 0;
        while start < block.len() {
            let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i + 1);
            let mut line = &block[start..end];
            if !line.ends_with(b"\n") {
                self.scratch.clear();
                self.scratch.extend_from_slice(line);
                self.scratch.push(b'\n');
                line = &self.scratch;
            }
            let next = self.offset + line.len() as u64;
            assembler.push(line, self.offset, next, 0, self.started, &mut emit);
            self.offset = next;
            start = end;
        }
        consume.events(&mut self.events);
    }

    /// The file was read to its end: the open event closes.
    pub(super) fn end_of_file(&mut self) {
        if let Some(assembler) = &mut self.assembler {
            let events = &mut self.events;
            assembler.flush(&mut |event: Event<'_>| events.push_event(event));
        }
    }

    /// Hands over what is left (after the end of the file, or a read error).
    pub(super) fn finish(&mut self, consume: &mut impl Consume) {
        consume.finish(&mut self.events);
    }
}

/// The reading side of the pipeline: hands blocks over, the scanning side hands them back.
pub(super) struct Sender {
    full: mpsc::SyncSender<Block>,
    /// Blocks the scanning side is done with, for reuse.
    free: mpsc::Receiver<Block>,
    /// Lines handed over by copy, gathered to [`BLOCK_BYTES`].
    lines: Block,
}

impl Sender {
    pub(super) fn new(full: mpsc::SyncSender<Block>, free: mpsc::Receiver<Block>) -> Sender {
        Sender {
            full,
            free,
            lines: Block::default(),
        }
    }

    /// An empty block of lines or of events: one the scanning side is done with, or a new one.
    fn take(&mut self, events: bool) -> Block {
        let mut block = self.free.try_recv().unwrap_or_default();
        block.clear();
        if events {
            block.events.get_or_insert_with(Vec::new);
        } else {
            block.events = None;
        }
        block
    }

    /// Hands `block` over, unless it is empty.
    fn send(&mut self, block: Block) {
        if !block.range.is_empty() {
            // The scanning side stops taking blocks only once this side is done (or panicked):
            // then there is nothing left to do with it.
            self.full.send(block).ok();
        }
    }

    /// Hands over the lines gathered by copy.
    fn send_lines(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        self.send(lines);
    }
}

impl Consume for Sender {
    fn lines(&mut self, lines: &[u8]) {
        if self.lines.range.is_empty() {
            self.lines = self.take(false);
        }
        self.lines.extend(lines);
        if self.lines.range.len() >= BLOCK_BYTES {
            self.send_lines();
        }
    }

    fn events(&mut self, block: &mut Block) {
        if block.range.len() >= BLOCK_BYTES {
            let next = self.take(true);
            let full = std::mem::replace(block, next);
            self.send(full);
        }
    }

    fn finish(&mut self, block: &mut Block) {
        self.send_lines();
        let last = std::mem::take(block);
        self.send(last);
    }
}

/// Room kept before a block's bytes for the end of a line that began in the block before.
const MAX_ROOM: usize = 64 << 10;

/// A segment of one read: where it is in the read, or in `copied`.
enum Part {
    InPlace(Range<usize>),
    Copied(Range<usize>),
}

/// Reads `file` into blocks of complete lines, cut to `max_line_bytes` as
/// [`crate::tail::reader::read_lines`] cuts them, and sends them; the end of the file, or of
/// what could be read, stays with `sender` (see [`Consume::finish`]).
///
/// Reads go straight into the block sent: of what the line reader hands out, runs of whole
/// lines are where they were read, and a line begun in the previous read (handed out as a
/// copy) is written just before them, in room kept for it. A read the reader cuts lines in is
/// copied instead (rare: lines longer than `max_line_bytes`).
pub(super) fn read_in_place(
    file: &mut impl Read,
    max_line_bytes: usize,
    sender: &mut Sender,
) -> std::io::Result<()> {
    read_blocks_of(file, max_line_bytes, BLOCK_BYTES, sender)
}

fn read_blocks_of(
    file: &mut impl Read,
    max_line_bytes: usize,
    block_bytes: usize,
    sender: &mut Sender,
) -> std::io::Result<()> {
    let room = max_line_bytes.saturating_add(1).min(MAX_ROOM);
    let mut reader = LineReader::new(max_line_bytes, 0);
    let (mut parts, mut copied) = (Vec::new(), Vec::new());
    loop {
        let mut block = sender.take(false);
        if block.bytes.len() != room + block_bytes {
            block.bytes = vec![0; room + block_bytes];
        }
        let n = read_full(file, &mut block.bytes[room..])?;
        if n == 0 {
            break;
        }
        let chunk = &block.bytes[room..room + n];
        parts.clear();
        copied.clear();
        reader.feed(chunk, &mut |segment: Segment<'_>| {
            if segment.bytes.is_empty() {
                return;
            }
            let len = segment.bytes.len();
            let at = (segment.bytes.as_ptr() as usize).wrapping_sub(chunk.as_ptr() as usize);
            parts.push(if at < n && len <= n - at {
                Part::InPlace(at..at + len)
            } else {
                copied.extend_from_slice(segment.bytes);
                Part::Copied(copied.len() - len..copied.len())
            });
        });
        // In order: what was gathered by copy goes first.
        sender.send_lines();
        match lay_out(&parts, room) {
            Some(range) => {
                block.bytes[range.start..range.start + copied.len()].copy_from_slice(&copied);
                block.range = range;
                sender.send(block);
            }
            None => {
                for part in &parts {
                    match part {
                        Part::InPlace(at) => sender.lines(&block.bytes[room..][at.clone()]),
                        Part::Copied(at) => sender.lines(&copied[at.clone()]),
                    }
                }
            }
        }
    }
    reader.flush_fragment(&mut |segment: Segment<'_>| sender.lines(segment.bytes));
    Ok(())
}

/// Where one read's parts make one run in its block (`room` bytes of room, then the read):
/// at most one copied part, first, written just before in-place parts that follow each other.
fn lay_out(parts: &[Part], room: usize) -> Option<Range<usize>> {
    let (copied, rest) = match parts.split_first() {
        Some((Part::Copied(copied), rest)) => (copied.len(), rest),
        _ => (0, parts),
    };
    let mut run: Option<Range<usize>> = None;
    for part in rest {
        let Part::InPlace(at) = part else {
            return None;
        };
        match &mut run {
            None => run = Some(at.clone()),
            Some(run) if run.end == at.start => run.end = at.end,
            Some(_) => return None,
        }
    }
    let run = run.map_or(room..room, |run| room + run.start..room + run.end);
    (copied <= run.start).then(|| run.start - copied..run.end)
}

/// Reads until `buffer` is full or the file ends; returns the bytes read.
fn read_full(file: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Runs `read` (the reading side, fed a [`Sender`]) on its own thread while this thread scans
/// each block it sends on rayon's pool and `observe`s the hits of the block before, in order.
pub(super) fn run<E: Send>(
    matcher: &Matcher,
    threads: usize,
    read: impl FnOnce(&mut Sender) -> Result<(), E> + Send,
    mut observe: impl FnMut(&[u8], &[Hit], ScanStats) + Send,
) -> Result<(), E> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Block>(1);
    let (free_tx, free_rx) = mpsc::channel::<Block>();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("logding-read".into())
            .spawn_scoped(scope, move || read(&mut Sender::new(full_tx, free_rx)))
            .expect("a thread can be started");
        let mut previous: Option<(Block, Vec<Hit>, ScanStats)> = None;
        let mut spare_hits = Vec::new();
        for block in full_rx {
            let mut hits = std::mem::take(&mut spare_hits);
            let (stats, ()) = rayon::join(
                || block.scan(matcher, threads, &mut hits),
                || {
                    if let Some((done, done_hits, stats)) = previous.take() {
                        observe(done.data(), &done_hits, stats);
                        spare_hits = done_hits;
                        // The reading side may have finished: then nobody needs it back.
                        free_tx.send(done).ok();
                    }
                },
            );
            previous = Some((block, hits, stats));
        }
        if let Some((done, done_hits, stats)) = previous {
            observe(done.data(), &done_hits, stats);
        }
        reader.join().expect("the reading thread does not panic")
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What [`crate::tail::reader::read_lines`] hands out, and what the blocks sent hold.
    fn both(text: &[u8], max_line_bytes: usize, block_bytes: usize) -> (Vec<u8>, Vec<u8>) {
        let mut expected = Vec::new();
        let mut buffer = vec![0; block_bytes];
        crate::tail::reader::read_lines(&mut &text[..], &mut buffer, max_line_bytes, &mut |l| {
            expected.extend_from_slice(l);
        })
        .expect("reading memory");
        let (full, blocks) = mpsc::sync_channel(text.len() + 2);
        let (_free, free) = mpsc::channel();
        let mut sender = Sender::new(full, free);
        read_blocks_of(&mut &text[..], max_line_bytes, block_bytes, &mut sender)
            .expect("reading memory");
        sender.finish(&mut Block::default());
        drop(sender);
        let blocks: Vec<Block> = blocks.iter().collect();
        if let Some((_, whole)) = blocks.split_last() {
            assert!(
                whole.iter().all(|b| b.data().ends_with(b"\n")),
                "blocks end at line ends"
            );
        }
        let actual = blocks.iter().flat_map(|b| b.data().to_vec()).collect();
        (expected, actual)
    }

    #[test]
    fn a_line_across_reads_is_written_before_the_next_run() {
        let (expected, actual) = both(b"aaaa\nbbbbbbb\ncc\ndd\neeeeeeeee\nf", 100, 6);
        assert_eq!(actual, expected);
        assert_eq!(actual, b"aaaa\nbbbbbbb\ncc\ndd\neeeeeeeee\nf");
    }

    proptest! {
        #[test]
        fn blocks_hold_what_the_line_reader_hands_out(
            lines in prop::collection::vec(("[a-c]{0,40}", any::<bool>()), 0..30),
            max_line_bytes in 1usize..30,
            block_bytes in 1usize..50,
        ) {
            let mut text = Vec::new();
            for (line, newline) in &lines {
                text.extend_from_slice(line.as_bytes());
                if *newline {
                    text.push(b'\n');
                }
            }
            let (expected, actual) = both(&text, max_line_bytes, block_bytes);
            prop_assert_eq!(actual, expected);
        }
    }
}
