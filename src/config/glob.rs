//! Expansion of `include:` globs into files.
//!
//! Sources' globs are expanded by the tailer at run time; includes are expanded once, here, so
//! that a glob matching nothing is a configuration error with a position.

use std::path::{Path, PathBuf};

/// Upper bound of files an include glob may walk through, against runaway `**`.
const MAX_GLOB_ENTRIES: usize = 10_000;

/// The files matching an absolute glob, sorted. A pattern without glob characters names one
/// file. Directories are walked from the longest literal prefix, as deep as the pattern reaches
/// (any depth for `**`), at most [`MAX_GLOB_ENTRIES`] entries.
pub(crate) fn expand_glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy();
    let is_meta = |s: &str| s.contains(['*', '?', '[', '{']);
    if !is_meta(&text) {
        return Ok(if pattern.is_file() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        });
    }
    let matcher = globset::GlobBuilder::new(&text)
        .literal_separator(true)
        .build()
        .map_err(|e| e.kind().to_string())?
        .compile_matcher();
    let mut base = PathBuf::new();
    let mut depth = 0usize;
    let mut recursive = false;
    let mut in_pattern = false;
    for component in pattern.components() {
        let part = component.as_os_str().to_string_lossy();
        if in_pattern || is_meta(&part) {
            in_pattern = true;
            depth += 1;
            recursive |= part.contains("**");
        } else {
            base.push(component);
        }
    }
    let max_depth = if recursive { 32 } else { depth };
    let mut found = Vec::new();
    let mut budget = MAX_GLOB_ENTRIES;
    walk(&base, 1, max_depth, &matcher, &mut found, &mut budget);
    found.sort();
    Ok(found)
}

fn walk(
    dir: &Path,
    depth: usize,
    max_depth: usize,
    matcher: &globset::GlobMatcher,
    found: &mut Vec<PathBuf>,
    budget: &mut usize,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = entry.path();
        let is_dir = path.is_dir();
        if !is_dir && matcher.is_match(&path) {
            found.push(path);
        } else if is_dir && depth < max_depth {
            walk(&path, depth + 1, max_depth, matcher, found, budget);
        }
    }
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
