//! Absences as alerts: each absent line of a message (`summary.incidents.absent`: a key of a
//! `kind: absence` rule, or a source with `source_stalled`) is one alert. `New` and `Ongoing`
//! lines fire; a `Back` line ends the alert at the time the hits (or the growth) came back.
//!
//! Labels: `alertname` is the absence rule, or [`STALLED_ALERTNAME`] for a source (whose name
//! is then the `source` label); `severity`, `host`, the key's `group_by` values and the
//! configured labels as for any alert. Annotations say what was expected and not seen, and
//! since when: `summary`, `description`, `absent_since` (when it fired) and `last_seen` (the
//! last hit or growth, when there was one).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    AlertContext, IncidentAlert, IncidentKey, MAX_DESCRIPTION_BYTES, MAX_LABEL_VALUE_BYTES,
    PostableAlert, bounded, labels,
};
use crate::absence::{AbsentKind, AbsentLine, AbsentState};
use crate::config::format_duration;
use crate::summary::Summary;

/// The `alertname` of a source that stopped growing (or has no file): the config key's name.
pub const STALLED_ALERTNAME: &str = "source_stalled";

/// The alerts of a message's absent lines.
pub(super) fn alerts_of(summary: &Summary, context: &AlertContext) -> Vec<IncidentAlert> {
    summary
        .incidents
        .absent
        .iter()
        .map(|line| alert(summary, context, line))
        .collect()
}

/// The firing set's key of an absence: the rule and its key, or [`STALLED_ALERTNAME`] and the
/// source (a rule may have a source's name).
pub(super) fn key(line: &AbsentLine) -> IncidentKey {
    if line.is_source() {
        let source = vec![("source".to_owned(), line.rule.clone())];
        (STALLED_ALERTNAME.to_owned(), source)
    } else {
        (line.rule.clone(), line.group.clone())
    }
}

fn alert(summary: &Summary, context: &AlertContext, line: &AbsentLine) -> IncidentAlert {
    let firing = line.state != AbsentState::Back;
    let identity = if line.is_source() {
        [
            STALLED_ALERTNAME,
            line.severity.as_str(),
            line.rule.as_str(),
        ]
    } else {
        let source = context.sources.get(&line.rule).map_or("", String::as_str);
        [line.rule.as_str(), line.severity.as_str(), source]
    };
    let group: &[(String, String)] = if line.is_source() { &[] } else { &line.group };
    let mut annotations = BTreeMap::from([
        (
            "summary".to_owned(),
            bounded(&summary_line(line, &summary.host), MAX_LABEL_VALUE_BYTES),
        ),
        (
            "description".to_owned(),
            bounded(&description(line), MAX_DESCRIPTION_BYTES),
        ),
        ("absent_since".to_owned(), line.since.to_string()),
    ]);
    if let Some(at) = line.last_seen {
        annotations.insert("last_seen".to_owned(), at.to_string());
    }
    let ends_at = if firing {
        context.ends_at(summary.end)
    } else {
        line.back.unwrap_or(summary.end)
    };
    IncidentAlert {
        key: key(line),
        alert: PostableAlert {
            labels: labels(summary, context, identity, group),
            annotations,
            starts_at: line.since,
            ends_at,
        },
        firing,
        absence: true,
    }
}

/// `heartbeat (db-2): no `ok` for 5m on app-a`, `source app: logging again on app-a`.
fn summary_line(line: &AbsentLine, host: &str) -> String {
    let subject = if line.is_source() {
        format!("source {}", line.rule)
    } else if line.group.is_empty() {
        line.rule.clone()
    } else {
        let values: Vec<&str> = line.group.iter().map(|(_, v)| v.as_str()).collect();
        format!("{} ({})", line.rule, values.join(", "))
    };
    let what = match (&line.kind, line.state) {
        (AbsentKind::Line { what, .. }, AbsentState::Back) => format!("`{what}` is back"),
        (_, AbsentState::Back) => "logging again".to_owned(),
        (
            AbsentKind::Line {
                what,
                window_secs,
                min_count,
                seen,
            },
            _,
        ) => {
            let window = secs(*window_secs);
            if *min_count <= 1 || *seen == 0 {
                format!("no `{what}` for {window}")
            } else {
                format!("only {seen} of {min_count} `{what}` in {window}")
            }
        }
        (AbsentKind::Stalled { file, after_secs }, _) => {
            let file = file
                .as_deref()
                .map_or("no file".to_owned(), |f| format!("`{f}`"));
            format!("{file} has not grown for {}", secs(*after_secs))
        }
        (AbsentKind::NoFile { paths, after_secs }, _) => {
            format!(
                "no file matches `{}` for {}",
                paths.join("`, `"),
                secs(*after_secs)
            )
        }
    };
    format!("{subject}: {what} on {host}")
}

/// What was expected and not seen, since when, and (once back) for how long.
fn description(line: &AbsentLine) -> String {
    let last = |verb: &str| match (line.last_seen, line.watched_since) {
        (Some(at), _) => format!("{verb} {at}"),
        (None, Some(since)) => format!("never seen (watched since {since})"),
        (None, None) => "never seen".to_owned(),
    };
    let expected = match &line.kind {
        AbsentKind::Line {
            what,
            window_secs,
            min_count,
            seen,
        } => format!(
            "expected at least {min_count} line(s) matching `{what}` every {}, saw {seen}; {}",
            secs(*window_secs),
            last("last seen")
        ),
        AbsentKind::Stalled { file, after_secs } => format!(
            "expected source {}'s files{} to grow at least every {}; {}",
            line.rule,
            file.as_deref()
                .map_or(String::new(), |f| format!(" (last: `{f}`)")),
            secs(*after_secs),
            last("last grew")
        ),
        AbsentKind::NoFile { paths, after_secs } => format!(
            "expected a file of source {} matching `{}`; none for {}; {}",
            line.rule,
            paths.join("`, `"),
            secs(*after_secs),
            last("last grew")
        ),
    };
    match (line.state, line.back) {
        (AbsentState::Back, Some(back)) => {
            let absent = back.duration_since(line.since).as_secs().max(0);
            format!(
                "back at {back} after {} absent (since {}); {expected}",
                secs(absent.unsigned_abs()),
                line.since
            )
        }
        _ => format!("absent since {}; {expected}", line.since),
    }
}

fn secs(secs: u64) -> String {
    format_duration(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::super::tests::context;
    use super::*;
    use crate::incident::IncidentReport;
    use crate::rules::Severity;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().expect("timestamp")
    }

    fn heartbeat(state: AbsentState) -> AbsentLine {
        AbsentLine {
            rule: "heartbeat".into(),
            group: vec![("db.host".into(), "db-2".into())],
            severity: Severity::Critical,
            kind: AbsentKind::Line {
                what: "sync finished".into(),
                window_secs: 300,
                min_count: 1,
                seen: 0,
            },
            state,
            since: at("2026-12-01T10:05:00Z"),
            last_seen: Some(at("2026-12-01T09:59:30Z")),
            watched_since: Some(at("2026-12-01T09:00:00Z")),
            back: (state == AbsentState::Back).then(|| at("2026-12-01T10:42:00Z")),
            told: false,
        }
    }

    fn stalled(state: AbsentState) -> AbsentLine {
        AbsentLine {
            rule: "app".into(),
            group: Vec::new(),
            severity: Severity::Error,
            kind: AbsentKind::Stalled {
                file: Some("/var/log/app/app.log".into()),
                after_secs: 600,
            },
            back: (state == AbsentState::Back).then(|| at("2026-12-01T10:42:00Z")),
            last_seen: None,
            ..heartbeat(state)
        }
    }

    fn message(absent: Vec<AbsentLine>) -> Summary {
        Summary {
            host: "app-a".into(),
            start: at("2026-12-01T10:09:00Z"),
            end: at("2026-12-01T10:10:00Z"),
            rules: Vec::new(),
            below_threshold: Vec::new(),
            excluded: 0,
            windows: 1,
            skewed: 0,
            incidents: IncidentReport {
                absent,
                ..IncidentReport::default()
            },
        }
    }

    fn labels(alert: &PostableAlert) -> Vec<(&str, &str)> {
        alert
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn an_absence_that_fires_is_one_alert_saying_what_was_expected_and_since_when() {
        let alerts =
            super::super::alerts_of(&message(vec![heartbeat(AbsentState::New)]), &context());
        assert_eq!(alerts.len(), 1);
        let found = &alerts[0];
        assert!(found.firing && found.absence);
        assert_eq!(found.key.0, "heartbeat");
        let alert = &found.alert;
        assert_eq!(
            labels(alert),
            [
                ("alertname", "heartbeat"),
                ("cluster", "prod"),
                ("db_host", "db-2"),
                ("host", "app-a"),
                ("severity", "critical"),
                ("source", "app"),
            ]
        );
        assert_eq!(
            alert.annotations["summary"],
            "heartbeat (db-2): no `sync finished` for 5m on app-a"
        );
        assert_eq!(
            alert.annotations["description"],
            "absent since 2026-12-01T10:05:00Z; expected at least 1 line(s) matching \
             `sync finished` every 5m, saw 0; last seen 2026-12-01T09:59:30Z"
        );
        assert_eq!(alert.annotations["absent_since"], "2026-12-01T10:05:00Z");
        assert_eq!(alert.annotations["last_seen"], "2026-12-01T09:59:30Z");
        assert_eq!(alert.starts_at, at("2026-12-01T10:05:00Z"));
        // Firing: four resends ahead of the message.
        assert_eq!(alert.ends_at, at("2026-12-01T10:14:00Z"));
    }

    #[test]
    fn a_still_absent_line_fires_the_same_alert_and_back_ends_it_when_it_came_back() {
        let context = context();
        let new = alert(&message(Vec::new()), &context, &heartbeat(AbsentState::New));
        let ongoing = alert(
            &message(Vec::new()),
            &context,
            &heartbeat(AbsentState::Ongoing),
        );
        assert_eq!(ongoing, new, "the same alert, posted again");
        let back = alert(
            &message(Vec::new()),
            &context,
            &heartbeat(AbsentState::Back),
        );
        assert!(!back.firing);
        assert_eq!(back.key, new.key);
        assert_eq!(back.alert.labels, new.alert.labels);
        assert_eq!(back.alert.ends_at, at("2026-12-01T10:42:00Z"));
        assert_eq!(
            back.alert.annotations["summary"],
            "heartbeat (db-2): `sync finished` is back on app-a"
        );
        assert!(
            back.alert.annotations["description"]
                .starts_with("back at 2026-12-01T10:42:00Z after 37m absent"),
            "{}",
            back.alert.annotations["description"]
        );
    }

    #[test]
    fn a_stalled_source_is_named_source_stalled_with_the_source_as_label() {
        let line = stalled(AbsentState::New);
        let alert = alert(&message(Vec::new()), &context(), &line);
        assert_eq!(
            labels(&alert.alert),
            [
                ("alertname", STALLED_ALERTNAME),
                ("cluster", "prod"),
                ("host", "app-a"),
                ("severity", "error"),
                ("source", "app"),
            ]
        );
        assert_eq!(
            alert.alert.annotations["summary"],
            "source app: `/var/log/app/app.log` has not grown for 10m on app-a"
        );
        assert!(
            alert.alert.annotations["description"].contains("never seen (watched since"),
            "{}",
            alert.alert.annotations["description"]
        );
        // A rule named like the source is another alert.
        let rule = AbsentLine {
            group: Vec::new(),
            ..heartbeat(AbsentState::New)
        };
        let rule = AbsentLine {
            rule: "app".into(),
            ..rule
        };
        assert_ne!(key(&rule), alert.key);
        let nofile = AbsentLine {
            kind: AbsentKind::NoFile {
                paths: vec!["/var/log/app/*.log".into()],
                after_secs: 600,
            },
            ..line
        };
        let nofile = super::alert(&message(Vec::new()), &context(), &nofile);
        assert_eq!(nofile.key, alert.key, "one absence of the source");
        assert_eq!(
            nofile.alert.annotations["summary"],
            "source app: no file matches `/var/log/app/*.log` for 10m on app-a"
        );
        let back = super::alert(
            &message(Vec::new()),
            &context(),
            &stalled(AbsentState::Back),
        );
        assert_eq!(
            back.alert.annotations["summary"],
            "source app: logging again on app-a"
        );
    }
}
