//! `window`: hits to one [`Summary`] per time window. Pure: no IO, and `now` is always passed in.
//!
//! The first hit after a quiet period opens a window at that instant; `window` later it closes
//! and yields one [`Summary`] holding every rule that had hits. The caller closes windows
//! ([`Aggregator::poll`] at [`Aggregator::deadline`], [`Aggregator::flush`] on shutdown), so the
//! hits it observed before closing one are exactly those in its summary. That is the whole anti-flood
//! policy: however bursty the log, a robot sees at most one message per window per host.
//!
//! Memory is bounded however many hits arrive (the agent may see millions of identical errors
//! during an outage): per rule, counts and first/last times are exact, while files, `group_by`
//! values and de-duplicated patterns are kept in fixed-size structures (`topk`):
//! - patterns: the [`Masker`] turns each line into its shape; the top shapes are tracked with
//!   "space-saving" eviction, so the frequent ones survive a long tail of rare ones. A shown
//!   count is a lower bound of the shape's true count, exact unless the rule saw more distinct
//!   shapes than it tracks; shapes whose count is mostly uncertain (inherited from evicted
//!   shapes) rank after the others. Hits not attributed to a shown pattern are counted in
//!   `other_patterns_count`, so the counts always add up to the rule's hits. The number of
//!   further distinct shapes (`other_patterns`) is exact up to 256 and estimated beyond.
//! - groups: the same structure over `group_by` values. `min_count` applies per group: groups
//!   below it go to the summary's `below_threshold` (one entry per rule, with their total);
//!   groups beyond `max_groups` are folded into `other_groups_count`. Patterns and files cover
//!   all the rule's hits, including those of groups below threshold.
//! - files: the first [`MAX_FILES`] names are kept, the rest counted in `other_files`.
//!
//! A window in which no rule reached its `min_count` still yields a [`Summary`] (with empty
//! `rules`) so that callers see the below-threshold counts; the agent does not send those.

mod capture;
mod event;
mod feed;
mod mask;
mod options;
mod select;
mod shaper;
mod topk;

/// Real-shaped stack traces shared by the tests of `window`, `config` and `render`.
#[cfg(test)]
pub(crate) use self::event::tests as event_samples;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

pub use self::mask::{BUILTIN_MASKS, MASK_INPUT_BYTES, Masker, mask_line};
pub use self::options::{SummaryOptions, WindowOptions};
use self::select::History;
pub(crate) use self::shaper::lossy_capped;
use self::shaper::{Scratch, Shaped, Shaper, cut};
pub use self::shaper::{Shape, Shapes, Shaping};
use self::topk::{Distinct, TopK};
pub use crate::rules::MAX_KEPT_MATCH_BYTES;
use crate::rules::{Rule, RuleId, RuleSet, Severity};
use crate::summary::{GroupCount, RuleSummary, Summary};

/// File names kept per rule; further files are only counted.
pub const MAX_FILES: usize = 5;
/// Longest raw sample (or cause line) kept, in bytes.
pub const MAX_SAMPLE_BYTES: usize = 512;
/// Longest masked pattern kept, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Longest `group_by` value kept for display, in bytes (the full value tells groups apart).
pub const MAX_GROUP_VALUE_BYTES: usize = 64;
/// Longest file name kept, in bytes.
pub const MAX_FILE_BYTES: usize = 256;
/// Lines shown under one sample besides its root cause (the outermost exception of a chain
/// and the lines selected by the rule's `show:`).
pub const MAX_CONTEXT_LINES: usize = 3;

/// One hit, borrowed from the scanner's chunk.
#[derive(Clone, Copy, Debug)]
pub struct HitRef<'a> {
    /// The rule that matched.
    pub rule: RuleId,
    /// The line, or a multiline event (lines separated by `\n`).
    pub line: &'a [u8],
    /// The rule's `group_by` values, in order (`None`: the capture did not participate).
    pub groups: &'a [Option<&'a [u8]>],
    /// The file the line came from.
    pub file: &'a str,
}

/// Turns hits into one [`Summary`] per window.
#[derive(Debug)]
pub struct Aggregator {
    rules: Arc<RuleSet>,
    options: WindowOptions,
    open: Option<OpenWindow>,
    scratch: Scratch,
    /// Shapes of earlier windows, to tell the new ones.
    history: History,
    shapers: Shaping,
}

#[derive(Debug)]
struct OpenWindow {
    start: Timestamp,
    deadline: Timestamp,
    /// Index into `states` by [`RuleId`] of the current rule set.
    slots: Vec<Option<usize>>,
    states: Vec<RuleState>,
    excluded: u64,
    skewed: u64,
}

#[derive(Debug)]
struct RuleState {
    name: String,
    severity: Severity,
    /// The highest line level seen, when the rule reads levels (`severity_from`).
    level: Option<Severity>,
    shaper: Arc<Shaper>,
    min_count: u64,
    group_by: Vec<String>,
    count: u64,
    first: Timestamp,
    last: Timestamp,
    files: Vec<String>,
    file_hashes: Distinct,
    last_file_hash: Option<u64>,
    groups: TopK<Vec<Option<String>>>,
    /// Hits whose group values were dropped (the rule's `group_by` changed on reload).
    folded_groups: u64,
    patterns: TopK<PatternValue>,
}

#[derive(Clone, Debug)]
struct PatternValue {
    pattern: String,
    sample: String,
    extra_lines: u32,
    cause: Option<String>,
    context: Vec<String>,
    /// Hash of the masked root cause (0: none): one sample per root cause comes first.
    cause_key: u64,
    /// Hash of the `group_by` values of the first line of this shape (0: no `group_by`).
    group_key: u64,
    /// The highest line level of this shape.
    level: Option<Severity>,
}

impl Aggregator {
    /// An aggregator with no open window.
    pub fn new(rules: Arc<RuleSet>, options: WindowOptions) -> Aggregator {
        Aggregator {
            shapers: Shaping::new(rules.clone(), options.clone()),
            rules,
            options,
            open: None,
            scratch: Scratch::default(),
            history: History::default(),
        }
    }

    /// Counts a hit seen at `now`. The first hit while no window is open opens one at `now`.
    ///
    /// Only [`poll`](Aggregator::poll) and [`flush`](Aggregator::flush) close a window: a hit
    /// observed at or after the deadline, before the caller polled, still counts in the open
    /// window (its time clamped to the window's end). So whatever the caller observed before
    /// closing a window is exactly what that window's summary holds, which is what lets the
    /// agent commit the offsets of those lines once the summary is safe. Poll at
    /// [`deadline`](Aggregator::deadline) to keep windows to their length.
    pub fn observe(&mut self, now: Timestamp, hit: HitRef<'_>) {
        self.observe_at(now, None, hit);
    }

    /// Like [`observe`](Aggregator::observe), for a hit whose line says when it happened
    /// (`event`): the window still opens and closes on `now`, while the rule's first and last
    /// times (`first_seen`/`last_seen`) are the hits' own.
    pub fn observe_at(&mut self, now: Timestamp, event: Option<Timestamp>, hit: HitRef<'_>) {
        self.observe_shaped(now, event, hit, None);
    }

    /// Like [`observe_at`](Aggregator::observe_at), with the hit's shape when it was found
    /// ahead by [`Self::shaping`]'s shapers (`None`: shaped here).
    fn observe_shaped(
        &mut self,
        now: Timestamp,
        event: Option<Timestamp>,
        hit: HitRef<'_>,
        shape: Option<Shaped<'_>>,
    ) {
        let deadline = add(now, self.options.window);
        let rule_count = self.rules.len();
        let window = self
            .open
            .get_or_insert_with(|| OpenWindow::new(now, deadline, rule_count));
        let index = window.state_index(&self.rules, hit.rule, &self.options, &self.shapers);
        // A late hit, or a wall clock stepping back (NTP), stays within its window's span.
        let now = now.clamp(window.start, window.deadline);
        let at = event.unwrap_or(now);
        let state = &mut window.states[index];
        // A shape found ahead counts when the rule's state shapes with the same shaper (not
        // one a reload gave it since).
        let shape = shape.filter(|_| {
            self.shapers
                .get(hit.rule)
                .is_some_and(|shaper| Arc::ptr_eq(shaper, &state.shaper))
        });
        state.observe(at, &hit, shape, &mut self.scratch);
    }

    /// The shapers hits are shaped with now, for threads that shape hits ahead
    /// ([`Shaping::shape`], then [`Self::observe_scan_shaped`]).
    pub fn shaping(&self) -> Shaping {
        self.shapers.clone()
    }

    /// Counts hits whose own time was too far ahead of the clock (their read time was used),
    /// for the open window's `skewed` figure.
    pub fn observe_skewed(&mut self, count: u64) {
        if let Some(window) = &mut self.open {
            window.skewed = window.skewed.saturating_add(count);
        }
    }

    /// Counts lines removed by a rule's `exclude`, for the open window's footer. Does not open
    /// a window (exclusions alone are not worth a message): with no window open, they are not
    /// counted anywhere.
    pub fn observe_excluded(&mut self, _now: Timestamp, count: u64) {
        if let Some(window) = &mut self.open {
            window.excluded = window.excluded.saturating_add(count);
        }
    }

    /// When the open window is due to close (maybe already past); `None` when none is open.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.open.as_ref().map(|window| window.deadline)
    }

    /// Closes the open window and returns its summary (ending at its deadline) if `now` is at
    /// or past the deadline. The summary's `rules` is empty when no rule reached its
    /// `min_count` (it then only carries below-threshold counts); callers do not send those.
    pub fn poll(&mut self, now: Timestamp) -> Option<Summary> {
        let window = self.open.take_if(|window| now >= window.deadline)?;
        let deadline = window.deadline;
        Some(window.close(deadline, &self.options, &mut self.history))
    }

    /// Closes the open window early (shutdown) and returns its summary, ending at `now` (or at
    /// its deadline if that is earlier). `None` when no window is open.
    pub fn flush(&mut self, now: Timestamp) -> Option<Summary> {
        let window = self.open.take()?;
        let end = now.min(window.deadline).max(window.start);
        Some(window.close(end, &self.options, &mut self.history))
    }

    /// Returns true if and only if a window is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Swaps in a reloaded rule set, keeping the open window. Rules are matched by name (ids
    /// change); a rule that disappeared keeps its counts in the open window, and a rule whose
    /// `group_by` changed has its earlier hits counted as "other".
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        if let Some(window) = &mut self.open {
            window.slots = vec![None; rules.len()];
            for (index, state) in window.states.iter_mut().enumerate() {
                if let Some(id) = rules.find(&state.name) {
                    window.slots[id.index()] = Some(index);
                    state.update_from(rules.get(id), &self.options);
                }
            }
        }
        self.shapers = Shaping::new(rules.clone(), self.options.clone());
        self.rules = rules;
    }

    /// Swaps in reloaded options. The open window keeps its deadline and what it counted; masks
    /// apply from the next window, host and caps when the window closes, a new window length
    /// from the next window.
    pub fn set_options(&mut self, options: WindowOptions) {
        self.shapers = Shaping::new(self.rules.clone(), options.clone());
        self.options = options;
    }

    /// The options in use.
    pub fn options(&self) -> &WindowOptions {
        &self.options
    }
}

fn add(start: Timestamp, window: Duration) -> Timestamp {
    SignedDuration::try_from(window)
        .ok()
        .and_then(|d| start.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

impl OpenWindow {
    fn new(start: Timestamp, deadline: Timestamp, rule_count: usize) -> OpenWindow {
        OpenWindow {
            start,
            deadline,
            slots: vec![None; rule_count],
            states: Vec::new(),
            excluded: 0,
            skewed: 0,
        }
    }

    fn state_index(
        &mut self,
        rules: &RuleSet,
        id: RuleId,
        options: &WindowOptions,
        shapers: &Shaping,
    ) -> usize {
        if let Some(Some(index)) = self.slots.get(id.index()) {
            return *index;
        }
        let state = match (rules.rules().get(id.index()), shapers.get(id)) {
            (Some(rule), Some(shaper)) => RuleState::new(rule, options, shaper.clone()),
            _ => {
                // A caller bug (an id from another rule set): still counted, never dropped.
                let name = format!("rule-{}", id.0);
                if let Some(found) = self.states.iter().position(|s| s.name == name) {
                    return found;
                }
                RuleState::unknown(name, options)
            }
        };
        self.states.push(state);
        let index = self.states.len() - 1;
        if let Some(slot) = self.slots.get_mut(id.index()) {
            *slot = Some(index);
        }
        index
    }

    fn close(self, end: Timestamp, options: &WindowOptions, history: &mut History) -> Summary {
        let mut rules = Vec::new();
        let mut below_threshold = Vec::new();
        for state in self.states {
            let (reported, below) = state.summarize(options, history);
            rules.extend(reported);
            below_threshold.extend(below);
        }
        history.next_window();
        crate::summary::sort_rules(&mut rules);
        below_threshold.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Summary {
            host: options.host.clone(),
            start: self.start,
            end,
            rules,
            below_threshold,
            excluded: self.excluded,
            windows: 1,
            skewed: self.skewed,
            incidents: Default::default(),
        }
    }
}

impl RuleState {
    fn new(rule: &Rule, options: &WindowOptions, shaper: Arc<Shaper>) -> RuleState {
        RuleState {
            name: rule.name.clone(),
            severity: rule.severity,
            level: None,
            shaper,
            min_count: rule.min_count.get(),
            group_by: rule.group_by.clone(),
            count: 0,
            first: Timestamp::MAX,
            last: Timestamp::MIN,
            files: Vec::new(),
            file_hashes: Distinct::default(),
            last_file_hash: None,
            groups: TopK::new(options.tracked_groups()),
            folded_groups: 0,
            patterns: TopK::new(options.tracked_patterns()),
        }
    }

    fn unknown(name: String, options: &WindowOptions) -> RuleState {
        let rule = Rule {
            name,
            severity: Severity::Error,
            min_count: std::num::NonZeroU64::MIN,
            group_by: Vec::new(),
            sources: Vec::new(),
            patterns: Vec::new(),
            excludes: Vec::new(),
            group_slots: Vec::new(),
            examples_match: Vec::new(),
            examples_no_match: Vec::new(),
            message: crate::rules::RuleMessage::default(),
        };
        RuleState::new(&rule, options, Arc::new(Shaper::new(&rule, options)))
    }

    fn update_from(&mut self, rule: &Rule, options: &WindowOptions) {
        self.severity = rule.severity;
        self.shaper = Arc::new(Shaper::new(rule, options));
        self.min_count = rule.min_count.get();
        if self.group_by != rule.group_by {
            let groups = std::mem::replace(&mut self.groups, TopK::new(options.tracked_groups()));
            self.folded_groups += groups.total();
            self.group_by = rule.group_by.clone();
        }
    }

    /// Counts a hit, `ahead` when it was shaped ahead (with this state's shaper).
    fn observe(
        &mut self,
        now: Timestamp,
        hit: &HitRef<'_>,
        ahead: Option<Shaped<'_>>,
        scratch: &mut Scratch,
    ) {
        self.count += 1;
        self.first = self.first.min(now);
        self.last = self.last.max(now);
        self.observe_file(hit.file);
        let group_key = if self.group_by.is_empty() {
            0
        } else {
            self.observe_groups(hit.groups, &mut scratch.key)
        };
        let shape = match ahead {
            Some(ahead) => ahead.shape,
            None => self.shaper.shape(hit.line, hit.groups, None, scratch),
        };
        if let Some(level) = shape.level {
            self.level = Some(self.level.map_or(level, |seen| seen.max(level)));
        }
        self.observe_pattern(hit, group_key, shape, ahead, scratch);
    }

    fn observe_file(&mut self, file: &str) {
        let hash = xxhash_rust::xxh3::xxh3_64(file.as_bytes());
        if self.last_file_hash == Some(hash) {
            return;
        }
        self.last_file_hash = Some(hash);
        self.file_hashes.insert(hash);
        let name = cut(file, MAX_FILE_BYTES);
        if self.files.len() < MAX_FILES && !self.files.iter().any(|f| f == name) {
            self.files.push(name.to_owned());
        }
    }

    /// Counts the hit's group; returns its key.
    fn observe_groups(&mut self, values: &[Option<&[u8]>], key: &mut Vec<u8>) -> u64 {
        key.clear();
        for i in 0..self.group_by.len() {
            match values.get(i).copied().flatten() {
                Some(value) => {
                    key.push(1);
                    key.extend_from_slice(&(value.len() as u64).to_le_bytes());
                    key.extend_from_slice(value);
                }
                None => key.push(0),
            }
        }
        let hash = xxhash_rust::xxh3::xxh3_64(key);
        let width = self.group_by.len();
        self.groups.add(hash, 1, || {
            (0..width)
                .map(|i| {
                    values
                        .get(i)
                        .copied()
                        .flatten()
                        .map(|v| lossy_capped(v, MAX_GROUP_VALUE_BYTES))
                })
                .collect()
        });
        hash
    }

    /// Counts the hit under its pattern; a new pattern takes its text from what shaped the hit
    /// (`ahead`, or `scratch` when shaped here).
    fn observe_pattern(
        &mut self,
        hit: &HitRef<'_>,
        group_key: u64,
        shape: Shape,
        ahead: Option<Shaped<'_>>,
        scratch: &Scratch,
    ) {
        let shaper = &self.shaper;
        let value = self.patterns.add(shape.hash, 1, || {
            let event = event::split(hit.line);
            let pattern = match ahead {
                Some(ahead) => ahead.pattern.to_owned(),
                None => cut(&scratch.pattern, MAX_PATTERN_BYTES).to_owned(),
            };
            let sample = lossy_capped(event.first, MAX_SAMPLE_BYTES);
            PatternValue {
                pattern,
                sample,
                extra_lines: event.extra_lines,
                cause: event
                    .cause
                    .as_ref()
                    .map(|c| lossy_capped(&c.text(), MAX_SAMPLE_BYTES)),
                context: event::context_lines(hit.line, &event, &shaper.show),
                cause_key: shape.cause_key,
                group_key,
                level: shape.level,
            }
        });
        if let Some(level) = shape.level {
            value.level = Some(value.level.map_or(level, |seen| seen.max(level)));
        }
    }

    /// The rule's entry in the summary (when it reached `min_count`) and its below-threshold
    /// entry (hits of groups, or of the whole rule, under `min_count`).
    fn summarize(
        self,
        options: &WindowOptions,
        history: &mut History,
    ) -> (Option<RuleSummary>, Option<(String, u64)>) {
        let (count, groups, other_groups_count, below) = if self.group_by.is_empty() {
            if self.count >= self.min_count {
                (self.count, Vec::new(), 0, 0)
            } else {
                (0, Vec::new(), 0, self.count)
            }
        } else {
            self.split_groups(options.max_groups)
        };
        let below = (below > 0).then(|| (self.name.clone(), below));
        if count == 0 {
            return (None, below);
        }
        let distinct_patterns = self.patterns.distinct();
        let patterns = select::choose(
            self.patterns.into_ranked(),
            options.max_patterns,
            !self.group_by.is_empty(),
            history.for_rule(&self.name),
        );
        let shown: u64 = patterns.iter().map(|p| p.count).sum();
        let other_files = self
            .file_hashes
            .count()
            .saturating_sub(self.files.len() as u64);
        let summary = RuleSummary {
            name: self.name,
            severity: self.level.unwrap_or(self.severity),
            count,
            first: self.first,
            last: self.last,
            files: self.files,
            other_files,
            groups,
            other_groups_count,
            // The distinct count is estimated past 256 (and may count shapes shown under a
            // lower bound): never claim more further shapes than further matches.
            other_patterns: distinct_patterns
                .saturating_sub(patterns.len() as u64)
                .min(self.count.saturating_sub(shown)),
            other_patterns_count: self.count.saturating_sub(shown),
            patterns,
        };
        (Some(summary), below)
    }

    /// (reported count, shown groups, "other" count, below-threshold count) of a rule with
    /// `group_by`.
    ///
    /// Groups whose count is known (not mostly inherited from evicted groups) are compared with
    /// `min_count`: those under it are below threshold. The rest of the hits (groups evicted or
    /// of uncertain count, which only happens with more distinct values than are tracked, and
    /// hits from before a `group_by` change) is "other"; not knowing how it splits, it counts as
    /// one group against `min_count`, erring towards reporting. When nothing reaches
    /// `min_count`, the whole rule is below threshold.
    fn split_groups(&self, max_groups: usize) -> (u64, Vec<GroupCount>, u64, u64) {
        let ranked = self.groups.clone().into_ranked();
        let (certain, _uncertain): (Vec<_>, Vec<_>) = ranked
            .into_iter()
            .partition(|slot| slot.guaranteed() > slot.error);
        let known: u64 = certain.iter().map(|slot| slot.guaranteed()).sum();
        let remainder = self.count - known;
        let (passing, failing): (Vec<_>, Vec<_>) = certain
            .into_iter()
            .partition(|slot| slot.guaranteed() >= self.min_count);
        if passing.is_empty() && remainder < self.min_count {
            return (0, Vec::new(), 0, self.count);
        }
        let below: u64 = failing.iter().map(|slot| slot.guaranteed()).sum();
        let count = self.count - below;
        let groups: Vec<GroupCount> = passing
            .into_iter()
            .take(max_groups)
            .map(|slot| GroupCount {
                values: self
                    .group_by
                    .iter()
                    .cloned()
                    .zip(
                        slot.value
                            .iter()
                            .map(|v| v.clone().unwrap_or_else(|| "-".into())),
                    )
                    .collect(),
                count: slot.guaranteed(),
            })
            .collect();
        let shown: u64 = groups.iter().map(|g| g.count).sum();
        (count, groups, count - shown, below)
    }
}

#[cfg(test)]
pub(crate) mod tests;
