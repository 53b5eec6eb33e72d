//! Multiline events (stack traces): consecutive lines of one file grouped into one event.
//!
//! A line matching the source's `start` regex begins an event; any other line continues the open
//! event (a line with no open event begins one too). An event is closed by the next start line,
//! by reaching `max_lines` or `max_bytes`, by `timeout` without a new line, or by its file being
//! rotated, deleted, truncated or the tailer shutting down. The open event's bytes are held here,
//! so a batch (and therefore a checkpoint) never ends inside an event: the tailer only hands out
//! closed events. Pure: time is passed in.

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

/// The per-file assembler.
#[derive(Debug)]
pub(crate) struct Assembler {
    config: Multiline,
    /// A quick yes for `config.start` (a date at the start of the line, ...), asked first.
    quick_start: Option<StartPrefix>,
    bytes: Vec<u8>,
    cuts: Vec<(usize, u64)>,
    lines: usize,
    start: u64,
    end: u64,
    last_line_at: Option<Instant>,
}

impl Assembler {
    /// An assembler with nothing open.
    pub(crate) fn new(config: Multiline) -> Assembler {
        Assembler {
            quick_start: StartPrefix::new(config.start.as_str()),
            config,
            bytes: Vec::new(),
            cuts: Vec::new(),
            lines: 0,
            start: 0,
            end: 0,
            last_line_at: None,
        }
    }

    /// Replaces the configuration (on reload); the open event is kept.
    pub(crate) fn set_config(&mut self, config: Multiline) {
        self.quick_start = StartPrefix::new(config.start.as_str());
        self.config = config;
    }

    /// File offset of the open event's first line, if one is open.
    #[cfg(test)]
    pub(crate) fn open_start(&self) -> Option<u64> {
        (self.lines > 0).then_some(self.start)
    }

    /// When the open event times out, if one is open.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.last_line_at
            .filter(|_| self.lines > 0)
            .map(|at| at + self.config.timeout)
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
        let is_full = self.lines >= self.config.max_lines.max(1)
            || self.bytes.len() + line.len() > self.config.max_bytes;
        if self.lines > 0 && (is_full || self.is_start(line)) {
            self.flush(emit);
        }
        if self.lines == 0 {
            self.start = start;
        }
        if skipped > 0 {
            self.cuts.push((self.bytes.len() + line.len() - 1, skipped));
        }
        self.bytes.extend_from_slice(line);
        self.lines += 1;
        self.end = end;
        self.last_line_at = Some(now);
    }

    /// Closes the open event, if any, calling `emit` for it.
    pub(crate) fn flush(&mut self, emit: &mut impl FnMut(Event<'_>)) {
        if self.lines == 0 {
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
        self.lines = 0;
        self.last_line_at = None;
    }

    fn is_start(&self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.quick_start
            .as_ref()
            .is_some_and(|quick| quick.accepts(line))
            || self.config.start.is_match(line)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
}
