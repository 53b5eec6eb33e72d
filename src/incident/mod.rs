//! `incident`: what a closed window *says*. Pure: no IO, and `now` is always passed in.
//!
//! A window summary tells what happened in one minute; a person on call wants to know what
//! started, what is still going on and what stopped (Alertmanager's `repeat_interval` and
//! resolved notifications, ElastAlert's `realert`). An **incident** is a rule plus its
//! `group_by` values. [`Incidents::close_window`] turns each closed window into the message to
//! send (or none):
//! - a **new** incident is reported in full at once, as is an **escalated** one (severity rise,
//!   or a window count above `escalate_ratio` times its previous window);
//! - an **ongoing** one is held: its hits accumulate (the details merged per rule) and it is
//!   shown as one line only when something else makes a message go out, or in full again once
//!   `repeat_interval` has passed since it was last shown in full;
//! - an incident quiet for `resolve_after` (+ `keep_firing_for`) is **resolved**: one line,
//!   in a message of its own ([`Incidents::tick`], at [`Incidents::deadline`]) when
//!   `send_resolved`, else in the next message.
//!
//! Every hit is counted in exactly one message: a full entry carries the hits since the rule
//! was last in a message, an ongoing or resolved line the incident's hits since it was last in
//! one. So the counts of all messages add up to the hits (the invariant the tests check).
//!
//! The stage's memory is [`State`], which the agent persists (`state_dir/incidents.json`)
//! before committing the offsets of the lines it covers: held hits are as safe as sent ones.

mod state;

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::absence::{self, AbsentLine, Moment, Schedules, Watches};

pub use self::state::{Incident, RECENT_WINDOWS, STATE_VERSION, State, StateError};
pub use crate::summary::incident::{IncidentLine, IncidentNote, IncidentReport, Reason};
use crate::summary::{RuleSummary, Summary};

/// Default of `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Default of `resolve_after`.
pub const DEFAULT_RESOLVE_AFTER: Duration = Duration::from_secs(5 * 60);
/// Default of `incidents.escalate_ratio`.
pub const DEFAULT_ESCALATE_RATIO: u32 = 10;
/// Default of `incidents.max_incidents`.
pub const DEFAULT_MAX_INCIDENTS: usize = 1000;

/// The lifecycle settings of one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// An ongoing incident is shown in full again after this long.
    pub repeat_interval: Duration,
    /// Quiet time after which an incident is resolved.
    pub resolve_after: Duration,
    /// Resolved incidents get a message of their own (else a line in the next message).
    pub send_resolved: bool,
    /// Flapping guard: more quiet time needed before resolving, on top of `resolve_after`.
    pub keep_firing_for: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            resolve_after: DEFAULT_RESOLVE_AFTER,
            send_resolved: true,
            keep_firing_for: Duration::ZERO,
        }
    }
}

impl Policy {
    fn quiet_needed(&self) -> SignedDuration {
        signed(self.resolve_after.saturating_add(self.keep_firing_for))
    }
}

/// Lifecycle settings: global defaults, per-rule settings, bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policies {
    /// For rules without their own.
    pub defaults: Policy,
    /// Rules with their own settings (complete: defaults already filled in).
    pub rules: HashMap<String, Policy>,
    /// A window count above this many times the previous one escalates.
    pub escalate_ratio: u32,
    /// Incidents kept (open and resolved); the oldest resolved are dropped first.
    pub max_incidents: usize,
    /// Absence rules and stalled sources (incidents of what is *not* there).
    pub absence: Watches,
}

impl Default for Policies {
    fn default() -> Policies {
        Policies {
            defaults: Policy::default(),
            rules: HashMap::new(),
            escalate_ratio: DEFAULT_ESCALATE_RATIO,
            max_incidents: DEFAULT_MAX_INCIDENTS,
            absence: Watches::default(),
        }
    }
}

impl Policies {
    /// These policies watching `absence` too.
    pub fn with_absence(mut self, absence: Watches) -> Policies {
        self.absence = absence;
        self
    }

    /// The settings of rule `name`.
    pub fn of(&self, name: &str) -> &Policy {
        self.rules.get(name).unwrap_or(&self.defaults)
    }
}

/// The incident stage.
#[derive(Clone, Debug)]
pub struct Incidents {
    policies: Policies,
    window: Duration,
    state: State,
    /// No absence fires before this (see [`Incidents::start`]).
    settle: Timestamp,
    /// When absence is evaluated next (`None`: at the next window close).
    absence_at: Option<Timestamp>,
    /// Whether a schedule (time interval) is active at an instant.
    schedules: Schedules,
    /// [`Incidents::deadline`] once computed, until a change: the process loop asks for it at
    /// every turn, and computing it looks up every open incident's rule.
    deadline: Cell<Option<Option<Timestamp>>>,
}

/// What one rule's window means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Hold,
    Full(Reason),
}

impl Incidents {
    /// A stage with `policies`, for windows of length `window`, resuming from `state`.
    pub fn new(policies: Policies, window: Duration, state: State) -> Incidents {
        Incidents {
            policies,
            window,
            state,
            settle: Timestamp::MIN,
            absence_at: None,
            schedules: Schedules::default(),
            deadline: Cell::new(None),
        }
    }

    /// Forgets the remembered [`Incidents::deadline`]: every method that takes `&mut self`
    /// calls this first.
    fn changing(&mut self) {
        *self.deadline.get_mut() = None;
    }

    /// The agent (or a test run) starts at `now`: absence is evaluated from one window on, so
    /// that the lines written while it was stopped (the backlog) are read before anything
    /// can be found absent.
    pub fn start(&mut self, now: Timestamp) {
        self.changing();
        self.settle = now
            .checked_add(signed(self.window))
            .unwrap_or(Timestamp::MAX);
        if !self.policies.absence.is_empty() {
            self.state.absence.begin(&self.policies.absence, now);
            self.absence_at = Some(self.settle);
        }
    }

    /// Says which schedules (time intervals) are active when (all are, until this is called).
    pub fn set_schedules(&mut self, schedules: Schedules) {
        self.changing();
        self.schedules = schedules;
    }

    /// One of `source`'s files (`file`) grew at `now` (`source_stalled`).
    /// A stalled source that grows is told back within a window: no window of hits need close
    /// for it (its lines may match no rule).
    pub fn grew(&mut self, source: &str, file: &str, now: Timestamp) {
        self.changing();
        if self.watches_source(source) {
            self.state.absence.grew(source, file, now);
            self.evaluate_soon_if_stalled(source, now);
        }
    }

    /// `source`'s globs matched `count` files at `now` (`source_stalled`): counted just before a
    /// tick, whose evaluation tells a file that appeared at once.
    pub fn matched(&mut self, source: &str, count: u64, now: Timestamp) {
        self.changing();
        if self.watches_source(source) {
            self.state.absence.matched(source, count, now);
        }
    }

    /// Brings the next absence evaluation forward to one window after `now` while `source` is
    /// told stalled (a window of hits opened by the same lines closes by then, and tells it in
    /// the same message).
    fn evaluate_soon_if_stalled(&mut self, source: &str, now: Timestamp) {
        if self.state.absence.is_stalled(source) {
            let soon = now
                .checked_add(signed(self.window))
                .unwrap_or(Timestamp::MAX);
            self.absence_at = Some(self.absence_at.map_or(soon, |at| at.min(soon)));
        }
    }

    /// A message that goes out tells the open absence `line` (see [`absence::Memory::told`]).
    pub fn absence_told(&mut self, line: &AbsentLine) {
        self.changing();
        self.state.absence.told(line);
    }

    /// Returns true if and only if `name` is a `kind: absence` rule.
    pub fn is_absence_rule(&self, name: &str) -> bool {
        self.policies.absence.rule(name).is_some()
    }

    /// Sources with `source_stalled`.
    pub fn stalled_sources(&self) -> impl Iterator<Item = &str> {
        self.policies
            .absence
            .stalls
            .iter()
            .map(|s| s.source.as_str())
    }

    fn watches_source(&self, source: &str) -> bool {
        self.policies
            .absence
            .stalls
            .iter()
            .any(|s| s.source == source)
    }

    /// Swaps in reloaded settings; open incidents keep their history.
    pub fn set_policies(&mut self, policies: Policies, window: Duration) {
        self.changing();
        self.policies = policies;
        self.window = window;
        if !self.policies.absence.is_empty() && self.absence_at.is_none() {
            // New absence rules begin to be watched at the next evaluation, now.
            self.absence_at = Some(self.settle);
        }
    }

    /// The state to persist.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Open incidents.
    pub fn open(&self) -> impl Iterator<Item = &Incident> {
        self.state.incidents.iter().filter(|i| i.is_open())
    }

    /// When the next open incident is due to resolve; `None` when none is open.
    pub fn deadline(&self) -> Option<Timestamp> {
        if let Some(known) = self.deadline.get() {
            debug_assert_eq!(
                known,
                self.next_deadline(),
                "a change did not call `changing`"
            );
            return known;
        }
        let next = self.next_deadline();
        self.deadline.set(Some(next));
        next
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        self.open()
            .map(|i| self.resolve_at(i))
            .chain(self.absence_at)
            .min()
    }

    /// Time passed with no window closing: resolves what is due. Returns a message when a
    /// resolved incident's rule has `send_resolved` (it then also carries the other resolved
    /// lines waiting and the ongoing incidents).
    pub fn tick(&mut self, host: &str, now: Timestamp) -> Option<Summary> {
        self.changing();
        let loud = self.resolve_due(now);
        let absent = self.evaluate_absence(now);
        if !loud && absent.is_empty() {
            return None;
        }
        let mut message = empty_summary(host, now);
        self.fill_lines(&mut message, now, &[]);
        message.incidents.absent = self.absent_lines(absent);
        Some(message)
    }

    /// A window closed at `now` with `summary` (its rules at `min_count`). Returns what to
    /// send: the summary with only the rules to show in full, the ongoing and resolved lines;
    /// `None` when nothing is to be said yet (its hits are held in the state).
    pub fn close_window(&mut self, mut summary: Summary, now: Timestamp) -> Option<Summary> {
        self.changing();
        let loud = self.resolve_due(now);
        let slot = self.slot(summary.start);
        let mut full = Vec::new();
        let mut notes = Vec::new();
        let rules = self.observe_absence(std::mem::take(&mut summary.rules), summary.start, now);
        let absent = self.evaluate_absence(now);
        let loud = loud || !absent.is_empty();
        for rule in rules {
            let verdict = self.observe_rule(&rule, now, slot);
            let merged = self
                .take_pending(&rule.name)
                .map_or(rule.clone(), |mut pending| {
                    pending.merge(rule);
                    pending
                });
            match verdict {
                Verdict::Hold => {
                    self.state.pending.insert(merged.name.clone(), merged);
                }
                Verdict::Full(reason) => {
                    notes.push(self.shown_in_full(&merged.name, reason, now, slot));
                    full.push(merged);
                }
            }
        }
        self.state.bound(self.policies.max_incidents);
        if full.is_empty() && !loud {
            return None;
        }
        crate::summary::sort_rules(&mut full);
        summary.rules = full;
        summary.incidents.notes = notes;
        let names: Vec<String> = summary.rules.iter().map(|r| r.name.clone()).collect();
        self.fill_lines(&mut summary, now, &names);
        summary.incidents.absent = self.absent_lines(absent);
        Some(summary)
    }

    /// Takes the absence rules' entries out of a window's rules (their hits are heartbeats,
    /// never shown as alerts) and counts them; returns the other rules.
    fn observe_absence(
        &mut self,
        rules: Vec<RuleSummary>,
        start: Timestamp,
        now: Timestamp,
    ) -> Vec<RuleSummary> {
        let mut others = Vec::with_capacity(rules.len());
        for rule in rules {
            match self.policies.absence.rule(&rule.name) {
                Some(absence) => self.state.absence.observe(absence, &rule, start, now),
                None => others.push(rule),
            }
        }
        others
    }

    /// Fires and resolves absences at `now`: the `New` and `Back` lines.
    fn evaluate_absence(&mut self, now: Timestamp) -> Vec<AbsentLine> {
        if self.policies.absence.is_empty() && self.state.absence == absence::Memory::default() {
            self.absence_at = None;
            return Vec::new();
        }
        let schedules = self.schedules.clone();
        let active = move |name: &str| schedules.is_active(name, now);
        let moment = Moment {
            now,
            settle: self.settle,
            every: self.window,
            active: &active,
        };
        let (lines, next) = self.state.absence.evaluate(&self.policies.absence, &moment);
        self.absence_at = next;
        lines
    }

    /// The absent lines of a message: the `New` and `Back` ones, then those still open.
    fn absent_lines(&self, mut told: Vec<AbsentLine>) -> Vec<AbsentLine> {
        for open in self.state.absence.ongoing() {
            if !told.iter().any(|t| t.same(&open)) {
                told.push(open);
            }
        }
        told
    }

    /// Counts one rule's window in its incidents and decides how it is shown.
    fn observe_rule(&mut self, rule: &RuleSummary, now: Timestamp, slot: i64) -> Verdict {
        let policy = *self.policies.of(&rule.name);
        let ratio = u64::from(self.policies.escalate_ratio.max(1));
        let mut verdict = Verdict::Hold;
        for (group, count) in split(rule) {
            let index = match self.find_open(&rule.name, &group) {
                Some(index) => index,
                None => {
                    // A key seen again after it resolved: a new incident replaces the old one.
                    self.state
                        .incidents
                        .retain(|i| !(i.rule == rule.name && i.group == group));
                    self.state.incidents.push(new_incident(rule, group, now));
                    self.state.incidents.len() - 1
                }
            };
            let incident = &mut self.state.incidents[index];
            let reason = if incident.total == 0 {
                Some(Reason::New)
            } else if rule.severity > incident.severity
                || (incident.previous_window > 0
                    && count > incident.previous_window.saturating_mul(ratio))
            {
                Some(Reason::Escalated)
            } else if now.duration_since(incident.last_full) >= signed(policy.repeat_interval) {
                Some(Reason::Repeat)
            } else {
                None
            };
            incident.severity = incident.severity.max(rule.severity);
            incident.last_seen = incident.last_seen.max(rule.last);
            incident.last_window = now;
            incident.total = incident.total.saturating_add(count);
            incident.unreported = incident.unreported.saturating_add(count);
            incident.previous_window = count;
            incident.record(slot, count);
            if let Some(reason) = reason {
                verdict = match verdict {
                    Verdict::Full(mine) => Verdict::Full(mine.max(reason)),
                    Verdict::Hold => Verdict::Full(reason),
                };
            }
        }
        verdict
    }

    /// Marks every open incident of `rule` as shown in full at `now`; returns the rule's note.
    fn shown_in_full(
        &mut self,
        rule: &str,
        reason: Reason,
        now: Timestamp,
        slot: i64,
    ) -> IncidentNote {
        let mut note = IncidentNote {
            rule: rule.to_owned(),
            reason,
            since: now,
            total: 0,
            recent: vec![0; RECENT_WINDOWS],
        };
        for incident in self
            .state
            .incidents
            .iter_mut()
            .filter(|i| i.is_open() && i.rule == rule)
        {
            incident.last_full = now;
            incident.unreported = 0;
            note.since = note.since.min(incident.since);
            note.total = note.total.saturating_add(incident.total);
            let recent = incident.recent_at(slot);
            let offset = RECENT_WINDOWS - recent.len();
            for (i, count) in recent.into_iter().enumerate() {
                note.recent[offset + i] = note.recent[offset + i].saturating_add(count);
            }
        }
        let first = note
            .recent
            .iter()
            .position(|c| *c > 0)
            .unwrap_or(note.recent.len());
        note.recent.drain(..first);
        note
    }

    /// Resolves the open incidents due at `now`. Returns true if and only if one of them wants
    /// a message of its own (`send_resolved`).
    fn resolve_due(&mut self, now: Timestamp) -> bool {
        let mut loud = false;
        let slot = self.slot(now);
        let due: Vec<usize> = (0..self.state.incidents.len())
            .filter(|&i| {
                let incident = &self.state.incidents[i];
                incident.is_open() && self.resolve_at(incident) <= now
            })
            .collect();
        for index in due {
            let incident = &mut self.state.incidents[index];
            incident.resolved = Some(now);
            let count = std::mem::take(&mut incident.unreported);
            let line = incident.line(count, incident.recent_at(slot));
            let rule = incident.rule.clone();
            loud |= self.policies.of(&rule).send_resolved;
            self.forget_pending(&line);
            self.state.resolved_unsent.push(line);
        }
        let max = self.policies.max_incidents;
        let excess = self.state.resolved_unsent.len().saturating_sub(max);
        self.state.resolved_unsent.drain(..excess);
        loud
    }

    /// Adds the ongoing lines (open incidents of rules not in `full`) and the resolved lines
    /// waiting to a message that goes out.
    fn fill_lines(&mut self, message: &mut Summary, now: Timestamp, full: &[String]) {
        let slot = self.slot(now);
        let mut ongoing = Vec::new();
        for incident in self.state.incidents.iter_mut() {
            if incident.is_open() && !full.contains(&incident.rule) {
                let count = std::mem::take(&mut incident.unreported);
                ongoing.push(incident.line(count, incident.recent_at(slot)));
            }
        }
        for line in &ongoing {
            self.state.pending.remove(&line.rule);
        }
        ongoing.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| b.count.cmp(&a.count))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        message.incidents.ongoing = ongoing;
        message.incidents.resolved = std::mem::take(&mut self.state.resolved_unsent);
    }

    /// Takes a resolved incident's unreported hits out of its rule's held details (they are
    /// told by its resolved line).
    fn forget_pending(&mut self, line: &IncidentLine) {
        let others_open = self
            .state
            .incidents
            .iter()
            .any(|i| i.is_open() && i.rule == line.rule);
        if !others_open {
            self.state.pending.remove(&line.rule);
        } else if let Some(pending) = self.state.pending.get_mut(&line.rule) {
            subtract(pending, &line.group, line.count);
        }
    }

    fn take_pending(&mut self, rule: &str) -> Option<RuleSummary> {
        self.state.pending.remove(rule)
    }

    fn find_open(&self, rule: &str, group: &[(String, String)]) -> Option<usize> {
        self.state
            .incidents
            .iter()
            .position(|i| i.is_open() && i.rule == rule && i.group == group)
    }

    fn resolve_at(&self, incident: &Incident) -> Timestamp {
        let quiet = self.policies.of(&incident.rule).quiet_needed();
        incident
            .last_window
            .checked_add(quiet)
            .unwrap_or(Timestamp::MAX)
    }

    /// The window slot of `at`: its time divided by the window length.
    fn slot(&self, at: Timestamp) -> i64 {
        let window = i64::try_from(self.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        at.as_millisecond().div_euclid(window)
    }
}

/// An incident's `(group values, hits)` in a rule's window: one per shown group, one for the
/// rest ("other" groups, or the whole rule without `group_by`). The Alertmanager sink keys its
/// alerts the same way.
pub fn split(rule: &RuleSummary) -> Vec<(Vec<(String, String)>, u64)> {
    let mut out: Vec<(Vec<(String, String)>, u64)> = rule
        .groups
        .iter()
        .map(|g| (g.values.clone(), g.count))
        .collect();
    let grouped: u64 = out.iter().map(|(_, n)| n).sum();
    let rest = rule.count.saturating_sub(grouped);
    if rest > 0 || out.is_empty() {
        out.push((Vec::new(), rest));
    }
    out
}

fn new_incident(rule: &RuleSummary, group: Vec<(String, String)>, now: Timestamp) -> Incident {
    Incident {
        rule: rule.name.clone(),
        group,
        severity: rule.severity,
        since: rule.first,
        last_seen: rule.last,
        last_window: now,
        last_full: now,
        total: 0,
        unreported: 0,
        previous_window: 0,
        recent: Vec::new(),
        recent_slot: 0,
        resolved: None,
    }
}

/// Removes a group's `count` hits from a rule's held details.
pub(crate) fn subtract(pending: &mut RuleSummary, group: &[(String, String)], count: u64) {
    pending.count = pending.count.saturating_sub(count);
    if group.is_empty() {
        pending.other_groups_count = pending.other_groups_count.saturating_sub(count);
    } else {
        pending.groups.retain(|g| g.values != group);
    }
    let mut left = count;
    let from_other = left.min(pending.other_patterns_count);
    pending.other_patterns_count -= from_other;
    left -= from_other;
    for pattern in pending.patterns.iter_mut().rev() {
        let taken = left.min(pattern.count);
        pattern.count -= taken;
        left -= taken;
    }
    pending.patterns.retain(|p| p.count > 0);
}

pub(crate) fn empty_summary(host: &str, now: Timestamp) -> Summary {
    Summary {
        host: host.to_owned(),
        start: now,
        end: now,
        rules: Vec::new(),
        below_threshold: Vec::new(),
        excluded: 0,
        windows: 0,
        skewed: 0,
        incidents: IncidentReport::default(),
    }
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests;
