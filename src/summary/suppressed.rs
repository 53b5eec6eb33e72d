//! What a message says about what was suppressed since the last message: the footer's
//! "silenced: db-timeout ×120 (SIL-3, until 12:00)", "muted: ...", "deferred: ..." and the
//! "also: 4 rules, 310 matches, inhibited" line under a source. Plain data, carried in a
//! [`Summary`](crate::summary::Summary)'s incident report, persisted with it in the outbox and
//! printed by `--output json`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Suppressed hits not yet told in a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    /// One line per (rule, reason).
    #[serde(default)]
    pub lines: Vec<SuppressedLine>,
}

/// Hits of one rule suppressed for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressedLine {
    /// Rule name.
    pub rule: String,
    /// Why.
    pub why: Why,
    /// Hits.
    pub count: u64,
}

/// Why hits were suppressed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Why {
    /// A silence applied.
    Silenced {
        /// Its id.
        id: String,
        /// When it expires.
        until: Timestamp,
    },
    /// An incident of `source` was active (inhibition).
    Inhibited {
        /// The inhibiting rule.
        source: String,
    },
    /// Mute hours, `mode: drop`: counted here, never shown in full.
    Muted {
        /// The interval (for `active_during`, "outside" it).
        interval: String,
    },
    /// Mute hours, `mode: defer`: held, reported in full when the interval ended (this
    /// message); the line says where the hits come from.
    Deferred {
        /// The interval.
        interval: String,
    },
}

impl Suppressed {
    /// Returns true if and only if nothing is to be told.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Counts `count` hits of `rule` suppressed for `why`.
    pub fn add(&mut self, rule: &str, why: Why, count: u64) {
        if count == 0 {
            return;
        }
        match self
            .lines
            .iter_mut()
            .find(|l| l.rule == rule && l.why == why)
        {
            Some(line) => line.count = line.count.saturating_add(count),
            None => self.lines.push(SuppressedLine {
                rule: rule.to_owned(),
                why,
                count,
            }),
        }
    }

    /// Folds a later report into this one (messages merged in the outbox).
    pub fn merge(&mut self, later: Suppressed) {
        for line in later.lines {
            self.add(&line.rule, line.why, line.count);
        }
    }

    /// Hits suppressed and not shown elsewhere in the message (deferred hits are shown in
    /// full, in the rules' entries).
    pub fn matches(&self) -> u64 {
        self.lines
            .iter()
            .filter(|l| !matches!(l.why, Why::Deferred { .. }))
            .map(|l| l.count)
            .sum()
    }

    /// The inhibited lines of `source`: (rules, hits).
    pub fn inhibited_by(&self, source: &str) -> Option<(Vec<&str>, u64)> {
        let lines: Vec<&SuppressedLine> = self
            .lines
            .iter()
            .filter(|l| matches!(&l.why, Why::Inhibited { source: s } if s == source))
            .collect();
        if lines.is_empty() {
            return None;
        }
        let mut rules: Vec<&str> = lines.iter().map(|l| l.rule.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        Some((rules, lines.iter().map(|l| l.count).sum()))
    }

    /// The inhibiting rules, sorted, each once.
    pub fn sources(&self) -> Vec<&str> {
        let mut sources: Vec<&str> = self
            .lines
            .iter()
            .filter_map(|l| match &l.why {
                Why::Inhibited { source } => Some(source.as_str()),
                _ => None,
            })
            .collect();
        sources.sort_unstable();
        sources.dedup();
        sources
    }
}
