use jiff::Timestamp;

use super::*;
use crate::incident::{IncidentNote, IncidentReport, Reason};
use crate::rules::Severity;
use crate::summary::{GroupCount, RuleSummary};

fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

/// The context of the tests: label `cluster: prod`; `db-timeout` and `heartbeat` read `app`.
pub(super) fn context() -> AlertContext {
    AlertContext {
        labels: BTreeMap::from([("cluster".to_owned(), "prod".to_owned())]),
        sources: BTreeMap::from([
            ("db-timeout".to_owned(), "app".to_owned()),
            ("heartbeat".to_owned(), "app".to_owned()),
        ]),
        render: RenderOptions {
            keyword: "alert".into(),
            msgtype: crate::config::MsgType::Markdown,
            mention: crate::config::Mention::default(),
            max_body_bytes: 19_000,
            timezone: jiff::tz::TimeZone::UTC,
            window: Duration::from_secs(60),
        },
        resend_every: Duration::from_secs(60),
    }
}

fn rule(groups: Vec<GroupCount>, count: u64) -> RuleSummary {
    RuleSummary {
        name: "db-timeout".into(),
        severity: Severity::Error,
        count,
        first: at("2026-12-01T10:00:05Z"),
        last: at("2026-12-01T10:00:50Z"),
        files: vec!["/var/log/app.log".into()],
        other_files: 0,
        groups,
        other_groups_count: 0,
        patterns: Vec::new(),
        other_patterns: 0,
        other_patterns_count: 0,
    }
}

fn summary(rules: Vec<RuleSummary>, incidents: IncidentReport) -> Summary {
    Summary {
        host: "app-a".into(),
        start: at("2026-12-01T10:00:00Z"),
        end: at("2026-12-01T10:01:00Z"),
        rules,
        below_threshold: Vec::new(),
        excluded: 0,
        windows: 1,
        skewed: 0,
        incidents,
    }
}

fn line(group: &[(&str, &str)], total: u64) -> IncidentLine {
    IncidentLine {
        rule: "db-timeout".into(),
        severity: Severity::Error,
        group: group
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        count: 2,
        since: at("2026-12-01T09:50:00Z"),
        last_seen: at("2026-12-01T09:55:00Z"),
        total,
        recent: Vec::new(),
    }
}

#[test]
fn a_new_incident_is_one_firing_alert_with_its_labels_and_annotations() {
    let note = IncidentNote {
        rule: "db-timeout".into(),
        reason: Reason::New,
        since: at("2026-12-01T10:00:05Z"),
        total: 12,
        recent: vec![12],
    };
    let report = IncidentReport {
        notes: vec![note],
        ..IncidentReport::default()
    };
    let alerts = alerts_of(&summary(vec![rule(Vec::new(), 12)], report), &context());
    assert_eq!(alerts.len(), 1);
    let IncidentAlert {
        key,
        alert,
        firing,
        absence,
    } = &alerts[0];
    assert!(firing);
    assert!(!absence);
    assert_eq!(key, &("db-timeout".to_owned(), Vec::new()));
    let labels: Vec<(&str, &str)> = alert
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("alertname", "db-timeout"),
            ("cluster", "prod"),
            ("host", "app-a"),
            ("severity", "error"),
            ("source", "app"),
        ]
    );
    assert_eq!(alert.annotations["count"], "12");
    assert_eq!(alert.annotations["summary"], "db-timeout: 12 hits on app-a");
    assert_eq!(alert.annotations["first_seen"], "2026-12-01T10:00:05Z");
    assert_eq!(alert.annotations["last_seen"], "2026-12-01T10:00:50Z");
    assert_eq!(
        alert.annotations["description"],
        "ERROR · db-timeout ×12 · new"
    );
    assert_eq!(alert.starts_at, at("2026-12-01T10:00:05Z"));
    // Four resends ahead of the summary's end.
    assert_eq!(alert.ends_at, at("2026-12-01T10:05:00Z"));
}

#[test]
fn each_group_is_an_alert_and_the_rest_is_one_more() {
    let groups = vec![
        GroupCount {
            values: vec![("db.host".into(), "db-1".into())],
            count: 5,
        },
        GroupCount {
            values: vec![("db.host".into(), "db-2".into())],
            count: 3,
        },
    ];
    let alerts = alerts_of(
        &summary(vec![rule(groups, 10)], IncidentReport::default()),
        &context(),
    );
    let groups: Vec<(Option<&str>, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a.alert.labels.get("db_host").map(String::as_str),
                a.alert.annotations["count"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [(Some("db-1"), "5"), (Some("db-2"), "3"), (None, "2")]
    );
    assert_eq!(
        alerts[0].alert.annotations["summary"],
        "db-timeout (db-1): 5 hits on app-a"
    );
}

#[test]
fn ongoing_lines_fire_and_resolved_lines_end_now() {
    let report = IncidentReport {
        ongoing: vec![line(&[("db", "db-1")], 40)],
        resolved: vec![line(&[("db", "db-2")], 7)],
        ..IncidentReport::default()
    };
    let summary = summary(Vec::new(), report);
    let alerts = alerts_of(&summary, &context());
    assert_eq!(alerts.len(), 2);
    assert!(alerts[0].firing);
    assert!(alerts[0].alert.ends_at > summary.end);
    assert_eq!(alerts[0].alert.annotations["count"], "40");
    assert!(!alerts[1].firing);
    assert_eq!(alerts[1].alert.ends_at, summary.end);
    assert_eq!(alerts[1].alert.starts_at, at("2026-12-01T09:50:00Z"));
    assert!(
        alerts[1].alert.annotations["description"].starts_with("resolved: 7 hits since"),
        "{}",
        alerts[1].alert.annotations["description"]
    );
}

#[test]
fn capture_names_become_valid_label_names_and_values_are_bounded() {
    assert_eq!(label_name("db.host"), "db_host");
    assert_eq!(label_name("1st"), "_1st");
    assert_eq!(label_name("host"), "group_host");
    assert_eq!(label_name("ÄÖ"), "__");
    assert!(crate::config::is_label_name(&label_name("a-b.c d")));
    let long = "é".repeat(500);
    let value = bounded(&long, MAX_LABEL_VALUE_BYTES);
    assert!(value.len() <= MAX_LABEL_VALUE_BYTES && value.ends_with('…'));
}

#[test]
fn a_batch_keeps_the_newest_state_of_each_alert() {
    let report = IncidentReport {
        ongoing: vec![line(&[("db", "db-1")], 40)],
        ..IncidentReport::default()
    };
    let firing = alerts_of(&summary(Vec::new(), report.clone()), &context());
    let resolved_report = IncidentReport {
        resolved: report.ongoing,
        ..IncidentReport::default()
    };
    let resolved = alerts_of(&summary(Vec::new(), resolved_report), &context());
    let mut batch = AlertBatch {
        alerts: vec![firing[0].alert.clone()],
    };
    batch.merge(AlertBatch {
        alerts: vec![resolved[0].alert.clone()],
    });
    assert_eq!(batch.alerts, vec![resolved[0].alert.clone()]);
    let body = crate::outbox::Payload::render(&batch, &context().render);
    let json: serde_json::Value = serde_json::from_str(&body[0]).expect("json");
    assert_eq!(json[0]["labels"]["alertname"], "db-timeout");
    assert_eq!(json[0]["endsAt"], "2026-12-01T10:01:00Z");
    assert_eq!(json[0]["startsAt"], "2026-12-01T09:50:00Z");
}
