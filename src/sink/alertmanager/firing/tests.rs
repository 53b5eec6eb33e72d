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

/// `(alertname, severity, still firing after now?)` of a batch.
fn said(batch: &[PostableAlert], now: Timestamp) -> Vec<(String, String, bool)> {
    batch
        .iter()
        .map(|a| {
            (
                a.labels["alertname"].clone(),
                a.labels["severity"].clone(),
                a.ends_at > now,
            )
        })
        .collect()
}

fn s(text: &str) -> String {
    text.to_owned()
}

#[test]
fn an_absence_fires_while_shown_and_ends_when_back_or_no_longer_shown() {
    let mut set = FiringSet::default();
    let (end, now) = (at("2026-12-01T10:10:00Z"), at("2026-12-01T10:10:01Z"));
    let batch = set.update(
        vec![
            alert("heartbeat", "critical", true, true),
            alert("nightly", "error", true, true),
        ],
        end,
        now,
    );
    assert_eq!(
        said(&batch, now),
        [
            (s("heartbeat"), s("critical"), true),
            (s("nightly"), s("error"), true)
        ]
    );
    assert_eq!(set.len(), 2);
    // Kept firing by resends, even a week later (absences are not repeated by the stage).
    let week = at("2026-12-08T10:10:00Z");
    assert!(set.bound(week).is_empty());
    assert_eq!(set.refreshed(week).len(), 2);
    // `heartbeat` comes back; `nightly` is no longer shown (it came back while silenced).
    let later = at("2026-12-08T10:20:00Z");
    let batch = set.update(
        vec![alert("heartbeat", "critical", false, true)],
        later,
        later,
    );
    assert_eq!(
        said(&batch, later),
        [
            (s("heartbeat"), s("critical"), false),
            (s("nightly"), s("error"), false)
        ]
    );
    assert_eq!(batch[1].ends_at, later, "ended at the message's end");
    assert_eq!(set.len(), 0);
}

#[test]
fn incidents_not_in_a_message_keep_firing_until_stale() {
    let mut set = FiringSet::default();
    let now = at("2026-12-01T10:10:00Z");
    set.update(vec![alert("db-timeout", "error", true, false)], now, now);
    let batch = set.update(vec![alert("heartbeat", "critical", true, true)], now, now);
    assert_eq!(said(&batch, now), [(s("heartbeat"), s("critical"), true)]);
    assert_eq!(set.len(), 2);
    // A day without a message: the incident went stale, the absence did not.
    let ended = set.bound(at("2026-12-02T10:10:00Z"));
    assert_eq!(
        said(&ended, at("2026-12-02T10:10:00Z")),
        [(s("db-timeout"), s("error"), false)]
    );
    assert_eq!(set.len(), 1);
}

#[test]
fn a_severity_rise_ends_the_old_alert_and_the_set_survives_a_restart() {
    let mut set = FiringSet::default();
    let now = at("2026-12-01T10:10:00Z");
    set.update(vec![alert("heartbeat", "warn", true, true)], now, now);
    let batch = set.update(vec![alert("heartbeat", "critical", true, true)], now, now);
    assert_eq!(
        said(&batch, now),
        [
            (s("heartbeat"), s("warn"), false),
            (s("heartbeat"), s("critical"), true)
        ]
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
