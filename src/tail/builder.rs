//! Building the batch of one read pass: a batch of its own, or more lines appended in place to
//! a batch held downstream (a busy file's gathered batch, see `tail::gather`), so that a busy
//! file's bytes are copied once in user space, from the read buffer to where they are scanned.
//! Used by the watcher's reads and flushes, and by `unread` to cut a range's long lines.

use crate::tail::multiline::Event;
use crate::tail::reader::Segment;
use crate::tail::{Batch, Cut, FileRef, Spare};

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
