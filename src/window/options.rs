//! How windows are built: [`WindowOptions`], and the `summary` keys of the configuration they
//! come from ([`SummaryOptions`], whose defaults are the keys' defaults). They live here, below
//! `config`, so that the window and the configuration do not import each other.

use std::time::Duration;

use super::mask::{BUILTIN_MASKS, Masker};
use crate::rules::Rule;

/// How summaries are built.
#[derive(Clone, Debug)]
pub struct SummaryOptions {
    /// At most this many groups per rule; the rest are folded into "other".
    pub max_groups: usize,
    /// At most this many de-duplicated patterns shown per rule.
    pub max_patterns: usize,
    /// Built-in masks used to de-duplicate similar lines, by name
    /// (see [`BUILTIN_MASKS`]).
    pub masks: Vec<String>,
    /// Extra masks: (placeholder shown instead of a match, `<name>` for a mask named `name`;
    /// regex).
    pub custom_masks: Vec<(String, regex::Regex)>,
    /// Time zone used to show window times.
    pub timezone: jiff::tz::TimeZone,
}

impl Default for SummaryOptions {
    /// The defaults of every `summary` key: 20 groups and 5 patterns per rule, every built-in
    /// mask, no custom mask, the system's time zone.
    fn default() -> Self {
        SummaryOptions {
            max_groups: 20,
            max_patterns: 5,
            masks: BUILTIN_MASKS.iter().map(|m| (*m).to_owned()).collect(),
            custom_masks: Vec::new(),
            timezone: jiff::tz::TimeZone::system(),
        }
    }
}

/// How windows are built.
#[derive(Clone, Debug)]
pub struct WindowOptions {
    /// Length of a window.
    pub window: Duration,
    /// Host name put in every summary.
    pub host: String,
    /// At most this many groups shown per rule; the rest are folded into "other".
    pub max_groups: usize,
    /// At most this many de-duplicated patterns shown per rule.
    pub max_patterns: usize,
    /// Built-in masks, by name (see [`BUILTIN_MASKS`]).
    pub masks: Vec<String>,
    /// Custom masks: (placeholder, regex), applied before the built-in ones.
    pub custom_masks: Vec<(String, regex::Regex)>,
}

impl WindowOptions {
    /// The `summary` defaults ([`SummaryOptions::default`]) for a window length and host.
    pub fn new(window: Duration, host: impl Into<String>) -> WindowOptions {
        let SummaryOptions {
            max_groups,
            max_patterns,
            masks,
            custom_masks,
            ..
        } = SummaryOptions::default();
        WindowOptions {
            window,
            host: host.into(),
            max_groups,
            max_patterns,
            masks,
            custom_masks,
        }
    }

    /// The masker these options describe.
    pub fn masker(&self) -> Masker {
        Masker::new(&self.masks, &self.custom_masks)
    }

    /// The masker of one rule: its own `masks:` (built-in or custom names) when it has them.
    pub fn masker_for(&self, rule: &Rule) -> Masker {
        match &rule.message.masks {
            None => self.masker(),
            Some(names) => {
                let custom: Vec<(String, regex::Regex)> = self
                    .custom_masks
                    .iter()
                    .filter(|(placeholder, _)| {
                        let name = placeholder.trim_start_matches('<').trim_end_matches('>');
                        names.iter().any(|n| n == name)
                    })
                    .cloned()
                    .collect();
                Masker::new(names, &custom)
            }
        }
    }

    pub(super) fn tracked_patterns(&self) -> usize {
        (self.max_patterns.saturating_mul(8)).clamp(64, 1024)
    }

    pub(super) fn tracked_groups(&self) -> usize {
        (self.max_groups.saturating_mul(4)).clamp(32, 4096)
    }
}
