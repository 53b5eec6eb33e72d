//! What the tailer hands out: batches of complete lines with exact file offsets, and the
//! identities they carry (which file, which generation of it).

use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::checkpoint::Entry;
use crate::tail::unread::Unread;

/// Which file: `(dev, ino)` from `fstat` on our open descriptor (or `stat` of a path), never the
/// path itself. Says nothing about the content (see `tail::fingerprint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
}

impl FileKey {
    /// The key of the file `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The file a checkpoint entry is about.
    pub(crate) fn of_entry(entry: &Entry) -> FileKey {
        FileKey {
            dev: entry.dev,
            ino: entry.ino,
        }
    }
}

/// Identifies one generation of one file: `(dev, ino)` of the open descriptor, plus a number
/// this process gives each generation (a truncated file restarts as a new generation, so
/// commits for its old content are ignored). Not stable across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Generation number, unique within this process.
    pub generation: u64,
}

impl FileId {
    /// The file, without the generation.
    pub fn key(&self) -> FileKey {
        FileKey {
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// A file generation and the path it was last seen under. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// Identity.
    pub id: FileId,
    /// Path (for a rotated file, the name it was followed under).
    pub path: Arc<Path>,
}

/// A line cut to `max_line_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Position in [`Batch::data`] of the `\n` added after the kept head.
    pub at: usize,
    /// Bytes of the line dropped.
    pub skipped: u64,
}

/// Complete lines (or multiline events) of one file, with their offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Index into the sources.
    pub source: usize,
    /// The file.
    pub file: FileRef,
    /// File offset of `data[0]`.
    pub start: u64,
    /// File offset just past the last line: commit it once this batch's hits are safe.
    pub end: u64,
    /// Complete lines (`\n`-terminated, except a flushed final fragment of a rotated or deleted
    /// idle file); long lines already cut to `max_line_bytes`; CRLF kept.
    pub data: Vec<u8>,
    /// For multiline sources: each event's range within `data` (never split across batches).
    pub events: Option<Vec<Range<usize>>>,
    /// Lines cut by `max_line_bytes` in this batch.
    pub lines_cut: u64,
    /// Where lines were cut (to map positions in `data` to file offsets).
    pub cuts: Vec<Cut>,
    /// A backlog range still to read: until [`Batch::read_unread`] (or [`Batch::settle`]),
    /// `data` starts with the head of its first line and goes on with an earlier batch's bytes.
    pub unread: Option<Box<Unread>>,
}

impl Batch {
    /// Whether `next` continues this batch: same file and source, starting where this one
    /// ends, lines or events like this one.
    pub fn is_continued_by(&self, next: &Batch) -> bool {
        next.file.id == self.file.id
            && self.unread.is_none()
            && next.unread.is_none()
            && next.source == self.source
            && next.start == self.end
            && next.events.is_some() == self.events.is_some()
    }

    /// Appends `next`, which continues this batch (see [`Batch::is_continued_by`]).
    pub fn append(&mut self, next: Batch) {
        debug_assert!(
            self.is_continued_by(&next),
            "appending a batch that does not follow"
        );
        let shift = self.data.len();
        self.data.extend_from_slice(&next.data);
        if let (Some(events), Some(more)) = (&mut self.events, next.events) {
            events.extend(more.into_iter().map(|r| r.start + shift..r.end + shift));
        }
        self.cuts.extend(next.cuts.into_iter().map(|cut| Cut {
            at: cut.at + shift,
            skipped: cut.skipped,
        }));
        self.lines_cut += next.lines_cut;
        self.end = next.end;
    }

    /// The file offset of position `pos` of `data`.
    pub fn file_offset(&self, pos: usize) -> u64 {
        let skipped: u64 = self
            .cuts
            .iter()
            .filter(|cut| cut.at < pos)
            .map(|cut| cut.skipped)
            .sum();
        self.start + pos as u64 + skipped
    }

    /// Each line (with its `\n`, if any) and its file offset.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.data.len() {
                return None;
            }
            let end =
                memchr::memchr(b'\n', &self.data[pos..]).map_or(self.data.len(), |i| pos + i + 1);
            let line = (self.file_offset(pos), &self.data[pos..end]);
            pos = end;
            Some(line)
        })
    }
}

/// The buffers of scanned batches, handed back to be read into again: a backlog's batches
/// reuse a few buffers instead of allocating (and faulting in) fresh pages for every batch.
/// Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Spare(Arc<Mutex<Vec<Vec<u8>>>>);

/// Buffers kept at most (each about `tail.read_budget_bytes`).
const SPARE_BUFFERS: usize = 8;
/// Smaller buffers are not kept (a follower's small batches are allocated to size).
const SPARE_MIN_BYTES: usize = 64 << 10;

impl Spare {
    /// Takes back `data` (its content no longer needed) to be read into again.
    pub fn give(&self, data: Vec<u8>) {
        if data.capacity() < SPARE_MIN_BYTES {
            return;
        }
        let mut spare = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_BUFFERS {
            spare.push(data);
        }
    }

    /// A buffer to read into: a spare one (its old content still there), or a new one.
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut spare = self.0.lock().unwrap_or_else(|e| e.into_inner());
        spare.pop().unwrap_or_default()
    }
}

#[cfg(test)]
impl Batch {
    /// A batch of whole lines `data` at `start` of one made-up file (for tests).
    pub(crate) fn of(start: u64, data: &str) -> Batch {
        Batch {
            source: 0,
            file: FileRef {
                id: FileId {
                    dev: 1,
                    ino: 2,
                    generation: 1,
                },
                path: Arc::from(Path::new("/var/log/app/app.log")),
            },
            start,
            end: start + data.len() as u64,
            data: data.as_bytes().to_vec(),
            events: None,
            lines_cut: 0,
            cuts: Vec::new(),
            unread: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(start: u64, data: &str, events: Option<Vec<Range<usize>>>, cuts: Vec<Cut>) -> Batch {
        let mut batch = Batch::of(start, data);
        batch.end += cuts.iter().map(|c| c.skipped).sum::<u64>();
        batch.lines_cut = cuts.len() as u64;
        (batch.events, batch.cuts) = (events, cuts);
        batch
    }

    #[test]
    fn a_following_batch_is_appended_with_its_ranges_shifted() {
        let cut = |at, skipped| Cut { at, skipped };
        let mut first = batch(10, "a\nbb\n", Some(vec![0..2, 2..5]), vec![]);
        let second = batch(15, "cc\nd\n", Some(vec![0..3, 3..5]), vec![cut(2, 7)]);
        let end = second.end;
        assert!(first.is_continued_by(&second));
        first.append(second);
        assert_eq!(first.data, b"a\nbb\ncc\nd\n");
        assert_eq!(first.events, Some(vec![0..2, 2..5, 5..8, 8..10]));
        assert_eq!(first.cuts, [cut(7, 7)]);
        assert_eq!((first.end, first.lines_cut), (end, 1));
        assert_eq!(first.file_offset(8), 10 + 8 + 7);
        // Not a continuation: a gap, lines after events, another file.
        let gap = batch(end + 1, "x\n", Some(vec![0..1, 1..2]), vec![]);
        assert!(!first.is_continued_by(&gap));
        assert!(!first.is_continued_by(&batch(end, "x\n", None, vec![])));
        let mut other = batch(end, "x\n", Some(vec![0..1, 1..2]), vec![]);
        other.file.id.generation = 2;
        assert!(!first.is_continued_by(&other));
    }
}
