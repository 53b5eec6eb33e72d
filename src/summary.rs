//! [`Summary`]: what one window of hits boils down to. The contract between `window` (which
//! builds it), `render` (which turns it into a DingTalk payload), `outbox` (which persists it as
//! JSON) and `--output json` (which prints it for scripts).
//!
//! It holds counts and short samples, never unbounded data: every list in it is capped by the
//! window's options, and what was cut is counted (`other_*` fields).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::Severity;

/// One window's worth of alerts (or several windows merged while DingTalk was unavailable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Host name shown in the header.
    pub host: String,
    /// When the window opened.
    pub start: Timestamp,
    /// When the window closed.
    pub end: Timestamp,
    /// Rules that reached their `min_count`, in rank order (severity, then count).
    pub rules: Vec<RuleSummary>,
    /// Rules that had hits but stayed below their `min_count`: (name, hits).
    #[serde(default)]
    pub below_threshold: Vec<(String, u64)>,
    /// Lines matched by a rule but removed by one of its `exclude` patterns.
    #[serde(default)]
    pub excluded: u64,
    /// How many windows this summary stands for (more than 1 after merging).
    #[serde(default = "one")]
    pub windows: u32,
}

fn one() -> u32 {
    1
}

/// What one rule saw in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// Rule name.
    pub name: String,
    /// Rule severity.
    pub severity: Severity,
    /// Exact number of hits.
    pub count: u64,
    /// Time of the first hit.
    pub first: Timestamp,
    /// Time of the last hit.
    pub last: Timestamp,
    /// Files the hits came from (capped).
    pub files: Vec<String>,
    /// Files beyond the cap.
    #[serde(default)]
    pub other_files: u64,
    /// Counts split by `group_by` values, largest first (capped at `max_groups`).
    #[serde(default)]
    pub groups: Vec<GroupCount>,
    /// Hits whose group fell beyond the cap ("other").
    #[serde(default)]
    pub other_groups_count: u64,
    /// De-duplicated line shapes, largest first (capped at `max_patterns`).
    #[serde(default)]
    pub patterns: Vec<PatternCount>,
    /// Number of distinct shapes beyond the cap.
    #[serde(default)]
    pub other_patterns: u64,
    /// Hits whose shape fell beyond the cap.
    #[serde(default)]
    pub other_patterns_count: u64,
}

/// A `group_by` value combination and its count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCount {
    /// (capture name, value), in `group_by` order. Values are lossy UTF-8, capped in length.
    pub values: Vec<(String, String)>,
    /// Hits with these values.
    pub count: u64,
}

/// A de-duplicated line shape and its count, with one raw sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternCount {
    /// The masked line (`<n>`, `<ip>`, ... in place of variable parts).
    pub pattern: String,
    /// Hits with this shape.
    pub count: u64,
    /// The first raw line with this shape (lossy UTF-8, capped in length; unescaped).
    pub sample: String,
    /// For a multiline event: how many lines followed the first.
    #[serde(default)]
    pub extra_lines: u32,
    /// For a multiline event: its exception line (`Caused by: ...`), when there is one.
    #[serde(default)]
    pub cause: Option<String>,
}
