use std::collections::BTreeMap;

use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

/// An alert of `rule` (an absence when `absence`), firing or not.
fn alert(rule: &str, severity: &str, firing: bool, absence: bool) -> IncidentAlert {
    let labels = BTreeMap::from([
        ("alertname".to_owned(), rule.to_owned()),
        ("severity".to_owned(), severity.to_owned()),
    ]);
    IncidentAlert {
        key: (rule.to_owned(), Vec::new()),
        alert: PostableAlert {
            labels,
            annotations: BTreeMap::new(),
            starts_at: at("2026-12-01T10:00:00Z"),
            ends_at: if firing {
                at("2026-12-01T11:00:00Z")
            } else {
                at("2026-12-01T10:30:00Z")
            },
        },
        firing,
        absence,
    }
}

/// A batch in words: `alertname severity firing|ended` (firing: `endsAt` after `now`).
fn said(batch: &[PostableAlert], now: Timestamp) -> Vec<String> {
    batch
        .iter()
        .map(|a| {
            let state = if a.ends_at > now { "firing" } else { "ended" };
            format!("{} {} {state}", a.labels["alertname"], a.labels["severity"])
        })
        .collect()
}

/// Applies one message (ending at `now`) to `set`; returns what is posted, in words.
fn post(set: &mut FiringSet, alerts: Vec<IncidentAlert>, now: Timestamp) -> Vec<String> {
    said(&set.update(alerts, now, now), now)
}

#[test]
fn an_absence_fires_while_shown_and_ends_when_back_or_no_longer_shown() {
    let mut set = FiringSet::default();
    let now = at("2026-12-01T10:10:00Z");
    let shown = vec![
        alert("heartbeat", "critical", true, true),
        alert("nightly", "error", true, true),
    ];
    let posted = post(&mut set, shown, now);
    assert_eq!(
        posted,
        ["heartbeat critical firing", "nightly error firing"]
    );
    // Kept firing by resends, even a week later (absences are not repeated by the stage).
    let week = at("2026-12-08T10:10:00Z");
    assert!(set.bound(week).is_empty());
    assert_eq!(set.refreshed(week).len(), 2);
    // `heartbeat` comes back; `nightly` is no longer shown (it came back while silenced):
    // ended at the message's end.
    let later = at("2026-12-08T10:20:00Z");
    let batch = set.update(
        vec![alert("heartbeat", "critical", false, true)],
        later,
        later,
    );
    assert_eq!(
        said(&batch, later),
        ["heartbeat critical ended", "nightly error ended"]
    );
    assert_eq!(batch[1].ends_at, later);
    assert_eq!(set.len(), 0);
}

#[test]
fn incidents_not_in_a_message_keep_firing_until_stale() {
    let mut set = FiringSet::default();
    let now = at("2026-12-01T10:10:00Z");
    post(
        &mut set,
        vec![alert("db-timeout", "error", true, false)],
        now,
    );
    let absence = vec![alert("heartbeat", "critical", true, true)];
    assert_eq!(post(&mut set, absence, now), ["heartbeat critical firing"]);
    assert_eq!(set.len(), 2);
    // A day without a message: the incident went stale, the absence did not.
    let day = at("2026-12-02T10:10:00Z");
    assert_eq!(said(&set.bound(day), day), ["db-timeout error ended"]);
    assert_eq!(set.len(), 1);
}

#[test]
fn a_severity_rise_ends_the_old_alert_and_the_set_survives_a_restart() {
    let mut set = FiringSet::default();
    let now = at("2026-12-01T10:10:00Z");
    post(&mut set, vec![alert("heartbeat", "warn", true, true)], now);
    let rise = vec![alert("heartbeat", "critical", true, true)];
    assert_eq!(
        post(&mut set, rise, now),
        ["heartbeat warn ended", "heartbeat critical firing"]
    );
    let reloaded = FiringSet::from_bytes(&set.to_bytes()).expect("its own bytes");
    assert_eq!(reloaded, set);
    assert!(FiringSet::from_bytes(b"{\"version\": 99, \"alerts\": []}").is_none());
}

#[test]
fn an_alert_starts_when_first_reported_and_keeps_that_start() {
    // The incident's first hit (10:00) is older than Alertmanager's `group_wait`: posted as
    // the alert's start, Alertmanager would notify its group at once, before other hosts.
    let mut set = FiringSet::default();
    let first = at("2026-12-01T10:01:00Z");
    let batch = set.update(
        vec![alert("db-timeout", "error", true, false)],
        first,
        first,
    );
    assert_eq!(batch[0].starts_at, first);
    let later = at("2026-12-01T10:05:00Z");
    let batch = set.update(
        vec![alert("db-timeout", "error", true, false)],
        later,
        later,
    );
    assert_eq!(batch[0].starts_at, first, "a known alert keeps its start");
    // One resolved before it was ever posted keeps its first hit (startsAt <= endsAt).
    let batch = set.update(vec![alert("other", "error", false, false)], later, later);
    assert_eq!(batch[0].starts_at, at("2026-12-01T10:00:00Z"));
}
