//! Multiline events (stack traces): consecutive lines of one file grouped into one event.
//!
//! A line matching the source's `start` regex begins an event; any other line continues the open
//! event (a line with no open event begins one too). An event is closed by the next start line,
//! by reaching `max_lines` or `max_bytes`, by `timeout` without a new line, or by its file being
//! rotated, deleted, truncated or the tailer shutting down. The open event's bytes are held here,
//! so a batch (and therefore a checkpoint) never ends inside an event: the tailer only hands out
//! closed events. Pure: time is passed in.

use std::ops::Range;
use std::time::Instant;

use crate::config::Multiline;
use crate::scan::StartPrefix;

/// A closed event: its bytes (lines with their `\n`) and its file offsets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Event<'a> {
    /// The lines of the event.
    pub bytes: &'a [u8],
    /// File offset of the first line.
    pub start: u64,
    /// File offset just past the last line.
    pub end: u64,
    /// Cut lines inside the event: (position in `bytes` of the `\n` added after the kept head,
    /// bytes skipped).
    pub cuts: &'a [(usize, u64)],
}

/// Where events begin, from the lines alone: the rule of the [`Assembler`] and the [`Cutter`]
/// (one rule, so `run` and `scan` close events at the same lines).
#[derive(Debug)]
struct Boundaries {
    config: Multiline,
    /// A quick answer for `config.start` (a date at the start of the line, ...), asked first.
    quick_start: Option<StartPrefix>,
    /// Lines and bytes of the open event (no lines: none is open).
    lines: usize,
    bytes: usize,
}

impl Boundaries {
    fn new(config: Multiline) -> Boundaries {
        Boundaries {
            quick_start: StartPrefix::new(config.start.as_str()),
            config,
            lines: 0,
            bytes: 0,
        }
    }

    fn set_config(&mut self, config: Multiline) {
        self.quick_start = StartPrefix::new(config.start.as_str());
        self.config = config;
    }

    /// Returns true if `line` (with its `\n`) begins an event: none is open, the open one is
    /// full, or `line` matches `start`.
    fn begins(&self, line: &[u8]) -> bool {
        self.lines == 0
            || self.lines >= self.config.max_lines.max(1)
            || self.bytes + line.len() > self.config.max_bytes
            || self.is_start(line)
    }

    /// Counts `line` in the open event (a new one when it [`Boundaries::begins`] one);
    /// returns true if it begins one.
    fn push(&mut self, line: &[u8]) -> bool {
        let begins = self.begins(line);
        if begins {
            self.close();
        }
        self.lines += 1;
        self.bytes += line.len();
        begins
    }

    fn close(&mut self) {
        self.lines = 0;
        self.bytes = 0;
    }

    fn is_start(&self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match self
            .quick_start
            .as_ref()
            .and_then(|quick| quick.matches(line))
        {
            Some(answer) => answer,
            None => self.config.start.is_match(line),
        }
    }
}

/// The per-file assembler.
#[derive(Debug)]
pub(crate) struct Assembler {
    boundaries: Boundaries,
    bytes: Vec<u8>,
    cuts: Vec<(usize, u64)>,
    start: u64,
    end: u64,
    last_line_at: Option<Instant>,
}

impl Assembler {
    /// An assembler with nothing open.
    pub(crate) fn new(config: Multiline) -> Assembler {
        Assembler {
            boundaries: Boundaries::new(config),
            bytes: Vec::new(),
            cuts: Vec::new(),
            start: 0,
            end: 0,
            last_line_at: None,
        }
    }

    /// Replaces the configuration (on reload); the open event is kept.
    pub(crate) fn set_config(&mut self, config: Multiline) {
        self.boundaries.set_config(config);
    }

    /// File offset of the open event's first line, if one is open.
    #[cfg(test)]
    pub(crate) fn open_start(&self) -> Option<u64> {
        (self.boundaries.lines > 0).then_some(self.start)
    }

    /// When the open event times out, if one is open.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.last_line_at
            .filter(|_| self.boundaries.lines > 0)
            .map(|at| at + self.boundaries.config.timeout)
    }

    /// Adds one complete line (with its `\n`; `skipped` bytes were cut from it) at file offsets
    /// `[start, end)`, calling `emit` for the event it closes, if any.
    pub(crate) fn push(
        &mut self,
        line: &[u8],
        start: u64,
        end: u64,
        skipped: u64,
        now: Instant,
        emit: &mut impl FnMut(Event<'_>),
    ) {
        if self.boundaries.begins(line) {
            self.flush(emit);
            self.start = start;
        }
        self.boundaries.push(line);
        if skipped > 0 {
            self.cuts.push((self.bytes.len() + line.len() - 1, skipped));
        }
        self.bytes.extend_from_slice(line);
        self.end = end;
        self.last_line_at = Some(now);
    }

    /// Closes the open event, if any, calling `emit` for it.
    pub(crate) fn flush(&mut self, emit: &mut impl FnMut(Event<'_>)) {
        if self.boundaries.lines == 0 {
            return;
        }
        emit(Event {
            bytes: &self.bytes,
            start: self.start,
            end: self.end,
            cuts: &self.cuts,
        });
        self.bytes.clear();
        self.cuts.clear();
        self.boundaries.close();
        self.last_line_at = None;
    }
}

/// Events cut out of runs of complete lines where they lie, closed at the lines the
/// [`Assembler`] closes them at (`logding scan`: no timeout, no file offsets). Only the event
/// still open at the end of a run is copied (held), to be put before the next run.
#[derive(Debug)]
pub(crate) struct Cutter {
    boundaries: Boundaries,
    held: Vec<u8>,
}

impl Cutter {
    /// A cutter with nothing held.
    pub(crate) fn new(config: Multiline) -> Cutter {
        Cutter {
            boundaries: Boundaries::new(config),
            held: Vec::new(),
        }
    }

    /// The bytes of the event left open: the caller puts them just before the next run.
    pub(crate) fn held(&self) -> &[u8] {
        &self.held
    }

    /// Cuts `data`, the [`Cutter::held`] bytes followed by a run of complete lines (each with
    /// its `\n`; a last one without is the end of the file, given one): pushes the ranges in
    /// `data` of the events it closes onto `events`, holds the one left open, and returns
    /// where the closed ones end.
    pub(crate) fn cut(&mut self, data: &[u8], events: &mut Vec<Range<usize>>) -> usize {
        debug_assert!(data.starts_with(&self.held), "the held bytes go first");
        let mut open = 0;
        let mut at = self.held.len();
        while at < data.len() {
            let end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |i| at + i + 1);
            let line = &data[at..end];
            let begins = if line.ends_with(b"\n") {
                self.boundaries.push(line)
            } else {
                let mut whole = line.to_vec();
                whole.push(b'\n');
                self.boundaries.push(&whole)
            };
            if begins && at > open {
                events.push(open..at);
                open = at;
            }
            at = end;
        }
        self.held.clear();
        self.held.extend_from_slice(&data[open..]);
        if !self.held.is_empty() && !self.held.ends_with(b"\n") {
            self.held.push(b'\n');
        }
        open
    }

    /// Cuts `lines` (complete lines, with nothing before them known) from their first start
    /// line on: the lines before it belong to an event begun earlier, the events closed after
    /// it are pushed onto `events` (ranges in `lines`), the one left open is held. Returns
    /// where the first start line is (`lines.len()`: there is none, nothing is cut or held).
    pub(crate) fn cut_from_start(&mut self, lines: &[u8], events: &mut Vec<Range<usize>>) -> usize {
        self.boundaries.close();
        self.held.clear();
        let Some(first) = self.first_start(lines) else {
            return lines.len();
        };
        let from = events.len();
        self.cut(&lines[first..], events);
        for event in &mut events[from..] {
            *event = event.start + first..event.end + first;
        }
        first
    }

    /// Where the first line of `lines` matching `start` is.
    fn first_start(&self, lines: &[u8]) -> Option<usize> {
        let mut at = 0;
        while at < lines.len() {
            let end = memchr::memchr(b'\n', &lines[at..]).map_or(lines.len(), |i| at + i + 1);
            if self.boundaries.is_start(&lines[at..end]) {
                return Some(at);
            }
            at = end;
        }
        None
    }

    /// The end of the file: the open event closes; returns its bytes (empty: none was open).
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        self.boundaries.close();
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    /// A config whose `start` is a date (`prefixed`: answered by its fixed prefix) or a date
    /// or `Caused` (by the regex).
    pub(crate) fn config(prefixed: bool, max_lines: usize, max_bytes: usize) -> Multiline {
        let start = if prefixed {
            r"^\d{4}-\d{2}-\d{2} "
        } else {
            r"^(\d{4}-|Caused)"
        };
        Multiline {
            start: crate::rules::compile_pattern(start).unwrap(),
            max_lines,
            max_bytes,
            timeout: Duration::from_secs(1),
        }
    }

    fn assembler(max_lines: usize, max_bytes: usize) -> Assembler {
        Assembler::new(Multiline {
            start: regex::bytes::Regex::new(r"^\d{4}-").unwrap(),
            max_lines,
            max_bytes,
            timeout: Duration::from_secs(1),
        })
    }

    fn run(assembler: &mut Assembler, lines: &[&str]) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        let mut offset = 0;
        let now = Instant::now();
        for line in lines {
            let line = format!("{line}\n");
            let end = offset + line.len() as u64;
            assembler.push(line.as_bytes(), offset, end, 0, now, &mut |e: Event<'_>| {
                out.push((
                    String::from_utf8_lossy(e.bytes).into_owned(),
                    e.start,
                    e.end,
                ));
            });
            offset = end;
        }
        out
    }

    #[test]
    fn a_start_line_closes_the_previous_event() {
        let mut asm = assembler(100, 10_000);
        let out = run(
            &mut asm,
            &[
                "2026-1 boom",
                "\tat a.b",
                "\tat c.d",
                "2026-2 ok",
                "2026-3 x",
            ],
        );
        assert_eq!(
            out,
            vec![
                ("2026-1 boom\n\tat a.b\n\tat c.d\n".into(), 0, 28),
                ("2026-2 ok\n".into(), 28, 38),
            ]
        );
        assert_eq!(asm.open_start(), Some(38));
    }

    #[test]
    fn max_lines_cuts_an_event() {
        let mut asm = assembler(2, 10_000);
        let out = run(&mut asm, &["2026-1", "a", "b", "c"]);
        assert_eq!(out, vec![("2026-1\na\n".into(), 0, 9)]);
        assert_eq!(asm.open_start(), Some(9));
    }

    /// The rule as the module doc says it, line by line: what both the assembler and the
    /// cutter must give.
    fn reference(text: &[u8], config: &Multiline) -> Vec<Vec<u8>> {
        let mut events: Vec<Vec<u8>> = Vec::new();
        let mut lines = 0;
        for line in text.split_inclusive(|&b| b == b'\n') {
            let mut line = line.to_vec();
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            let content = &line[..line.len() - 1];
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            match events.last_mut() {
                Some(open)
                    if lines < config.max_lines.max(1)
                        && open.len() + line.len() <= config.max_bytes
                        && !config.start.is_match(content) =>
                {
                    open.extend_from_slice(&line);
                    lines += 1;
                }
                _ => {
                    events.push(line);
                    lines = 1;
                }
            }
        }
        events
    }

    fn assembled(text: &[u8], config: &Multiline) -> Vec<Vec<u8>> {
        let mut assembler = Assembler::new(config.clone());
        let mut out = Vec::new();
        let mut emit = |e: Event<'_>| out.push(e.bytes.to_vec());
        let now = Instant::now();
        for line in text.split_inclusive(|&b| b == b'\n') {
            let mut line = line.to_vec();
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            assembler.push(&line, 0, 0, 0, now, &mut emit);
        }
        assembler.flush(&mut emit);
        out
    }

    /// The cutter over `text` in runs ending at the line ends after `cuts` (fractions of the
    /// text), each run put after the held bytes as the scan does.
    fn cut(text: &[u8], config: &Multiline, cuts: &[f64]) -> Vec<Vec<u8>> {
        let mut ends: Vec<usize> = cuts
            .iter()
            .map(|f| (f * text.len() as f64) as usize)
            .map(|at| memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i + 1))
            .chain([text.len()])
            .collect();
        ends.sort_unstable();
        let mut cutter = Cutter::new(config.clone());
        let (mut out, mut from) = (Vec::new(), 0);
        for end in ends {
            let mut data = cutter.held().to_vec();
            data.extend_from_slice(&text[from..end]);
            let mut events = Vec::new();
            let closed = cutter.cut(&data, &mut events);
            assert_eq!(events.last().map_or(0, |e| e.end), closed);
            out.extend(events.into_iter().map(|e| data[e].to_vec()));
            from = end;
        }
        let last = cutter.finish();
        if !last.is_empty() {
            out.push(last);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn the_cutter_and_the_assembler_close_events_where_the_rule_says(
            lines in proptest::collection::vec(proptest::sample::select(vec![
                "2026-11-28 10:00:00 ERROR x", "2026-11-28 ok", "\tat a.B(B.java:1)", "",
                "Caused by: x", "2026-1", "x\r2026-11-28 y", "2026-11-28 \r", "\u{663}026-11-28 z",
            ]), 0..24),
            fragment in proptest::option::of(proptest::sample::select(vec!["2026-11-28 end", "\tat x"])),
            prefixed in proptest::bool::ANY,
            max_lines in 1usize..6,
            max_bytes in 1usize..120,
            cuts in proptest::collection::vec(0.0..1.0f64, 0..5),
        ) {
            let config = config(prefixed, max_lines, max_bytes);
            let mut text = lines.iter().flat_map(|l| [l, "\n"]).collect::<String>();
            text.push_str(fragment.unwrap_or_default());
            let expected = reference(text.as_bytes(), &config);
            proptest::prop_assert_eq!(&assembled(text.as_bytes(), &config), &expected);
            proptest::prop_assert_eq!(&cut(text.as_bytes(), &config, &cuts), &expected);
        }
    }
}
