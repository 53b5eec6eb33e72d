use proptest::prelude::*;

use super::*;
use crate::rules::Severity;
use crate::summary::{GroupCount, PatternCount};

const MINUTE: i64 = 60;

/// 2026-11-28T02:00:00Z plus `seconds`.
fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_795_831_200 + seconds).expect("a valid test time")
}

fn rule(name: &str, severity: Severity, count: u64, start: i64) -> RuleSummary {
    RuleSummary {
        name: name.into(),
        severity,
        count,
        first: at(start + 1),
        last: at(start + 59),
        files: vec!["/var/log/app.log".into()],
        other_files: 0,
        groups: Vec::new(),
        other_groups_count: 0,
        patterns: vec![PatternCount {
            pattern: format!("{name} <n>"),
            count,
            sample: format!("{name} 1"),
            ..PatternCount::default()
        }],
        other_patterns: 0,
        other_patterns_count: 0,
    }
}

fn grouped(name: &str, groups: &[(&str, u64)], start: i64) -> RuleSummary {
    let count = groups.iter().map(|(_, n)| n).sum();
    let mut rule = rule(name, Severity::Error, count, start);
    rule.groups = groups
        .iter()
        .map(|(peer, count)| GroupCount {
            values: vec![("peer".into(), (*peer).into())],
            count: *count,
        })
        .collect();
    rule
}

/// The summary of the window `[start, start + 1m)`.
fn window(start: i64, rules: Vec<RuleSummary>) -> Summary {
    Summary {
        host: "app-01".into(),
        start: at(start),
        end: at(start + MINUTE),
        rules,
        below_threshold: Vec::new(),
        excluded: 0,
        windows: 1,
        skewed: 0,
        incidents: IncidentReport::default(),
    }
}

fn stage(policies: Policies) -> Incidents {
    Incidents::new(policies, Duration::from_secs(60), State::default())
}

/// Hits a message carries (full entries plus ongoing and resolved lines).
fn hits(message: &Summary) -> u64 {
    message.matches() + message.incidents.line_matches()
}

/// What a message says, in one short line: `full: a(new) | ongoing: b×3 | resolved: c×0`.
fn describe(message: &Summary) -> String {
    let full: Vec<String> = message
        .incidents
        .notes
        .iter()
        .map(|n| format!("{}({:?})", n.rule, n.reason).to_lowercase())
        .collect();
    let line = |l: &IncidentLine| {
        let group: Vec<&str> = l.group.iter().map(|(_, v)| v.as_str()).collect();
        format!("{}{}×{}", l.rule, group.join(","), l.count)
    };
    let ongoing: Vec<String> = message.incidents.ongoing.iter().map(line).collect();
    let resolved: Vec<String> = message.incidents.resolved.iter().map(line).collect();
    format!(
        "full: {} | ongoing: {} | resolved: {}",
        full.join(" "),
        ongoing.join(" "),
        resolved.join(" ")
    )
}

/// Runs windows (minute, rules) through the stage, ticking at every resolve deadline on the
/// way and after the last window, as the agent does. Returns (minute of the message, message).
fn run(incidents: &mut Incidents, windows: Vec<(i64, Vec<RuleSummary>)>) -> Vec<(i64, Summary)> {
    let mut out = Vec::new();
    let tick_until = |incidents: &mut Incidents, until: Timestamp, out: &mut Vec<_>| {
        while let Some(deadline) = incidents.deadline().filter(|d| *d <= until) {
            if let Some(message) = incidents.tick("app-01", deadline) {
                out.push((deadline.duration_since(at(0)).as_secs() / MINUTE, message));
            }
        }
    };
    for (minute, rules) in windows {
        let end = at((minute + 1) * MINUTE);
        tick_until(incidents, end, &mut out);
        if let Some(message) = incidents.close_window(window(minute * MINUTE, rules), end) {
            out.push((minute + 1, message));
        }
    }
    tick_until(incidents, Timestamp::MAX, &mut out);
    out
}

#[test]
fn an_hour_of_steady_errors_is_one_new_one_repeat_one_resolved() {
    let mut incidents = stage(Policies::default());
    let windows = (0..60)
        .map(|m| (m, vec![rule("db-timeout", Severity::Error, 10, m * MINUTE)]))
        .collect();
    let messages = run(&mut incidents, windows);
    let said: Vec<(i64, String, u64)> = messages
        .iter()
        .map(|(minute, m)| (*minute, describe(m), hits(m)))
        .collect();
    assert_eq!(
        said,
        [
            (
                1,
                "full: db-timeout(new) | ongoing:  | resolved: ".into(),
                10
            ),
            (
                31,
                "full: db-timeout(repeat) | ongoing:  | resolved: ".into(),
                300
            ),
            (
                65,
                "full:  | ongoing:  | resolved: db-timeout×290".into(),
                290
            ),
        ]
    );
    let resolved = &messages[2].1.incidents.resolved[0];
    assert_eq!((resolved.since, resolved.total), (at(1), 600));
    assert_eq!(messages.iter().map(|(_, m)| hits(m)).sum::<u64>(), 600);
}

#[test]
fn a_second_incident_is_reported_at_once_with_the_first_as_one_ongoing_line() {
    let mut incidents = stage(Policies::default());
    let windows = (0..25)
        .map(|m| {
            let mut rules = vec![rule("db-timeout", Severity::Error, 10, m * MINUTE)];
            if m >= 20 {
                rules.push(rule("oom", Severity::Critical, 1, m * MINUTE));
            }
            (m, rules)
        })
        .collect();
    let messages = run(&mut incidents, windows);
    assert_eq!(messages[1].0, 21);
    assert_eq!(
        describe(&messages[1].1),
        "full: oom(new) | ongoing: db-timeout×200 | resolved: "
    );
    let ongoing = &messages[1].1.incidents.ongoing[0];
    assert_eq!((ongoing.since, ongoing.total), (at(1), 210));
    assert_eq!(messages[1].1.rules.len(), 1, "only the new rule in full");
}

#[test]
fn a_restart_resumes_the_incident_without_a_second_new() {
    let mut incidents = stage(Policies::default());
    let first: Vec<_> = (0..10)
        .map(|m| (m, vec![rule("db-timeout", Severity::Error, 10, m * MINUTE)]))
        .collect();
    let before = run_windows(&mut incidents, first);
    assert_eq!(before.len(), 1);
    let saved = incidents.state().to_json();
    let state = State::from_json(&saved).unwrap();
    let mut restarted = Incidents::new(Policies::default(), Duration::from_secs(60), state);
    let after: Vec<_> = (10..20)
        .map(|m| (m, vec![rule("db-timeout", Severity::Error, 10, m * MINUTE)]))
        .collect();
    let messages = run(&mut restarted, after);
    assert_eq!(messages.len(), 1, "only the resolution");
    let resolved = &messages[0].1.incidents.resolved[0];
    assert_eq!(
        (resolved.since, resolved.total, resolved.count),
        (at(1), 200, 190)
    );
}

/// Closes windows without ticking past the last one (the agent stopping).
fn run_windows(incidents: &mut Incidents, windows: Vec<(i64, Vec<RuleSummary>)>) -> Vec<Summary> {
    windows
        .into_iter()
        .filter_map(|(m, rules)| {
            incidents.close_window(window(m * MINUTE, rules), at((m + 1) * MINUTE))
        })
        .collect()
}

#[test]
fn a_state_file_of_another_version_is_refused() {
    let err = State::from_json(br#"{"version": 99, "incidents": []}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "incident state has version 99, this logding reads versions 1 to 2"
    );
    // Version 1 (before absence) is read, with no absence memory.
    let old = State::from_json(
        br#"{"version": 1, "incidents": [], "pending": {}, "resolved_unsent": [], "dropped": 2}"#,
    )
    .expect("version 1 reads");
    assert_eq!(
        (old.dropped, old.absence),
        (2, crate::absence::Memory::default())
    );
}

#[test]
fn escalation_and_severity_rise_are_reported_at_once() {
    let mut incidents = stage(Policies::default());
    let messages = run(
        &mut incidents,
        vec![
            (0, vec![rule("npe", Severity::Warning, 5, 0)]),
            (1, vec![rule("npe", Severity::Warning, 50, MINUTE)]),
            (2, vec![rule("npe", Severity::Warning, 51, 2 * MINUTE)]),
            (3, vec![rule("npe", Severity::Warning, 600, 3 * MINUTE)]),
            (4, vec![rule("npe", Severity::Critical, 1, 4 * MINUTE)]),
        ],
    );
    let said: Vec<(i64, String)> = messages.iter().map(|(m, s)| (*m, describe(s))).collect();
    assert_eq!(
        said,
        [
            (1, "full: npe(new) | ongoing:  | resolved: ".into()),
            (4, "full: npe(escalated) | ongoing:  | resolved: ".into()),
            (5, "full: npe(escalated) | ongoing:  | resolved: ".into()),
            (10, "full:  | ongoing:  | resolved: npe×0".into()),
        ]
    );
    assert_eq!(messages[1].1.rules[0].count, 50 + 51 + 600);
}

#[test]
fn keep_firing_for_holds_an_incident_open_across_a_short_gap() {
    let mut policies = Policies::default();
    let flappy = Policy {
        keep_firing_for: Duration::from_secs(10 * 60),
        ..Policy::default()
    };
    policies.rules.insert("flappy".into(), flappy);
    let mut incidents = stage(policies);
    let windows = [0, 8, 16]
        .into_iter()
        .flat_map(|m| {
            [(
                m,
                vec![
                    rule("flappy", Severity::Error, 3, m * MINUTE),
                    rule("plain", Severity::Error, 3, m * MINUTE),
                ],
            )]
        })
        .collect();
    let messages = run(&mut incidents, windows);
    let said: Vec<(i64, String)> = messages.iter().map(|(m, s)| (*m, describe(s))).collect();
    assert_eq!(
        said,
        [
            (
                1,
                "full: flappy(new) plain(new) | ongoing:  | resolved: ".into()
            ),
            (6, "full:  | ongoing: flappy×0 | resolved: plain×0".into()),
            (
                9,
                "full: plain(new) | ongoing: flappy×3 | resolved: ".into()
            ),
            (14, "full:  | ongoing: flappy×0 | resolved: plain×0".into()),
            (
                17,
                "full: plain(new) | ongoing: flappy×3 | resolved: ".into()
            ),
            (22, "full:  | ongoing: flappy×0 | resolved: plain×0".into()),
            (32, "full:  | ongoing:  | resolved: flappy×0".into()),
        ]
    );
}

#[test]
fn without_send_resolved_the_resolved_line_waits_for_the_next_message() {
    let mut policies = Policies::default();
    policies.defaults.send_resolved = false;
    let mut incidents = stage(policies);
    let messages = run(
        &mut incidents,
        vec![
            (0, vec![rule("a", Severity::Error, 2, 0)]),
            (20, vec![rule("b", Severity::Error, 1, 20 * MINUTE)]),
        ],
    );
    let said: Vec<(i64, String)> = messages.iter().map(|(m, s)| (*m, describe(s))).collect();
    assert_eq!(
        said,
        [
            (1, "full: a(new) | ongoing:  | resolved: ".into()),
            (21, "full: b(new) | ongoing:  | resolved: a×0".into()),
        ]
    );
}

#[test]
fn groups_are_incidents_of_their_own() {
    let mut incidents = stage(Policies::default());
    let messages = run(
        &mut incidents,
        vec![
            (0, vec![grouped("db", &[("10.0.0.5", 7)], 0)]),
            (1, vec![grouped("db", &[("10.0.0.5", 7)], MINUTE)]),
            (
                2,
                vec![grouped(
                    "db",
                    &[("10.0.0.5", 7), ("10.0.0.6", 2)],
                    2 * MINUTE,
                )],
            ),
        ],
    );
    let said: Vec<String> = messages.iter().map(|(_, s)| describe(s)).collect();
    assert_eq!(
        said,
        [
            "full: db(new) | ongoing:  | resolved: ",
            "full: db(new) | ongoing:  | resolved: ",
            "full:  | ongoing:  | resolved: db10.0.0.5×0 db10.0.0.6×0",
        ]
    );
    assert_eq!(
        messages[1].1.rules[0].count, 16,
        "the held window and this one"
    );
    assert_eq!(incidents.state().incidents.len(), 2);
}

#[test]
fn incidents_are_bounded_oldest_resolved_first() {
    let mut incidents = stage(Policies {
        max_incidents: 2,
        ..Policies::default()
    });
    run(
        &mut incidents,
        vec![(0, vec![rule("a", Severity::Error, 1, 0)])],
    );
    run(
        &mut incidents,
        vec![(30, vec![rule("b", Severity::Error, 1, 30 * MINUTE)])],
    );
    run_windows(
        &mut incidents,
        vec![(60, vec![rule("c", Severity::Error, 1, 60 * MINUTE)])],
    );
    let names: Vec<&str> = incidents
        .state()
        .incidents
        .iter()
        .map(|i| i.rule.as_str())
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(incidents.state().dropped, 1);
}

#[test]
fn the_sparkline_history_covers_quiet_windows() {
    let mut incidents = stage(Policies::default());
    let messages = run(
        &mut incidents,
        vec![
            (0, vec![rule("a", Severity::Error, 1, 0)]),
            (1, vec![rule("a", Severity::Error, 4, MINUTE)]),
            (3, vec![rule("a", Severity::Error, 8, 3 * MINUTE)]),
        ],
    );
    let resolved = &messages.last().unwrap().1.incidents.resolved[0];
    assert_eq!(resolved.recent, [1, 4, 0, 8, 0, 0, 0, 0, 0]);
}

proptest! {
    /// Whatever the windows, every hit is in exactly one message, a rule is never both in
    /// full and on a line, every incident is reported new once per start, and no message is
    /// empty.
    #[test]
    fn every_hit_is_counted_in_exactly_one_message(
        plan in proptest::collection::vec(
            (0i64..12, proptest::collection::vec((0usize..3, 0usize..3, 1u64..50), 0..4)),
            1..40,
        ),
        send_resolved: bool,
        repeat_minutes in 1u64..40,
    ) {
        let mut policies = Policies::default();
        policies.defaults.send_resolved = send_resolved;
        policies.defaults.repeat_interval = Duration::from_secs(repeat_minutes * 60);
        let mut incidents = stage(policies);
        let mut minute = 0;
        let mut windows = Vec::new();
        let mut written = 0;
        for (gap, hits) in plan {
            minute += gap + 1;
            let mut rules: Vec<RuleSummary> = Vec::new();
            for (r, g, n) in hits {
                let name = ["a", "b", "c"][r];
                let peer = ["x", "y", "z"][g];
                written += n;
                match rules.iter_mut().find(|x| x.name == name) {
                    Some(existing) => {
                        existing.count += n;
                        existing.patterns[0].count += n;
                        match existing.groups.iter_mut().find(|x| x.values[0].1 == peer) {
                            Some(group) => group.count += n,
                            None => existing.groups.push(GroupCount { values: vec![("peer".into(), peer.into())], count: n }),
                        }
                    }
                    None => rules.push(grouped(name, &[(peer, n)], minute * MINUTE)),
                }
            }
            if !rules.is_empty() {
                windows.push((minute, rules));
            }
        }
        let messages = run(&mut incidents, windows);
        let said: u64 = messages.iter().map(|(_, m)| hits(m)).sum();
        // Send_resolved false: the last resolved lines may wait for a message that never comes.
        let waiting: u64 = incidents.state().resolved_unsent.iter().map(|l| l.count).sum();
        prop_assert_eq!(said + waiting, written);
        for (_, message) in &messages {
            prop_assert!(message.is_worth_sending() || !message.incidents.ongoing.is_empty());
            for line in &message.incidents.ongoing {
                prop_assert!(message.rules.iter().all(|r| r.name != line.rule));
            }
            prop_assert_eq!(message.rules.len(), message.incidents.notes.len());
        }
        prop_assert_eq!(incidents.open().count(), 0);
    }
}
