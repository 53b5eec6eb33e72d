//! Expansion of `include:` globs into files.
//!
//! Sources' globs are expanded by the tailer at run time; includes are expanded once, here, so
//! that a glob matching nothing is a configuration error with a position. Both walk with the
//! tailer's [`Globs`] (same syntax, same depth and entry bounds).

use std::path::{Path, PathBuf};

use crate::discover::Globs;

/// The regular files matching an absolute glob, sorted. A pattern without glob characters
/// names one file. Directories are walked from the longest literal prefix, as deep as the
/// pattern reaches (eight levels under `**`).
pub(crate) fn expand_glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let globs = Globs::new(&[pattern.to_string_lossy().into_owned()], &[])
        .map_err(|err| err.source.kind().to_string())?;
    Ok(globs.find().files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_sorted_files_at_the_depth_of_the_pattern() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for file in [
            "b.yaml",
            "a.yaml",
            "c.yml",
            "sub/d.yaml",
            "sub/deeper/e.yaml",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "rules: []\n").expect("write");
        }
        let names = |pattern: &str| -> Vec<String> {
            expand_glob(&root.join(pattern))
                .expect("valid glob")
                .iter()
                .map(|p| {
                    p.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(names("*.yaml"), ["a.yaml", "b.yaml"]);
        assert_eq!(names("*/*.yaml"), ["sub/d.yaml"]);
        assert_eq!(
            names("**/*.yaml"),
            ["a.yaml", "b.yaml", "sub/d.yaml", "sub/deeper/e.yaml"]
        );
        assert_eq!(names("c.yml"), ["c.yml"]);
        assert!(names("missing/*.yaml").is_empty());
        assert!(expand_glob(&root.join("[z-a].yaml")).is_err());
    }
}
