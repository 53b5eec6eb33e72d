//! Identity of content: is the file under a saved `(dev, ino)` still the content we read?
//!
//! `(dev, ino)` ([`FileKey`](crate::tail::FileKey)) says which file; it does not say the file
//! still holds what was read (truncation, copytruncate, inode reuse). Two hashes do: the head
//! fingerprint (xxh3 of the first bytes, up to [`HEAD_BYTES`], re-taken while the file is
//! shorter) and the offset marker (xxh3 of up to [`MARKER_BYTES`] just before an offset). Both
//! are kept per followed file, written in the checkpoint, and checked here: on restart
//! ([`compare`]), on a size or mtime change, and when looking for a copytruncate copy.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::checkpoint::Entry;

/// Bytes of the head fingerprint.
pub(crate) const HEAD_BYTES: u64 = 1024;
/// Bytes of the offset marker.
pub(crate) const MARKER_BYTES: u64 = 64;

/// An xxh3 hash of `len` bytes of a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    pub len: u64,
    pub hash: u64,
}

/// What was seen of some content: its head, and the marker of the bytes before `offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub head: Mark,
    pub offset: u64,
    pub marker: Mark,
}

/// How a file found under a checkpoint entry's `(dev, ino)` compares with the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// The same content: resume at the entry's offset.
    Same,
    /// The same file, other content (truncated, maybe regrown): none of it was read.
    Changed,
    /// Another file that reused the inode.
    Other,
}

impl Fingerprint {
    /// What a checkpoint entry knows of the content.
    pub(crate) fn of(entry: &Entry) -> Fingerprint {
        Fingerprint {
            head: Mark {
                len: entry.head_len,
                hash: entry.head_hash,
            },
            offset: entry.offset,
            marker: Mark {
                len: entry.marker_len,
                hash: entry.marker_hash,
            },
        }
    }

    /// Returns true if and only if nothing was seen (nothing to recognise the content by).
    pub(crate) fn is_empty(&self) -> bool {
        self.offset == 0 && self.head.len == 0
    }

    /// Returns true if and only if `file` (of `size` bytes) starts with the content seen: same
    /// head, same bytes before `offset`.
    pub(crate) fn is_prefix_of(&self, file: &File, size: u64) -> bool {
        self.head.len <= size
            && self.offset <= size
            && self.marker.len <= self.offset
            && hash_at(file, 0, self.head.len).ok().flatten() == Some(self.head.hash)
            && hash_at(file, self.offset - self.marker.len, self.marker.len)
                .ok()
                .flatten()
                == Some(self.marker.hash)
    }
}

/// Hashes `len` bytes of `file` at `offset`; `None` when the file is shorter. Zero bytes hash
/// to 0 (the hash of [`Mark::default`]).
fn hash_at(file: &File, offset: u64, len: u64) -> std::io::Result<Option<u64>> {
    if len == 0 {
        return Ok(Some(0));
    }
    // Heads and markers (every pass of a busy file reads one) fit on the stack.
    let mut stack = [0; HEAD_BYTES as usize];
    let mut heap = Vec::new();
    let buf = match stack.get_mut(..len as usize) {
        Some(buf) => buf,
        None => {
            heap.resize(len as usize, 0);
            &mut heap[..]
        }
    };
    match file.read_exact_at(buf, offset) {
        Ok(()) => Ok(Some(xxhash_rust::xxh3::xxh3_64(buf))),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(err),
    }
}

/// The marker of the bytes just before `offset`.
pub(crate) fn mark_before(file: &File, offset: u64) -> Mark {
    let len = offset.min(MARKER_BYTES);
    match hash_at(file, offset - len, len) {
        Ok(Some(hash)) => Mark { len, hash },
        _ => Mark::default(),
    }
}

/// The marker of the bytes just before `offset`, from `tail`, the bytes just read up to
/// `offset` (what [`mark_before`] would read again); `None` when `tail` is shorter than the
/// marker.
pub(crate) fn mark_of_tail(tail: &[u8], offset: u64) -> Option<Mark> {
    let len = offset.min(MARKER_BYTES);
    let start = tail.len().checked_sub(len as usize)?;
    Some(Mark {
        len,
        hash: if len == 0 {
            0
        } else {
            xxhash_rust::xxh3::xxh3_64(&tail[start..])
        },
    })
}

/// The head fingerprint of a file of `size` bytes.
pub(crate) fn head_of(file: &File, size: u64) -> Mark {
    let len = size.min(HEAD_BYTES);
    match hash_at(file, 0, len) {
        Ok(Some(hash)) => Mark { len, hash },
        _ => Mark::default(),
    }
}

/// The birth time of a file in Unix nanoseconds, if the filesystem records one.
pub(crate) fn born_ns(meta: &std::fs::Metadata) -> Option<i128> {
    let born = meta.created().ok()?;
    Some(born.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i128)
}

/// Compares `file` with what `entry` saw.
pub(crate) fn compare(file: &File, meta: &std::fs::Metadata, entry: &Entry) -> Resume {
    if entry.born_ns.is_some() && born_ns(meta).is_some() && entry.born_ns != born_ns(meta) {
        return Resume::Other;
    }
    if Fingerprint::of(entry).is_prefix_of(file, meta.len()) {
        Resume::Same
    } else {
        Resume::Changed
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let file = File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    #[test]
    fn a_prefix_is_recognised_and_other_bytes_are_not() {
        let (_tmp, file) = file_with(b"first line\nsecond line\n");
        let seen = Fingerprint {
            head: head_of(&file, 11),
            offset: 11,
            marker: mark_before(&file, 11),
        };
        assert!(seen.is_prefix_of(&file, 23));
        assert!(!seen.is_prefix_of(&file, 10), "shorter than the offset");
        let (_other_tmp, other) = file_with(b"first LINE\nsecond line\n");
        assert!(!seen.is_prefix_of(&other, 23));
        assert!(Fingerprint::default().is_empty());
        assert!(Fingerprint::default().is_prefix_of(&other, 0));
    }

    #[test]
    fn the_marker_of_bytes_just_read_is_the_one_read_again() {
        let text = b"a line of forty bytes, give or take one
"
        .repeat(3);
        let (_tmp, file) = file_with(&text);
        for offset in [0, 5, 64, 65, 100, text.len() as u64] {
            let tail = &text[..offset as usize];
            assert_eq!(mark_of_tail(tail, offset), Some(mark_before(&file, offset)));
            // Only the last bytes of the file were read (a later chunk).
            let chunk = &tail[tail.len().saturating_sub(70)..];
            let expected = (chunk.len() as u64 >= offset.min(MARKER_BYTES))
                .then(|| mark_before(&file, offset));
            assert_eq!(mark_of_tail(chunk, offset), expected);
        }
    }
}
