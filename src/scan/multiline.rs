//! Multiline events for `logding scan`: a line matching the source's `multiline.start` begins an
//! event, the lines after it continue it, until the next start line or a cap.
//!
//! This is the timeless subset of the tailer's assembler (`tail::multiline`), which also
//! handles timeouts and file offsets; the rules are the same: an event is closed by the next
//! start line or when adding a line would pass `max_lines` or `max_bytes` (the line then begins
//! the next event, so no line is lost to matching). Pure.

use crate::config::Multiline;

/// Groups lines into events.
#[derive(Debug)]
pub struct MultilineAssembler {
    config: Multiline,
    event: Vec<u8>,
    lines: usize,
}

impl MultilineAssembler {
    /// An assembler with no open event.
    pub fn new(config: Multiline) -> MultilineAssembler {
        MultilineAssembler {
            config,
            event: Vec::new(),
            lines: 0,
        }
    }

    /// Adds complete lines (each ending with `\n`, except maybe the last one, which is complete
    /// too), calling `emit` with every event they close (lines joined by `\n`, with a final
    /// `\n`).
    pub fn push_lines(&mut self, block: &[u8], emit: &mut impl FnMut(&[u8])) {
        let mut start = 0;
        while start < block.len() {
            let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
            self.push(&block[start..end], emit);
            start = end + 1;
        }
    }

    /// Closes the open event, if any.
    pub fn flush(&mut self, emit: &mut impl FnMut(&[u8])) {
        if self.lines > 0 {
            emit(&self.event);
            self.event.clear();
            self.lines = 0;
        }
    }

    fn push(&mut self, line: &[u8], emit: &mut impl FnMut(&[u8])) {
        if self.lines > 0 {
            let is_full = self.lines >= self.config.max_lines.max(1)
                || self.event.len() + line.len() + 1 > self.config.max_bytes;
            let content = line.strip_suffix(b"\r").unwrap_or(line);
            if is_full || self.config.start.is_match(content) {
                self.flush(emit);
            }
        }
        self.event.extend_from_slice(line);
        self.event.push(b'\n');
        self.lines += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[track_caller]
    fn check(max_lines: usize, input: &str, expected: &[&str]) {
        let mut assembler = MultilineAssembler::new(Multiline {
            start: regex::bytes::Regex::new(r"^\d{4}-").unwrap(),
            max_lines,
            max_bytes: 1000,
            timeout: Duration::from_secs(1),
        });
        let mut events = Vec::new();
        let mut emit = |e: &[u8]| events.push(String::from_utf8_lossy(e).into_owned());
        assembler.push_lines(input.as_bytes(), &mut emit);
        assembler.flush(&mut emit);
        assert_eq!(events, expected);
    }

    #[test]
    fn a_start_line_begins_an_event() {
        check(
            10,
            "2026-1 boom\n\tat a\n\tat b\n2026-2 ok\n",
            &["2026-1 boom\n\tat a\n\tat b\n", "2026-2 ok\n"],
        );
    }

    #[test]
    fn a_full_event_is_closed_and_the_line_begins_the_next() {
        check(2, "2026-1\na\nb\n", &["2026-1\na\n", "b\n"]);
    }
}
