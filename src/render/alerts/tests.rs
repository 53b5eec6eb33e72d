use std::time::Duration;

use super::*;
use crate::config::Mention;
use crate::notification::VERSION;

fn options(max_body_bytes: usize) -> RenderOptions {
    RenderOptions {
        keyword: "alert".into(),
        msgtype: MsgType::Markdown,
        mention: Mention::default(),
        max_body_bytes,
        timezone: jiff::tz::TimeZone::UTC,
        window: Duration::from_secs(60),
    }
}

fn alert(status: Status, rule: &str, host: &str, severity: &str) -> Alert {
    let labels: Labels = [
        ("alertname", rule),
        ("host", host),
        ("severity", severity),
        ("cluster", "prod"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Alert {
        status,
        labels,
        annotations: [("summary".to_owned(), format!("{rule} on {host}"))].into(),
        starts_at: "2026-12-01T10:00:00Z".into(),
        ends_at: "0001-01-01T00:00:00Z".into(),
        generator_url: String::new(),
        fingerprint: format!("{rule}-{host}"),
    }
}

fn group(rule: &str, alerts: Vec<Alert>) -> Notification {
    let status = if alerts.iter().any(|a| a.status == Status::Firing) {
        Status::Firing
    } else {
        Status::Resolved
    };
    Notification {
        version: VERSION.into(),
        group_key: format!("{{}}:{{alertname=\"{rule}\"}}"),
        truncated_alerts: 0,
        status,
        receiver: "ops".into(),
        group_labels: [("alertname".to_owned(), rule.to_owned())].into(),
        common_labels: [
            ("alertname".to_owned(), rule.to_owned()),
            ("cluster".to_owned(), "prod".to_owned()),
        ]
        .into(),
        common_annotations: Labels::new(),
        external_url: String::new(),
        alerts,
    }
}

fn text_of(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
    value["markdown"]["text"].as_str().expect("text").to_owned()
}

fn title_of(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
    value["markdown"]["title"]
        .as_str()
        .expect("title")
        .to_owned()
}

#[test]
fn one_incident_on_three_hosts_is_one_message_naming_the_rule_and_every_host() {
    let alerts = ["app-a", "app-b", "app-c"]
        .map(|h| alert(Status::Firing, "db-timeout", h, "critical"))
        .to_vec();
    let bodies = render_alerts(
        &Notifications::of(group("db-timeout", alerts)),
        &options(19_000),
    );
    assert_eq!(bodies.len(), 1);
    insta::assert_snapshot!(text_of(&bodies[0]), @r"
    ### [alert] FIRING · db-timeout · 3 alerts · 3 hosts

    cluster=prod

    **FIRING · CRITICAL** ×3 · app-a, app-b, app-c · since 2026-12-01 10:00:00 (+00:00)
    - app-a · db-timeout on app-a
    - app-b · db-timeout on app-b
    - app-c · db-timeout on app-c

    logding relay 0.1.0 · receiver ops
    ");
    assert_eq!(
        title_of(&bodies[0]),
        "[alert] FIRING db-timeout: 3 alerts, 3 hosts"
    );
}

/// A logding agent's alert starts when the agent reported it; its `first_seen` says when the
/// incident's first hit was, and that is the group's "since" (times compared as times).
#[test]
fn since_is_the_earliest_first_hit() {
    let mut reported = alert(Status::Firing, "db", "app-a", "critical");
    reported.starts_at = "2026-12-01T10:01:00Z".into();
    reported
        .annotations
        .insert("first_seen".into(), "2026-12-01T10:00:05.250Z".into());
    let mut other = alert(Status::Firing, "db", "app-b", "critical");
    other.starts_at = "2026-12-01T10:00:06Z".into();
    let bodies = render_alerts(
        &Notifications::of(group("db", vec![reported, other])),
        &options(19_000),
    );
    let text = text_of(&bodies[0]);
    assert!(
        text.contains("· since 2026-12-01 10:00:05 (+00:00)"),
        "{text}"
    );
}

#[test]
fn firing_comes_first_by_severity_then_resolved() {
    let alerts = vec![
        alert(Status::Resolved, "disk", "app-4", "critical"),
        alert(Status::Firing, "disk", "app-3", "warning"),
        alert(Status::Firing, "disk", "app-2", "critical"),
    ];
    let text =
        text_of(&render_alerts(&Notifications::of(group("disk", alerts)), &options(19_000))[0]);
    let critical = text.find("FIRING · CRITICAL").expect("critical");
    let warning = text.find("FIRING · WARNING").expect("warning");
    let resolved = text.find("**RESOLVED** ×1 · app-4").expect("resolved");
    assert!(critical < warning && warning < resolved, "{text}");
}

#[test]
fn thirty_hosts_are_folded() {
    let alerts = (1..=30)
        .map(|n| alert(Status::Firing, "db", &format!("app-{n:02}"), "error"))
        .collect();
    let text =
        text_of(&render_alerts(&Notifications::of(group("db", alerts)), &options(19_000))[0]);
    assert!(text.contains("×30 · app-01…app-30 (30 hosts)"), "{text}");
}

#[test]
fn a_storm_of_5000_alerts_fits_the_budget_with_exact_counts() {
    let alerts = (0..5_000)
        .map(|n| alert(Status::Firing, "storm", &format!("app-{n}"), "warning"))
        .collect();
    let bodies = render_alerts(&Notifications::of(group("storm", alerts)), &options(19_000));
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].len() <= 19_000, "{}", bodies[0].len());
    let text = text_of(&bodies[0]);
    let shown = text.lines().filter(|l| l.starts_with("- app-")).count();
    assert!(shown > 50, "as many as fit are shown: {shown}");
    assert!(
        text.contains(&format!("5,000 alerts, {shown} shown")),
        "{}",
        text.lines().last().unwrap_or("")
    );
    assert!(text.contains("**FIRING · WARNING** ×5,000 · app-0…app-4999 (5,000 hosts)"));
}

#[test]
fn label_and_annotation_text_is_inert() {
    let mut evil = alert(Status::Firing, "x", "app-a", "critical");
    evil.labels
        .insert("path".into(), "[click](http://evil) @all".into());
    evil.annotations
        .insert("description".into(), "# heading\n@13800000000".into());
    let text =
        text_of(&render_alerts(&Notifications::of(group("x", vec![evil])), &options(19_000))[0]);
    assert!(!text.contains("@all") && !text.contains("](http"), "{text}");
    assert!(
        !text.contains("\n# heading") && !text.contains("@138"),
        "{text}"
    );
}

#[test]
fn groups_that_do_not_fit_together_go_out_as_parts_with_the_keyword() {
    let mut batch = Notifications::default();
    for rule in ["a", "b", "c"] {
        let alerts = (0..200)
            .map(|n| alert(Status::Firing, rule, &format!("app-{n}"), "error"))
            .collect();
        batch.merge(Notifications::of(group(rule, alerts)));
    }
    let bodies = render_alerts(&batch, &options(8_000));
    assert!(bodies.len() >= 3, "{}", bodies.len());
    for (k, body) in bodies.iter().enumerate() {
        assert!(body.len() <= 8_000);
        let label = format!("({}/{})", k + 1, bodies.len());
        assert!(title_of(body).starts_with("[alert]") && title_of(body).contains(&label));
        assert!(
            text_of(body).starts_with("### [alert]"),
            "{}",
            text_of(body)
        );
    }
}

#[test]
fn small_groups_share_one_message() {
    let mut batch = Notifications::of(group("a", vec![alert(Status::Firing, "a", "h1", "error")]));
    batch.merge(Notifications::of(group(
        "b",
        vec![alert(Status::Resolved, "b", "h2", "error")],
    )));
    let bodies = render_alerts(&batch, &options(19_000));
    assert_eq!(bodies.len(), 1);
    assert_eq!(title_of(&bodies[0]), "[alert] 2 alert groups");
    assert!(text_of(&bodies[0]).contains("RESOLVED · b"));
}

#[test]
fn thousands_separators() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(5_000), "5,000");
    assert_eq!(thousands(1_234_567), "1,234,567");
}
