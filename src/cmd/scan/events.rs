//! Multiline events on every core: each block cuts its own events, the blocks' seams are
//! joined in file order.
//!
//! Whether a line begins an event depends on the event open before it (`max_lines`,
//! `max_bytes`), except for a line matching `start`: that one always begins one. So a block
//! (see `blocks`) cuts its events from its first start line on without the blocks before it
//! ([`Cutter::cut_from_start`]), on the pool thread that read it, and scans them there. What
//! comes before that line (the block's head) continues the event left open by the blocks
//! before: when the blocks are observed in file order, the [`Carry`] puts the head after the
//! open event, cuts that with the open event's own counts (its caps), scans the events it
//! closes, and takes the block's open event as its own. A block with no start line at all
//! (inside an event longer than a block) is all head: cut and scanned in order, on one thread,
//! as reading from the beginning would. The events are those of the tailer's assembler over
//! the same lines (property-tested in `blocks`).

use std::ops::Range;

use crate::config::Multiline;
use crate::scan::{Hit, Matcher, ScanStats};
use crate::tail::multiline::Cutter;

/// A block's own events: cut from its first start line on.
#[derive(Default)]
pub(super) struct BlockEvents {
    /// The events closed in the block: ranges of its lines.
    events: Vec<Range<usize>>,
    /// Where the block's first start line is in its lines (their length: none).
    head: usize,
    /// Holds the event left open at the block's end (built at the block's first use).
    cutter: Option<Cutter>,
}

impl BlockEvents {
    /// Cuts `lines`, a block's complete lines, and scans the events closed in them.
    pub(super) fn cut_and_scan(
        &mut self,
        config: &Multiline,
        matcher: &Matcher,
        lines: &[u8],
        hits: &mut Vec<Hit>,
    ) -> ScanStats {
        let cutter = self
            .cutter
            .get_or_insert_with(|| Cutter::new(config.clone()));
        self.events.clear();
        self.head = cutter.cut_from_start(lines, &mut self.events);
        matcher.scan_events(lines, &self.events, hits)
    }
}

/// The event left open by the blocks observed so far, and the buffers to join it with the
/// next block's head.
pub(super) struct Carry {
    cutter: Cutter,
    joined: Vec<u8>,
    events: Vec<Range<usize>>,
    hits: Vec<Hit>,
}

impl Carry {
    pub(super) fn new(config: &Multiline) -> Carry {
        Carry {
            cutter: Cutter::new(config.clone()),
            joined: Vec::new(),
            events: Vec::new(),
            hits: Vec::new(),
        }
    }

    /// Observes the next block in file order: the events its head closes, then its own
    /// (`lines`, scanned to `hits` and `stats`).
    pub(super) fn block(
        &mut self,
        matcher: &Matcher,
        lines: &[u8],
        block: &mut BlockEvents,
        hits: &[Hit],
        stats: ScanStats,
        observe: &mut impl FnMut(&[u8], &[Hit], ScanStats),
    ) {
        let has_start = block.head < lines.len();
        self.cut(&lines[..block.head], has_start);
        self.observe(matcher, observe);
        if has_start {
            // The block's open event is the one open now; the block gets this cutter back.
            let cutter = block
                .cutter
                .as_mut()
                .expect("a block with events has a cutter");
            std::mem::swap(&mut self.cutter, cutter);
            observe(lines, hits, stats);
        }
    }

    /// Observes complete lines that follow the blocks (the end of the file), in order.
    pub(super) fn lines(
        &mut self,
        matcher: &Matcher,
        lines: &[u8],
        observe: &mut impl FnMut(&[u8], &[Hit], ScanStats),
    ) {
        self.cut(lines, false);
        self.observe(matcher, observe);
    }

    /// The end of the file: the open event closes and is observed.
    pub(super) fn finish(
        &mut self,
        matcher: &Matcher,
        observe: &mut impl FnMut(&[u8], &[Hit], ScanStats),
    ) {
        self.joined = self.cutter.finish();
        self.events.clear();
        if !self.joined.is_empty() {
            self.events.push(0..self.joined.len());
        }
        self.observe(matcher, observe);
    }

    /// Cuts the open event followed by `lines` into [`Carry::events`] of [`Carry::joined`];
    /// `closes`: the line after them begins an event, the one open closes too.
    fn cut(&mut self, lines: &[u8], closes: bool) {
        self.joined.clear();
        self.joined.extend_from_slice(self.cutter.held());
        self.joined.extend_from_slice(lines);
        self.events.clear();
        let closed = self.cutter.cut(&self.joined, &mut self.events);
        if closes && closed < self.joined.len() {
            self.events.push(closed..self.joined.len());
        }
    }

    /// Scans and observes the events cut, if any.
    fn observe(&mut self, matcher: &Matcher, observe: &mut impl FnMut(&[u8], &[Hit], ScanStats)) {
        if self.events.is_empty() {
            return;
        }
        self.hits.clear();
        let stats = matcher.scan_events(&self.joined, &self.events, &mut self.hits);
        observe(&self.joined, &self.hits, stats);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use proptest::prelude::*;

    use super::super::blocks::{Plan, tests::observed};
    use super::*;
    use crate::rules::{Rule, RuleDef, RuleSet};
    use crate::tail::multiline::{Assembler, Event};

    /// Rules: every event (its whole text is the hit's), and two that match some.
    fn matcher() -> Matcher {
        let rules = [
            ("every", "^"),
            ("error", "ERROR"),
            ("cause", "Caused by: .*"),
        ]
        .iter()
        .map(|(name, pattern)| {
            Rule::compile(&RuleDef {
                name: (*name).into(),
                patterns: vec![(*pattern).into()],
                ..RuleDef::default()
            })
            .expect("a valid rule")
        })
        .collect();
        Matcher::new(Arc::new(RuleSet::new(rules)), "app")
    }

    /// Hits as (rule, text of the hit's line or event), and the counters.
    type Seen = (Vec<(usize, Vec<u8>)>, ScanStats);

    fn add(seen: &mut Seen, bytes: &[u8], hits: &[Hit], stats: &ScanStats) {
        let texts = hits
            .iter()
            .map(|h| (h.rule.index(), bytes[h.line.clone()].to_vec()));
        seen.0.extend(texts);
        seen.1.add(stats);
    }

    /// What the tailer's assembler makes of the lines `read_lines` hands out (a last line
    /// without its `\n` given one), each event scanned on its own.
    fn assembled(text: &[u8], config: &Multiline, max_line_bytes: usize) -> Seen {
        let matcher = matcher();
        let mut assembler = Assembler::new(config.clone());
        let mut seen = Seen::default();
        let mut emit = |event: Event<'_>| {
            let mut hits = Vec::new();
            let stats = matcher.scan_record(event.bytes, &mut hits);
            add(&mut seen, event.bytes, &hits, &stats);
        };
        let now = Instant::now();
        let mut buffer = [0; 7];
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
        seen
    }

    proptest! {
        /// The events, hits and counts of a multiline file scanned in blocks (1 byte, 7,
        /// events longer than several blocks, on 1 to 3 threads) are those of the assembler
        /// reading it from its beginning: with CRLF, without a last `\n`, with lines cut to
        /// `max_line_bytes`, with the caps, and when the start pattern only matches from the
        /// middle of the file on.
        #[test]
        fn blocks_make_the_events_the_assembler_makes(
            lead in 0usize..20,
            lines in prop::collection::vec(prop::sample::select(vec![
                "2026-11-28 10:00:00 ERROR boom", "2026-11-28 ok", "\tat a.B(B.java:1)",
                "Caused by: java.io.IOException", "", "2026-11-28 a very long line indeed",
                "2026-11-28 ERROR crlf\r", "\tat c.D(D.java:2)\r", "x\r2026-11-28 not a start",
            ]), 0..40),
            end_of_file in prop::option::of(prop::sample::select(vec!["2026-11-28 x", "\tat y"])),
            prefixed in any::<bool>(),
            max_line_bytes in 1usize..40,
            block_bytes in prop::sample::select(vec![1usize, 2, 7, 13, 30, 64, 200]),
            threads in 1usize..4,
            max_lines in 1usize..8,
            max_bytes in 1usize..300,
        ) {
            let config = crate::tail::multiline::tests::config(prefixed, max_lines, max_bytes);
            // `lead` lines before the first that can match `start`.
            let lead = std::iter::repeat_n("\tat lead.Frame(F.java:9)", lead);
            let mut text = lead.chain(lines).flat_map(|l| [l, "\n"]).collect::<String>();
            text.push_str(end_of_file.unwrap_or_default());
            let text = text.as_bytes();
            let matcher = matcher();
            let plan = Plan { matcher: &matcher, max_line_bytes, block_bytes, multiline: Some(&config) };
            let mut seen = Seen::default();
            observed(text, &plan, threads, |bytes, hits, stats| add(&mut seen, bytes, hits, &stats));
            prop_assert_eq!(seen, assembled(text, &config, max_line_bytes));
        }
    }
}
