//! [`Origin`]: where the config file is, so that paths written in it resolve against its
//! directory and messages show them as the user wrote them.

use std::path::{Path, PathBuf};

/// Where the config file is, as shown to the user and as an absolute path.
pub(crate) struct Origin {
    /// As the user named it (for messages).
    pub(crate) display: PathBuf,
    /// Absolute (for resolving relative paths).
    pub(crate) absolute: PathBuf,
}

impl Origin {
    fn dir(&self) -> &Path {
        self.absolute.parent().unwrap_or(Path::new("/"))
    }

    /// Resolves a path written in the config file, lexically normalized (`a/../b` is `b`), so
    /// that logs and messages show `/etc/logding/logs/app.log`, not `/etc/logding/rules/../logs`.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        normalize(&self.dir().join(path))
    }

    /// The directory of the config file, as it should appear in messages.
    pub(crate) fn display_dir(&self) -> PathBuf {
        match self.display.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// A path written in the config file, as it should appear in messages.
    pub(crate) fn display_of(&self, path: &str) -> PathBuf {
        let written = Path::new(path);
        if written.is_absolute() {
            return written.to_owned();
        }
        self.display.parent().unwrap_or(Path::new("")).join(written)
    }
}

/// Removes `.` components and folds `..` into its parent, without touching the filesystem
/// (like Go's `filepath.Clean`). A `..` above the root stays at the root.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_paths_are_lexically_normalized() {
        let origin = Origin {
            display: PathBuf::from("config/logding.yaml"),
            absolute: PathBuf::from("/srv/app/config/logding.yaml"),
        };
        assert_eq!(
            origin.resolve("../logs/./app*.log"),
            PathBuf::from("/srv/app/logs/app*.log")
        );
        assert_eq!(
            origin.resolve("/var/log/x.log"),
            PathBuf::from("/var/log/x.log")
        );
    }
}
