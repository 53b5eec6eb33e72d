//! The Alertmanager webhook payload (version 4), as the relay receives and stores it and
//! `render` turns it into DingTalk messages. Plain data and the rules of merging it: it sits below
//! both, so that neither imports the other for it.
//!
//! Alertmanager sends one [`Notification`] per alert group each time the group changes (or
//! `repeat_interval` passes): the whole current state of the group, firing and resolved
//! alerts together, a resolved alert only until its resolution was sent once. That makes a
//! newer notification of a group a replacement of an older one, but for the resolutions the
//! older one told: [`Notifications::merge`] relies on both when notifications queue up
//! behind the robot's rate budget.
//!
//! Parsing is strict about what the renderer needs (version, group key, status, alerts with
//! labels) and lenient about the rest, so a newer Alertmanager adding fields still works.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only payload version this relay understands (Alertmanager 0.16 and later).
pub const VERSION: &str = "4";

/// Label and annotation sets: sorted, so rendering is deterministic.
pub type Labels = BTreeMap<String, String>;

/// One webhook call: the state of one alert group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Payload version, `"4"`.
    pub version: String,
    /// Identifies the group across notifications.
    pub group_key: String,
    /// Alerts Alertmanager left out (`max_alerts`), counted in the totals.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` when any alert fires.
    pub status: Status,
    /// The Alertmanager receiver's name.
    #[serde(default)]
    pub receiver: String,
    /// The labels the group is keyed by (`route.group_by`).
    #[serde(default)]
    pub group_labels: Labels,
    /// Labels every alert of the group has, with the same value.
    #[serde(default)]
    pub common_labels: Labels,
    /// Annotations every alert of the group has, with the same value.
    #[serde(default)]
    pub common_annotations: Labels,
    /// Alertmanager's external URL (not shown: it is often internal).
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts of the group.
    pub alerts: Vec<Alert>,
}

/// One alert of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: Status,
    /// Identity of the alert.
    pub labels: Labels,
    /// Text for people (`summary`, `description`, ...).
    #[serde(default)]
    pub annotations: Labels,
    /// RFC 3339.
    #[serde(default)]
    pub starts_at: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` while firing.
    #[serde(default)]
    pub ends_at: String,
    /// Link to the alert's source (not shown).
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's hash of the labels.
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    /// Whether both are the same alert: same fingerprint, or same labels without one.
    fn is(&self, other: &Alert) -> bool {
        if self.fingerprint.is_empty() || other.fingerprint.is_empty() {
            self.labels == other.labels
        } else {
            self.fingerprint == other.fingerprint
        }
    }
}

/// Whether an alert (or a group) is firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Active.
    Firing,
    /// Over.
    Resolved,
}

/// Why a request body is not a usable notification (answered with HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// Not JSON of the expected shape.
    #[error("the body is not an Alertmanager webhook payload: {0}")]
    Shape(String),
    /// Another payload version.
    #[error("unsupported payload version `{0}`: this relay understands version 4")]
    Version(String),
    /// No alert at all.
    #[error("the notification holds no alert")]
    Empty,
}

impl Notification {
    /// Parses and checks a request body.
    ///
    /// # Errors
    ///
    /// The body is not JSON of the webhook's shape, not version 4, or has no alert.
    pub fn parse(body: &[u8]) -> Result<Notification, Invalid> {
        let notification: Notification =
            serde_json::from_slice(body).map_err(|err| Invalid::Shape(err.to_string()))?;
        if notification.version != VERSION {
            return Err(Invalid::Version(notification.version));
        }
        if notification.alerts.is_empty() {
            return Err(Invalid::Empty);
        }
        Ok(notification)
    }

    /// Adds the alerts resolved in `older` (of the same group) that this one leaves out;
    /// the common labels and annotations become those the added alerts share too.
    fn carry_resolved(&mut self, older: Notification) {
        for alert in older.alerts {
            if alert.status == Status::Resolved && !self.alerts.iter().any(|a| a.is(&alert)) {
                self.common_labels
                    .retain(|k, v| alert.labels.get(k) == Some(v));
                self.common_annotations
                    .retain(|k, v| alert.annotations.get(k) == Some(v));
                self.alerts.push(alert);
            }
        }
    }

    /// Number of alerts, those Alertmanager truncated included.
    pub fn total_alerts(&self) -> u64 {
        (self.alerts.len() as u64).saturating_add(self.truncated_alerts)
    }
}

/// Notifications of one robot waiting to be posted together: the relay's outbox payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    /// In arrival order, at most one per group key.
    pub notifications: Vec<Notification>,
    /// Notifications folded into this batch (replaced by a newer one of their group).
    #[serde(default)]
    pub superseded: u64,
}

impl Notifications {
    /// A batch of one notification.
    pub fn of(notification: Notification) -> Notifications {
        Notifications {
            notifications: vec![notification],
            superseded: 0,
        }
    }

    /// Folds a newer batch in: a group's newer notification replaces its older one (it is the
    /// group's whole current state), other groups are appended.
    ///
    /// Except for what the newer state leaves out: Alertmanager tells a resolution once, then
    /// drops the alert from the group, so an alert resolved in the older notification and
    /// absent from the newer one is carried over, still resolved. Otherwise a robot down or
    /// throttled across two updates would never say that the alert ended.
    pub fn merge(&mut self, newer: Notifications) {
        self.superseded = self.superseded.saturating_add(newer.superseded);
        for notification in newer.notifications {
            match self
                .notifications
                .iter_mut()
                .find(|n| n.group_key == notification.group_key)
            {
                Some(older) => {
                    let ended = std::mem::replace(older, notification);
                    older.carry_resolved(ended);
                    self.superseded = self.superseded.saturating_add(1);
                }
                None => self.notifications.push(notification),
            }
        }
    }

    /// One line for logs: groups and alert counts.
    pub fn describe(&self) -> String {
        let groups: Vec<String> = self
            .notifications
            .iter()
            .map(|n| format!("{} x{}", n.group_key, n.total_alerts()))
            .collect();
        groups.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(version: &str, alerts: &str) -> String {
        format!(
            r#"{{"version":"{version}","groupKey":"{{}}:{{alertname=\"db\"}}","status":"firing",
"receiver":"relay","groupLabels":{{"alertname":"db"}},"commonLabels":{{"alertname":"db"}},
"commonAnnotations":{{}},"externalURL":"http://am:9093","alerts":[{alerts}],"truncatedAlerts":0}}"#
        )
    }

    const ALERT: &str = r#"{"status":"firing","labels":{"alertname":"db","host":"app-a"},
"annotations":{"summary":"db down"},"startsAt":"2026-12-01T10:00:00Z",
"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"abc"}"#;

    #[test]
    fn a_version_4_payload_parses() {
        let n = Notification::parse(body("4", ALERT).as_bytes()).expect("valid");
        assert_eq!(n.alerts[0].labels["host"], "app-a");
        assert_eq!(n.status, Status::Firing);
        assert_eq!(n.total_alerts(), 1);
    }

    #[test]
    fn bad_payloads_say_why() {
        let err = |b: &str| {
            Notification::parse(b.as_bytes())
                .expect_err("invalid")
                .to_string()
        };
        assert!(err("{").starts_with("the body is not an Alertmanager webhook payload"));
        assert_eq!(
            err(&body("3", ALERT)),
            "unsupported payload version `3`: this relay understands version 4"
        );
        assert_eq!(err(&body("4", "")), "the notification holds no alert");
    }

    #[test]
    fn a_newer_notification_of_a_group_replaces_the_older() {
        let first = Notification::parse(body("4", ALERT).as_bytes()).expect("valid");
        let mut second = first.clone();
        second.status = Status::Resolved;
        let mut other = first.clone();
        other.group_key = "other".into();
        let mut batch = Notifications::of(first);
        batch.merge(Notifications::of(other));
        batch.merge(Notifications::of(second));
        assert_eq!(batch.notifications.len(), 2);
        assert_eq!(batch.notifications[0].status, Status::Resolved);
        assert_eq!(batch.superseded, 1);
    }

    /// A robot down across two updates: the first said app-a resolved, the second (without
    /// app-a, whose end Alertmanager already told) adds app-c. What goes out says both.
    #[test]
    fn a_resolution_the_newer_notification_leaves_out_is_carried_over() {
        let with = |alerts: &[(&str, Status)]| {
            let mut n = Notification::parse(body("4", ALERT).as_bytes()).expect("valid");
            n.common_labels.insert("zone".into(), "z1".into());
            n.alerts = alerts
                .iter()
                .map(|(host, status)| Alert {
                    status: *status,
                    labels: [("alertname", "db"), ("host", host), ("zone", "z1")]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    fingerprint: format!("f-{host}"),
                    ..n.alerts[0].clone()
                })
                .collect();
            n
        };
        let mut batch = Notifications::of(with(&[
            ("app-a", Status::Resolved),
            ("app-b", Status::Firing),
        ]));
        let mut newer = with(&[("app-b", Status::Firing), ("app-c", Status::Firing)]);
        newer.alerts[1].labels.insert("zone".into(), "z2".into());
        newer.common_labels.remove("zone");
        newer.common_labels.insert("team".into(), "db".into());
        batch.merge(Notifications::of(newer));
        let merged = &batch.notifications[0];
        let states: Vec<(&str, Status)> = merged
            .alerts
            .iter()
            .map(|a| (a.labels["host"].as_str(), a.status))
            .collect();
        assert_eq!(
            states,
            [
                ("app-b", Status::Firing),
                ("app-c", Status::Firing),
                ("app-a", Status::Resolved)
            ]
        );
        assert_eq!(merged.status, Status::Firing);
        assert!(merged.common_labels.contains_key("alertname"));
        assert!(!merged.common_labels.contains_key("team"), "app-a has none");

        // Resolved again in the newer one: not carried twice; firing ones are not carried.
        let mut again = Notifications::of(with(&[("app-a", Status::Firing)]));
        again.merge(Notifications::of(with(&[("app-a", Status::Resolved)])));
        again.merge(Notifications::of(with(&[("app-b", Status::Firing)])));
        let hosts: Vec<(&str, Status)> = again.notifications[0]
            .alerts
            .iter()
            .map(|a| (a.labels["host"].as_str(), a.status))
            .collect();
        assert_eq!(
            hosts,
            [("app-b", Status::Firing), ("app-a", Status::Resolved)]
        );
    }
}
