use super::*;
use crate::incident::IncidentReport;
use crate::summary::GroupCount;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_795_831_200 + seconds).expect("a valid test time")
}

/// `db` with 5 hits of peer .5 and 3 of peer .6, in the window ending at 60 s.
fn window() -> Summary {
    let group = |peer: &str, count| GroupCount {
        values: vec![("peer".into(), peer.into())],
        count,
    };
    let rule = RuleSummary {
        name: "db".into(),
        severity: Severity::Error,
        count: 8,
        first: at(1),
        last: at(59),
        files: vec!["/var/log/app.log".into()],
        other_files: 0,
        groups: vec![group("10.0.0.5", 5), group("10.0.0.6", 3)],
        other_groups_count: 0,
        patterns: Vec::new(),
        other_patterns: 1,
        other_patterns_count: 8,
    };
    Summary {
        host: "app-01".into(),
        start: at(0),
        end: at(60),
        rules: vec![rule],
        below_threshold: Vec::new(),
        excluded: 0,
        windows: 1,
        skewed: 0,
        incidents: IncidentReport::default(),
    }
}

#[test]
fn a_silenced_group_is_taken_out_with_exact_counts_and_told_once() {
    let mut suppression = Suppression::default();
    suppression.set_runtime_silences(vec![Silence {
        id: "SIL-1".into(),
        matchers: vec![Matcher::parse("peer=10.0.0.5").expect("valid")],
        starts: at(0),
        expires: at(120),
        author: None,
        comment: None,
    }]);
    let (kept, this_window) = suppression.before_incidents(window(), &[], at(60));
    assert_eq!(kept.rules[0].count, 3);
    assert_eq!(kept.rules[0].groups.len(), 1);
    assert_eq!(this_window.matches(), 5);
    assert_eq!(suppression.after_incidents(None), None, "nothing goes out");
    let sent = suppression.after_incidents(Some(kept)).expect("a message");
    assert_eq!(sent.incidents.suppressed.matches(), 5);
    assert!(suppression.state().unsent.is_empty(), "told once");
    // At its expiry, the same window is shown whole.
    let (kept, _) = suppression.before_incidents(window(), &[], at(120));
    assert_eq!(kept.rules[0].count, 8);
}
