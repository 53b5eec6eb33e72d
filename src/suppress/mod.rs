//! Suppression: what is *not* said, and why. Silences (planned maintenance, a known noisy
//! key), mute hours (`time_intervals:` with `mute_during:` / `active_during:`) and inhibition
//! (a "database down" incident folds the app-level timeouts it causes).
//!
//! [`Suppression`] runs when a window closes, *before* the incident stage: each incident of
//! the window (rule + `group_by` values) is shown, counted for the footer of the next message
//! (silenced, inhibited, muted with `drop`), or held until its mute interval ends (`defer`).
//! Suppressed hits never reach the incident stage, so an incident whose silence expires is
//! reported as new, at once. Inhibition is decided with the whole window in hand: a source
//! incident in the same window inhibits (no race as in Alertmanager #2229).
//!
//! Nothing suppressed is lost: counted hits wait in [`State::unsent`] and go into the next
//! message that goes out ([`Suppression::after_incidents`]); deferred hits wait in
//! [`State::deferred`] and are released, with exact counts, at the second the interval ends
//! ([`Suppression::release`]). The state is persisted by the agent before the lines it covers
//! are committed. Pure: the instant is passed in; silence files are the caller's business.

pub mod interval;
pub mod policy;
pub mod silence;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::summary::suppressed::{Suppressed, SuppressedLine, Why};
pub use interval::{IntervalSpec, TimeInterval, TimeIntervals};
pub use policy::{InhibitRule, Key, MuteMode, MutePolicies, MutePolicy, Settings, Verdict};
pub use silence::{Matcher, Silence, SilenceFile, StoredSilence};

use crate::absence::AbsentState;
use crate::incident::{Incidents, empty_summary, split, subtract};
use crate::rules::Severity;
use crate::summary::{RuleSummary, Summary, sort_rules};

/// `group_by` values: (capture name, value), in `group_by` order.
pub type Group = Vec<(String, String)>;

/// Hits of one group of a rule's window and what suppression decided for them.
type Judged = (Group, u64, Verdict);

/// Version of the state's JSON form.
pub const STATE_VERSION: u32 = 1;

/// What suppression remembers between windows (persisted as `state_dir/suppressed.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Always [`STATE_VERSION`] when written.
    pub version: u32,
    /// Counted hits not yet told in a message.
    pub unsent: Suppressed,
    /// Hits held until their mute interval ends.
    pub deferred: Vec<Deferred>,
}

/// A rule's hits held by `mode: defer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deferred {
    /// The interval that muted them.
    pub interval: String,
    /// Their merged details.
    pub rule: RuleSummary,
}

/// The suppression stage: settings, silences added at run time, state.
#[derive(Clone, Debug, Default)]
pub struct Suppression {
    settings: Settings,
    runtime: Vec<Silence>,
    state: State,
    /// When deferred hits may next be released.
    release_at: Option<Timestamp>,
    /// What the window being closed suppressed (for `logding test`'s view of it).
    this_window: Suppressed,
}

impl Suppression {
    /// A stage with `settings`, resuming `state`.
    pub fn new(settings: Settings, state: State) -> Suppression {
        Suppression {
            settings,
            runtime: Vec::new(),
            state,
            release_at: None,
            this_window: Suppressed::default(),
        }
    }

    /// New settings after a reload.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
        self.release_at = None;
    }

    /// The silences added at run time (`logding silence add`), replacing the previous ones.
    pub fn set_runtime_silences(&mut self, silences: Vec<Silence>) {
        self.runtime = silences;
    }

    /// The state to persist.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// What happens at `now` to the incident `key` of `severity`, `active` being the active
    /// incidents (for inhibition). For incidents that do not come from a window's hits
    /// (absence incidents): call [`note`](Self::note) for those not shown.
    pub fn verdict(
        &self,
        key: Key<'_>,
        severity: Severity,
        active: &[Key<'_>],
        now: Timestamp,
    ) -> Verdict {
        self.settings
            .verdict(key, severity, active, &self.runtime, now)
    }

    /// Counts `count` hits (or one incident) of `rule` suppressed for `why`, for the footer
    /// of the next message.
    pub fn note(&mut self, rule: &str, why: Why, count: u64) {
        self.state.unsent.add(rule, why, count);
    }

    /// A window closed at `now`: takes out of `summary` what is suppressed and returns the
    /// rest, for the incident stage. `open` are the incidents open before this window.
    pub fn before_incidents(
        &mut self,
        mut summary: Summary,
        open: &[(String, Group)],
        now: Timestamp,
    ) -> (Summary, Suppressed) {
        let in_window: Vec<(String, Group)> = summary
            .rules
            .iter()
            .flat_map(|rule| split(rule).into_iter().map(|(g, _)| (rule.name.clone(), g)))
            .collect();
        let active: Vec<Key<'_>> = open
            .iter()
            .chain(&in_window)
            .map(|(rule, group)| (rule.as_str(), group.as_slice()))
            .collect();
        let mut kept = Vec::new();
        for rule in std::mem::take(&mut summary.rules) {
            let verdicts: Vec<Judged> = split(&rule)
                .into_iter()
                .map(|(group, count)| {
                    let verdict = self.verdict((&rule.name, &group), rule.severity, &active, now);
                    (group, count, verdict)
                })
                .collect();
            if let Some(rest) = self.take_suppressed(rule, verdicts) {
                kept.push(rest);
            }
        }
        sort_rules(&mut kept);
        summary.rules = kept;
        self.release_at = self.next_release(now);
        (summary, std::mem::take(&mut self.this_window))
    }

    /// Attaches what was counted since the last message to `message`, when one goes out.
    pub fn after_incidents(&mut self, message: Option<Summary>) -> Option<Summary> {
        let mut message = message?;
        let unsent = std::mem::take(&mut self.state.unsent);
        message.incidents.suppressed.merge(unsent);
        Some(message)
    }

    /// When deferred hits may next be released (`None`: nothing is deferred).
    pub fn deadline(&self) -> Option<Timestamp> {
        self.release_at
    }

    /// Releases the deferred hits whose rules are no longer muted at `now`: a summary of them
    /// for the incident stage (as if a window closed), or `None`.
    pub fn release(&mut self, host: &str, now: Timestamp) -> Option<Summary> {
        let (due, held): (Vec<Deferred>, Vec<Deferred>) = std::mem::take(&mut self.state.deferred)
            .into_iter()
            .partition(|d| self.is_released(d, now));
        self.state.deferred = held;
        self.release_at = self.next_release(now);
        if due.is_empty() {
            return None;
        }
        let mut summary = empty_summary(host, now);
        for deferred in due {
            let rule = deferred.rule;
            self.state.unsent.add(
                &rule.name,
                Why::Deferred {
                    interval: deferred.interval,
                },
                rule.count,
            );
            summary.start = summary.start.min(rule.first);
            match summary.rules.iter_mut().find(|r| r.name == rule.name) {
                Some(mine) => mine.merge(rule),
                None => summary.rules.push(rule),
            }
        }
        sort_rules(&mut summary.rules);
        Some(summary)
    }

    fn is_released(&self, deferred: &Deferred, now: Timestamp) -> bool {
        let rule = &deferred.rule;
        self.settings.mute.of(&rule.name).is_none_or(|policy| {
            policy.mode != MuteMode::Defer
                || policy
                    .muted_by(&self.settings.intervals, rule.severity, now)
                    .is_none()
        })
    }

    fn next_release(&self, now: Timestamp) -> Option<Timestamp> {
        self.state
            .deferred
            .iter()
            .map(|d| {
                self.settings
                    .mute
                    .of(&d.rule.name)
                    .and_then(|p| p.next_change(&self.settings.intervals, now))
                    // Settings changed (the rule is no longer deferred): release at once.
                    .unwrap_or(now)
            })
            .min()
    }

    /// Counts or holds the suppressed parts of `rule`; returns the part to show, if any.
    fn take_suppressed(&mut self, rule: RuleSummary, verdicts: Vec<Judged>) -> Option<RuleSummary> {
        if verdicts.iter().all(|(_, _, v)| *v == Verdict::Show) {
            return Some(rule);
        }
        let is_whole = verdicts.windows(2).all(|w| w[0].2 == w[1].2);
        if is_whole {
            let verdict = verdicts.into_iter().next().map(|(_, _, v)| v)?;
            self.suppress(rule, verdict);
            return None;
        }
        let mut rest = rule.clone();
        for (group, count, verdict) in verdicts {
            if verdict == Verdict::Show {
                continue;
            }
            subtract(&mut rest, &group, count);
            self.suppress(part(&rule, group, count), verdict);
        }
        (rest.count > 0).then_some(rest)
    }

    fn suppress(&mut self, rule: RuleSummary, verdict: Verdict) {
        match verdict {
            Verdict::Show => {}
            Verdict::Count(why) => {
                self.this_window.add(&rule.name, why.clone(), rule.count);
                self.state.unsent.add(&rule.name, why, rule.count);
            }
            Verdict::Defer(interval) => {
                let why = Why::Deferred {
                    interval: interval.clone(),
                };
                self.this_window.add(&rule.name, why, rule.count);
                match self
                    .state
                    .deferred
                    .iter_mut()
                    .find(|d| d.rule.name == rule.name && d.interval == interval)
                {
                    Some(held) => held.rule.merge(rule),
                    None => self.state.deferred.push(Deferred { interval, rule }),
                }
            }
        }
    }
}

/// One group's share of a rule's window: its count, its group line; the patterns' samples
/// cannot be told apart by group, so its hits are counted as further patterns.
fn part(rule: &RuleSummary, group: Group, count: u64) -> RuleSummary {
    let mut part = rule.clone();
    part.count = count;
    part.patterns.clear();
    part.other_patterns = 1;
    part.other_patterns_count = count;
    if group.is_empty() {
        part.groups.clear();
        part.other_groups_count = if rule.groups.is_empty() { 0 } else { count };
    } else {
        part.groups = vec![crate::summary::GroupCount {
            values: group,
            count,
        }];
        part.other_groups_count = 0;
    }
    part
}

/// What a closed window says once suppression and the incident stage have had their say.
#[derive(Clone, Debug)]
pub struct Said {
    /// The window's summary without what was suppressed.
    pub window: Summary,
    /// What this window suppressed (silenced, inhibited, muted, deferred).
    pub suppressed: Suppressed,
    /// The message that goes out, if any.
    pub sent: Option<Summary>,
}

impl Suppression {
    /// A window closed at `now`: suppression takes out what is silenced, inhibited or muted,
    /// `incidents` decides about the rest, absence lines that are silenced or muted are taken
    /// out of its message, and a message that goes out carries what was suppressed since the
    /// last one. The agent and `logding test` both go through here.
    pub fn close_window(
        &mut self,
        incidents: &mut Incidents,
        mut summary: Summary,
        now: Timestamp,
    ) -> Said {
        let open = open_keys(incidents);
        // Absence rules' hits are heartbeats for the incident stage, not alerts: they pass.
        let (heartbeats, alerts): (Vec<RuleSummary>, Vec<RuleSummary>) =
            std::mem::take(&mut summary.rules)
                .into_iter()
                .partition(|r| incidents.is_absence_rule(&r.name));
        summary.rules = alerts;
        let (mut window, suppressed) = self.before_incidents(summary, &open, now);
        window.rules.extend(heartbeats);
        sort_rules(&mut window.rules);
        let sent = incidents.close_window(window.clone(), now);
        let sent = self.filter_absent(incidents, sent, &open, now);
        Said {
            window,
            suppressed,
            sent: self.after_incidents(sent),
        }
    }

    /// Time passed with no window closing, at `now`: deferred hits whose mute interval ended
    /// are released as a window of their own (returned first), else what is due resolves.
    pub fn tick(
        &mut self,
        incidents: &mut Incidents,
        host: &str,
        now: Timestamp,
    ) -> (Option<Summary>, Option<Summary>) {
        let open = open_keys(incidents);
        let released = self.release(host, now);
        let sent = match &released {
            Some(window) => incidents.close_window(window.clone(), now),
            None => incidents.tick(host, now),
        };
        let sent = self.filter_absent(incidents, sent, &open, now);
        (released, self.after_incidents(sent))
    }

    /// Takes the absence lines not to be shown out of `message` (a new one is counted for the
    /// footer); drops a message left with nothing to say and no counts. The `Back` line of an
    /// absence a message told is shown, silenced or muted (as Alertmanager's notification log
    /// sends a resolution of what it notified): the team heard it is missing, it hears it is
    /// back, and an alert of it ends. The absences a message that goes out shows are marked
    /// told in `incidents`.
    fn filter_absent(
        &mut self,
        incidents: &mut Incidents,
        message: Option<Summary>,
        open: &[(String, Group)],
        now: Timestamp,
    ) -> Option<Summary> {
        let mut message = message?;
        if message.incidents.absent.is_empty() {
            return Some(message);
        }
        let active: Vec<Key<'_>> = open
            .iter()
            .map(|(r, g)| (r.as_str(), g.as_slice()))
            .collect();
        for mut line in std::mem::take(&mut message.incidents.absent) {
            let verdict = self.verdict((&line.rule, &line.group), line.severity, &active, now);
            let why = match verdict {
                _ if line.state == AbsentState::Back && line.told => None,
                Verdict::Show => None,
                Verdict::Count(why) => Some(why),
                Verdict::Defer(interval) => Some(Why::Muted { interval }),
            };
            match why {
                None => {
                    line.told = false;
                    message.incidents.absent.push(line);
                }
                Some(why) if line.state == AbsentState::New => self.note(&line.rule, why, 1),
                Some(_) => {}
            }
        }
        let has_counts = message.incidents.ongoing.iter().any(|l| l.count > 0);
        if !(message.is_worth_sending() || has_counts) {
            return None;
        }
        for line in &message.incidents.absent {
            if line.state != AbsentState::Back {
                incidents.absence_told(line);
            }
        }
        Some(message)
    }
}

/// The open incidents of `incidents`, as keys.
fn open_keys(incidents: &Incidents) -> Vec<(String, Group)> {
    incidents
        .open()
        .map(|i| (i.rule.clone(), i.group.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
