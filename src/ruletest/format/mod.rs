//! The test file format: the model of a test file ([`TestFile`]), read from YAML by `read`.
//!
//! Parsing happens in two steps so that every problem gets a `file:line:column`:
//! [`parse`] checks the shape of the file alone (unknown keys, types, durations, times, which
//! fields go together) with the readers the configuration uses (`read`), and
//! [`resolve`](fn@resolve) checks it against the loaded configuration (rule names, source
//! names, `group` keys). Both return every problem they find.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::config::{self, Diagnostic, LoadError};
use crate::rules::Severity;

mod read;
mod resolve;
mod silences;

pub use resolve::resolve;
pub use silences::{CaseSilence, When};

/// The virtual clock's start when a file does not say.
pub const DEFAULT_START: &str = "2026-01-01T00:00:00Z";

/// Most writes one input entry may make (the runner holds a case's writes in memory).
pub const MAX_REPEAT: u32 = 1_000_000;

/// Latest input time after `start`, so the virtual clock never overflows.
const MAX_OFFSET: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// A 1-based (line, column) in a test file.
pub type Position = Option<(usize, usize)>;

/// A parsed test file.
#[derive(Clone, Debug)]
pub struct TestFile {
    /// The test file, as given.
    pub path: PathBuf,
    /// Its text, for the source lines shown under diagnostics.
    pub text: String,
    /// The config under test, resolved against the test file's directory.
    pub config: PathBuf,
    /// Where `config:` is written.
    pub config_position: Position,
    /// The virtual clock at `at: 0s`.
    pub start: Timestamp,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One test case: input lines and what the windows they make must look like.
#[derive(Clone, Debug)]
pub struct Case {
    /// Shown in the report.
    pub name: String,
    /// Where `name:` is written.
    pub position: Position,
    /// Input entries, in file order (the runner sorts them by time).
    pub input: Vec<Input>,
    /// Expectations per window.
    pub expect: Vec<WindowExpect>,
    /// No window may report any rule (no message would be sent).
    pub expect_no_alerts: bool,
    /// Exactly this many windows must close.
    pub windows: Option<u32>,
    /// Exactly these absences fire (absence rules, stalled sources); `None`: not checked.
    pub absent: Option<Vec<AbsentExpect>>,
    /// Silences that apply while the case runs (`silences:`), besides the config's.
    pub silences: Vec<CaseSilence>,
}

/// An absence that must fire in a case.
#[derive(Clone, Debug)]
pub struct AbsentExpect {
    /// The absence rule (or, with `is_source`, the source of `source_stalled`).
    pub name: Named,
    /// Whether `name` is a source.
    pub is_source: bool,
    /// The key's `group_by` values (empty: a rule without `group_by`, or a source).
    pub group: Vec<(String, String)>,
    /// When it must fire, after the file's `start`.
    pub at: Option<Duration>,
    /// When it must be back, after the file's `start`.
    pub back: Option<Duration>,
}

/// One input entry: one or more lines, written once or repeated.
#[derive(Clone, Debug)]
pub struct Input {
    /// Time of the first write, after the file's `start`.
    pub at: Duration,
    /// Interval between repeats.
    pub every: Duration,
    /// How many times the lines are written (1 when not repeated).
    pub repeat: u32,
    /// The source the lines are written to; `None` when the config has a single source.
    pub source: Option<Named>,
    /// Where the entry is written.
    pub position: Position,
    /// The file name shown in summaries; defaults to the source's first path.
    pub file: Option<String>,
    /// The lines, written one after the other at the same instant.
    pub lines: Vec<String>,
}

/// What one window must look like.
#[derive(Clone, Debug, Default)]
pub struct WindowExpect {
    /// 1-based, in order of closing.
    pub window: u32,
    /// Where `window:` is written.
    pub position: Position,
    /// Rules that must be reported, with their counts.
    pub fires: Vec<Fire>,
    /// Rules that must not be reported.
    pub not_firing: Vec<Named>,
    /// Sub-strings the rendered message must contain.
    pub contains: Vec<String>,
    /// Sub-strings the rendered message must not contain.
    pub not_contains: Vec<String>,
    /// Sub-strings the DingTalk title (the push notification) must contain.
    pub title_contains: Vec<String>,
    /// Texts each displayed within one line of the message (its first body, as shown).
    pub shows: Vec<String>,
    /// Incident expectations: exactly these rules are new, ongoing, resolved (when given).
    pub incidents: IncidentExpect,
}

/// What the incident stage must say about a window; `None`: not checked.
#[derive(Clone, Debug, Default)]
pub struct IncidentExpect {
    /// Rules whose incident starts with the window.
    pub new: Option<Vec<Named>>,
    /// Rules with hits in the window whose incident was already open.
    pub ongoing: Option<Vec<Named>>,
    /// Rules whose incident resolves after the window closes, before the next one does.
    pub resolved: Option<Vec<Named>>,
    /// Whether a message goes out when the window closes (held windows send none).
    pub sent: Option<bool>,
}

impl IncidentExpect {
    /// Every rule named, for checking names against the configuration.
    pub fn named(&self) -> impl Iterator<Item = &Named> {
        [&self.new, &self.ongoing, &self.resolved]
            .into_iter()
            .flatten()
            .flatten()
    }
}

/// A rule that must be reported.
#[derive(Clone, Debug)]
pub struct Fire {
    /// Rule name (and where it is written).
    pub rule: Named,
    /// Exact number of hits: of the rule, or of the groups matching `group` when given.
    pub count: u64,
    /// `group_by` values the counted groups must have, in the test file's order.
    pub group: Vec<(String, String)>,
    /// The severity the rule must be reported with.
    pub severity: Option<Severity>,
}

/// A name written in a test file, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub position: Position,
}

/// Parses a test file's text. `path` is used in diagnostics and to resolve `config:`.
///
/// # Errors
///
/// Every problem found, each with a position when there is one.
pub fn parse(path: &Path, text: &str) -> Result<TestFile, Vec<Diagnostic>> {
    config::parse_document(path, text.to_owned(), None, |ctx, root, _| {
        read::file(ctx, root)
    })
    .map_err(|err| err.diagnostics)
}

/// Reads and parses the test file at `path`.
///
/// # Errors
///
/// The file cannot be read, or every problem in it.
pub fn load(path: &Path) -> Result<TestFile, LoadError> {
    config::load_document(path, "failed to read test file", None, |ctx, root, _| {
        read::file(ctx, root)
    })
}
