//! Configuration: the YAML file (and the rule files it includes) validated into typed values.
//!
//! Two layers, but not serde derive: `yaml` parses the text into a tree of nodes that keep
//! their line and column, and the readers (`walk`, `build` and one module per section) check
//! that tree against the known keys and turn it into [`Config`]'s validated, typed values
//! (`Duration`s, compiled rules, resolved paths, secrets in [`Secret`]), recording *every*
//! problem instead of stopping at the first as a derived `Deserialize` would. The reference of
//! the keys is README.md's configuration section and the JSON Schema (`schema`).
//! [`load`] turns a path into a [`Config`] or into every problem found, each with a position.
//!
//! The YAML crate (`serde-saphyr`) is used here (`yaml`) and by the schema test. The rule test
//! files (`ruletest::format`) are read with the same tree and readers (`parse_document`).

mod absence;
mod alertmanager;
mod build;
mod diag;
mod dingtalk;
mod expand;
mod glob;
mod incidents;
mod inhibit;
mod metrics;
mod multiline;
mod origin;
mod relay;
mod reload;
mod rule_files;
mod rule_message;
pub mod schema;
mod secret;
mod silences;
mod sources;
mod summary;
mod time_intervals;
mod units;
pub(crate) mod walk;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use alertmanager::{RESERVED_LABELS, is_label_name, shown_url};
pub use dingtalk::{
    CheckedWebhook, MAX_MENTIONS, MENTION_SHARE, MIN_BODY_BYTES, WebhookProblem, check_webhook_url,
};
pub use relay::{RelayConfig, Robot, is_relay_config, load_relay, load_relay_with};
pub use secret::Secret;

pub(crate) use diag::suggest;
pub(crate) use silences::matchers as read_matchers;
pub use units::{format_duration, parse_duration};

use crate::rules::{RuleSet, Severity};
pub use crate::window::SummaryOptions;
use crate::window::WindowOptions;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The main config file, absolute.
    pub path: PathBuf,
    /// Host name shown in every message.
    pub host: String,
    /// Directory of checkpoints and the outbox.
    pub state_dir: PathBuf,
    /// Matches within a window become one summary.
    pub window: Duration,
    /// The DingTalk robot.
    pub dingtalk: DingTalk,
    /// Log files to follow.
    pub sources: Vec<Source>,
    /// All rules, from the main file and the included files.
    pub rules: Arc<RuleSet>,
    /// The files the rules came from (the main file first), for messages like `check`'s.
    pub rule_files: Vec<PathBuf>,
    /// How summaries are built.
    pub summary: SummaryOptions,
    /// How files are followed.
    pub tail: TailOptions,
    /// Bounds of the outbox.
    pub outbox: OutboxOptions,
    /// What loads but should be changed (a secret written in the file); `check` prints them and
    /// `run` logs them at startup.
    pub warnings: Vec<Diagnostic>,
    /// The metrics and health listener; `None`: off.
    pub metrics: Option<MetricsOptions>,
    /// The incident lifecycle: `incidents:` defaults and the rules' own settings.
    pub incidents: crate::incident::Policies,
    /// Named time intervals (`time_intervals:`), for mute hours and absence schedules.
    pub time_intervals: crate::suppress::TimeIntervals,
    /// The Alertmanager instances incidents are posted to as alerts; `None`: not configured.
    pub alertmanager: Option<AlertmanagerOptions>,
    /// Silences in files, mute hours, inhibition (`silences:`, `mute:`, `inhibit:`).
    pub suppression: crate::suppress::Settings,
}

/// The DingTalk custom robot.
#[derive(Clone, Debug)]
pub struct DingTalk {
    /// The webhook URL with its access token. `None` when not configured (fine for `check`,
    /// `scan`, `test` and `run --dry-run`).
    pub webhook: Option<Secret>,
    /// The signing secret (`SEC...`), when the robot uses signing.
    pub secret: Option<Secret>,
    /// The robot's security keyword; every message carries it.
    pub keyword: String,
    /// Message type.
    pub msgtype: MsgType,
    /// Who is mentioned, and from which severity.
    pub mention: Mention,
    /// Client-side budget of posts per rolling minute (DingTalk throttles past 20).
    pub max_per_minute: u32,
    /// How long to stay silent after DingTalk says the robot is throttled.
    pub throttle_pause: Duration,
    /// Byte budget of one serialized JSON body (DingTalk rejects more than 20,000).
    pub max_body_bytes: usize,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Allows `http://` webhooks to hosts other than loopback.
    pub allow_insecure_http: bool,
}

/// DingTalk message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgType {
    /// Markdown subset (headings, quotes, bold, lists).
    #[default]
    Markdown,
    /// Plain text.
    Text,
}

/// Mentions added to a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention {
    /// Mobile numbers to `@`.
    pub mobiles: Vec<String>,
    /// DingTalk user ids to `@`.
    pub user_ids: Vec<String>,
    /// `@all`.
    pub all: bool,
    /// Mention only when the summary has a rule at or above this severity.
    pub min_severity: Severity,
}

impl Default for Mention {
    fn default() -> Self {
        Mention {
            mobiles: Vec::new(),
            user_ids: Vec::new(),
            all: false,
            min_severity: Severity::Critical,
        }
    }
}

/// Where to start reading a file seen for the first time on the very first run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// At its end: history is not alerted on.
    #[default]
    End,
    /// At its beginning.
    Beginning,
}

/// A set of log files, named for rules' `sources:`.
#[derive(Clone, Debug)]
pub struct Source {
    /// Name, unique.
    pub name: String,
    /// Absolute glob patterns of files to follow.
    pub paths: Vec<String>,
    /// Glob patterns of files to skip (matched against the full path, and against the file
    /// name when the pattern has no `/`).
    pub exclude: Vec<String>,
    /// Start position for files never seen before, on the first run.
    pub start_at: StartAt,
    /// Multiline event assembly, when configured.
    pub multiline: Option<Multiline>,
    /// Lines longer than this are cut (the head is kept for matching).
    pub max_line_bytes: usize,
    /// How its lines say when they happened (`timestamp:`); `None`: read time is used.
    pub timestamp: Option<crate::event_time::TimestampSpec>,
}

/// Multiline event assembly for a source.
#[derive(Clone, Debug)]
pub struct Multiline {
    /// A line matching this begins an event; other lines continue it.
    pub start: regex::bytes::Regex,
    /// An event is cut after this many lines.
    pub max_lines: usize,
    /// An event is cut after this many bytes.
    pub max_bytes: usize,
    /// An open event is flushed when no line arrives for this long.
    pub timeout: Duration,
}

/// How files are followed.
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// Stat reconcile of every followed file (the source of truth; events only wake early).
    pub poll_interval: Duration,
    /// Glob re-expansion to discover new files.
    pub rescan_interval: Duration,
    /// A rotated or deleted file is closed once idle at EOF this long.
    pub rotate_wait: Duration,
    /// Never use filesystem notifications.
    pub poll_only: bool,
    /// When set, inotify events gather this long before a pass reads the files they announce:
    /// less CPU on busy logs, that much more latency, and a copytruncate loss window wider by as
    /// much. `None`: read at once.
    pub batch_wait: Option<Duration>,
    /// Cap on open file descriptors.
    pub max_open_files: usize,
    /// Bytes read from one file per pass before moving to the next (fairness).
    pub read_budget_bytes: usize,
    /// How often committed offsets are persisted.
    pub checkpoint_interval: Duration,
}

impl Default for TailOptions {
    /// The defaults of every `tail` key.
    fn default() -> Self {
        TailOptions {
            poll_interval: Duration::from_secs(1),
            rescan_interval: Duration::from_secs(10),
            rotate_wait: Duration::from_secs(30),
            poll_only: false,
            batch_wait: None,
            max_open_files: 512,
            read_budget_bytes: 256 * 1024,
            checkpoint_interval: Duration::from_secs(1),
        }
    }
}

/// Bounds of the outbox.
#[derive(Clone, Debug)]
pub struct OutboxOptions {
    /// When more summaries wait than this, the oldest are merged.
    pub max_entries: usize,
}

impl Default for OutboxOptions {
    /// `outbox.max_entries: 1000`.
    fn default() -> Self {
        OutboxOptions { max_entries: 1000 }
    }
}

/// The metrics and health listener (`metrics:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub listen: std::net::SocketAddr,
    /// `/readyz` fails once posts have been failing for longer than this.
    pub ready_max_failing: std::time::Duration,
}

impl Default for MetricsOptions {
    /// The defaults of the `metrics` keys (the section itself is off when absent).
    fn default() -> Self {
        MetricsOptions {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9687)),
            ready_max_failing: Duration::from_secs(600),
        }
    }
}

/// The Alertmanager sink (`alertmanager:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerOptions {
    /// Base URLs of every instance of the cluster; each gets every alert.
    pub urls: Vec<reqwest::Url>,
    /// Added to every alert (names checked, none of [`RESERVED_LABELS`]).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Firing alerts are posted again this often, their `endsAt` moved ahead.
    pub resend_every: Duration,
    /// Bound on one post, connecting included.
    pub timeout: Duration,
}

/// Every problem found while loading a configuration.
///
/// `Display` renders them all, compiler-style. The first has no `error: ` prefix, because
/// whoever prints the error adds one (`error: {err}`); the following ones have it.
#[derive(Debug, thiserror::Error)]
#[error("{}", diag::render(self))]
pub struct LoadError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// One problem in a config or rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the user named it (or as found through `include:`).
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a position.
    pub position: Option<(usize, usize)>,
    /// What is wrong: lowercase, no trailing period.
    pub message: String,
    /// How to fix it, when known.
    pub help: Option<String>,
    /// The source line at `position`, when it may be shown (never for secrets).
    pub snippet: Option<Snippet>,
}

/// The source line of a diagnostic and how much of it to underline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// The whole line, without its newline.
    pub line: String,
    /// Number of characters to underline from the diagnostic's column (at least 1).
    pub underline: usize,
}

impl Config {
    /// How this configuration's windows are built.
    pub fn window_options(&self) -> WindowOptions {
        WindowOptions {
            window: self.window,
            host: self.host.clone(),
            max_groups: self.summary.max_groups,
            max_patterns: self.summary.max_patterns,
            masks: self.summary.masks.clone(),
            custom_masks: self.summary.custom_masks.clone(),
        }
    }
}

/// Loads and validates a configuration file and the rule files it includes.
///
/// Relative paths in the file (state directory, source globs, includes, `*_file` secrets) are
/// resolved against the file's directory. `${VAR}` references read the process environment.
///
/// # Errors
///
/// Every problem found, not only the first.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    load_with(path, false, &|name| std::env::var(name).ok())
}

/// Like [`load`], and also tests every rule against its `examples:` (what `logding check`
/// does): a `match` example must be a hit, a `no_match` example must not.
///
/// # Errors
///
/// Every problem found, failing examples included.
pub fn check(path: &Path) -> Result<Config, LoadError> {
    load_with(path, true, &|name| std::env::var(name).ok())
}

/// [`load`] or [`check`] with an explicit environment (for tests).
///
/// # Errors
///
/// Every problem found.
pub fn load_with(
    path: &Path,
    check_examples: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, LoadError> {
    load_document(path, "failed to read", Some(env), |ctx, root, origin| {
        let config = build::config(ctx, root, origin, check_examples);
        with_warnings(ctx, config)
    })
}

/// Loads `text` as `/etc/logding/logding.yaml` with examples checked and no environment; the
/// error as `check` prints it (for tests of the section readers).
#[cfg(test)]
pub(crate) fn load_yaml(text: &str) -> Result<Config, String> {
    load_text(
        Path::new("/etc/logding/logding.yaml"),
        text.to_owned(),
        true,
        &|_| None,
    )
    .map_err(|err| err.to_string())
}

/// Loads a configuration from its text; `path` names it and anchors relative paths.
#[cfg(test)]
fn load_text(
    path: &Path,
    text: String,
    check_examples: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, LoadError> {
    parse_document(path, text, Some(env), |ctx, root, origin| {
        let config = build::config(ctx, root, origin, check_examples);
        with_warnings(ctx, config)
    })
}

/// Hands the warnings recorded while reading `config` to it.
fn with_warnings(ctx: &mut walk::Ctx<'_>, config: Option<Config>) -> Option<Config> {
    config.map(|mut config| {
        config.warnings = std::mem::take(&mut ctx.warnings);
        config
    })
}

/// Reads the file at `path` and walks it with `read` (the agent's, the relay's or a rule test
/// file's schema); a file that cannot be read is reported as `{what} `path`: reason`.
pub(crate) fn load_document<T>(
    path: &Path,
    what: &str,
    env: Option<walk::Env<'_>>,
    read: impl FnOnce(&mut walk::Ctx<'_>, &yaml::Node, &origin::Origin) -> Option<T>,
) -> Result<T, LoadError> {
    let text = match read_text_as(path, path, what) {
        Ok(text) => text,
        Err((message, position)) => {
            return Err(LoadError {
                diagnostics: vec![Diagnostic {
                    file: path.to_owned(),
                    position,
                    message,
                    help: None,
                    snippet: None,
                }],
            });
        }
    };
    parse_document(path, text, env, read)
}

/// Parses `text` (the file `path`) and walks it with `read`, collecting every problem.
/// `env: None` reads `${VAR}` as text.
pub(crate) fn parse_document<T>(
    path: &Path,
    text: String,
    env: Option<walk::Env<'_>>,
    read: impl FnOnce(&mut walk::Ctx<'_>, &yaml::Node, &origin::Origin) -> Option<T>,
) -> Result<T, LoadError> {
    let origin = origin::Origin {
        display: path.to_owned(),
        absolute: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
    };
    let parsed = yaml::parse(&text);
    let is_unclosed = parsed
        .as_ref()
        .err()
        .is_some_and(|err| is_unclosed_double_quote(&text, err));
    let mut ctx = walk::Ctx::new(path.to_owned(), text, env);
    let config = match parsed {
        Ok(root) => read(&mut ctx, &root, &origin),
        Err(err) => {
            report_syntax_error(&mut ctx, &err, is_unclosed);
            None
        }
    };
    match config {
        Some(config) if ctx.diagnostics.is_empty() => Ok(config),
        _ if ctx.diagnostics.is_empty() => Err(LoadError {
            // Every `None` records its reason; this is a safety net, not a path.
            diagnostics: vec![Diagnostic {
                file: path.to_owned(),
                position: None,
                message: "the configuration is invalid".into(),
                help: None,
                snippet: None,
            }],
        }),
        _ => Err(LoadError {
            diagnostics: in_file_order(ctx.diagnostics),
        }),
    }
}

/// Sorts diagnostics by file (in the order files were read), then by position; problems
/// without a position come first in their file.
fn in_file_order(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut files: Vec<PathBuf> = Vec::new();
    for d in &diagnostics {
        if !files.contains(&d.file) {
            files.push(d.file.clone());
        }
    }
    diagnostics.sort_by_key(|d| {
        let file = files.iter().position(|f| *f == d.file);
        (file, d.position.unwrap_or((0, 0)))
    });
    diagnostics
}

/// Reads a config or rule file as UTF-8 text; the error is a message and maybe a position.
fn read_text(path: &Path) -> Result<String, (String, Option<(usize, usize)>)> {
    read_text_as(path, path, "failed to read")
}

/// [`read_text`] of `path`, named `shown` in messages that start with `what`.
fn read_text_as(
    path: &Path,
    shown: &Path,
    what: &str,
) -> Result<String, (String, Option<(usize, usize)>)> {
    let bytes = read_bounded(path).map_err(|err| {
        (
            format!("{what} `{}`: {}", shown.display(), diag::io_reason(&err)),
            None,
        )
    })?;
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        (
            format!("`{}` is not valid UTF-8", shown.display()),
            Some((line, column)),
        )
    })
}

/// Config and rule files larger than this are refused (a mistaken `-c /var/log/huge.log`, or
/// `/dev/zero`, must not eat the host's memory).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a whole file of at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB, not a config file",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// Returns true if and only if `err` is a bad escape inside a double-quoted string that is not
/// closed on the line it starts on: the string ran on into the next lines (where a regex's `\d`
/// is an "unknown escape"), so the real mistake is the missing quote.
fn is_unclosed_double_quote(text: &str, err: &yaml::SyntaxError) -> bool {
    let Some((line, column)) = err.position else {
        return false;
    };
    if !err.message.contains("unknown escape") {
        return false;
    }
    let Some(source) = text.lines().nth(line.saturating_sub(1)) else {
        return false;
    };
    let rest: String = source.chars().skip(column.saturating_sub(1)).collect();
    let Some(body) = rest.strip_prefix('"') else {
        return false;
    };
    // Closed on this line: a `"` not preceded by a backslash.
    let mut is_escaped = false;
    for c in body.chars() {
        match c {
            '\\' if !is_escaped => is_escaped = true,
            '"' if !is_escaped => return false,
            _ => is_escaped = false,
        }
    }
    true
}

/// Records a YAML syntax error of the current file.
fn report_syntax_error(ctx: &mut walk::Ctx<'_>, err: &yaml::SyntaxError, is_unclosed: bool) {
    let (line, column) = err.position.unwrap_or((0, 0));
    let pos = yaml::Pos {
        line,
        column,
        bytes: None,
    };
    if is_unclosed {
        ctx.error(
            pos,
            "invalid YAML: this double-quoted string is not closed on its line",
            Some(
                "close the quote; for regex patterns prefer single quotes (`'\\d+'`), where a \
                 backslash needs no escaping"
                    .into(),
            ),
        );
    } else if err.message.contains("multiple YAML documents") {
        ctx.error(
            pos,
            "invalid YAML: a config file holds one document, this one has several",
            Some("remove the `---` separator and merge the documents".into()),
        );
    } else {
        ctx.error(pos, format!("invalid YAML: {}", err.message), None);
    }
}
