//! One followed file generation: its descriptor, its read position, its held partial line and
//! open multiline event, its committed offset, and the checks that tell whether it is still the
//! same content (head fingerprint, offset marker).
//!
//! A state machine with no channels and no clock: the tailer calls [`FileWatcher::read`],
//! [`FileWatcher::observe`] and friends with `now`, and gets batches back.

use std::collections::VecDeque;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::checkpoint::Entry;
use crate::config::Multiline;
use crate::tail::builder::{Builder, Built, read_in_place};
use crate::tail::counters::Descriptor;
use crate::tail::fingerprint::{self, Fingerprint, HEAD_BYTES, Mark, head_of, mark_before};
use crate::tail::multiline::{Assembler, Event};
use crate::tail::reader::{LineReader, Segment};
use crate::tail::unread::{Ledger, Unread, read_after};
use crate::tail::{Batch, FileId, FileKey, FileRef, Spare};

/// Most batch ends remembered (with their markers) while waiting for their commits.
const MAX_IN_FLIGHT: usize = 4096;
/// Bytes the tail thread reads at the end of a backlog range it hands out unread (to find its
/// last line end): a last line longer than this is read by the tail thread as before.
const PEEK_BYTES: usize = 4 << 10;

/// Where a watcher is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// The file is (as far as we know) at its path.
    Active,
    /// Its path now names another file (or nothing) but it still has links: drained, then
    /// closed once idle at EOF for `rotate_wait`.
    Rotated { since: Instant },
    /// It has no links left: drained, then closed once idle at EOF for `rotate_wait`.
    Deleted { since: Instant },
    /// Closed after draining to `end`; kept until `end` is committed.
    Done { end: u64 },
}

/// What `observe` found out about the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Nothing special.
    Same,
    /// Its content no longer matches what was read: truncated (maybe regrown).
    Truncated,
}

/// The state of one followed file generation.
#[derive(Debug)]
pub(crate) struct FileWatcher {
    pub(crate) file: FileRef,
    pub(crate) source: usize,
    /// Open, unless closed by the descriptor cap or drained.
    pub(crate) fd: Option<Descriptor>,
    pub(crate) state: State,
    reader: LineReader,
    assembler: Option<Assembler>,
    /// Marker of the bytes before `reader.pos()`, to detect truncate-and-regrow.
    pos_mark: Mark,
    pub(crate) head: Mark,
    born_ns: Option<i128>,
    pub(crate) committed: u64,
    committed_mark: Mark,
    in_flight: VecDeque<(u64, Mark)>,
    /// Size and mtime at the last observation.
    pub(crate) size: u64,
    mtime: (i64, i64),
    pub(crate) last_growth: Instant,
    pub(crate) last_read: Instant,
    /// The last read stopped on the budget, not at EOF.
    pub(crate) has_more: bool,
    /// A hint says it changed.
    pub(crate) dirty: bool,
    /// The backlog ranges of this generation handed out unread (see `unread`).
    ledger: Option<Arc<Ledger>>,
}

/// The settings a watcher takes from its source.
#[derive(Clone, Debug)]
pub(crate) struct FileSettings {
    pub max_line_bytes: usize,
    pub multiline: Option<Multiline>,
}

impl FileWatcher {
    /// Starts following `fd` (of `size` bytes, named `path`) at `pos`, a line start whose bytes
    /// before are considered committed (`committed_mark` is their marker).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: FileId,
        path: Arc<Path>,
        source: usize,
        fd: Descriptor,
        meta: &std::fs::Metadata,
        pos: u64,
        settings: &FileSettings,
        now: Instant,
    ) -> FileWatcher {
        let size = meta.len();
        let head = head_of(&fd, size);
        let pos_mark = mark_before(&fd, pos);
        FileWatcher {
            file: FileRef { id, path },
            source,
            state: State::Active,
            reader: LineReader::new(settings.max_line_bytes, pos),
            assembler: settings.multiline.clone().map(Assembler::new),
            pos_mark,
            head,
            born_ns: fingerprint::born_ns(meta),
            committed: pos,
            committed_mark: pos_mark,
            in_flight: VecDeque::new(),
            size,
            mtime: (meta.mtime(), meta.mtime_nsec()),
            last_growth: now,
            last_read: now,
            has_more: size > pos,
            dirty: false,
            ledger: None,
            fd: Some(fd),
        }
    }

    /// The file.
    pub(crate) fn key(&self) -> FileKey {
        self.file.id.key()
    }

    /// Offset of the next byte to read.
    pub(crate) fn pos(&self) -> u64 {
        self.reader.pos()
    }

    /// Offset where the held partial line starts (= `pos` when none).
    pub(crate) fn line_start(&self) -> u64 {
        self.reader.line_start()
    }

    /// What was read of the content: its head and the marker before `pos`.
    pub(crate) fn seen(&self) -> Fingerprint {
        Fingerprint {
            head: self.head,
            offset: self.reader.pos(),
            marker: self.pos_mark,
        }
    }

    /// Returns true if and only if the file was drained and closed.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    /// Applies a source's (possibly reloaded) settings.
    pub(crate) fn apply_settings(&mut self, settings: &FileSettings) {
        self.reader.set_max_line_bytes(settings.max_line_bytes);
        match (&mut self.assembler, &settings.multiline) {
            (Some(assembler), Some(multiline)) => assembler.set_config(multiline.clone()),
            (None, Some(multiline)) => self.assembler = Some(Assembler::new(multiline.clone())),
            // Dropping the assembler loses nothing durable: its open event starts at or after
            // the committed offset and is read again after a restart.
            (Some(_), None) => self.assembler = None,
            (None, None) => {}
        }
    }

    /// Re-reads size and mtime from the descriptor (or from `meta` when the descriptor is
    /// closed) and checks the content still matches what was read.
    pub(crate) fn observe(&mut self, meta: &std::fs::Metadata, now: Instant) -> Observed {
        let size = meta.len();
        let mtime = (meta.mtime(), meta.mtime_nsec());
        let pos = self.reader.pos();
        let changed = size != self.size || mtime != self.mtime;
        if size < pos {
            return Observed::Truncated;
        }
        if changed
            && pos > 0
            && let Some(fd) = &self.fd
            && mark_before(fd, pos) != self.pos_mark
        {
            return Observed::Truncated;
        }
        if size > self.size {
            self.last_growth = now;
        }
        if changed
            && self.head.len < HEAD_BYTES
            && size > self.head.len
            && let Some(fd) = &self.fd
        {
            self.head = head_of(fd, size);
        }
        self.size = size;
        self.mtime = mtime;
        Observed::Same
    }

    /// Restarts this file at offset 0 as generation `id` after a truncation, handing out the
    /// open multiline event (complete lines read before the truncation) as a batch.
    pub(crate) fn restart(
        &mut self,
        id: FileId,
        meta: &std::fs::Metadata,
        now: Instant,
    ) -> Option<Batch> {
        let flushed = self.flush_events();
        self.file = FileRef {
            id,
            path: self.file.path.clone(),
        };
        self.reader = LineReader::new(self.reader.max_line_bytes(), 0);
        self.pos_mark = Mark::default();
        self.committed = 0;
        self.committed_mark = Mark::default();
        self.in_flight.clear();
        self.ledger = None;
        self.size = meta.len();
        self.mtime = (meta.mtime(), meta.mtime_nsec());
        self.head = self
            .fd
            .as_ref()
            .map_or(Mark::default(), |fd| head_of(fd, self.size));
        self.last_growth = now;
        self.has_more = self.size > 0;
        flushed
    }

    /// Takes back a descriptor reopened by path (after an idle close) and checks that the
    /// content still matches what was read.
    pub(crate) fn reopen(
        &mut self,
        fd: Descriptor,
        meta: &std::fs::Metadata,
        now: Instant,
    ) -> Observed {
        self.fd = Some(fd);
        self.mtime = (0, 0);
        self.observe(meta, now)
    }

    /// Closes the descriptor (fd cap); returns true if and only if one was open.
    pub(crate) fn close(&mut self) -> bool {
        self.fd.take().is_some()
    }

    /// Drained: hands out what is held (see [`Self::flush_all`]), closes the descriptor and
    /// waits for the end to be committed.
    pub(crate) fn finish(&mut self, now: Instant) -> Option<Batch> {
        let batch = self.flush_all(now);
        self.state = State::Done {
            end: self.reader.pos(),
        };
        self.fd = None;
        batch
    }

    /// Reads up to `budget` bytes at the current position, using `buf` as the read buffer.
    /// Returns the complete lines (or closed events) read, if any: a batch of their own, or
    /// appended to `held`, a batch of this file held downstream that they continue (plain
    /// lines only, see [`Self::lends_to_held`]).
    ///
    /// When a whole `budget` of plain lines is known to wait (a backlog) and no batch is held,
    /// the bytes are handed out unread or read straight into a buffer of `spare`, which
    /// becomes the batch (see [`Self::read_in_place`]).
    pub(crate) fn read(
        &mut self,
        buf: &mut [u8],
        spare: &Spare,
        budget: usize,
        now: Instant,
        held: Option<&mut Batch>,
    ) -> std::io::Result<Option<Built>> {
        if self.fd.is_none() {
            return Ok(None);
        }
        self.has_more = false;
        self.dirty = false;
        let waiting = self.size.saturating_sub(self.reader.pos());
        if held.is_none()
            && self.assembler.is_none()
            && waiting >= budget as u64
            && let Some(mut data) = self.with_held(spare)
        {
            let held = (self.reader.pos() - self.reader.line_start()) as usize;
            if let Some(batch) = self.hand_out_unread(&mut data, budget, now)? {
                return Ok(Some(Built::Batch(batch)));
            }
            let Some(fd) = &self.fd else {
                return Ok(None);
            };
            let read = read_after(fd, held, self.reader.pos(), &mut data, budget)?;
            return Ok(self.read_in_place(data, read, budget, spare, now));
        }
        let Some(fd) = &self.fd else {
            return Ok(None);
        };
        let mut builder = match held {
            Some(batch) => {
                debug_assert!(self.lends_to_held(batch));
                Builder::onto(batch)
            }
            None => Builder::new(
                &self.file,
                self.source,
                self.assembler.is_some(),
                spare.take(),
            ),
        };
        if self.assembler.is_none()
            && waiting < budget as u64
            && let Some(done) = read_in_place(&mut builder, &mut self.reader, fd, budget, waiting)?
        {
            // A follower's read: straight into the batch (see `read_in_place`).
            self.has_read_marked(done.read, done.mark, now);
            self.has_more = done.has_more;
            return Ok(self.finish_built(builder, Some(spare), done.end_mark));
        }
        let mut read = 0;
        // Bytes of the last read still in `buf` (the marker is taken from them).
        let mut last = 0;
        loop {
            let want = buf.len().min(budget - read);
            if want == 0 {
                self.has_more = true;
                break;
            }
            let n = match fd.read_at(&mut buf[..want], self.reader.pos()) {
                Ok(n) => n,
                Err(err) if read == 0 => return Err(err),
                // What was read so far is handed out (its bytes are fed); the error comes
                // back at the next pass.
                Err(_) => break,
            };
            if n == 0 {
                break;
            }
            last = n;
            let chunk = &buf[..n];
            let assembler = &mut self.assembler;
            self.reader
                .feed(chunk, &mut |segment: Segment<'_>| match assembler {
                    None => builder.push_segment(&segment),
                    Some(assembler) => push_lines(assembler, &segment, now, &mut builder),
                });
            read += n;
            if n < want {
                break;
            }
        }
        self.has_read(read, &buf[..last], now);
        Ok(self.finish_built(builder, Some(spare), None))
    }

    /// Whether the next lines read may be appended to `batch`, held downstream: plain lines of
    /// this file generation and source, which they continue.
    pub(crate) fn lends_to_held(&self, batch: &Batch) -> bool {
        self.assembler.is_none()
            && batch.events.is_none()
            && batch.unread.is_none()
            && batch.file.id == self.file.id
            && batch.source == self.source
            && batch.end == self.reader.line_start()
    }

    /// A buffer of `spare` starting with the held line's head, when that is the whole held line
    /// (none was cut); its bytes after the head are an earlier batch's.
    fn with_held(&self, spare: &Spare) -> Option<Vec<u8>> {
        let held = self.reader.held()?;
        let mut data = spare.take();
        if data.len() < held.len() {
            data.resize(held.len(), 0);
        }
        data[..held.len()].copy_from_slice(held);
        Some(data)
    }

    /// Hands out the next `budget` bytes (whole lines of a backlog) unread, to be read by the
    /// scanning thread (see `unread`): reads only their last [`PEEK_BYTES`] to find where their
    /// last line ends and to hold the line after it. `data` starts with the held line's head.
    /// `None` (nothing done) when the peek finds no line end or a short file.
    fn hand_out_unread(
        &mut self,
        data: &mut Vec<u8>,
        budget: usize,
        now: Instant,
    ) -> std::io::Result<Option<Batch>> {
        let Some(fd) = &self.fd else {
            return Ok(None);
        };
        let (pos, peek_len) = (self.reader.pos(), PEEK_BYTES.min(budget));
        let peek_at = pos + (budget - peek_len) as u64;
        let mut peek = Vec::new();
        if read_after(fd, 0, peek_at, &mut peek, peek_len)? < peek_len {
            return Ok(None);
        }
        let Some(last) = memchr::memrchr(b'\n', &peek) else {
            return Ok(None);
        };
        let (start, end) = (self.reader.line_start(), peek_at + last as u64 + 1);
        let file = (fd.try_clone()?, Arc::clone(fd.counters()));
        self.reader.pass_over(budget as u64, &peek[last + 1..]);
        self.has_read(budget, &peek, now);
        self.has_more = true;
        // The scanning thread checks that its range ends with these bytes.
        peek.truncate(last + 1);
        let ledger = self.ledger.get_or_insert_with(Arc::default);
        let max_line_bytes = self.reader.max_line_bytes();
        let unread = Unread::new(file, pos, peek, max_line_bytes, ledger, start);
        let mut builder = Builder::new(&self.file, self.source, false, Vec::new());
        builder.take_whole(start, end, std::mem::take(data));
        let mut batch = self.finish_batch(builder).expect("the batch has a start");
        batch.unread = Some(Box::new(unread));
        Ok(Some(batch))
    }

    /// Takes `data` (the held line's head, then `read` bytes read at the current position) as
    /// the batch when its lines need no cut; otherwise feeds its new bytes as usual (copied
    /// into a batch of their own).
    fn read_in_place(
        &mut self,
        mut data: Vec<u8>,
        read: usize,
        budget: usize,
        spare: &Spare,
        now: Instant,
    ) -> Option<Built> {
        let held = data.len() - read;
        let start = self.reader.line_start();
        let mut builder = Builder::new(&self.file, self.source, false, Vec::new());
        let in_place = self.reader.feed_in_place(&data, held);
        if in_place.is_none() {
            self.reader
                .feed(&data[held..], &mut |segment: Segment<'_>| {
                    builder.push_segment(&segment)
                });
        }
        // `data` holds the file's bytes from `start` to the position now.
        self.has_read(read, &data, now);
        match in_place {
            Some(end) if end > 0 => {
                data.truncate(end);
                builder.take_whole(start, start + end as u64, data);
            }
            _ => spare.give(data),
        }
        self.has_more = read == budget;
        self.finish_built(builder, None, None)
    }

    /// After reading `read` bytes, the last ones `tail` (ending at the new position): the
    /// marker of the new position, growth.
    fn has_read(&mut self, read: usize, tail: &[u8], now: Instant) {
        let mark = fingerprint::mark_of_tail(tail, self.reader.pos());
        self.has_read_marked(read, mark, now);
    }

    /// [`Self::has_read`] with the marker of the new position, when the bytes read gave it.
    fn has_read_marked(&mut self, read: usize, mark: Option<Mark>, now: Instant) {
        let Some(fd) = &self.fd else {
            return;
        };
        if read > 0 {
            let pos = self.reader.pos();
            self.pos_mark = match mark {
                Some(mark) => mark,
                None => mark_before(fd, pos),
            };
            self.last_read = now;
            if pos > self.size {
                self.size = pos;
                self.last_growth = now;
                if self.head.len < HEAD_BYTES {
                    self.head = head_of(fd, pos);
                }
            }
        }
    }

    /// Hands out the open multiline event when its timeout has passed.
    pub(crate) fn flush_expired(&mut self, now: Instant) -> Option<Batch> {
        let deadline = self.assembler.as_ref()?.deadline()?;
        if now < deadline {
            return None;
        }
        self.flush_events()
    }

    /// When the open multiline event times out, if one is open.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.assembler.as_ref()?.deadline()
    }

    /// Hands out the open multiline event, if any (timeout, rotation, shutdown).
    pub(crate) fn flush_events(&mut self) -> Option<Batch> {
        let assembler = self.assembler.as_mut()?;
        let mut builder = Builder::new(&self.file, self.source, true, Vec::new());
        assembler.flush(&mut |event: Event<'_>| builder.push_event(&event));
        self.finish_batch(builder)
    }

    /// Hands out the held partial line as a final fragment, then the open multiline event: the
    /// file is rotated or deleted and idle, nothing more will come.
    fn flush_all(&mut self, now: Instant) -> Option<Batch> {
        let mut builder = Builder::new(
            &self.file,
            self.source,
            self.assembler.is_some(),
            Vec::new(),
        );
        let assembler = &mut self.assembler;
        self.reader
            .flush_fragment(&mut |segment: Segment<'_>| match assembler {
                None => builder.push_segment(&segment),
                Some(assembler) => push_lines(assembler, &segment, now, &mut builder),
            });
        if let Some(assembler) = &mut self.assembler {
            assembler.flush(&mut |event: Event<'_>| builder.push_event(&event));
        }
        self.finish_batch(builder)
    }

    /// The batch of its own `builder` built, if any (see [`Self::finish_built`]).
    fn finish_batch(&mut self, builder: Builder<'_>) -> Option<Batch> {
        self.finish_built(builder, None, None)?.into_batch()
    }

    /// What `builder` built, its end remembered (with its marker: `end_mark`, when the read
    /// knew it) until it is committed.
    fn finish_built(
        &mut self,
        builder: Builder<'_>,
        spare: Option<&Spare>,
        end_mark: Option<(u64, Mark)>,
    ) -> Option<Built> {
        if let (Some(end), Some(fd)) = (builder.end(), &self.fd) {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                self.in_flight.pop_front();
            }
            // Usually the batch ends where reading stopped, whose marker is known; otherwise
            // (a line left unfinished) a read in place knew the marker of where its lines end.
            let mark = match end_mark {
                _ if end == self.reader.pos() => self.pos_mark,
                Some((at, mark)) if at == end => mark,
                _ => mark_before(fd, end),
            };
            self.in_flight.push_back((end, mark));
        }
        builder.finish(spare)
    }

    /// Records that everything before `offset` is safe downstream.
    pub(crate) fn commit(&mut self, offset: u64) {
        if offset <= self.committed {
            return;
        }
        while self.in_flight.front().is_some_and(|(end, _)| *end < offset) {
            self.in_flight.pop_front();
        }
        let mark = match self.in_flight.front() {
            Some(&(end, mark)) if end == offset => {
                self.in_flight.pop_front();
                Some(mark)
            }
            _ => self.fd.as_ref().map(|fd| mark_before(fd, offset)),
        };
        if let Some(mark) = mark {
            self.committed = offset;
            self.committed_mark = mark;
        }
    }

    /// Returns true if and only if the file is drained and closed and all of it is committed.
    pub(crate) fn is_retired(&self) -> bool {
        matches!(self.state, State::Done { end } if self.committed >= end)
    }

    /// Returns true if and only if bytes remain unread or held (a fragment).
    pub(crate) fn is_at_eof(&self) -> bool {
        !self.has_more && self.reader.pos() >= self.size
    }

    /// The checkpoint entry of the committed position.
    pub(crate) fn entry(&self, now_ns: i128) -> Entry {
        Entry {
            dev: self.file.id.dev,
            ino: self.file.id.ino,
            head_len: self.head.len,
            head_hash: self.head.hash,
            offset: self.committed,
            marker_len: self.committed_mark.len,
            marker_hash: self.committed_mark.hash,
            path: self.file.path.to_path_buf(),
            last_seen_ns: now_ns,
            born_ns: self.born_ns,
        }
    }

    /// The ledger of the backlog ranges this generation handed out unread, if it did.
    pub(crate) fn ledger(&self) -> Option<Arc<Ledger>> {
        self.ledger.clone()
    }

    /// Adopts the committed marker of a validated checkpoint entry.
    pub(crate) fn resume_from(&mut self, entry: &Entry) {
        self.committed = entry.offset;
        self.committed_mark = Mark {
            len: entry.marker_len,
            hash: entry.marker_hash,
        };
    }
}

/// Splits a segment into lines for the multiline assembler.
fn push_lines(
    assembler: &mut Assembler,
    segment: &Segment<'_>,
    now: Instant,
    builder: &mut Builder<'_>,
) {
    let mut emit = |event: Event<'_>| builder.push_event(&event);
    if segment.skipped > 0 || !segment.bytes.ends_with(b"\n") {
        assembler.push(
            segment.bytes,
            segment.start,
            segment.end,
            segment.skipped,
            now,
            &mut emit,
        );
        return;
    }
    let mut line_start = 0;
    for nl in memchr::memchr_iter(b'\n', segment.bytes) {
        let line = &segment.bytes[line_start..=nl];
        let start = segment.start + line_start as u64;
        assembler.push(line, start, start + line.len() as u64, 0, now, &mut emit);
        line_start = nl + 1;
    }
}
