//! `logding test`: runs rule test files and reports each case as `ok` or `FAILED` with a diff,
//! ending with `N passed, N failed`.
//!
//! A malformed test file (or a config it cannot load) is reported on stderr with
//! `file:line:column` errors and skipped; the other files still run. Exit code: 2 if any file
//! was malformed, else 1 if any case failed, else 0.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::TestArgs;
use crate::cmd::Exit;
use crate::config::{self, Config};
use crate::ruletest::{self, compare};

/// Indentation of a failed case's diff under its `FAILED` line.
const DIFF_INDENT: &str = "          ";

/// Runs the command.
///
/// # Errors
///
/// Writing to stdout failed.
#[allow(clippy::print_stderr)]
pub fn run(args: TestArgs) -> anyhow::Result<Exit> {
    let mut configs: HashMap<PathBuf, Result<Config, String>> = HashMap::new();
    let mut passed = 0usize;
    let mut failed = 0usize;
    let mut malformed = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let file = match ruletest::load(path) {
            Ok(file) => file,
            Err(err) => {
                eprintln!("{err}");
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
                let (line, col) = file.config_position.unwrap_or((1, 1));
                eprintln!(
                    "{}:{line}:{col}: failed to load config `{}`:\n{err}",
                    path.display(),
                    file.config.display()
                );
                malformed = true;
                continue;
            }
        };
        let results = match ruletest::run_file(&file, config) {
            Ok(results) => results,
            Err(err) => {
                eprintln!("{err}");
                malformed = true;
                continue;
            }
        };
        writeln!(out, "{}", path.display()).context("failed to write to stdout")?;
        for result in results {
            if result.mismatches.is_empty() {
                passed += 1;
                writeln!(out, "  ok      {}", result.name)
            } else {
                failed += 1;
                writeln!(
                    out,
                    "  FAILED  {}\n{}",
                    result.name,
                    compare::render_diff(&result.mismatches, DIFF_INDENT)
                )
            }
            .context("failed to write to stdout")?;
        }
    }
    writeln!(out, "\n{passed} passed, {failed} failed").context("failed to write to stdout")?;
    Ok(if malformed {
        Exit::Usage
    } else if failed > 0 {
        Exit::Failure
    } else {
        Exit::Success
    })
}
