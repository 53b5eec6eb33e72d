//! Atomic, durable writes of state files: the one way logding replaces a file in `state_dir`.
//!
//! Every state file (the tail checkpoint, outbox entries, the robot's send times, and the
//! incident and silence files to come) must survive a kill or a power cut at any instant as
//! either the old content or the new, never a torn mix. The recipe is the classic one: write a
//! temporary file next to the target, fsync it, rename it over the target, then fsync the
//! directory so the rename itself is durable. It lives here once so no writer forgets a step.
//!
//! These are blocking calls (fsync can take tens of milliseconds on a busy disk): async callers
//! run them on a blocking thread (`tokio::task::spawn_blocking`), never on a runtime thread.
//!
//! Leftover `*.tmp` files (a write interrupted by a crash) were never acknowledged: readers may
//! delete them on start.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The suffix of temporary files, appended to the target's name.
pub const TMP_SUFFIX: &str = ".tmp";

/// A failure to write a state file; the previous content (if any) is still in place.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} `{}`", path.display())]
pub struct Error {
    /// What was being done, e.g. "write", "rename into place".
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` atomically and durably: temporary file, fsync, rename, fsync of the
/// directory. `path` must name a file inside an existing directory.
///
/// # Errors
///
/// Any step failed; the previous file is then unchanged (a stray temporary file may remain).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace(path, None, bytes)
}

/// Like [`write_atomic`], but the current file (when there is one) is first renamed to `prev`,
/// so that a reader can fall back to the previous generation when the current one turns out
/// unusable (the checkpoint keeps its `.prev` this way).
///
/// # Errors
///
/// Any step failed. If the current file was already moved to `prev`, `path` may be missing
/// until the next successful write: readers fall back to `prev`.
pub fn write_atomic_keeping_prev(path: &Path, prev: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace(path, Some(prev), bytes)
}

/// Fsyncs directory `dir`, making renames and removals of its entries durable.
///
/// # Errors
///
/// The directory could not be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(error("sync the directory", dir))
}

/// The temporary file used while writing `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

fn replace(path: &Path, prev: Option<&Path>, bytes: &[u8]) -> Result<(), Error> {
    let tmp = tmp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    written.map_err(error("write", &tmp))?;
    if let Some(prev) = prev {
        match std::fs::rename(path, prev) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(error("keep the previous copy of", path)(err)),
        }
    }
    std::fs::rename(&tmp, path).map_err(error("rename into place", path))?;
    sync_dir(parent(path))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Wraps an IO error of `action` on `path` into an [`Error`], for `map_err`.
pub(crate) fn error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").expect("written");
        write_atomic(&path, b"two").expect("written");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn keeps_the_previous_generation_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let prev = dir.path().join("state.json.prev");
        write_atomic_keeping_prev(&path, &prev, b"one").expect("first write, nothing to keep");
        assert!(!prev.exists());
        write_atomic_keeping_prev(&path, &prev, b"two").expect("written");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read(&prev).expect("read"), b"one");
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_the_old_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").expect("written");
        // The temporary file's name is taken by a directory: creating it fails.
        std::fs::create_dir(tmp_path(&path)).expect("dir");
        let err = write_atomic(&path, b"new").expect_err("cannot create the temporary file");
        assert!(err.to_string().starts_with("failed to write `"), "{err}");
        assert!(err.to_string().contains("state.json.tmp"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
    }
}
