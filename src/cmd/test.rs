//! `logding test`: runs rule test files and reports each case as `ok` or `FAILED` with a diff,
//! ending with `N passed, N failed`.
//!
//! A malformed test file (or a config it cannot load) is reported on stderr with
//! `file:line:column` errors and skipped; the other files still run, as ripgrep goes on after
//! an unreadable file. Exit code: 2 if any file was malformed, else 1 if any case failed, else 0.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::TestArgs;
use crate::cmd::Exit;
use crate::config::{self, Config};
use crate::ruletest::{self, TestFile, compare};

/// Indentation of a failed case's diff under its `FAILED` line.
const DIFF_INDENT: &str = "          ";

/// Runs the command.
///
/// # Errors
///
/// Writing to stdout failed, or a directory argument cannot be listed.
#[allow(clippy::print_stderr)]
pub fn run(args: TestArgs) -> anyhow::Result<Exit> {
    let mut configs: HashMap<PathBuf, Result<Config, String>> = HashMap::new();
    let (mut passed, mut failed, mut malformed) = (0usize, 0usize, false);
    let mut has_reported = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in expand(&args.files)? {
        let file = match ruletest::load(&path) {
            Ok(file) => file,
            Err(err) => {
                eprintln!("error: {err}\n");
                malformed = true;
                continue;
            }
        };
        let config = configs
            .entry(file.config.clone())
            .or_insert_with(|| config::load(&file.config).map_err(|err| err.to_string()));
        let config = match config {
            Ok(config) => config,
            Err(err) => {
                eprintln!("error: {err}\n{}\n", named_by(&file));
                malformed = true;
                continue;
            }
        };
        let results = match ruletest::run_file(&file, config) {
            Ok(results) => results,
            Err(err) => {
                eprintln!("error: {err}\n");
                malformed = true;
                continue;
            }
        };
        let write = |out: &mut std::io::StdoutLock<'_>, text: String| {
            writeln!(out, "{text}").context("failed to write to stdout")
        };
        write(&mut out, path.display().to_string())?;
        has_reported = true;
        for result in results {
            if result.mismatches.is_empty() {
                passed += 1;
                write(&mut out, format!("  ok      {}", result.name))?;
            } else {
                failed += 1;
                let diff = compare::render_diff(&result.mismatches, DIFF_INDENT);
                write(&mut out, format!("  FAILED  {}\n{diff}", result.name))?;
            }
        }
    }
    // A blank line separates the count from the last file's cases.
    let separator = if has_reported { "\n" } else { "" };
    writeln!(out, "{separator}{passed} passed, {failed} failed")
        .context("failed to write to stdout")?;
    Ok(if malformed {
        Exit::Usage
    } else if failed > 0 {
        Exit::Failure
    } else {
        Exit::Success
    })
}

/// The files to run: each argument, or the `*.yaml` / `*.yml` files of a directory argument
/// (sorted, not recursive).
fn expand(arguments: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for argument in arguments {
        if !argument.is_dir() {
            files.push(argument.clone());
            continue;
        }
        let mut found = Vec::new();
        let listing = || format!("failed to list test directory `{}`", argument.display());
        for entry in std::fs::read_dir(argument).with_context(listing)? {
            let path = entry.with_context(listing)?.path();
            if is_yaml(&path) && path.is_file() {
                found.push(path);
            }
        }
        found.sort();
        files.append(&mut found);
    }
    Ok(files)
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "yaml" || ext == "yml")
}

/// Where the config that failed to load is named, so the user knows which test file it was.
fn named_by(file: &TestFile) -> String {
    let at = match file.config_position {
        Some((line, column)) => format!("{}:{line}:{column}", file.path.display()),
        None => file.path.display().to_string(),
    };
    format!(" = note: the config of the test file, named by `config:` at {at}")
}
