//! The serde shapes of a test file: what a user may write, field by field. Unknown keys are
//! errors; [`super::parse`] turns these into the checked model.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::rules::Severity;

/// A test file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    /// The config under test, relative to the test file.
    pub(super) config: Spanned<String>,
    /// RFC 3339 time of `at: 0s`.
    #[serde(default)]
    pub(super) start: Option<Spanned<String>>,
    /// The cases.
    #[serde(default)]
    pub(super) cases: Vec<Case>,
}

/// A case.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Case {
    /// Shown in the report.
    pub(super) name: Spanned<String>,
    /// Lines written to the sources.
    #[serde(default)]
    pub(super) input: Vec<Spanned<Input>>,
    /// Expectations per window.
    #[serde(default)]
    pub(super) expect: Vec<Spanned<Expect>>,
    /// No rule may fire in any window.
    #[serde(default)]
    pub(super) expect_no_alerts: bool,
    /// Exactly this many windows close.
    #[serde(default)]
    pub(super) windows: Option<u32>,
}

/// An input entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Input {
    /// Time after `start`.
    pub(super) at: Spanned<String>,
    /// Interval between repeats.
    #[serde(default)]
    pub(super) every: Option<Spanned<String>>,
    /// Number of writes.
    #[serde(default)]
    pub(super) repeat: Option<Spanned<u32>>,
    /// Source name.
    #[serde(default)]
    pub(super) source: Option<Spanned<String>>,
    /// File name shown in summaries.
    #[serde(default)]
    pub(super) file: Option<String>,
    /// One line.
    #[serde(default)]
    pub(super) line: Option<String>,
    /// Several lines.
    #[serde(default)]
    pub(super) lines: Option<Vec<String>>,
}

/// Expectations of one window.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Expect {
    /// 1-based window number.
    pub(super) window: Spanned<u32>,
    /// Rules that must be reported.
    #[serde(default)]
    pub(super) fires: Vec<Fire>,
    /// Rules that must not be reported.
    #[serde(default)]
    pub(super) not_firing: Vec<Spanned<String>>,
    /// Sub-strings of the message.
    #[serde(default)]
    pub(super) contains: Vec<String>,
    /// Sub-strings not in the message.
    #[serde(default)]
    pub(super) not_contains: Vec<String>,
    /// Sub-strings of the DingTalk title (the push notification).
    #[serde(default)]
    pub(super) title_contains: Vec<String>,
    /// Texts each displayed within one line of the message a person reads.
    #[serde(default)]
    pub(super) shows: Vec<String>,
    /// Rules whose incident starts with this window (exactly these).
    #[serde(default)]
    pub(super) new: Option<Vec<Spanned<String>>>,
    /// Rules with hits in this window whose incident is already open (exactly these).
    #[serde(default)]
    pub(super) ongoing: Option<Vec<Spanned<String>>>,
    /// Rules whose incident resolves after this window, before the next (exactly these).
    #[serde(default)]
    pub(super) resolved: Option<Vec<Spanned<String>>>,
    /// Whether a message goes out when this window closes.
    #[serde(default)]
    pub(super) sent: Option<bool>,
}

/// A rule that must be reported.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fire {
    /// Rule name.
    pub(super) rule: Spanned<String>,
    /// Exact count.
    pub(super) count: u64,
    /// `group_by` values.
    #[serde(default)]
    pub(super) group: BTreeMap<String, String>,
    /// Reported severity.
    #[serde(default)]
    pub(super) severity: Option<Severity>,
}
