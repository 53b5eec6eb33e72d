//! Building the batch of one read pass: a batch of its own, or more lines appended in place to
//! a batch held downstream (a busy file's gathered batch, see `tail::gather`), so that a busy
//! file's bytes are copied once in user space, from the read buffer to where they are scanned.
//! Used by the watcher's reads and flushes, and by `unread` to cut a range's long lines.

use std::fs::File;

use crate::tail::fingerprint::{Mark, mark_of_tail};
use crate::tail::multiline::Event;
use crate::tail::reader::{LineReader, Segment};
use crate::tail::{Batch, Cut, FileRef, Spare};

/// Room a batch's buffer is given beyond the bytes known to wait, when it has less, to read
/// straight into (a follower's writes arrive while it reads).
const READ_SLACK: usize = 16 << 10;

/// Builds the batch of one read pass: a batch of its own, or more lines at the end of a
/// batch held downstream (a busy file's gathered batch, see `tail::gather`), appended to it in
/// place so that its bytes are copied once, from the read buffer to where they are scanned.
pub(crate) struct Builder<'b> {
    batch: Target<'b>,
    /// Whether anything was pushed, and the bytes and cut lines pushed.
    pushed: bool,
    bytes: usize,
    lines_cut: u64,
}

enum Target<'b> {
    Own(Batch),
    Held(&'b mut Batch),
}

impl Builder<'_> {
    /// A batch of its own of `file`, built in `data` (cleared first: a spare buffer).
    pub(crate) fn new(
        file: &FileRef,
        source: usize,
        is_multiline: bool,
        mut data: Vec<u8>,
    ) -> Builder<'static> {
        data.clear();
        Builder {
            batch: Target::Own(Batch {
                source,
                file: file.clone(),
                start: 0,
                end: 0,
                data,
                events: is_multiline.then(Vec::new),
                lines_cut: 0,
                cuts: Vec::new(),
                unread: None,
            }),
            pushed: false,
            bytes: 0,
            lines_cut: 0,
        }
    }

    /// More lines of `batch`'s file, from its end on, appended to it.
    pub(crate) fn onto(batch: &mut Batch) -> Builder<'_> {
        Builder {
            batch: Target::Held(batch),
            pushed: false,
            bytes: 0,
            lines_cut: 0,
        }
    }

    /// The batch, its start set by the first bytes pushed (`start`, their file offset).
    fn batch_from(&mut self, start: u64) -> &mut Batch {
        let is_first = !std::mem::replace(&mut self.pushed, true);
        let batch = match &mut self.batch {
            Target::Own(batch) => batch,
            Target::Held(batch) => batch,
        };
        if is_first && batch.data.is_empty() {
            batch.start = start;
        }
        debug_assert!(
            !is_first || batch.data.is_empty() || batch.end == start,
            "appending lines that do not follow the held batch"
        );
        batch
    }

    /// Appends a run of lines, or one cut line.
    pub(crate) fn push_segment(&mut self, segment: &Segment<'_>) {
        let batch = self.batch_from(segment.start);
        batch.data.extend_from_slice(segment.bytes);
        let cut = segment.skipped > 0;
        if cut {
            batch.cuts.push(Cut {
                at: batch.data.len() - 1,
                skipped: segment.skipped,
            });
            batch.lines_cut += 1;
        }
        batch.end = segment.end;
        self.bytes += segment.bytes.len();
        self.lines_cut += u64::from(cut);
    }

    /// Appends one multiline event.
    pub(crate) fn push_event(&mut self, event: &Event<'_>) {
        let batch = self.batch_from(event.start);
        let base = batch.data.len();
        batch.data.extend_from_slice(event.bytes);
        for &(at, skipped) in event.cuts {
            batch.cuts.push(Cut {
                at: base + at,
                skipped,
            });
        }
        batch.lines_cut += event.cuts.len() as u64;
        if let Some(events) = &mut batch.events {
            events.push(base..batch.data.len());
        }
        batch.end = event.end;
        self.bytes += event.bytes.len();
        self.lines_cut += event.cuts.len() as u64;
    }

    /// The buffer lines go to: the batch of its own's or the held one's (see [`read_in_place`]).
    fn buffer(&mut self) -> &mut Vec<u8> {
        match &mut self.batch {
            Target::Own(batch) => &mut batch.data,
            Target::Held(batch) => &mut batch.data,
        }
    }

    /// `bytes` bytes of whole lines (none cut), from file offset `start` to `end`, were appended
    /// to [`Builder::buffer`].
    fn appended(&mut self, start: u64, end: u64, bytes: usize) {
        let is_first = !std::mem::replace(&mut self.pushed, true);
        let batch = match &mut self.batch {
            Target::Own(batch) => batch,
            Target::Held(batch) => batch,
        };
        if is_first && batch.data.len() == bytes {
            batch.start = start;
        }
        batch.end = end;
        self.bytes += bytes;
    }

    /// Takes `data` as the whole batch, from file offset `start` to `end` (no cut).
    pub(crate) fn take_whole(&mut self, start: u64, end: u64, data: Vec<u8>) {
        let batch = self.batch_from(start);
        debug_assert!(batch.data.is_empty() && batch.cuts.is_empty());
        batch.end = end;
        batch.data = data;
        self.bytes = batch.data.len();
    }

    /// The file offset past the last bytes pushed, if any were.
    pub(crate) fn end(&self) -> Option<u64> {
        let batch = match &self.batch {
            Target::Own(batch) => batch,
            Target::Held(batch) => batch,
        };
        self.pushed.then_some(batch.end)
    }

    /// The batch of its own built, if anything was pushed (a builder onto a held batch:
    /// `None`).
    pub(crate) fn into_batch(self) -> Option<Batch> {
        self.finish(None)?.into_batch()
    }

    /// What was built; `None` when nothing was pushed (then the buffer of a batch of its own
    /// goes back to `spare`, if given).
    pub(crate) fn finish(self, spare: Option<&Spare>) -> Option<Built> {
        match self.batch {
            Target::Own(batch) if !self.pushed => {
                if let Some(spare) = spare {
                    spare.give(batch.data);
                }
                None
            }
            _ if !self.pushed => None,
            Target::Own(batch) => Some(Built::Batch(batch)),
            Target::Held(_) => Some(Built::Appended {
                bytes: self.bytes,
                lines_cut: self.lines_cut,
            }),
        }
    }
}

/// What a read pass built (see [`Builder`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Built {
    /// A batch of its own.
    Batch(Batch),
    /// Lines appended to the held batch the read was given: their bytes, and the lines cut
    /// among them.
    Appended { bytes: usize, lines_cut: u64 },
}

impl Built {
    /// The batch of its own, if one was built.
    pub(crate) fn into_batch(self) -> Option<Batch> {
        match self {
            Built::Batch(batch) => Some(batch),
            Built::Appended { .. } => None,
        }
    }
}

/// What [`read_in_place`] read.
pub(crate) struct ReadInPlace {
    /// Bytes read at the reader's position (now past them).
    pub(crate) read: usize,
    /// The marker of the new position, when the bytes read (with the held line's head) are
    /// long enough to give it.
    pub(crate) mark: Option<Mark>,
    /// The end of the lines taken (short of the position when a line is left unfinished) and
    /// its marker, when the bytes taken are long enough to give it.
    pub(crate) end_mark: Option<(u64, Mark)>,
    /// More may wait: the read stopped at the budget or filled the buffer's room.
    pub(crate) has_more: bool,
}

/// Reads up to `budget` bytes of plain lines of `file` at `reader`'s position straight into the
/// buffer `builder` builds in (the spare room of a batch of its own, or of the batch held
/// downstream it continues), so that the tail thread copies none of them in user space: the
/// held line's head goes first, then the bytes read, then the reader takes what ends in a line
/// end as it is ([`LineReader::feed_in_place`]) and holds the rest. A line too long for that is
/// fed as usual (copied). `waiting` is how many bytes the file was last seen to have past the
/// position: the buffer is given room for them if it has less.
///
/// `None` (nothing done) when the held line was cut: its head is not the file's bytes.
pub(crate) fn read_in_place(
    builder: &mut Builder<'_>,
    reader: &mut LineReader,
    file: &File,
    budget: usize,
    waiting: u64,
) -> std::io::Result<Option<ReadInPlace>> {
    let Some(held) = reader.held() else {
        return Ok(None);
    };
    let (pos, start, held_len) = (reader.pos(), reader.line_start(), held.len());
    let data = builder.buffer();
    let base = data.len();
    let room = (waiting as usize).min(budget) + READ_SLACK;
    if data.capacity() - base < held_len + READ_SLACK {
        data.reserve(held_len + room);
    }
    data.extend_from_slice(held);
    // Safe Rust reads into a vector's spare room only through `spare_capacity`, which fills
    // all of it: past the budget, the bytes are dropped (read again at the next pass).
    let room = data.capacity() - data.len();
    let read = match rustix::io::pread(file, rustix::buffer::spare_capacity(data), pos) {
        Ok(read) => read,
        Err(err) => {
            data.truncate(base);
            return Err(err.into());
        }
    };
    let read = read.min(budget);
    data.truncate(base + held_len + read);
    let has_more = read == budget || read == room;
    if read == 0 {
        data.truncate(base);
        return Ok(Some(ReadInPlace {
            read,
            mark: None,
            end_mark: None,
            has_more,
        }));
    }
    let mark = mark_of_tail(&data[base..], pos + read as u64);
    let mut end_mark = None;
    match reader.feed_in_place(&data[base..], held_len) {
        Some(complete) => {
            data.truncate(base + complete);
            if complete > 0 {
                let end = start + complete as u64;
                end_mark = mark_of_tail(&data[base..], end).map(|mark| (end, mark));
                builder.appended(start, end, complete);
            }
        }
        None => {
            // A long line to cut: the bytes read are fed as usual.
            let fresh = data.split_off(base + held_len);
            data.truncate(base);
            reader.feed(&fresh, &mut |segment: Segment<'_>| {
                builder.push_segment(&segment)
            });
        }
    }
    Ok(Some(ReadInPlace {
        read,
        mark,
        end_mark,
        has_more,
    }))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    use proptest::prelude::*;

    use super::*;

    /// Each line of `batch` with the file offset just past it.
    fn lines_of(batch: &Batch) -> Vec<(u64, Vec<u8>)> {
        let lines = batch
            .lines()
            .map(|(at, l)| (at + l.len() as u64, l.to_vec()));
        lines.collect()
    }

    /// Follows a file written `writes`, reading after each write until nothing more waits,
    /// straight into one batch held downstream (`waiting` told as 0 with `is_stale`: the file
    /// grew since it was last seen). Returns the batch, what was written, and whether its
    /// buffer stayed where it was.
    fn follow(writes: &[Vec<u8>], budget: usize, is_stale: bool) -> (Batch, Vec<u8>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut out = std::fs::File::create(&path).unwrap();
        let file = File::open(&path).unwrap();
        let mut reader = LineReader::new(16, 0);
        let mut held = Batch::of(0, "");
        held.data = Vec::with_capacity(1 << 20);
        let buffer = held.data.as_ptr();
        let mut written = Vec::new();
        for bytes in writes {
            out.write_all(bytes).unwrap();
            written.extend_from_slice(bytes);
            loop {
                let waiting = if is_stale {
                    0
                } else {
                    written.len() as u64 - reader.pos()
                };
                let mut builder = Builder::onto(&mut held);
                let done = read_in_place(&mut builder, &mut reader, &file, budget, waiting);
                let has_more = match done.unwrap() {
                    Some(done) => {
                        assert!(done.read <= budget, "{} read, budget {budget}", done.read);
                        // The markers it tells are those of the file's bytes.
                        let marks = done.mark.map(|m| (reader.pos(), m)).into_iter();
                        for (at, mark) in marks.chain(done.end_mark) {
                            assert_eq!(mark, crate::tail::fingerprint::mark_before(&file, at));
                        }
                        done.has_more
                    }
                    None => {
                        // The held line was cut: read as the watcher does then.
                        let mut chunk = vec![0; budget];
                        let n = file.read_at(&mut chunk, reader.pos()).unwrap();
                        reader.feed(&chunk[..n], &mut |s: Segment<'_>| builder.push_segment(&s));
                        n == budget
                    }
                };
                if !has_more {
                    break;
                }
            }
        }
        let is_in_place = held.data.as_ptr() == buffer;
        (held, written, is_in_place)
    }

    /// The lines of `bytes` read at once (long ones cut at 16 bytes), each with the file
    /// offset just past it.
    fn read_at_once(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut batch = Batch::of(0, "");
        let mut builder = Builder::onto(&mut batch);
        let mut reader = LineReader::new(16, 0);
        reader.feed(bytes, &mut |s: Segment<'_>| builder.push_segment(&s));
        lines_of(&batch)
    }

    proptest! {
        #[test]
        fn lines_read_straight_into_a_held_batch_are_the_lines_read_at_once(
            writes in prop::collection::vec(prop::sample::select(vec![
                "a\n".to_owned(), "ERROR 42\n".into(), "par".into(), "tial\n".into(), "\n".into(),
                "a line longer than sixteen bytes\n".into(),
                "long, unfinished: 0123456789abcdef".into(),
                // Longer than a marker, whole or ending unfinished.
                "0123456789\n".repeat(9), "0123456789\n".repeat(9) + "unfinished",
            ]), 1..40),
            budget in prop::sample::select(vec![8_usize, 64, 1 << 20]),
            is_stale in any::<bool>(),
        ) {
            let writes: Vec<Vec<u8>> = writes.iter().map(|w| w.as_bytes().to_vec()).collect();
            let (batch, written, is_in_place) = follow(&writes, budget, is_stale);
            prop_assert_eq!(lines_of(&batch), read_at_once(&written));
            prop_assert!(is_in_place, "the held batch's buffer moved");
        }
    }
}
