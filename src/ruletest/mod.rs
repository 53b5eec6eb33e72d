//! Rule tests (`logding test`): YAML files of input lines with times and the summaries they must
//! produce, run on a virtual clock through the same scan, window and render code as `run`.
//!
//! This is `promtool test rules` for log rules: the rules live in the service's repository, and
//! CI fails with a readable diff when a rule stops matching what it should.
//!
//! - [`format`](mod@format): the file format, parsed and checked with `file:line:column`
//!   diagnostics.
//! - [`runner`]: one case through scan → window → render, with injected time.
//! - [`compare`]: expectations versus windows, as `- expected` / `+ actual` lines.
//! - [`window`]: what a case produced, window by window (what `runner` gives `compare`).
//!
//! Apart from reading the test file in [`load`], nothing here does IO, and no outcome depends
//! on the real clock.

pub mod absence;
pub mod compare;
pub mod format;
pub mod runner;
pub mod window;

use crate::config::{Config, LoadError};

pub use compare::Mismatch;
pub use format::TestFile;

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Empty if and only if the case passed.
    pub mismatches: Vec<Mismatch>,
}

pub use format::load;

/// Checks a test file against its configuration, then runs every case.
///
/// # Errors
///
/// The file names rules, sources or groups the configuration does not have.
pub fn run_file(file: &TestFile, config: &Config) -> Result<Vec<CaseResult>, LoadError> {
    format::resolve(file, config).map_err(|diagnostics| LoadError { diagnostics })?;
    Ok(file
        .cases
        .iter()
        .map(|case| {
            let (windows, absences) = runner::run_case_with_absences(case, config, file.start);
            let mut mismatches = compare::compare(case, &windows, file.start);
            if let Some(expected) = &case.absent {
                mismatches.extend(absence::compare(expected, &absences, file.start));
            }
            CaseResult {
                name: case.name.clone(),
                mismatches,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests;
