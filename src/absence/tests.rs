use super::*;
use crate::summary::GroupCount;

const MINUTE: i64 = 60;

/// 2026-11-28T02:00:00Z plus `seconds`.
fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_795_831_200 + seconds).expect("a valid test time")
}

fn heartbeat(window_minutes: u64) -> AbsenceRule {
    AbsenceRule {
        name: "nightly-sync".into(),
        severity: Severity::Critical,
        what: "finished".into(),
        window: Duration::from_secs(window_minutes * 60),
        min_count: 1,
        group_by: Vec::new(),
        keys: Keys::default(),
        arm: Arm::OnStart,
        schedule: None,
    }
}

fn entry(name: &str, groups: &[(&str, u64)], count: u64, last: i64) -> RuleSummary {
    RuleSummary {
        name: name.into(),
        severity: Severity::Info,
        count,
        first: at(last),
        last: at(last),
        files: Vec::new(),
        other_files: 0,
        groups: groups
            .iter()
            .map(|(host, n)| GroupCount {
                values: vec![("host".into(), (*host).into())],
                count: *n,
            })
            .collect(),
        other_groups_count: 0,
        patterns: Vec::new(),
        other_patterns: 0,
        other_patterns_count: 0,
    }
}

/// A run: watches, memory and the clock, evaluated every minute like the agent's ticks.
struct Run {
    watches: Watches,
    memory: Memory,
    settle: Timestamp,
    active: fn(&str) -> bool,
    /// `(second, line)` of every line reported.
    said: Vec<(i64, AbsentLine)>,
}

impl Run {
    fn new(watches: Watches) -> Run {
        let mut memory = Memory::default();
        memory.begin(&watches, at(0));
        Run {
            watches,
            memory,
            settle: at(0),
            active: |_| true,
            said: Vec::new(),
        }
    }

    fn evaluate(&mut self, second: i64) -> Option<Timestamp> {
        let moment = Moment {
            now: at(second),
            settle: self.settle,
            every: Duration::from_secs(60),
            active: &self.active,
        };
        let (lines, next) = self.memory.evaluate(&self.watches, &moment);
        self.said.extend(lines.into_iter().map(|l| (second, l)));
        next
    }

    /// Minutes `from..to`: a heartbeat in each minute listed in `beats` (seen at second 30
    /// of it), an evaluation at the end of every minute.
    fn minutes(&mut self, from: i64, to: i64, beats: impl Fn(i64) -> bool) {
        for minute in from..to {
            let end = (minute + 1) * MINUTE;
            if beats(minute) {
                let rule = self.watches.rules[0].clone();
                let seen = entry(&rule.name, &[], 1, minute * MINUTE + 30);
                self.memory
                    .observe(&rule, &seen, at(minute * MINUTE), at(end));
            }
            self.evaluate(end);
        }
    }

    fn states(&self) -> Vec<(i64, AbsentState)> {
        self.said
            .iter()
            .map(|(s, l)| (s / MINUTE, l.state))
            .collect()
    }
}

fn watching(rule: AbsenceRule) -> Watches {
    Watches {
        rules: vec![rule],
        stalls: Vec::new(),
    }
}

#[test]
fn a_stopped_heartbeat_fires_once_within_a_window_and_a_tick_and_resolves_when_it_resumes() {
    let mut run = Run::new(watching(heartbeat(15)));
    // Beats every minute until minute 20, silence until minute 60, beats again.
    run.minutes(0, 90, |m| !(20..60).contains(&m));
    // Last beat at 19:30; the window ends at 34:30; the tick at 35:00 fires.
    assert_eq!(
        run.states(),
        [(35, AbsentState::New), (61, AbsentState::Back)]
    );
    let (_, fired) = &run.said[0];
    assert_eq!(fired.last_seen, Some(at(19 * MINUTE + 30)));
    assert!(run.memory.open.is_empty());
}

#[test]
fn the_next_evaluation_is_when_the_window_after_the_last_hit_ends() {
    let mut run = Run::new(watching(heartbeat(15)));
    run.minutes(0, 1, |_| true);
    assert_eq!(run.evaluate(MINUTE), Some(at(15 * MINUTE + 30)));
    // Due but not yet settled (a restart): evaluated again once it may fire.
    run.settle = at(40 * MINUTE);
    assert_eq!(run.evaluate(20 * MINUTE), Some(at(40 * MINUTE)));
    assert!(run.said.is_empty());
    run.evaluate(40 * MINUTE);
    assert_eq!(run.states(), [(40, AbsentState::New)]);
}

#[test]
fn a_rule_never_seen_fires_one_window_after_it_began_to_be_watched() {
    let mut run = Run::new(watching(heartbeat(15)));
    run.minutes(0, 30, |_| false);
    assert_eq!(run.states(), [(15, AbsentState::New)]);
    assert_eq!(run.said[0].1.last_seen, None);
}

#[test]
fn a_static_key_fires_without_ever_having_been_seen_and_a_learned_one_after_it_was() {
    let mut rule = heartbeat(10);
    rule.group_by = vec!["host".into()];
    rule.keys = Keys {
        fixed: vec![vec![("host".into(), "db-1".into())]],
        learn: true,
        learn_window: Duration::from_secs(3600),
    };
    let mut run = Run::new(watching(rule.clone()));
    // db-2 beats for 5 minutes then stops; db-1 never says anything.
    for minute in 0..30 {
        if minute < 5 {
            let seen = entry(&rule.name, &[("db-2", 1)], 1, minute * MINUTE + 30);
            run.memory
                .observe(&rule, &seen, at(minute * MINUTE), at((minute + 1) * MINUTE));
        }
        run.evaluate((minute + 1) * MINUTE);
    }
    let fired: Vec<(i64, String)> = run
        .said
        .iter()
        .map(|(s, l)| (s / MINUTE, l.group[0].1.clone()))
        .collect();
    assert_eq!(fired, [(10, "db-1".into()), (15, "db-2".into())]);
}

#[test]
fn after_first_seen_never_fires_for_a_key_never_seen() {
    let mut rule = heartbeat(5);
    rule.arm = Arm::AfterFirstSeen;
    let mut run = Run::new(watching(rule));
    run.minutes(0, 20, |_| false);
    assert!(run.said.is_empty());
    run.minutes(20, 40, |m| m == 20);
    assert_eq!(run.states(), [(26, AbsentState::New)]);
}

#[test]
fn min_count_counts_the_trailing_window() {
    let mut rule = heartbeat(10);
    rule.min_count = 3;
    let mut run = Run::new(watching(rule));
    // One beat every 3 minutes keeps 3 in 10 minutes; one every 6 does not.
    run.minutes(0, 30, |m| m % 3 == 0);
    assert!(run.said.is_empty(), "{:?}", run.states());
    run.minutes(30, 60, |m| m % 6 == 0);
    let (second, fired) = &run.said[0];
    // At 35:00 the window (25:00, 35:00] holds the beats of 27:30 and 30:30 only.
    assert_eq!(second / MINUTE, 35);
    assert!(matches!(fired.kind, AbsentKind::Line { seen: 2, .. }));
}

#[test]
fn a_schedule_decides_when_it_may_fire_not_when_it_comes_back() {
    let mut rule = heartbeat(5);
    rule.schedule = Some("night".into());
    let mut run = Run::new(watching(rule));
    run.active = |_| false;
    run.minutes(0, 30, |_| false);
    assert!(run.said.is_empty());
    run.active = |name| name == "night";
    run.minutes(30, 32, |_| false);
    run.active = |_| false;
    run.minutes(32, 40, |m| m == 35);
    assert_eq!(
        run.states(),
        [(31, AbsentState::New), (36, AbsentState::Back)]
    );
}

#[test]
fn memory_survives_a_restart_as_json_and_fires_nothing_twice() {
    let mut run = Run::new(watching(heartbeat(15)));
    run.minutes(0, 40, |m| m < 10);
    assert_eq!(run.states(), [(25, AbsentState::New)]);
    let json = serde_json::to_vec(&run.memory).expect("serializes");
    let mut restarted = Run::new(watching(heartbeat(15)));
    restarted.memory = serde_json::from_slice(&json).expect("reads back");
    restarted.memory.begin(&restarted.watches, at(40 * MINUTE));
    restarted.settle = at(41 * MINUTE);
    restarted.minutes(40, 60, |m| m >= 50);
    assert_eq!(restarted.states(), [(51, AbsentState::Back)]);
}

fn stalled_after(minutes: u64) -> Watches {
    Watches {
        rules: Vec::new(),
        stalls: vec![Stall {
            source: "app".into(),
            after: Duration::from_secs(minutes * 60),
            paths: vec!["/var/log/app/*.log".into()],
        }],
    }
}

#[test]
fn a_file_that_stops_growing_stalls_its_source_until_it_grows_again() {
    let mut run = Run::new(stalled_after(10));
    for minute in 0..40 {
        let now = at((minute + 1) * MINUTE);
        run.memory.matched("app", 1, now);
        if !(5..30).contains(&minute) {
            run.memory.grew("app", "/var/log/app/app.log", now);
        }
        run.evaluate((minute + 1) * MINUTE);
    }
    assert_eq!(
        run.states(),
        [(15, AbsentState::New), (31, AbsentState::Back)]
    );
    let AbsentKind::Stalled { file, .. } = &run.said[0].1.kind else {
        panic!("{:?}", run.said[0]);
    };
    assert_eq!(file.as_deref(), Some("/var/log/app/app.log"));
}

#[test]
fn a_glob_matching_no_file_is_its_own_absence() {
    let mut run = Run::new(stalled_after(10));
    for minute in 0..30 {
        run.memory
            .matched("app", u64::from(minute >= 20), at((minute + 1) * MINUTE));
        run.evaluate((minute + 1) * MINUTE);
    }
    assert_eq!(
        run.states(),
        [(10, AbsentState::New), (21, AbsentState::Back)]
    );
    assert!(matches!(run.said[0].1.kind, AbsentKind::NoFile { .. }));
}

#[test]
fn ongoing_lines_merge_into_the_news_of_the_same_absence() {
    let mut run = Run::new(watching(heartbeat(5)));
    run.minutes(0, 10, |_| false);
    let mut ongoing = run.memory.ongoing();
    let back = {
        let mut line = ongoing[0].clone();
        line.state = AbsentState::Back;
        line
    };
    merge(&mut ongoing, vec![back.clone()]);
    assert_eq!(ongoing, [back]);
}
