//! Catch-up on all cores: one large chunk cut at line ends into about equal parts, each part
//! scanned on its own thread, the hits put back together in line order.
//!
//! A backlog (`logding scan`, or a first run of `run` over existing logs) is bound by the scan,
//! and the scan of one part of a chunk does not depend on any other part: lines are
//! independent, so a chunk cut at a `\n` scans to exactly the hits of the whole, shifted. This is
//! what ripgrep does across files, done inside one file. The parts run on rayon's pool (they
//! borrow the chunk and the matcher, no copies): its threads live as long as the process, so
//! the per-thread caches of the lazy DFAs stay warm from chunk to chunk (fresh threads per
//! chunk rebuilt them every time). Parts smaller than [`MIN_PART_BYTES`] are not worth a
//! hand-off and stay on the caller's thread.
//!
//! Pure: the caller says how many threads to use; no IO, no clock.

use std::ops::Range;

use rayon::prelude::*;

use super::{Hit, Matcher, ScanStats};

/// Below this many bytes per part, a chunk is scanned on the calling thread alone (a thread
/// costs tens of microseconds to start; 384 KiB takes about 300 µs to scan). A followed busy
/// file's gathered batch (`tail::gather`, up to 640 KiB) therefore stays on one thread.
pub(super) const MIN_PART_BYTES: usize = 384 << 10;

/// Chunks smaller than this are scanned on the calling thread, in one part: two parts of
/// `MIN_PART_BYTES` (384 KiB) are the fewest worth a split.
pub const SPLIT_FROM_BYTES: usize = 2 * MIN_PART_BYTES;

/// Parts per thread: a thread that finishes early (or was busy with something else, such as
/// counting the previous chunk's hits) takes a part left over instead of waiting.
const PARTS_PER_THREAD: usize = 2;

impl Matcher {
    /// [`Matcher::scan`] on up to `threads` threads: the same hits in the same order and the
    /// same counters.
    pub fn scan_parallel(&self, chunk: &[u8], threads: usize, out: &mut Vec<Hit>) -> ScanStats {
        let parts = split_at_lines(chunk, parts_for(threads), MIN_PART_BYTES);
        self.scan_parts(chunk, &parts, out)
    }

    /// Scans each part of `chunk` (consecutive ranges ending at a line end) on rayon's pool.
    pub(crate) fn scan_parts(
        &self,
        chunk: &[u8],
        parts: &[Range<usize>],
        out: &mut Vec<Hit>,
    ) -> ScanStats {
        match parts {
            [] => return ScanStats::default(),
            [only] => return self.scan(&chunk[only.clone()], out),
            _ => {}
        }
        let scan_part = |part: &Range<usize>| {
            let mut hits = Vec::new();
            let stats = self.scan(&chunk[part.clone()], &mut hits);
            for hit in &mut hits {
                hit.shift(part.start);
            }
            (hits, stats)
        };
        gather(parts.par_iter().map(scan_part).collect(), out)
    }
}

/// The parts' hits, in order, into `out`; their counters added up.
fn gather(scanned: Vec<(Vec<Hit>, ScanStats)>, out: &mut Vec<Hit>) -> ScanStats {
    let mut total = ScanStats::default();
    for (hits, stats) in scanned {
        out.extend(hits);
        total.add(&stats);
    }
    total
}

fn parts_for(threads: usize) -> usize {
    if threads <= 1 {
        1
    } else {
        threads * PARTS_PER_THREAD
    }
}

impl Hit {
    /// Moves the hit's ranges `by` bytes further (from a part of a buffer to the whole).
    pub fn shift(&mut self, by: usize) {
        self.line = self.line.start + by..self.line.end + by;
        for group in self.groups.iter_mut().chain(&mut self.spans).flatten() {
            *group = group.start + by..group.end + by;
        }
    }
}

/// Cuts `chunk` into at most `parts` consecutive ranges of at least `min_part` bytes (except a
/// lone one), each ending just after a `\n` (the last one at the end of `chunk`).
pub(crate) fn split_at_lines(chunk: &[u8], parts: usize, min_part: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, (chunk.len() / min_part.max(1)).max(1));
    let target = chunk.len().div_ceil(parts);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    while start < chunk.len() && out.len() + 1 < parts {
        let want = (start + target).min(chunk.len());
        let Some(end) = memchr::memchr(b'\n', &chunk[want - 1..]).map(|i| want + i) else {
            break;
        };
        if end >= chunk.len() {
            break;
        }
        out.push(start..end);
        start = end;
    }
    if start < chunk.len() || out.is_empty() {
        out.push(start..chunk.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_end_at_line_ends_and_cover_the_chunk() {
        let chunk = b"aaaa\nbb\ncccccc\nd\neeee";
        for parts in 1..6 {
            let ranges = split_at_lines(chunk, parts, 1);
            assert!(ranges.len() <= parts, "{ranges:?}");
            assert_eq!(ranges.first().unwrap().start, 0);
            assert_eq!(ranges.last().unwrap().end, chunk.len());
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(chunk[pair[0].end - 1], b'\n');
            }
        }
        let whole = |len: usize| std::iter::once(0..len).collect::<Vec<_>>();
        assert_eq!(split_at_lines(chunk, 4, 1000), whole(chunk.len()));
        assert_eq!(split_at_lines(b"", 4, 1), whole(0));
    }

    #[test]
    fn a_chunk_of_one_long_line_stays_whole() {
        let parts = split_at_lines(&[b'x'; 100], 4, 1);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0], 0..100);
    }
}
