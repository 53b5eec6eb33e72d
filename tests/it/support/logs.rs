//! Captures `tracing` output into a buffer, for asserting on what logding logs (and on what it
//! must never log, such as the webhook token).
//!
//! The subscriber is thread-local (`set_default`): use it from a current-thread runtime test
//! (`#[tokio::test]`), where every spawned task runs on the test's thread.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// The captured output.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Everything logged so far, as text.
    pub(crate) fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// The lines that contain `needle`.
    pub(crate) fn lines_with(&self, needle: &str) -> Vec<String> {
        self.contents()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing every event (all levels, all crates, including reqwest and hyper) on this
/// thread until the guard is dropped.
pub(crate) fn capture() -> (DefaultGuard, Logs) {
    // reqwest logs through `log`: forward it (once per process; later calls fail harmlessly).
    drop(tracing_log::LogTracer::init());
    let logs = Logs::default();
    let buffer = logs.0.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || Writer(buffer.clone()))
        .finish();
    (tracing::subscriber::set_default(subscriber), logs)
}
