//! What a rule asks of its message beyond counting (the rule keys `masks:`, `show:` and
//! `severity_from:`): plain data read from the rule files, used by the window
//! (`window::capture`) and checked by `logding test`'s acceptance.

use regex::bytes::Regex;

use super::Severity;

/// What a rule asks of its message (the rule keys `masks:`, `show:` and `severity_from:`).
#[derive(Clone, Debug, Default)]
pub struct RuleMessage {
    /// The masks of this rule's shapes, by name (built-in or `summary.custom_masks`); `None`:
    /// those of `summary.masks` and every custom mask; empty: none (`masks: none`).
    pub masks: Option<Vec<String>>,
    /// Lines of a multiline event matching any of these are shown under its sample (at most
    /// `window::MAX_CONTEXT_LINES`).
    pub show: Vec<Regex>,
    /// Where the line's level is read, and what it means.
    pub severity_from: Option<SeverityFrom>,
}

/// `severity_from: {capture: level, map: {ERROR: error, FATAL: critical}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeverityFrom {
    /// A named capture of the rule's patterns.
    pub capture: String,
    /// Captured value (compared ignoring ASCII case) to severity; other values take the rule's
    /// `severity`.
    pub map: Vec<(String, Severity)>,
}
