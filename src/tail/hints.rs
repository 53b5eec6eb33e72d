//! inotify as a wake-up hint: non-recursive watches on the directories the globs look at, one
//! inotify instance read by the tail thread itself (no thread of its own: a busy log's writes
//! wake one thread, not two). A write, attribute change or close after writing marks its path
//! changed; create, delete and rename also ask for a rescan; a lost event (queue overflow) or a
//! watched directory going away asks for a full reconcile. The tailer's own opens and reads are
//! not watched. When inotify cannot be used (watch limit, unsupported filesystem), the tailer
//! silently relies on its stat reconcile alone.
//!
//! While the instance is up, the thread sleeps in `poll(2)` on it and on an eventfd that
//! `Shared::update` writes, so the handle's requests (reload, finish) still wake it at once.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::OwnedFd;
use rustix::fs::inotify::{self, ReadFlags, WatchFlags};
use tracing::{debug, warn};

use crate::tail::{Inbox, Shared};

/// What is watched in each directory: changes of its entries and of itself.
const WATCHED: WatchFlags = WatchFlags::MODIFY
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::ONLYDIR);
/// Events that change which file a path names.
const STRUCTURAL: ReadFlags = ReadFlags::CREATE
    .union(ReadFlags::DELETE)
    .union(ReadFlags::MOVED_FROM)
    .union(ReadFlags::MOVED_TO);
/// Events that say the watch itself is gone or events were lost: reconcile everything.
const LOST: ReadFlags = ReadFlags::QUEUE_OVERFLOW
    .union(ReadFlags::IGNORED)
    .union(ReadFlags::DELETE_SELF)
    .union(ReadFlags::MOVE_SELF)
    .union(ReadFlags::UNMOUNT);

/// The inotify instance and the directories it watches.
pub(crate) struct Hints {
    inotify: Option<OwnedFd>,
    /// Watched directory by watch descriptor, and the other way round.
    dirs: BTreeMap<i32, PathBuf>,
    watched: BTreeMap<PathBuf, i32>,
    buf: Vec<MaybeUninit<u8>>,
    has_warned: bool,
}

impl Hints {
    /// An inotify instance whose events the thread reads in [`Hints::wait`]; without one,
    /// everything is polled. Gives `shared` the eventfd its updates wake the thread with.
    pub(crate) fn new(shared: &Shared) -> Hints {
        let flags = inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK;
        let inotify = match inotify::init(flags) {
            Ok(fd) => Some(fd),
            Err(err) => {
                warn!(error = %err, "file notifications unavailable: polling only");
                None
            }
        };
        if inotify.is_some() {
            shared.open_wake_fd();
        }
        Hints {
            has_warned: inotify.is_none(),
            inotify,
            dirs: BTreeMap::new(),
            watched: BTreeMap::new(),
            buf: vec![MaybeUninit::uninit(); 16 << 10],
        }
    }

    /// Returns true if and only if events are read (the thread waits in [`Hints::wait`]).
    pub(crate) fn is_active(&self) -> bool {
        self.inotify.is_some()
    }

    /// Watches exactly `dirs`.
    pub(crate) fn sync(&mut self, dirs: &BTreeSet<PathBuf>) {
        let Some(fd) = &self.inotify else {
            return;
        };
        if self.watched.keys().eq(dirs.iter()) {
            return;
        }
        let gone: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|dir| !dirs.contains(*dir))
            .cloned()
            .collect();
        for dir in gone {
            if let Some(wd) = self.watched.remove(&dir) {
                self.dirs.remove(&wd);
                inotify::remove_watch(fd, wd).ok();
            }
        }
        for dir in dirs {
            if self.watched.contains_key(dir) {
                continue;
            }
            match inotify::add_watch(fd, dir.as_path(), WATCHED) {
                Ok(wd) => {
                    self.watched.insert(dir.clone(), wd);
                    self.dirs.insert(wd, dir.clone());
                }
                // Directories that could not be watched are retried at the next change of
                // the set.
                Err(err) if !self.has_warned => {
                    self.has_warned = true;
                    warn!(dir = %dir.display(), error = %err, "cannot watch directory: polling it");
                }
                Err(err) => {
                    debug!(dir = %dir.display(), error = %err, "cannot watch directory: polling it");
                }
            }
        }
    }

    /// Sleeps until an event or an update of `shared` arrives, or `timeout` passes (not at all
    /// when an update is waiting); returns the inbox with the events read.
    pub(crate) fn wait(&mut self, shared: &Shared, timeout: Duration) -> Inbox {
        // Without a poll, both descriptors are read; after one, only those it found ready (a
        // read that finds nothing is a system call for nothing, twice per pass of a busy log).
        let (mut has_events, mut is_woken) = (true, true);
        if let Some(fd) = &self.inotify
            && !timeout.is_zero()
            && !shared.has_news()
        {
            let timeout = Timespec::try_from(timeout).ok();
            let wake = shared.wake_fd();
            let mut fds = [
                PollFd::new(fd, PollFlags::IN),
                PollFd::new(wake.unwrap_or(fd), PollFlags::IN),
            ];
            let fds = &mut fds[..1 + usize::from(wake.is_some())];
            // Interrupted or failed: both are read, and the caller's loop comes back soon.
            if rustix::event::poll(fds, timeout.as_ref()).is_ok() {
                has_events = !fds[0].revents().is_empty();
                is_woken = fds.get(1).is_some_and(|wake| !wake.revents().is_empty());
            }
        }
        if is_woken {
            shared.clear_wake();
        }
        let mut inbox = shared.wait(Duration::ZERO);
        if has_events {
            self.read(&mut inbox);
        }
        inbox
    }

    /// Reads the pending events into `inbox`: one buffer of them (more, if any, leave the
    /// instance ready, and the next pass's poll returns at once).
    pub(crate) fn read(&mut self, inbox: &mut Inbox) {
        let Some(fd) = &self.inotify else {
            return;
        };
        let mut reader = inotify::Reader::new(fd, &mut self.buf);
        let mut has_read = false;
        loop {
            if has_read && reader.is_buffer_empty() {
                return;
            }
            let event = match reader.next() {
                Ok(event) => event,
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => {
                    debug!(error = %err, "inotify read failed: reconciling everything");
                    inbox.is_rescan = true;
                    return;
                }
            };
            has_read = true;
            let name = event
                .file_name()
                .map(|name| OsStr::from_bytes(name.to_bytes()));
            hint(inbox, event.events(), self.dirs.get(&event.wd()), name);
        }
    }
}

/// What one event says, into `inbox`.
fn hint(inbox: &mut Inbox, flags: ReadFlags, dir: Option<&PathBuf>, name: Option<&OsStr>) {
    if flags.intersects(LOST) {
        inbox.is_rescan = true;
        return;
    }
    let (Some(dir), Some(name)) = (dir, name) else {
        return;
    };
    inbox.hint(dir.join(name), flags.intersects(STRUCTURAL));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox_after(flags: ReadFlags, name: Option<&str>) -> (Vec<(PathBuf, bool)>, bool) {
        let mut inbox = Inbox::default();
        hint(
            &mut inbox,
            flags,
            Some(&PathBuf::from("/l")),
            name.map(OsStr::new),
        );
        (inbox.hints, inbox.is_rescan)
    }

    #[test]
    fn overflow_or_a_lost_watch_asks_for_a_full_reconcile() {
        assert_eq!(inbox_after(ReadFlags::QUEUE_OVERFLOW, None), (vec![], true));
        assert_eq!(inbox_after(ReadFlags::IGNORED, None), (vec![], true));
        assert_eq!(inbox_after(ReadFlags::MOVE_SELF, None), (vec![], true));
    }

    #[test]
    fn writes_mark_their_path_and_creations_and_renames_are_structural() {
        let write = inbox_after(ReadFlags::MODIFY, Some("a"));
        assert_eq!(write, (vec![("/l/a".into(), false)], false));
        let create = inbox_after(ReadFlags::CREATE, Some("a"));
        assert_eq!(create, (vec![("/l/a".into(), true)], false));
        let renamed = inbox_after(ReadFlags::MOVED_FROM, Some("a"));
        assert_eq!(renamed, (vec![("/l/a".into(), true)], false));
    }

    #[test]
    fn a_real_write_wakes_the_waiting_thread_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::default();
        let mut hints = Hints::new(&shared);
        assert!(hints.is_active(), "inotify is available on Linux");
        hints.sync(&BTreeSet::from([dir.path().to_path_buf()]));
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"line\n").unwrap();
        // Bounded: returns as soon as the events are there.
        let mut hinted = Vec::new();
        for _ in 0..50 {
            hinted.extend(hints.wait(&shared, Duration::from_millis(100)).hints);
            if hinted.iter().any(|(p, s)| *p == path && !s) {
                break;
            }
        }
        assert!(hinted.contains(&(path.clone(), true)), "{hinted:?}");
        assert!(hinted.contains(&(path, false)), "{hinted:?}");
        // An update of the inbox (from another thread, as the handle's) wakes it too.
        let started = std::time::Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(|| shared.update(|inbox| inbox.is_rescan = true));
            let mut inbox = hints.wait(&shared, Duration::from_secs(30));
            while !inbox.is_rescan {
                inbox = hints.wait(&shared, Duration::from_secs(30));
            }
        });
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn events_beyond_one_read_come_at_the_next_waits() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::default();
        let mut hints = Hints::new(&shared);
        hints.sync(&BTreeSet::from([dir.path().to_path_buf()]));
        // Several times what one read takes (a create, a write and a close each).
        let paths: BTreeSet<PathBuf> = (0..1000)
            .map(|i| dir.path().join(format!("service-{i:04}.log")))
            .collect();
        for path in &paths {
            std::fs::write(path, b"line\n").unwrap();
        }
        let mut hinted = BTreeSet::new();
        let mut waits = 0;
        while !paths.is_subset(&hinted) && waits < 1000 {
            let inbox = hints.wait(&shared, Duration::from_millis(100));
            assert!(!inbox.is_rescan, "no event was lost");
            hinted.extend(inbox.hints.into_iter().map(|(path, _)| path));
            waits += 1;
        }
        assert_eq!(paths.difference(&hinted).count(), 0);
        assert!(
            waits > 1,
            "one buffer held every event: the test proves nothing"
        );
    }
}
