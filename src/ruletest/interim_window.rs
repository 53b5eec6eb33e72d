//! INTERIM stand-in for `window::Aggregator` with the same API, used until the window module
//! lands on main. Remove this file and switch `runner` to `crate::window` then.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::config::Config;
use crate::rules::{RuleId, RuleSet};
use crate::summary::{GroupCount, PatternCount, RuleSummary, Summary};

/// Window options.
#[derive(Clone, Debug)]
pub(crate) struct WindowOptions {
    window: Duration,
    host: String,
}

impl WindowOptions {
    /// From a config.
    pub(crate) fn from_config(config: &Config) -> WindowOptions {
        WindowOptions {
            window: config.window,
            host: config.host.clone(),
        }
    }
}

/// One hit.
pub(crate) struct HitRef<'a> {
    pub(crate) rule: RuleId,
    pub(crate) line: &'a [u8],
    pub(crate) groups: &'a [Option<&'a [u8]>],
    pub(crate) file: &'a str,
}

#[derive(Default)]
struct Acc {
    count: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    groups: BTreeMap<Vec<(String, String)>, u64>,
    files: Vec<String>,
    sample: String,
}

/// Aggregator.
pub(crate) struct Aggregator {
    rules: Arc<RuleSet>,
    options: WindowOptions,
    open: Option<(Timestamp, BTreeMap<RuleId, Acc>, u64)>,
}

impl Aggregator {
    pub(crate) fn new(rules: Arc<RuleSet>, options: WindowOptions) -> Aggregator {
        Aggregator {
            rules,
            options,
            open: None,
        }
    }

    pub(crate) fn observe(&mut self, now: Timestamp, hit: HitRef<'_>) {
        let rule = self.rules.get(hit.rule);
        let (_, accs, _) = self.open.get_or_insert_with(|| (now, BTreeMap::new(), 0));
        let acc = accs.entry(hit.rule).or_default();
        acc.count += 1;
        acc.first.get_or_insert(now);
        acc.last = Some(now);
        if acc.sample.is_empty() {
            acc.sample = String::from_utf8_lossy(hit.line).into_owned();
        }
        if !acc.files.iter().any(|f| f == hit.file) {
            acc.files.push(hit.file.to_owned());
        }
        let key = rule
            .group_by
            .iter()
            .zip(hit.groups)
            .map(|(name, value)| {
                let value = value.map(String::from_utf8_lossy).unwrap_or_default();
                (name.clone(), value.into_owned())
            })
            .collect();
        *acc.groups.entry(key).or_default() += 1;
    }

    pub(crate) fn observe_excluded(&mut self, now: Timestamp, count: u64) {
        let (_, _, excluded) = self.open.get_or_insert_with(|| (now, BTreeMap::new(), 0));
        *excluded += count;
    }

    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        let (open, _, _) = self.open.as_ref()?;
        Some(
            open.checked_add(self.options.window)
                .unwrap_or(Timestamp::MAX),
        )
    }

    pub(crate) fn poll(&mut self, now: Timestamp) -> Option<Summary> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        let (start, accs, excluded) = self.open.take()?;
        let mut summary = Summary {
            host: self.options.host.clone(),
            start,
            end: deadline,
            rules: Vec::new(),
            below_threshold: Vec::new(),
            excluded,
            windows: 1,
        };
        for (id, acc) in accs {
            let rule = self.rules.get(id);
            let min = rule.min_count.get();
            let groups: Vec<GroupCount> = acc
                .groups
                .into_iter()
                .filter(|(_, count)| *count >= min)
                .map(|(values, count)| GroupCount { values, count })
                .collect();
            if groups.is_empty() {
                summary.below_threshold.push((rule.name.clone(), acc.count));
                continue;
            }
            let (Some(first), Some(last)) = (acc.first, acc.last) else {
                continue;
            };
            summary.rules.push(RuleSummary {
                name: rule.name.clone(),
                severity: rule.severity,
                count: groups.iter().map(|g| g.count).sum(),
                first,
                last,
                files: acc.files,
                other_files: 0,
                groups: if rule.group_by.is_empty() {
                    Vec::new()
                } else {
                    groups
                },
                other_groups_count: 0,
                patterns: vec![PatternCount {
                    pattern: acc.sample.clone(),
                    count: acc.count,
                    sample: acc.sample,
                    extra_lines: 0,
                    cause: None,
                }],
                other_patterns: 0,
                other_patterns_count: 0,
            });
        }
        summary
            .rules
            .sort_by(|a, b| b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)));
        Some(summary)
    }
}
