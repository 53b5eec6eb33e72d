//! Multiline events scanned as a batch: one search of the whole buffer for the literals of the
//! patterns as written, and only the events holding one meet the rules.
//!
//! [`Matcher::scan_record`] looks at each event on its own: a prefilter call per event, which
//! on a log where most lines are events of one line costs as much as the scan itself. Here the
//! events of a buffer (consecutive ranges, as the tailer and `logding scan` assemble them) are
//! handled like the lines of a chunk: the literal searcher runs over the buffer from event to
//! event, and an event without a candidate is only counted. The result is exactly that of
//! [`Matcher::scan_record`] on each event, hits shifted into the buffer (property-tested).

use std::ops::Range;

use super::prefilter::Cursors;
use super::{Hit, Matcher, ScanStats, trim_cr};

impl Matcher {
    /// [`Matcher::scan_record`] on each of `events` (ranges of `buffer`, in order, not
    /// overlapping), with the hits' ranges in `buffer`.
    pub fn scan_events(
        &self,
        buffer: &[u8],
        events: &[Range<usize>],
        out: &mut Vec<Hit>,
    ) -> ScanStats {
        let Some(fast) = &self.fast else {
            let mut total = ScanStats::default();
            for event in events {
                let first = out.len();
                let stats = self.scan_record(&buffer[event.clone()], out);
                for hit in &mut out[first..] {
                    hit.shift(event.start);
                }
                total.add(&stats);
            }
            return total;
        };
        let prefilter = &fast.records;
        let mut stats = ScanStats {
            lines: events.len() as u64,
            ..ScanStats::default()
        };
        let mut marks = prefilter.marks();
        let mut cursors = Cursors::default();
        let mut next = 0;
        while let Some(event) = events.get(next) {
            let Some(pos) = prefilter.next_candidate(buffer, event.start, &mut cursors) else {
                break;
            };
            // The event holding `pos`. A match found across two events, or a literal running
            // past its event's end, makes a candidate the exact regexes then reject: harmless;
            // an event holding a match always holds the earliest candidate after its start.
            next += events[next..].partition_point(|event| event.end <= pos);
            let Some(event) = events.get(next) else {
                break;
            };
            if pos >= event.start {
                let end = buffer[..event.end]
                    .strip_suffix(b"\n")
                    .map_or(event.end, <[u8]>::len);
                let line = event.start..trim_cr(buffer, event.start, end);
                self.match_candidate(fast, prefilter, buffer, line, &mut marks, out, &mut stats);
                next += 1;
            }
        }
        stats
    }
}
