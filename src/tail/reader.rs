//! Line splitting of raw file bytes with exact offsets, partial lines held back, and long lines
//! cut to `max_line_bytes`.
//!
//! The reader is fed raw chunks read at explicit offsets and hands out *segments*: either a run
//! of complete lines copied as they are (the fast path: one `memchr` per line, one copy per run),
//! or one cut line (its first `max_line_bytes` bytes plus `\n`) with the number of bytes skipped.
//! Bytes after the last `\n` are held (at most `max_line_bytes` of them) until the line ends; they
//! are only handed out by [`LineReader::flush_fragment`], when their file is rotated or deleted
//! and idle. Pure: no IO, except [`read_lines`], which reads a whole file through a reader.
//!
//! The one line reader of the program: the tailer feeds it what it reads at explicit offsets,
//! `logding scan` reads files through [`read_lines`].

use std::io::Read;

/// A piece of output: a run of complete lines, or one cut line, or a final fragment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Segment<'a> {
    /// Bytes to hand out: complete `\n`-terminated lines (a fragment has no `\n`).
    pub bytes: &'a [u8],
    /// File offset of the first byte.
    pub start: u64,
    /// File offset just past the last byte consumed (the `\n` of the last line).
    pub end: u64,
    /// Bytes of the line dropped by the cut (0 for a run of whole lines).
    pub skipped: u64,
}

/// Splits a file's bytes into lines.
#[derive(Debug)]
pub(crate) struct LineReader {
    max_line_bytes: usize,
    /// Head of the current incomplete line (at most `max_line_bytes`).
    pending: Vec<u8>,
    /// Bytes of the current incomplete line beyond `max_line_bytes`, dropped.
    pending_skipped: u64,
    /// File offset where the current incomplete line starts (= `pos` when there is none).
    line_start: u64,
    /// File offset of the next byte to be fed.
    pos: u64,
    /// Scratch for assembling a line that straddles chunks.
    scratch: Vec<u8>,
}

impl LineReader {
    /// A reader positioned at `pos`, which must be a line start.
    pub(crate) fn new(max_line_bytes: usize, pos: u64) -> LineReader {
        LineReader {
            max_line_bytes: max_line_bytes.max(1),
            pending: Vec::new(),
            pending_skipped: 0,
            line_start: pos,
            pos,
            scratch: Vec::new(),
        }
    }

    /// File offset of the next byte to feed.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// File offset of the start of the held incomplete line (= [`Self::pos`] when none).
    pub(crate) fn line_start(&self) -> u64 {
        self.line_start
    }

    /// Returns true if and only if bytes of an incomplete line are held.
    pub(crate) fn has_fragment(&self) -> bool {
        self.line_start < self.pos
    }

    /// The cut length.
    pub(crate) fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Changes the cut length for lines that start from now on.
    pub(crate) fn set_max_line_bytes(&mut self, max_line_bytes: usize) {
        self.max_line_bytes = max_line_bytes.max(1);
    }

    /// Feeds `chunk`, the file's bytes at [`Self::pos`], calling `emit` for every segment.
    pub(crate) fn feed(&mut self, chunk: &[u8], emit: &mut impl FnMut(Segment<'_>)) {
        let base = self.pos;
        let had_fragment = self.has_fragment();
        self.pos += chunk.len() as u64;
        let mut run_start = 0;
        if had_fragment {
            let Some(nl) = memchr::memchr(b'\n', chunk) else {
                self.hold(chunk);
                return;
            };
            self.finish_held_line(&chunk[..=nl], base + nl as u64 + 1, emit);
            run_start = nl + 1;
        }
        // Complete lines end at the last `\n`; what follows is held.
        let complete_end =
            memchr::memrchr(b'\n', &chunk[run_start..]).map_or(run_start, |i| run_start + i + 1);
        let mut line_begin = run_start;
        while let Some(long) = self.long_line(chunk, line_begin, complete_end) {
            line_begin = long;
            emit_run(chunk, base, run_start..line_begin, emit);
            let rest = line_begin + self.max_line_bytes;
            let nl = rest
                + memchr::memchr(b'\n', &chunk[rest..complete_end])
                    .expect("complete lines end with a newline");
            let start = base + line_begin as u64;
            self.emit_line(&chunk[line_begin..nl], start, base + nl as u64 + 1, emit);
            line_begin = nl + 1;
            run_start = line_begin;
        }
        emit_run(chunk, base, run_start..complete_end, emit);
        self.line_start = base + complete_end as u64;
        self.hold(&chunk[complete_end..]);
    }

    /// The head of the held incomplete line, when it was not cut (empty when none is held):
    /// to read in place, a buffer starts with it, followed by the file's bytes from
    /// [`Self::pos`] (see [`Self::feed_in_place`]).
    pub(crate) fn held(&self) -> Option<&[u8]> {
        (self.pending_skipped == 0).then_some(&self.pending[..])
    }

    /// Feeds the bytes of `data` after its first `held` ones, which are [`Self::held`], when
    /// its complete lines can be handed out as they are: none is longer than
    /// `max_line_bytes`. Then returns their length (`data[..end]`, from file offset
    /// [`Self::line_start`] as it was), holding the rest, as [`Self::feed`] would. Otherwise
    /// returns `None` and changes nothing (feed the new bytes instead).
    pub(crate) fn feed_in_place(&mut self, data: &[u8], held: usize) -> Option<usize> {
        debug_assert_eq!(self.held().map(<[u8]>::len), Some(held));
        if self.has_long_line(data) {
            return None;
        }
        let complete_end = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
        self.pos += (data.len() - held) as u64;
        self.line_start += complete_end as u64;
        // What follows the last line end (all of `data` without one) is the held line now.
        self.pending.clear();
        self.hold(&data[complete_end..]);
        Some(complete_end)
    }

    /// Returns true if and only if a complete line of `data` (from a line start) is longer than
    /// `max_line_bytes`: fed, it would be cut.
    pub(crate) fn has_long_line(&self, data: &[u8]) -> bool {
        let complete_end = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
        self.long_line(data, 0, complete_end).is_some()
    }

    /// Passes over the next `len` bytes unread but for `rest`, those after their last `\n`
    /// (there is one): their lines are handed out elsewhere, `rest` is held as [`Self::feed`]
    /// would hold it. Only when [`Self::held`] is the whole held line.
    pub(crate) fn pass_over(&mut self, len: u64, rest: &[u8]) {
        debug_assert!(self.pending_skipped == 0 && rest.len() as u64 <= len);
        self.pos += len;
        self.line_start = self.pos - rest.len() as u64;
        self.pending.clear();
        self.hold(rest);
    }

    /// Where the first line longer than `max_line_bytes` starts in `chunk[from..end]` (whole
    /// lines), if one does. Jumps `max_line_bytes` at a time: a run of short lines costs one
    /// short backwards search per `max_line_bytes` bytes, not a look at every line.
    fn long_line(&self, chunk: &[u8], from: usize, end: usize) -> Option<usize> {
        let mut line_begin = from;
        while end - line_begin > self.max_line_bytes {
            let window = &chunk[line_begin..=line_begin + self.max_line_bytes];
            match memchr::memrchr(b'\n', window) {
                Some(i) => line_begin += i + 1,
                // No line end within `max_line_bytes + 1` bytes: this line is too long.
                None => return Some(line_begin),
            }
        }
        None
    }

    /// Hands out the held incomplete line as a final fragment (no `\n`), if any.
    pub(crate) fn flush_fragment(&mut self, emit: &mut impl FnMut(Segment<'_>)) {
        if !self.has_fragment() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        emit(Segment {
            bytes: &pending,
            start: self.line_start,
            end: self.pos,
            skipped: self.pending_skipped,
        });
        self.pending = pending;
        self.pending.clear();
        self.pending_skipped = 0;
        self.line_start = self.pos;
    }

    fn hold(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.pending.len());
        let kept = bytes.len().min(room);
        self.pending.extend_from_slice(&bytes[..kept]);
        self.pending_skipped += (bytes.len() - kept) as u64;
    }

    /// Completes the held line with `tail` (which ends with `\n`), ending at file offset `end`.
    fn finish_held_line(&mut self, tail: &[u8], end: u64, emit: &mut impl FnMut(Segment<'_>)) {
        self.emit_line(&tail[..tail.len() - 1], self.line_start, end, emit);
        self.line_start = end;
    }

    /// Hands out one line: the held head (if any) followed by `content` (without its `\n`),
    /// from file offset `start` to `end` (past its `\n`), cut to `max_line_bytes` with the
    /// bytes dropped counted. The held head is consumed.
    fn emit_line(
        &mut self,
        content: &[u8],
        start: u64,
        end: u64,
        emit: &mut impl FnMut(Segment<'_>),
    ) {
        let room = self.max_line_bytes.saturating_sub(self.pending.len());
        let kept = content.len().min(room);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.pending);
        self.scratch.extend_from_slice(&content[..kept]);
        self.scratch.push(b'\n');
        emit(Segment {
            bytes: &self.scratch,
            start,
            end,
            skipped: self.pending_skipped + (content.len() - kept) as u64,
        });
        self.pending.clear();
        self.pending_skipped = 0;
    }
}

/// Hands out `chunk[run]`, complete lines, if not empty (`base` is the offset of `chunk`).
fn emit_run(
    chunk: &[u8],
    base: u64,
    run: std::ops::Range<usize>,
    emit: &mut impl FnMut(Segment<'_>),
) {
    if run.is_empty() {
        return;
    }
    emit(Segment {
        bytes: &chunk[run.clone()],
        start: base + run.start as u64,
        end: base + run.end as u64,
        skipped: 0,
    });
}

/// Reads `file` to its end in `buffer`-sized reads, handing runs of complete lines to `emit`
/// (the last line may lack its `\n` at the end of the file). A line longer than
/// `max_line_bytes` is cut: its head comes as a line of its own, the rest is skipped.
pub(crate) fn read_lines(
    file: &mut impl Read,
    buffer: &mut [u8],
    max_line_bytes: usize,
    emit: &mut impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut reader = LineReader::new(max_line_bytes, 0);
    loop {
        let n = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        reader.feed(&buffer[..n], &mut |segment: Segment<'_>| {
            emit(segment.bytes)
        });
    }
    reader.flush_fragment(&mut |segment: Segment<'_>| emit(segment.bytes));
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Out = Vec<(String, u64, u64, u64)>;

    fn feed_all(max: usize, chunks: &[&[u8]]) -> (Out, LineReader) {
        let mut reader = LineReader::new(max, 0);
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut |s: Segment<'_>| {
                out.push((
                    String::from_utf8_lossy(s.bytes).into_owned(),
                    s.start,
                    s.end,
                    s.skipped,
                ));
            });
        }
        (out, reader)
    }

    #[test]
    fn runs_of_lines_and_held_partial() {
        let (out, reader) = feed_all(100, &[b"a\nbb\nccc"]);
        assert_eq!(out, vec![("a\nbb\n".into(), 0, 5, 0)]);
        assert_eq!(reader.line_start(), 5);
        assert_eq!(reader.pos(), 8);
    }

    #[test]
    fn partial_write_is_one_line() {
        let (out, _) = feed_all(100, &[b"Hello ", b"Wor", b"ld\nnext\n"]);
        assert_eq!(
            out,
            vec![
                ("Hello World\n".into(), 0, 12, 0),
                ("next\n".into(), 12, 17, 0)
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_with_exact_offsets() {
        let (out, _) = feed_all(4, &[b"ok\n0123456789\nab\n"]);
        assert_eq!(
            out,
            vec![
                ("ok\n".into(), 0, 3, 0),
                ("0123\n".into(), 3, 14, 6),
                ("ab\n".into(), 14, 17, 0),
            ]
        );
    }

    #[test]
    fn long_line_across_chunks_is_cut_once() {
        let (out, reader) = feed_all(4, &[b"0123", b"456", b"789\nx\n"]);
        assert_eq!(
            out,
            vec![("0123\n".into(), 0, 11, 6), ("x\n".into(), 11, 13, 0)]
        );
        assert!(!reader.has_fragment());
    }

    #[test]
    fn fragment_flush() {
        let (_, mut reader) = feed_all(100, &[b"a\ntail"]);
        let mut out = Vec::new();
        reader.flush_fragment(&mut |s: Segment<'_>| out.push((s.bytes.to_vec(), s.start, s.end)));
        assert_eq!(out, vec![(b"tail".to_vec(), 2, 6)]);
        assert!(!reader.has_fragment());
    }

    /// The lines `read_lines` hands over, each as its own string.
    fn read(input: &[u8], buffer_bytes: usize, max_line_bytes: usize) -> Vec<Vec<u8>> {
        let mut buffer = vec![0; buffer_bytes];
        let mut lines = Vec::new();
        read_lines(&mut &input[..], &mut buffer, max_line_bytes, &mut |block| {
            // Each block is complete lines: split it, dropping the last `\n`.
            let block = block.strip_suffix(b"\n").unwrap_or(block);
            lines.extend(block.split(|&b| b == b'\n').map(<[u8]>::to_vec));
        })
        .unwrap();
        lines
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_cut_and_the_next_one_kept() {
        let input = format!("short\n{}\nnext\n", "x".repeat(100));
        assert_eq!(
            read(input.as_bytes(), 16, 8),
            [&b"short"[..], b"xxxxxxxx", b"next"]
        );
    }

    /// Each line handed out (cut or not) with the file offset just past it, and where the
    /// reader stands at the end: fed chunk by chunk (`in_place`: taken in place whenever it
    /// can be, as the tailer does for a backlog).
    fn lines_fed(
        input: &[u8],
        chunks: &[usize],
        max: usize,
        in_place: bool,
    ) -> Vec<(Vec<u8>, u64)> {
        let mut reader = LineReader::new(max, 0);
        let mut lines = Vec::new();
        let mut push = |bytes: &[u8], start: u64, end: u64, skipped: u64| {
            let mut at = start;
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                at += line.len() as u64;
                lines.push((line.to_vec(), at));
            }
            if let Some(last) = lines.last_mut() {
                assert_eq!(last.1 + skipped, end);
                last.1 = end;
            }
        };
        let mut pos = 0;
        for &len in chunks.iter().chain(std::iter::once(&input.len())) {
            let chunk = &input[pos..(pos + len).min(input.len())];
            pos += chunk.len();
            let held = reader.held().filter(|_| in_place).map(<[u8]>::to_vec);
            let start = reader.line_start();
            if let Some(mut data) = held {
                let held = data.len();
                data.extend_from_slice(chunk);
                if let Some(end) = reader.feed_in_place(&data, held) {
                    push(&data[..end], start, start + end as u64, 0);
                    continue;
                }
            }
            reader.feed(chunk, &mut |s: Segment<'_>| {
                push(s.bytes, s.start, s.end, s.skipped)
            });
        }
        let state = (
            reader.pos(),
            reader.line_start(),
            reader.held().map(<[u8]>::to_vec),
        );
        lines.push((format!("{state:?}").into_bytes(), 0));
        lines
    }

    proptest! {
        #[test]
        fn lines_read_in_place_are_the_lines_fed(
            lines in prop::collection::vec(prop::collection::vec(b'a'..=b'c', 0..12), 0..30),
            chunks in prop::collection::vec(0usize..40, 0..12),
            max_line_bytes in 1usize..10,
        ) {
            let input = lines.join(&b'\n');
            prop_assert_eq!(
                lines_fed(&input, &chunks, max_line_bytes, true),
                lines_fed(&input, &chunks, max_line_bytes, false)
            );
        }

        #[test]
        fn lines_come_out_whole_or_cut_whatever_the_buffer(
            lines in prop::collection::vec(prop::collection::vec(b'a'..=b'c', 0..40), 0..30),
            is_terminated in any::<bool>(),
            buffer_bytes in 9usize..64,
            max_line_bytes in 1usize..8,
        ) {
            let mut input = lines.join(&b'\n');
            if is_terminated && !lines.is_empty() {
                input.push(b'\n');
            }
            let expected: Vec<Vec<u8>> = if input.is_empty() {
                Vec::new()
            } else {
                let body = input.strip_suffix(b"\n").unwrap_or(&input);
                body.split(|&b| b == b'\n')
                    .map(|l| l[..l.len().min(max_line_bytes)].to_vec())
                    .collect()
            };
            prop_assert_eq!(read(&input, buffer_bytes, max_line_bytes), expected);
        }
    }
}
