//! Discovery: which paths a set of globs matches right now. The one glob walker of the
//! program: the tailer's sources, `logding scan`'s source lookup and the config's `include:`
//! all use `Globs`.
//!
//! Globs are compiled with `globset` (`*` does not cross `/`; `**` does). Enumeration starts at
//! each glob's literal directory prefix and walks only as deep as the glob can match (at most
//! eight levels under a `**`) and through at most `MAX_WALK_ENTRIES` entries, so the cost is
//! bounded by the directories the globs name, never by the whole filesystem. A missing
//! directory is not an error: it simply matches nothing until it appears.
//!
//! Rotated siblings (`app.log.1`, `app.log-20261128`, not `*.gz`) are found here too, but they
//! are only ever used to resume a file that has a checkpoint; they are never read from 0.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Deepest walk under a `**`.
pub(crate) const MAX_DEPTH: usize = 8;
/// Most directory entries one enumeration looks at (against a runaway `/**`).
pub(crate) const MAX_WALK_ENTRIES: usize = 100_000;

/// Suffixes of rotated files that are never followed (compressed: reading them is useless).
const COMPRESSED: &[&str] = &[".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".Z", ".br"];

/// The compiled globs of one source.
#[derive(Clone, Debug)]
pub(crate) struct Globs {
    include: GlobSet,
    exclude_path: GlobSet,
    exclude_name: GlobSet,
    roots: Vec<Root>,
}

/// Where to start enumerating for one include pattern.
#[derive(Clone, Debug)]
struct Root {
    /// The literal directory prefix (or the whole path for a literal pattern).
    dir: PathBuf,
    /// How many directory levels under `dir` can match; `None` for a literal path.
    depth: Option<usize>,
}

/// An invalid glob.
#[derive(Debug, thiserror::Error)]
#[error("invalid glob `{pattern}`")]
pub struct GlobError {
    /// The pattern.
    pub pattern: String,
    /// Why.
    #[source]
    pub source: globset::Error,
}

/// What one enumeration found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Regular files (or symlinks to them) matching the globs, sorted.
    pub files: Vec<PathBuf>,
    /// Paths matching the globs that are not regular files (directories, sockets, ...).
    pub not_files: Vec<PathBuf>,
    /// Directories looked at (to watch for changes).
    pub dirs: Vec<PathBuf>,
    /// The walk stopped at [`MAX_WALK_ENTRIES`]: some matches may be missing.
    pub is_cut: bool,
}

/// Compiles one pattern the way [`Globs`] does (`*` does not cross `/`): also what `check`
/// validates sources' patterns with.
pub(crate) fn glob(pattern: &str) -> Result<Glob, GlobError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| GlobError {
            pattern: pattern.to_owned(),
            source,
        })
}

fn is_glob_component(component: &str) -> bool {
    component.contains(['*', '?', '[', '{'])
}

impl Globs {
    /// Compiles a source's include and exclude patterns.
    pub(crate) fn new(paths: &[String], exclude: &[String]) -> Result<Globs, GlobError> {
        let mut include = GlobSetBuilder::new();
        let mut roots = Vec::new();
        for pattern in paths {
            include.add(glob(pattern)?);
            roots.push(root_of(pattern));
        }
        let mut exclude_path = GlobSetBuilder::new();
        let mut exclude_name = GlobSetBuilder::new();
        for pattern in exclude {
            if pattern.contains('/') {
                exclude_path.add(glob(pattern)?);
            } else {
                exclude_name.add(glob(pattern)?);
            }
        }
        let build = |builder: GlobSetBuilder, pattern: &str| {
            builder.build().map_err(|source| GlobError {
                pattern: pattern.to_owned(),
                source,
            })
        };
        Ok(Globs {
            include: build(include, &paths.join(", "))?,
            exclude_path: build(exclude_path, &exclude.join(", "))?,
            exclude_name: build(exclude_name, &exclude.join(", "))?,
            roots,
        })
    }

    /// Returns true if and only if `path` is matched by an include pattern and by no exclude
    /// pattern.
    pub(crate) fn matches(&self, path: &Path) -> bool {
        self.include.is_match(path)
            && !self.exclude_path.is_match(path)
            && !path
                .file_name()
                .is_some_and(|name| self.exclude_name.is_match(Path::new(name)))
    }

    /// Enumerates the paths matching the globs now.
    pub(crate) fn find(&self) -> Found {
        let mut found = Found::default();
        let mut budget = MAX_WALK_ENTRIES;
        for root in &self.roots {
            match root.depth {
                None => self.consider(&root.dir, &mut found),
                Some(depth) => self.walk(&root.dir, depth, &mut found, &mut budget),
            }
        }
        found.files.sort();
        found.files.dedup();
        found.not_files.sort();
        found.not_files.dedup();
        found.dirs.sort();
        found.dirs.dedup();
        found
    }

    fn consider(&self, path: &Path, found: &mut Found) {
        if !self.matches(path) {
            return;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => found.files.push(path.to_owned()),
            Ok(_) => found.not_files.push(path.to_owned()),
            Err(_) => {}
        }
        if let Some(parent) = path.parent()
            && parent.is_dir()
        {
            found.dirs.push(parent.to_owned());
        }
    }

    fn walk(&self, dir: &Path, depth: usize, found: &mut Found, budget: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        found.dirs.push(dir.to_owned());
        for entry in entries.flatten() {
            if *budget == 0 {
                found.is_cut = true;
                return;
            }
            *budget -= 1;
            let path = entry.path();
            let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
            if is_dir && depth > 1 {
                self.walk(&path, depth - 1, found, budget);
            }
            self.consider_walked(&path, is_dir, found);
        }
    }

    fn consider_walked(&self, path: &Path, is_dir: bool, found: &mut Found) {
        if !self.matches(path) {
            return;
        }
        if is_dir {
            found.not_files.push(path.to_owned());
        } else if std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            found.files.push(path.to_owned());
        } else {
            found.not_files.push(path.to_owned());
        }
    }
}

fn root_of(pattern: &str) -> Root {
    let components: Vec<&str> = pattern.split('/').collect();
    let Some(first_glob) = components.iter().position(|c| is_glob_component(c)) else {
        return Root {
            dir: PathBuf::from(pattern),
            depth: None,
        };
    };
    let dir = components[..first_glob].join("/");
    let dir = if dir.is_empty() {
        PathBuf::from("/")
    } else {
        PathBuf::from(dir)
    };
    let rest = &components[first_glob..];
    let depth = if rest.iter().any(|c| c.contains("**")) {
        MAX_DEPTH
    } else {
        rest.len()
    };
    Root {
        dir,
        depth: Some(depth),
    }
}

/// Rotated siblings of `path`: files in the same directory whose name starts with `path`'s name
/// (`app.log.1`, `app.log-20261128`), excluding compressed ones and `path` itself.
pub(crate) fn rotated_siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut siblings: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|entry| {
            let sibling = entry.file_name().to_string_lossy().into_owned();
            let is_rotated = sibling.len() > name.len()
                && sibling.starts_with(name.as_ref())
                && !COMPRESSED.iter().any(|suffix| sibling.ends_with(suffix));
            is_rotated.then(|| entry.path())
        })
        .collect();
    siblings.sort();
    siblings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_matches_under_literal_prefix_and_skips_excluded_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        for file in ["x.log", "y.txt", "z.log.gz", "a/deep.log", "a/b/deeper.log"] {
            std::fs::write(root.join(file), b"").unwrap();
        }
        std::fs::create_dir(root.join("dir.log")).unwrap();
        let flat =
            Globs::new(&[format!("{}/*.log", root.display())], &["*.gz".to_owned()]).unwrap();
        let found = flat.find();
        assert_eq!(found.files, vec![root.join("x.log")]);
        assert_eq!(found.not_files, vec![root.join("dir.log")]);

        let deep = Globs::new(&[format!("{}/**/*.log", root.display())], &[]).unwrap();
        let found = deep.find();
        assert_eq!(
            found.files,
            vec![
                root.join("a/b/deeper.log"),
                root.join("a/deep.log"),
                root.join("x.log")
            ]
        );
    }

    #[test]
    fn missing_directory_matches_nothing() {
        let globs = Globs::new(&["/nonexistent/logding/*.log".to_owned()], &[]).unwrap();
        assert!(globs.find().files.is_empty());
    }

    #[test]
    fn siblings_exclude_compressed() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "app.log",
            "app.log.1",
            "app.log.2.gz",
            "app.log-2026",
            "other.log",
        ] {
            std::fs::write(dir.path().join(file), b"").unwrap();
        }
        assert_eq!(
            rotated_siblings(&dir.path().join("app.log")),
            vec![
                dir.path().join("app.log-2026"),
                dir.path().join("app.log.1")
            ]
        );
    }
}
