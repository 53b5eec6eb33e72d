//! `absence`: silence that means trouble. Pure: no IO, and `now` is always passed in.
//!
//! Every other rule fires on lines that *are* there; a heartbeat that stopped, a nightly job
//! that never said `finished` or a log file that stopped growing look like health to them. This
//! module is the one place that knows "nothing happened for 15 minutes":
//! - an **absence rule** (`kind: absence`) expects at least `min_count` hits of its pattern in
//!   every trailing `window`, per expected key (its `group_by` values: the `static` ones, and
//!   with `learn` the ones seen in the last `learn_window`). A key is watched from the start
//!   (`arm: on_start`) or only once it was seen (`after_first_seen`, ElastAlert's flatline,
//!   which cannot fire for a key never seen). With a `schedule`, it only fires while the
//!   caller says the schedule is active.
//! - a **stalled source** (`source_stalled:` on a source) fires when none of its files grew
//!   for that long, or when no file matches its globs: "the app stopped logging" told apart
//!   from "the app logs, but not this line".
//!
//! The rule's hits reach this module as closed windows' entries (the same scan and aggregation
//! as every rule); the agent reports file growth and glob matches. An absence fires once (a
//! `New` line), stays open (an `Ongoing` line in later messages) and resolves when the hits or
//! growth come back (a `Back` line): the incident lifecycle.
//!
//! [`Memory`] is what must survive a restart (when each rule and source began to be watched,
//! each key's recent hits, open absences); the agent keeps it in `incidents.json`. After a
//! restart nothing fires before `settle` (the caller passes the start plus one window), so
//! the backlog of lines written while the agent was stopped is read first and no absence
//! fires that the backlog disproves.

mod memory;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

pub use self::memory::{KeyMemory, MAX_KEYS, Memory, RuleMemory, SourceMemory};
use crate::rules::Severity;
use crate::summary::RuleSummary;
pub use crate::summary::absent::{AbsentKind, AbsentLine, AbsentState, Group, merge};

/// Default of an absence rule's `keys.learn_window`.
pub const DEFAULT_LEARN_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// When a key begins to be watched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arm {
    /// From the rule's first evaluation: a key never seen fires after one `window`.
    #[default]
    OnStart,
    /// Only once the key was seen (a key never seen never fires).
    AfterFirstSeen,
}

/// The values of `group_by` an absence rule expects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    /// `static:` values, expected even if never seen.
    pub fixed: Vec<Group>,
    /// `learn: true`: values seen in the last `learn_window` are expected too.
    pub learn: bool,
    /// How long a learned value is expected after it was last seen.
    pub learn_window: Duration,
}

/// One `kind: absence` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbsenceRule {
    /// Rule name.
    pub name: String,
    /// Severity of its absence incidents.
    pub severity: Severity,
    /// What is expected, as shown in messages (the rule's first pattern).
    pub what: String,
    /// Trailing time span in which `min_count` hits are expected.
    pub window: Duration,
    /// Hits expected per key in every `window`.
    pub min_count: u64,
    /// The rule's `group_by` names.
    pub group_by: Vec<String>,
    /// Expected keys (ignored without `group_by`: the rule is one key).
    pub keys: Keys,
    /// When keys begin to be watched.
    pub arm: Arm,
    /// The time interval in which it may fire (`None`: always).
    pub schedule: Option<String>,
}

/// One source's `source_stalled:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    /// Source name.
    pub source: String,
    /// Fires when no file of the source grew for this long (or none matched).
    pub after: Duration,
    /// The source's globs, for the "no file matches" message.
    pub paths: Vec<String>,
}

/// Everything absence watches: rules and sources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Watches {
    /// `kind: absence` rules.
    pub rules: Vec<AbsenceRule>,
    /// Sources with `source_stalled:`.
    pub stalls: Vec<Stall>,
}

impl Watches {
    /// Returns true if and only if nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.stalls.is_empty()
    }

    /// The absence rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&AbsenceRule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// Tells whether a named schedule (time interval) is active at an instant; the default says
/// every schedule always is.
#[derive(Clone, Default)]
pub struct Schedules(Option<std::sync::Arc<IsActive>>);

/// Whether schedule `name` is active at an instant.
type IsActive = dyn Fn(&str, Timestamp) -> bool + Send + Sync;

impl Schedules {
    /// Schedules decided by `active`.
    pub fn new(active: impl Fn(&str, Timestamp) -> bool + Send + Sync + 'static) -> Schedules {
        Schedules(Some(std::sync::Arc::new(active)))
    }

    /// Returns true if and only if schedule `name` is active at `at`.
    pub fn is_active(&self, name: &str, at: Timestamp) -> bool {
        self.0.as_ref().is_none_or(|active| active(name, at))
    }
}

impl std::fmt::Debug for Schedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schedules(..)")
    }
}

/// What the caller knows at an evaluation besides the memory.
#[derive(Clone, Copy)]
pub struct Moment<'a> {
    /// The agent's clock.
    pub now: Timestamp,
    /// Nothing fires before this (start plus one window: the backlog is read first).
    pub settle: Timestamp,
    /// Re-evaluation step while something is due but may not fire (schedule, settle).
    pub every: Duration,
    /// Whether a named schedule (time interval) is active at `now`.
    pub active: &'a dyn Fn(&str) -> bool,
}

impl Memory {
    /// Counts an absence rule's entry of a closed window: each key's hits, seen at the last
    /// hit's time (bounded to the window's span on the agent's clock: a backlog's old event
    /// times count as read now, so they cannot make an absence fire).
    pub fn observe(
        &mut self,
        rule: &AbsenceRule,
        entry: &RuleSummary,
        start: Timestamp,
        now: Timestamp,
    ) {
        let at = entry.last.clamp(start.min(now), now);
        let memory = self.rule_memory(rule, now);
        let mut counted: Vec<(Group, u64)> = entry
            .groups
            .iter()
            .map(|g| (g.values.clone(), g.count))
            .collect();
        if rule.group_by.is_empty() {
            counted = vec![(Vec::new(), entry.count)];
        }
        for (group, count) in counted {
            if count == 0 {
                continue;
            }
            let index = match memory.keys.iter().position(|k| k.group == group) {
                Some(index) => index,
                None if rule.group_by.is_empty()
                    || rule.keys.learn
                    || rule.keys.fixed.contains(&group) =>
                {
                    memory.keys.push(KeyMemory::new(group, None));
                    memory.keys.len() - 1
                }
                None => continue,
            };
            memory.keys[index].seen(at, count, rule);
        }
        memory.bound(&rule.keys);
    }

    /// Begins to watch (at `now`) the rules and sources not watched yet; those remembered
    /// from before a restart keep their memory.
    pub fn begin(&mut self, watches: &Watches, now: Timestamp) {
        for rule in &watches.rules {
            self.rule_memory(rule, now);
        }
        for stall in &watches.stalls {
            self.source_memory(&stall.source, now);
        }
    }

    /// One of a source's files grew (the agent read new lines of it) at `at`.
    pub fn grew(&mut self, source: &str, file: &str, at: Timestamp) {
        let memory = self.source_memory(source, at);
        memory.last_growth = Some(memory.last_growth.map_or(at, |t| t.max(at)));
        memory.last_file = Some(file.to_owned());
        memory.last_matched = Some(at);
        memory.files = Some(memory.files.unwrap_or(0).max(1));
    }

    /// The agent looked for a source's files at `at` and found `count`.
    pub fn matched(&mut self, source: &str, count: u64, at: Timestamp) {
        let memory = self.source_memory(source, at);
        if count > 0 && memory.files == Some(0) {
            // A file appearing is growth from nothing: the stall clock starts again.
            memory.last_growth = Some(at);
        }
        if count > 0 {
            memory.last_matched = Some(at);
        }
        memory.files = Some(count);
    }

    /// Fires what is absent at `moment` and resolves what came back. Returns the lines to
    /// report (`New` and `Back`), and when to evaluate next (`None`: nothing can become due
    /// without new hits, growth or a new look at the files).
    pub fn evaluate(
        &mut self,
        watches: &Watches,
        moment: &Moment<'_>,
    ) -> (Vec<AbsentLine>, Option<Timestamp>) {
        let now = moment.now;
        self.forget_unwatched(watches);
        let mut due: Vec<(AbsentLine, bool)> = Vec::new();
        let mut next: Option<Timestamp> = None;
        let mut later = |at: Timestamp| next = Some(next.map_or(at, |n: Timestamp| n.min(at)));
        for rule in &watches.rules {
            let may_fire = rule.schedule.as_deref().is_none_or(|s| (moment.active)(s));
            let memory = self.rule_memory(rule, now);
            memory.expect(rule);
            memory.forget_learned(rule, now);
            for key in &mut memory.keys {
                key.trim(rule, now);
                match key.due(rule) {
                    Some(at) if at <= now => due.push((key.absent(rule, now), may_fire)),
                    Some(at) => later(at),
                    None => {}
                }
            }
        }
        for stall in &watches.stalls {
            let memory = self.source_memory(&stall.source, now);
            let at = memory.due(stall);
            if at <= now {
                due.push((memory.absent(stall, now), true));
            } else {
                later(at);
            }
        }
        let mut lines = Vec::new();
        let may_fire_now = now >= moment.settle;
        let mut still_due = false;
        for (line, may_fire) in due {
            if self.open.iter().any(|o| o.same(&line)) {
                continue;
            }
            if may_fire && may_fire_now {
                let mut opened = line.clone();
                opened.state = AbsentState::Ongoing;
                self.open.push(opened);
                lines.push(line);
            } else {
                still_due = true;
            }
        }
        // Open absences whose hits or growth came back.
        let (open, back): (Vec<AbsentLine>, Vec<AbsentLine>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|o| self.still_absent(watches, o, now));
        self.open = open;
        for mut line in back {
            line.state = AbsentState::Back;
            line.back = Some(now);
            line.last_seen = self.last_seen(&line).or(line.last_seen);
            lines.push(line);
        }
        if still_due {
            later(add(now, moment.every).max(moment.settle));
        }
        (lines, next)
    }

    /// Returns true if and only if `source` is open as stalled (or as matching no file).
    pub fn is_stalled(&self, source: &str) -> bool {
        self.open.iter().any(|l| l.is_source() && l.rule == source)
    }

    /// The open absences, as `Ongoing` lines (for messages that go out for other reasons).
    pub fn ongoing(&self) -> Vec<AbsentLine> {
        self.open.clone()
    }

    /// A message that went out told the open absence `line` (as new or still absent): once
    /// back, it is told back whatever silences it then.
    pub fn told(&mut self, line: &AbsentLine) {
        for open in self.open.iter_mut().filter(|o| o.same(line)) {
            open.told = true;
        }
    }

    fn still_absent(&self, watches: &Watches, open: &AbsentLine, now: Timestamp) -> bool {
        match &open.kind {
            AbsentKind::Line { .. } => {
                let (Some(rule), Some(memory)) =
                    (watches.rule(&open.rule), self.rules.get(&open.rule))
                else {
                    return false;
                };
                memory
                    .keys
                    .iter()
                    .find(|k| k.group == open.group)
                    .and_then(|k| k.due(rule))
                    .is_some_and(|at| at <= now)
            }
            AbsentKind::Stalled { .. } | AbsentKind::NoFile { .. } => {
                // Back only once a file grew (or appeared) after it fired: a stalled file
                // that is then removed is still the same silence.
                watches.stalls.iter().any(|s| s.source == open.rule)
                    && self
                        .sources
                        .get(&open.rule)
                        .is_none_or(|m| m.last_growth.is_none_or(|t| t <= open.since))
            }
        }
    }

    fn last_seen(&self, line: &AbsentLine) -> Option<Timestamp> {
        match &line.kind {
            AbsentKind::Line { .. } => {
                self.rules
                    .get(&line.rule)?
                    .keys
                    .iter()
                    .find(|k| k.group == line.group)?
                    .last_seen
            }
            AbsentKind::Stalled { .. } | AbsentKind::NoFile { .. } => {
                self.sources.get(&line.rule)?.last_growth
            }
        }
    }
}

/// `at + duration`, saturating.
fn add(at: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| at.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `at - duration`, saturating.
fn sub(at: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| at.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests;
