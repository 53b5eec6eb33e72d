//! Checkpoint writes on a thread of their own (`logding-ckpt`), so that the tail thread never
//! waits for the disk. A checkpoint write fsyncs a file and its directory, which waits for the
//! filesystem's journal: on a busy disk, hundreds of milliseconds. The moment that happens most
//! is a rotation, when logrotate syncs the copy it just made; with `copytruncate`, lines written
//! between the end of that copy and the truncate exist only until the truncate, so a tail
//! thread waiting on its own fsync then lost all of them.
//!
//! One write at a time: the tail thread hands over the next checkpoint only once the last one is
//! done and its outcome taken (each checkpoint supersedes the one before, so a slow disk only
//! makes them less frequent). What was committed is persisted exactly as before; only where the
//! wait happens changed.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::checkpoint::{self, Checkpoint};

/// The outcome of one write: the checkpoint, and whether it is on disk.
pub(crate) type Outcome = (Checkpoint, Result<(), checkpoint::Error>);

#[derive(Default)]
struct Slot {
    /// The checkpoint to write, and the state directory.
    todo: Option<(PathBuf, Checkpoint)>,
    /// A write is in progress.
    is_busy: bool,
    /// The last write's outcome, until the tail thread takes it.
    done: Option<Outcome>,
    /// No more writes: the thread ends once the one in progress is done.
    is_closed: bool,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The checkpoint-writing thread.
pub(crate) struct Saver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Saver {
    /// Starts the thread.
    pub(crate) fn spawn() -> std::io::Result<Saver> {
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("logding-ckpt".into())
            .spawn(move || run(&thread_shared))?;
        Ok(Saver {
            shared,
            thread: Some(thread),
        })
    }

    /// Returns true if and only if a checkpoint handed over now is written at once: none is
    /// being written, and the last outcome was taken.
    pub(crate) fn is_idle(&self) -> bool {
        let slot = self.shared.lock();
        slot.todo.is_none() && !slot.is_busy && slot.done.is_none()
    }

    /// Hands `checkpoint` over, to be written in `dir`.
    pub(crate) fn write(&self, dir: PathBuf, checkpoint: Checkpoint) {
        self.shared.lock().todo = Some((dir, checkpoint));
        self.shared.wake.notify_all();
    }

    /// The outcome of the last write, once.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        self.shared.lock().done.take()
    }

    /// Waits for the write handed over last and stops the thread; returns its outcome if it
    /// was not taken.
    pub(crate) fn finish(mut self) -> Option<Outcome> {
        self.close();
        if let Some(thread) = self.thread.take() {
            // A panic in `checkpoint::save` leaves no outcome: the final write says the rest.
            drop(thread.join());
        }
        self.outcome()
    }

    fn close(&self) {
        self.shared.lock().is_closed = true;
        self.shared.wake.notify_all();
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        // Not joined here: a write stuck on a hung disk must not hang the tail thread's exit.
        self.close();
    }
}

fn run(shared: &Shared) {
    let mut slot = shared.lock();
    loop {
        if let Some((dir, checkpoint)) = slot.todo.take() {
            slot.is_busy = true;
            drop(slot);
            let result = checkpoint::save(&dir, &checkpoint);
            slot = shared.lock();
            slot.is_busy = false;
            slot.done = Some((checkpoint, result));
            continue;
        }
        if slot.is_closed {
            return;
        }
        slot = shared.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_handed_over_is_written_and_its_outcome_told_once() {
        let dir = tempfile::tempdir().unwrap();
        let saver = Saver::spawn().unwrap();
        assert!(saver.is_idle());
        let checkpoint = Checkpoint {
            version: checkpoint::VERSION,
            saved_at_ns: 1,
            sources: vec!["app".into()],
            files: Vec::new(),
        };
        saver.write(dir.path().to_path_buf(), checkpoint.clone());
        assert!(!saver.is_idle(), "busy until its outcome is taken");
        let (written, result) = saver.finish().expect("the outcome of the last write");
        assert!(result.is_ok());
        assert_eq!(written, checkpoint);
        match checkpoint::load(dir.path()) {
            checkpoint::Loaded::Found { checkpoint, .. } => assert_eq!(checkpoint, written),
            other => panic!("not written: {other:?}"),
        }
        // A write that fails is told as such.
        let saver = Saver::spawn().unwrap();
        saver.write(dir.path().join("missing"), written);
        let (_, result) = saver.finish().unwrap();
        assert!(result.is_err());
    }
}
