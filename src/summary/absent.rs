//! An absence as one line of a message ([`AbsentLine`]): plain data, persisted in the outbox
//! with the summary and rendered by `render::absent`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rules::Severity;

/// `group_by` values as `(capture name, value)`, in `group_by` order (empty: no `group_by`).
pub type Group = Vec<(String, String)>;

/// Where an absence is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AbsentState {
    /// It just began: said in full, once.
    New,
    /// Still absent (a line in messages that go out for other reasons).
    Ongoing,
    /// The hits (or growth) came back: said once.
    Back,
}

/// What is absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AbsentKind {
    /// Fewer than `min_count` hits of an absence rule in its window.
    Line {
        /// The expected line, as written in the rule (its first pattern).
        what: String,
        /// The rule's window, in seconds.
        window_secs: u64,
        /// Hits expected per window.
        min_count: u64,
        /// Hits in the window when it fired.
        seen: u64,
    },
    /// None of the source's files grew for `after`.
    Stalled {
        /// The file that grew last, if any did.
        file: Option<String>,
        /// `source_stalled`, in seconds.
        after_secs: u64,
    },
    /// No file matches the source's globs.
    NoFile {
        /// The source's globs.
        paths: Vec<String>,
        /// `source_stalled`, in seconds.
        after_secs: u64,
    },
}

/// One absence incident as one line: an absence rule's key, or a source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsentLine {
    /// The absence rule's name, or the source's name for a stall.
    pub rule: String,
    /// The key's `group_by` values (empty: no `group_by`, or a source).
    pub group: Group,
    /// Severity (the rule's; `error` for a stalled source).
    pub severity: Severity,
    /// What is absent.
    #[serde(flatten)]
    pub kind: AbsentKind,
    /// Where it is in its lifecycle.
    pub state: AbsentState,
    /// When it fired (agent clock).
    pub since: Timestamp,
    /// The last hit (or growth) before it fired; `None`: never seen.
    pub last_seen: Option<Timestamp>,
    /// When the key (or source) began to be watched.
    pub watched_since: Option<Timestamp>,
    /// When it came back (`Back` lines).
    pub back: Option<Timestamp>,
    /// A message told it (its `New` or a still-absent line went out): its `Back` line is then
    /// told even when silenced or muted. Kept on the open absence (`incidents.json`) and
    /// carried by its `Back` line to suppression; never set in a message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub told: bool,
}

impl AbsentLine {
    /// Returns true if and only if it is about a source (stalled, or no file).
    pub fn is_source(&self) -> bool {
        !matches!(self.kind, AbsentKind::Line { .. })
    }

    /// Returns true if and only if `other` is the same absence (rule or source, and key).
    pub fn same(&self, other: &AbsentLine) -> bool {
        self.rule == other.rule
            && self.group == other.group
            && self.is_source() == other.is_source()
    }
}

/// Folds a later message's absent lines into an earlier one's (messages merged in the
/// outbox): `New` and `Back` lines are kept, an `Ongoing` line is replaced by a later line of
/// the same absence and dropped when the absence is told as new or back.
pub fn merge(mine: &mut Vec<AbsentLine>, later: Vec<AbsentLine>) {
    for line in later {
        mine.retain(|m| !(m.state == AbsentState::Ongoing && m.same(&line)));
        let is_told = mine
            .iter()
            .any(|m| m.same(&line) && m.state != AbsentState::Ongoing);
        if !(line.state == AbsentState::Ongoing && is_told) {
            mine.push(line);
        }
    }
}
