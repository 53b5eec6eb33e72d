//! The test file format: YAML shapes (`raw`), parsed into validated [`TestFile`]s.
//!
//! Parsing happens in two steps so that every problem gets a `file:line:column`:
//! [`parse`] checks the shape of the file alone (unknown keys, durations, times, which fields go
//! together), and [`resolve`](fn@resolve) checks it against the loaded configuration (rule
//! names, source names, `group` keys). Both return every problem they find, except that a
//! shape error serde reports (an unknown key, a list where a string belongs) ends parsing there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde_saphyr::Spanned;

use crate::config::{Diagnostic, Snippet};
use crate::rules::Severity;

mod raw;
mod resolve;

pub use resolve::resolve;

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
    let mut problems = Problems {
        file: path,
        text,
        diagnostics: Vec::new(),
    };
    let raw: raw::File = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            problems.yaml_error(&err);
            return Err(problems.diagnostics);
        }
    };
    let start = match &raw.start {
        None => DEFAULT_START
            .parse()
            .expect("the default start is a valid timestamp"),
        Some(start) => start.value.parse().unwrap_or_else(|err| {
            problems.push(
                &start.referenced,
                format!("invalid `start` time `{}`: {err}", start.value),
                Some("write an RFC 3339 time like `2026-11-28T10:00:00+08:00`"),
            );
            Timestamp::UNIX_EPOCH
        }),
    };
    let base = path.parent().unwrap_or(Path::new(""));
    if raw.cases.is_empty() {
        problems.push_at(None, 1, "the file has no `cases`".into(), None);
    }
    let cases = raw
        .cases
        .into_iter()
        .map(|case| parse_case(case, &mut problems))
        .collect();
    if !problems.diagnostics.is_empty() {
        return Err(problems.diagnostics);
    }
    Ok(TestFile {
        path: path.to_owned(),
        text: text.to_owned(),
        config: base.join(&raw.config.value),
        config_position: position(&raw.config.referenced),
        start,
        cases,
    })
}

/// Collects the diagnostics of one file.
struct Problems<'a> {
    file: &'a Path,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Problems<'_> {
    fn push(&mut self, at: &serde_saphyr::Location, message: String, help: Option<&str>) {
        let len = at.span().byte_len().map_or(1, |len| len as usize);
        self.push_at(position(at), len, message, help);
    }

    /// Records a problem at `position`, underlining `len` characters there.
    fn push_at(&mut self, position: Position, len: usize, message: String, help: Option<&str>) {
        self.diagnostics.push(diagnostic(
            self.file,
            Some(self.text),
            (position, len),
            message,
            help.map(str::to_owned),
        ));
    }

    /// A YAML syntax or shape error: the crate's message without its own location suffix or
    /// snippet, and the location as a position.
    // TODO(ruletest): share the config module's wording of YAML errors once it is on main.
    fn yaml_error(&mut self, err: &serde_saphyr::Error) {
        use serde_saphyr::MessageFormatter;
        let message = serde_saphyr::DefaultMessageFormatter
            .format_message(err.without_snippet())
            .into_owned();
        match err.location() {
            Some(at) => self.push(&at, message, None),
            None => self.push_at(None, 1, message, None),
        }
    }

    fn duration(&mut self, value: &Spanned<String>, key: &str) -> Duration {
        humantime::parse_duration(&value.value).unwrap_or_else(|err| {
            self.push(
                &value.referenced,
                format!("invalid duration `{}` in `{key}`: {err}", value.value),
                Some("write a duration like `0s`, `1500ms`, `2m` or `1h 30m`"),
            );
            Duration::ZERO
        })
    }
}

fn parse_case(raw: raw::Case, problems: &mut Problems<'_>) -> Case {
    let input = raw
        .input
        .into_iter()
        .map(|input| parse_input(input, problems))
        .collect();
    let expect: Vec<WindowExpect> = raw
        .expect
        .into_iter()
        .map(|expect| parse_expect(expect, problems))
        .collect();
    let at = &raw.name.referenced;
    if raw.expect_no_alerts && !expect.is_empty() {
        problems.push(
            at,
            format!(
                "case `{}` has both `expect` and `expect_no_alerts: true`",
                raw.name.value
            ),
            Some("keep one: `expect_no_alerts` already means no rule fires in any window"),
        );
    }
    if !raw.expect_no_alerts && expect.is_empty() && raw.windows.is_none() {
        problems.push(
            at,
            format!("case `{}` expects nothing", raw.name.value),
            Some("add `expect:`, `expect_no_alerts: true` or `windows:`"),
        );
    }
    Case {
        name: raw.name.value,
        position: position(at),
        input,
        expect,
        expect_no_alerts: raw.expect_no_alerts,
        windows: raw.windows,
    }
}

fn parse_input(raw: Spanned<raw::Input>, problems: &mut Problems<'_>) -> Input {
    let at = &raw.referenced;
    let raw = raw.value;
    let lines = match (raw.line, raw.lines) {
        (Some(line), None) => vec![line],
        (None, Some(lines)) if !lines.is_empty() => lines,
        (None, Some(_)) => {
            problems.push(at, "`lines` is empty".into(), None);
            Vec::new()
        }
        (Some(_), Some(_)) => {
            problems.push(
                at,
                "input has both `line` and `lines`".into(),
                Some("use `line` for one line, `lines` for several"),
            );
            Vec::new()
        }
        (None, None) => {
            problems.push(
                at,
                "input has neither `line` nor `lines`".into(),
                Some("add `line: \"...\"` or `lines: [\"...\", \"...\"]`"),
            );
            Vec::new()
        }
    };
    let every = match &raw.every {
        Some(every) => problems.duration(every, "every"),
        None => Duration::ZERO,
    };
    let repeat = match (&raw.every, raw.repeat) {
        (Some(every), None) => {
            problems.push(
                &every.referenced,
                "`every` without `repeat`".into(),
                Some("add `repeat: N`, the number of times the line is written"),
            );
            1
        }
        (_, Some(repeat)) if repeat.value == 0 || repeat.value > MAX_REPEAT => {
            problems.push(
                &repeat.referenced,
                format!("`repeat` must be between 1 and {MAX_REPEAT}"),
                None,
            );
            1
        }
        (_, Some(repeat)) => repeat.value,
        (None, None) => 1,
    };
    let first = problems.duration(&raw.at, "at");
    let last = every
        .checked_mul(repeat.saturating_sub(1))
        .and_then(|span| span.checked_add(first));
    if last.is_none_or(|last| last > MAX_OFFSET) {
        problems.push(
            &raw.at.referenced,
            "input times must stay within 10 years of `start`".into(),
            None,
        );
    }
    Input {
        at: first,
        every,
        repeat,
        source: raw.source.map(named),
        position: position(at),
        file: raw.file,
        lines,
    }
}

fn parse_expect(raw: Spanned<raw::Expect>, problems: &mut Problems<'_>) -> WindowExpect {
    let at = &raw.referenced;
    let raw = raw.value;
    if raw.window.value == 0 {
        problems.push(
            &raw.window.referenced,
            "windows are numbered from 1".into(),
            None,
        );
    }
    let fires = raw
        .fires
        .into_iter()
        .map(|fire| Fire {
            rule: named(fire.rule),
            count: fire.count,
            group: fire.group.into_iter().collect(),
            severity: fire.severity,
        })
        .collect();
    let expect = WindowExpect {
        window: raw.window.value,
        position: position(at),
        fires,
        not_firing: raw.not_firing.into_iter().map(named).collect(),
        contains: raw.contains,
        not_contains: raw.not_contains,
        title_contains: raw.title_contains,
        shows: raw.shows,
        incidents: IncidentExpect {
            new: raw.new.map(|names| names.into_iter().map(named).collect()),
            ongoing: raw
                .ongoing
                .map(|names| names.into_iter().map(named).collect()),
            resolved: raw
                .resolved
                .map(|names| names.into_iter().map(named).collect()),
            sent: raw.sent,
        },
    };
    for fire in &expect.fires {
        if expect.not_firing.iter().any(|n| n.name == fire.rule.name) {
            problems.push_at(
                fire.rule.position,
                fire.rule.name.len(),
                format!(
                    "rule `{}` is both in `fires` and `not_firing`",
                    fire.rule.name
                ),
                None,
            );
        }
    }
    expect
}

fn named(value: Spanned<String>) -> Named {
    Named {
        position: position(&value.referenced),
        name: value.value,
    }
}

fn position(location: &serde_saphyr::Location) -> Position {
    let (line, column) = (location.line(), location.column());
    (line > 0).then_some((line as usize, column as usize))
}

/// A diagnostic of a test file; with its `text`, the line at `position` is kept to be shown
/// under the message, `len` characters underlined.
pub(crate) fn diagnostic(
    file: &Path,
    text: Option<&str>,
    (position, len): (Position, usize),
    message: String,
    help: Option<String>,
) -> Diagnostic {
    let snippet = match (text, position) {
        (Some(text), Some((line, column))) => snippet(text, line, column, len),
        _ => None,
    };
    Diagnostic {
        file: file.to_owned(),
        position,
        message,
        help,
        snippet,
    }
}

/// The line at `line` and how many characters from `column` to underline (at most to the end
/// of the line, at least 1).
// TODO(ruletest): use `config`'s own snippet helper if it becomes `pub(crate)`.
fn snippet(text: &str, line: usize, column: usize, len: usize) -> Option<Snippet> {
    let source = text.lines().nth(line.checked_sub(1)?)?;
    let rest = source
        .chars()
        .count()
        .saturating_sub(column.saturating_sub(1));
    Some(Snippet {
        line: source.to_owned(),
        underline: len.min(rest).max(1),
    })
}
