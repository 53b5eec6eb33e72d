//! Reading, scanning and counting one file at the same time, on every core.
//!
//! A scan has three stages: reading (a copy out of the page cache, line splitting, cutting
//! multiline events), scanning (the matcher: most of the work, and parallel by parts), and
//! observing (the counts and the aggregator, in line order). Done one after the other, the first
//! and the last are a third of the work on one core, which caps two cores at about 1.5× one.
//! Here a reading thread hands owned blocks of lines (or of closed events) to the caller's
//! thread through a channel of one, the caller scans each on rayon's pool, and a counting
//! thread observes the blocks scanned, in order: the three stages overlap, with no barrier
//! between them, and the cores share all of it.
//!
//! With one thread (`scan -j1`) nothing is handed over: each read is scanned and observed in
//! place, as before (the baseline the speedup is measured against).
//!
//! Multiline events are cut where they were read ([`Cutter`]): only the event still open at
//! the end of a block is copied, into the room kept before the next block's lines.

use std::io::Read;
use std::ops::Range;
use std::sync::mpsc;

use crate::scan::{Hit, Matcher, ScanStats};
use crate::tail::multiline::Cutter;
use crate::tail::reader::{LineReader, Segment};

/// Bytes of lines gathered before a block is handed to the scanning threads (and the read size
/// then): a few rayon parts per thread, and a small memory bill (four blocks live at once).
pub(super) const BLOCK_BYTES: usize = 2 << 20;

/// Bytes of lines read at once for a multiline source on several threads: a block is read and
/// cut into events on one core, then scanned on another, and blocks that stay in a core's cache
/// (512 KiB of L2 on the bench machine) cost 10% less CPU there than blocks of [`BLOCK_BYTES`].
pub(super) const EVENT_BLOCK_BYTES: usize = 512 << 10;

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

    fn clear(&mut self) {
        self.range = 0..0;
        if let Some(events) = &mut self.events {
            events.clear();
        }
    }

    /// Cuts the block's lines into events: what `cutter` holds goes just before them (into
    /// the room kept there, or else into a new buffer), the events it closes stay, and the
    /// one left open goes to `cutter`.
    fn cut_events(&mut self, cutter: &mut Cutter) {
        let held = cutter.held();
        if held.len() <= self.range.start {
            let start = self.range.start - held.len();
            self.bytes[start..self.range.start].copy_from_slice(held);
            self.range.start = start;
        } else {
            let mut bytes = Vec::with_capacity(held.len() + self.range.len());
            bytes.extend_from_slice(held);
            bytes.extend_from_slice(self.data());
            self.range = 0..bytes.len();
            self.bytes = bytes;
        }
        let events = self.events.get_or_insert_with(Vec::new);
        events.clear();
        let closed = cutter.cut(&self.bytes[self.range.clone()], events);
        self.range.end = self.range.start + closed;
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

/// Where the reading side's blocks go: scanned at once, or handed to other threads.
pub(super) trait Blocks {
    /// An empty block to read into: one the scanning side is done with, or a new one.
    fn take(&mut self) -> Block;
    /// Hands over a block of complete lines or of closed events (not empty).
    fn send(&mut self, block: Block);
}

/// The reading side's state besides the line reader: the lines gathered by copy, the cutter.
pub(super) struct Producer {
    /// Cuts the blocks into events, for a source with `multiline:`.
    cutter: Option<Cutter>,
    /// Lines handed over by copy, gathered to [`BLOCK_BYTES`].
    lines: Block,
}

impl Producer {
    pub(super) fn new(cutter: Option<Cutter>) -> Producer {
        Producer {
            cutter,
            lines: Block::default(),
        }
    }

    /// Room a block keeps before its bytes: for a line begun in the previous read, and for the
    /// multiline event left open at the end of the previous block (else it is copied).
    fn room(&self, max_line_bytes: usize) -> usize {
        let line = max_line_bytes.saturating_add(1);
        let event = self
            .cutter
            .as_ref()
            .map_or(0, |c| c.max_event_bytes(max_line_bytes));
        line.min(MAX_ROOM) + event.min(MAX_HELD_ROOM)
    }

    /// Hands `block` (complete lines) over, cut into events for a multiline source.
    fn send(&mut self, mut block: Block, blocks: &mut impl Blocks) {
        match &mut self.cutter {
            Some(cutter) => block.cut_events(cutter),
            None => block.events = None,
        }
        if !block.range.is_empty() {
            blocks.send(block);
        }
    }

    /// Gathers complete lines by copy.
    fn lines(&mut self, lines: &[u8], blocks: &mut impl Blocks) {
        if self.lines.range.is_empty() {
            self.lines = blocks.take();
            self.lines.clear();
        }
        self.lines.extend(lines);
        if self.lines.range.len() >= BLOCK_BYTES {
            self.send_lines(blocks);
        }
    }

    /// Hands over the lines gathered by copy.
    fn send_lines(&mut self, blocks: &mut impl Blocks) {
        let lines = std::mem::take(&mut self.lines);
        if !lines.range.is_empty() {
            self.send(lines, blocks);
        }
    }

    /// The end of the file: the lines gathered go, and the event left open closes.
    fn end_of_file(&mut self, blocks: &mut impl Blocks) {
        self.send_lines(blocks);
        if let Some(cutter) = &mut self.cutter {
            let held = cutter.finish();
            if !held.is_empty() {
                let all = 0..held.len();
                blocks.send(Block {
                    range: all.clone(),
                    bytes: held,
                    events: Some(vec![all]),
                });
            }
        }
    }
}

/// The reading side of the pipeline: hands blocks over, the scanning side hands them back.
pub(super) struct Sender {
    full: mpsc::SyncSender<Block>,
    /// Blocks the scanning side is done with, for reuse.
    free: mpsc::Receiver<Block>,
}

impl Blocks for Sender {
    fn take(&mut self) -> Block {
        self.free.try_recv().unwrap_or_default()
    }

    fn send(&mut self, block: Block) {
        // The scanning side stops taking blocks only once this side is done (or panicked):
        // then there is nothing left to do with it.
        self.full.send(block).ok();
    }
}

/// Room kept before a block's bytes for the end of a line that began in the block before.
const MAX_ROOM: usize = 64 << 10;

/// Room kept before a block's bytes for a multiline event left open in the block before (a
/// larger one is copied with the block).
const MAX_HELD_ROOM: usize = 1 << 20;

/// A segment of one read: where it is in the read, or in `copied`.
enum Part {
    InPlace(Range<usize>),
    Copied(Range<usize>),
}

/// Reads `file` into blocks of `block_bytes` of complete lines (or of the multiline events
/// they make), cut to `max_line_bytes` as [`crate::tail::reader::read_lines`] cuts them, and
/// hands them to `blocks`, the last one at the end of the file.
///
/// Reads go straight into the block sent: of what the line reader hands out, runs of whole
/// lines are where they were read, and a line begun in the previous read (handed out as a
/// copy) is written just before them, in room kept for it. A read the reader cuts lines in is
/// copied instead (rare: lines longer than `max_line_bytes`).
pub(super) fn read_in_place(
    file: &mut impl Read,
    max_line_bytes: usize,
    block_bytes: usize,
    producer: &mut Producer,
    blocks: &mut impl Blocks,
) -> std::io::Result<()> {
    let room = producer.room(max_line_bytes);
    let mut reader = LineReader::new(max_line_bytes, 0);
    let (mut parts, mut copied) = (Vec::new(), Vec::new());
    loop {
        let mut block = blocks.take();
        block.clear();
        if block.bytes.len() != room + block_bytes {
            block.bytes = vec![0; room + block_bytes];
        }
        let n = match read_full(file, &mut block.bytes[room..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) => {
                producer.send_lines(blocks);
                return Err(err);
            }
        };
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
        producer.send_lines(blocks);
        match lay_out(&parts, room) {
            Some(range) => {
                block.bytes[range.start..range.start + copied.len()].copy_from_slice(&copied);
                block.range = range;
                producer.send(block, blocks);
            }
            None => {
                for part in &parts {
                    match part {
                        Part::InPlace(at) => {
                            producer.lines(&block.bytes[room..][at.clone()], blocks)
                        }
                        Part::Copied(at) => producer.lines(&copied[at.clone()], blocks),
                    }
                }
            }
        }
    }
    reader.flush_fragment(&mut |segment: Segment<'_>| producer.lines(segment.bytes, blocks));
    producer.end_of_file(blocks);
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

/// Runs `read` (the reading side, fed a [`Sender`]) on its own thread and `observe` on another,
/// while this thread scans each block read on rayon's pool: the three stages never wait for
/// each other but for a block to work on, so the cores stay busy whichever is slower at the
/// moment. Blocks are observed in the order they were read.
pub(super) fn run<E: Send>(
    matcher: &Matcher,
    threads: usize,
    read: impl FnOnce(&mut Sender) -> Result<(), E> + Send,
    mut observe: impl FnMut(&[u8], &[Hit], ScanStats) + Send,
) -> Result<(), E> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Block>(1);
    let (free_tx, free_rx) = mpsc::channel::<Block>();
    let (scanned_tx, scanned_rx) = mpsc::sync_channel::<(Block, Vec<Hit>, ScanStats)>(1);
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<Hit>>();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("logding-read".into())
            .spawn_scoped(scope, move || {
                read(&mut Sender {
                    full: full_tx,
                    free: free_rx,
                })
            })
            .expect("a thread can be started");
        let observer = std::thread::Builder::new()
            .name("logding-count".into())
            .spawn_scoped(scope, move || {
                for (block, hits, stats) in scanned_rx {
                    observe(block.data(), &hits, stats);
                    // Once the other sides are done, nobody needs them back.
                    spare_tx.send(hits).ok();
                    free_tx.send(block).ok();
                }
            })
            .expect("a thread can be started");
        for block in full_rx {
            let mut hits = spare_rx.try_recv().unwrap_or_default();
            let stats = block.scan(matcher, threads, &mut hits);
            if scanned_tx.send((block, hits, stats)).is_err() {
                break; // the counting thread panicked: its join says so
            }
        }
        drop(scanned_tx);
        observer.join().expect("the counting thread does not panic");
        reader.join().expect("the reading thread does not panic")
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Keeps the blocks sent.
    #[derive(Default)]
    struct Kept(Vec<Block>);

    impl Blocks for Kept {
        fn take(&mut self) -> Block {
            Block::default()
        }

        fn send(&mut self, block: Block) {
            assert!(!block.range.is_empty(), "empty blocks are not sent");
            self.0.push(block);
        }
    }

    /// The blocks [`read_in_place`] sends for `text`.
    fn blocks(
        text: &[u8],
        max_line_bytes: usize,
        block_bytes: usize,
        cutter: Option<Cutter>,
    ) -> Vec<Block> {
        let mut kept = Kept::default();
        let mut producer = Producer::new(cutter);
        read_in_place(
            &mut &text[..],
            max_line_bytes,
            block_bytes,
            &mut producer,
            &mut kept,
        )
        .expect("reading memory");
        kept.0
    }

    /// What [`crate::tail::reader::read_lines`] hands out, and what the blocks sent hold.
    fn both(text: &[u8], max_line_bytes: usize, block_bytes: usize) -> (Vec<u8>, Vec<u8>) {
        let mut expected = Vec::new();
        let mut buffer = vec![0; block_bytes];
        crate::tail::reader::read_lines(&mut &text[..], &mut buffer, max_line_bytes, &mut |l| {
            expected.extend_from_slice(l);
        })
        .expect("reading memory");
        let blocks = blocks(text, max_line_bytes, block_bytes, None);
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

        /// The events of the blocks are those the tailer's assembler makes of the lines
        /// `read_lines` hands out (a last line without its `\n` given one), whatever the
        /// reads, the cut lines and the events left open across blocks.
        #[test]
        fn blocks_hold_the_events_the_assembler_makes(
            lines in prop::collection::vec(prop::sample::select(vec![
                "2026-11-28 10:00:00 ERROR boom", "2026-11-28 ok", "\tat a.B(B.java:1)",
                "Caused by: java.io.IOException", "", "2026-11-28 a very long line indeed",
            ]), 0..40),
            end_of_file in prop::option::of(prop::sample::select(vec!["2026-11-28 x", "\tat y"])),
            max_line_bytes in 1usize..40,
            block_bytes in 1usize..90,
            max_lines in 1usize..6,
            max_bytes in 1usize..100,
        ) {
            let config = crate::config::Multiline {
                start: crate::rules::compile_pattern(r"^\d{4}-\d{2}-\d{2} ").unwrap(),
                max_lines,
                max_bytes,
                timeout: std::time::Duration::from_secs(1),
            };
            let mut text = lines.iter().flat_map(|l| [l, "\n"]).collect::<String>();
            text.push_str(end_of_file.unwrap_or_default());
            let text = text.as_bytes();
            let mut assembler = crate::tail::multiline::Assembler::new(config.clone());
            let mut expected = Vec::new();
            let mut emit = |e: crate::tail::multiline::Event<'_>| expected.push(e.bytes.to_vec());
            let now = std::time::Instant::now();
            let mut buffer = vec![0; block_bytes];
            crate::tail::reader::read_lines(&mut &text[..], &mut buffer, max_line_bytes, &mut |run| {
                for line in run.split_inclusive(|&b| b == b'\n') {
                    let mut line = line.to_vec();
                    if !line.ends_with(b"\n") {
                        line.push(b'\n');
                    }
                    assembler.push(&line, 0, 0, 0, now, &mut emit);
                }
            })
            .expect("reading memory");
            assembler.flush(&mut emit);
            let actual: Vec<Vec<u8>> = blocks(text, max_line_bytes, block_bytes, Some(Cutter::new(config)))
                .iter()
                .flat_map(|block| {
                    let events = block.events.as_ref().expect("blocks of events");
                    events.iter().map(|e| block.data()[e.clone()].to_vec()).collect::<Vec<_>>()
                })
                .collect();
            prop_assert_eq!(actual, expected);
        }
    }
}
