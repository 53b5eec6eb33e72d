//! [`Dedupe`]: drops the second copy of a notification that both Alertmanager instances sent.
//!
//! An Alertmanager HA cluster delivers *at least* once: the instances agree through gossip
//! on who has notified, but when the receiver was down (or slow) both of them keep retrying,
//! and once it is back both calls succeed. Those copies say the same thing: same group, same
//! alerts in the same states. The relay remembers, per robot and group, what it last
//! accepted and when, and answers a copy arriving within `window` with 200 without queueing
//! it. A change in the group (an alert added, resolved) is never a copy, and a deliberate
//! repeat (`repeat_interval`) passes once `window` is over. Pure: time is passed in.
//!
//! The memory is not persisted across relay restarts, by choice: copies come from both
//! instances retrying while the relay was unreachable, and both reach it within seconds once
//! it is back, in the same (new) process. Persisting would only cover a restart falling
//! between two copies, for a write per notification; that rare case costs one repeated
//! message, never a lost one.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::webhook::{Notification, Status};

/// Groups remembered at most (the oldest are forgotten first): bounded memory.
const MAX_GROUPS: usize = 10_000;

/// What was last accepted per (robot, group).
#[derive(Debug)]
pub(crate) struct Dedupe {
    window: Duration,
    seen: HashMap<(String, String), (u64, Instant)>,
}

/// A claim on a notification: [`Dedupe::release`] it when it could not be queued.
#[derive(Debug)]
pub(crate) struct Claim {
    key: (String, String),
    previous: Option<(u64, Instant)>,
}

impl Dedupe {
    pub(crate) fn new(window: Duration) -> Dedupe {
        Dedupe {
            window,
            seen: HashMap::new(),
        }
    }

    /// `None` when `notification` is a copy of what `robot` accepted for its group within the
    /// window; otherwise records it and returns the claim.
    pub(crate) fn claim(
        &mut self,
        robot: &str,
        notification: &Notification,
        now: Instant,
    ) -> Option<Claim> {
        let key = (robot.to_owned(), notification.group_key.clone());
        let content = content_hash(notification);
        let previous = self.seen.get(&key).copied();
        if let Some((hash, at)) = previous
            && hash == content
            && now.duration_since(at) < self.window
        {
            return None;
        }
        if self.seen.len() >= MAX_GROUPS {
            self.forget_oldest(now);
        }
        self.seen.insert(key.clone(), (content, now));
        Some(Claim { key, previous })
    }

    /// Undoes a claim (the notification was not queued; its retry must not look like a copy).
    pub(crate) fn release(&mut self, claim: Claim) {
        match claim.previous {
            Some(previous) => self.seen.insert(claim.key, previous),
            None => self.seen.remove(&claim.key),
        };
    }

    fn forget_oldest(&mut self, now: Instant) {
        self.seen
            .retain(|_, (_, at)| now.duration_since(*at) < self.window);
        if self.seen.len() >= MAX_GROUPS
            && let Some(oldest) = self
                .seen
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            self.seen.remove(&oldest);
        }
    }
}

/// The group's state: its status and each alert's identity and status (not `endsAt`, which
/// agents refresh on every re-post of a firing alert).
fn content_hash(notification: &Notification) -> u64 {
    let mut alerts: Vec<String> = notification
        .alerts
        .iter()
        .map(|alert| {
            let identity = if alert.fingerprint.is_empty() {
                serde_json::to_string(&alert.labels).unwrap_or_default()
            } else {
                alert.fingerprint.clone()
            };
            let resolved = if alert.status == Status::Resolved {
                format!("resolved@{}", alert.ends_at)
            } else {
                "firing".to_owned()
            };
            format!("{identity}:{resolved}")
        })
        .collect();
    alerts.sort_unstable();
    let text = format!(
        "{:?}|{}|{}",
        notification.status,
        notification.truncated_alerts,
        alerts.join(",")
    );
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::webhook::{Alert, VERSION};

    fn notification(statuses: &[Status]) -> Notification {
        let alerts = statuses
            .iter()
            .enumerate()
            .map(|(i, status)| Alert {
                status: *status,
                labels: [("host".to_owned(), format!("app-{i}"))].into(),
                annotations: Default::default(),
                starts_at: "2026-12-01T10:00:00Z".into(),
                ends_at: format!("2026-12-01T10:0{i}:00Z"),
                generator_url: String::new(),
                fingerprint: format!("f{i}"),
            })
            .collect();
        Notification {
            version: VERSION.into(),
            group_key: "g".into(),
            truncated_alerts: 0,
            status: Status::Firing,
            receiver: "relay".into(),
            group_labels: Default::default(),
            common_labels: Default::default(),
            common_annotations: Default::default(),
            external_url: String::new(),
            alerts,
        }
    }

    #[test]
    fn the_second_instance_copy_is_dropped_and_changes_are_not() {
        let start = Instant::now();
        let mut dedupe = Dedupe::new(Duration::from_secs(300));
        let firing = notification(&[Status::Firing, Status::Firing]);
        assert!(dedupe.claim("ops", &firing, start).is_some());
        assert!(
            dedupe
                .claim("ops", &firing, start + Duration::from_secs(10))
                .is_none()
        );
        assert!(dedupe.claim("other", &firing, start).is_some(), "per robot");
        let changed = notification(&[Status::Firing, Status::Resolved]);
        assert!(
            dedupe
                .claim("ops", &changed, start + Duration::from_secs(20))
                .is_some()
        );
        let later = start + Duration::from_secs(400);
        assert!(
            dedupe.claim("ops", &changed, later).is_some(),
            "a repeat after the window"
        );
    }

    #[test]
    fn a_released_claim_lets_the_retry_through() {
        let now = Instant::now();
        let mut dedupe = Dedupe::new(Duration::from_secs(300));
        let firing = notification(&[Status::Firing]);
        let claim = dedupe.claim("ops", &firing, now).expect("first");
        dedupe.release(claim);
        assert!(dedupe.claim("ops", &firing, now).is_some());
    }
}
