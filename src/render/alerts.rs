//! Alertmanager notifications (what `logding relay` receives) into DingTalk bodies. Pure.
//!
//! The relay posts for a whole fleet, so one message speaks for an alert group across hosts:
//! the group's common labels once, then one block per (status, severity), firing first from
//! the most severe down and resolved last, each with its exact count and its hosts folded
//! (`app-01…app-30 (30 hosts)`), then the alerts themselves with what differs between them
//! (their own labels and annotations). The same guarantees as [`super::render`] hold: every
//! body carries the keyword (title and first line) and is at most `max_body_bytes`; alert
//! text is untrusted and escaped. When a group is too large, per-alert descriptions go
//! first, then alerts are left out from the end (lowest ranked), and the footer says so with
//! exact figures: "5,000 alerts, 120 shown". Several groups waiting together share a message
//! while they fit, and otherwise go out as numbered parts, each with the keyword.

use std::collections::BTreeSet;

use super::escape::{Flavor, escape};
use super::number::thousands;
use super::{MAX_NAME_CHARS, RenderOptions, mention_of, message_body, part_label};
use crate::config::MsgType;
use crate::notification::{Alert, Labels, Notification, Notifications, Status};
use crate::rules::Severity;

const MAX_LABEL_CHARS: usize = 120;
const MAX_SUMMARY_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 400;
/// Up to this many hosts are listed by name; more are folded into `first…last (N hosts)`.
const HOSTS_LISTED: usize = 5;
/// Labels that name the host of an alert, in order of preference.
const HOST_LABELS: [&str; 2] = ["host", "instance"];

/// Renders the notifications of a batch into one or more JSON bodies, each within
/// `max_body_bytes` and carrying the keyword.
pub fn render_alerts(batch: &Notifications, options: &RenderOptions) -> Vec<String> {
    let flavor = flavor_of(options);
    let mut sections: Vec<Section> = batch
        .notifications
        .iter()
        .map(|n| Section::fitted(n, options, flavor))
        .collect();
    sections.sort_by_key(|s| s.rank);
    let mention = mention_of(highest_firing(batch), &options.mention);
    let mut parts: Vec<Vec<&Section>> = Vec::new();
    for section in &sections {
        let fits = parts.last().is_some_and(|part| {
            let mut candidate = part.clone();
            candidate.push(section);
            body(&candidate, None, None, options, flavor).len() <= options.max_body_bytes
        });
        match parts.last_mut() {
            Some(part) if fits => part.push(section),
            _ => parts.push(vec![section]),
        }
    }
    let count = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(k, part)| {
            let label = (count > 1).then_some((k + 1, count));
            let at = if k == 0 { mention.as_ref() } else { None };
            let full = body(part, label, at, options, flavor);
            if full.len() <= options.max_body_bytes {
                full
            } else {
                body(part, label, None, options, flavor)
            }
        })
        .collect()
}

/// The text of a batch in full detail (what `logding relay --dry-run` prints).
pub fn render_alerts_text(batch: &Notifications, options: &RenderOptions) -> String {
    let sections: Vec<String> = batch
        .notifications
        .iter()
        .map(|n| Section::new(n, options, Flavor::Text, n.alerts.len(), true).text)
        .collect();
    sections.join("\n\n")
}

fn flavor_of(options: &RenderOptions) -> Flavor {
    match options.msgtype {
        MsgType::Markdown => Flavor::Markdown,
        MsgType::Text => Flavor::Text,
    }
}

/// One group's text, already fitted to the budget on its own.
struct Section {
    title: String,
    text: String,
    /// Firing before resolved, then the most severe first.
    rank: (Status, std::cmp::Reverse<Option<Severity>>),
}

impl Section {
    /// The most detailed form of the group whose body alone fits the budget: descriptions
    /// dropped first, then the fewest alerts left out.
    fn fitted(notification: &Notification, options: &RenderOptions, flavor: Flavor) -> Section {
        let fits = |section: &Section| {
            body(&[section], Some((99, 99)), None, options, flavor).len() <= options.max_body_bytes
        };
        let all = notification.alerts.len();
        for descriptions in [true, false] {
            let section = Section::new(notification, options, flavor, all, descriptions);
            if fits(&section) {
                return section;
            }
        }
        // Binary search for the most alerts shown (without descriptions) that fit.
        let (mut low, mut high) = (0, all);
        while low < high {
            let mid = (low + high).div_ceil(2);
            if fits(&Section::new(notification, options, flavor, mid, false)) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        Section::new(notification, options, flavor, low, false)
    }

    fn new(
        notification: &Notification,
        options: &RenderOptions,
        flavor: Flavor,
        shown: usize,
        descriptions: bool,
    ) -> Section {
        let view = GroupView::new(notification, options, flavor);
        let mut blocks = vec![view.heading()];
        blocks.extend(view.common_line());
        blocks.extend(view.blocks(shown, descriptions));
        blocks.push(view.footer(shown));
        Section {
            title: view.title(),
            text: blocks.join("\n\n"),
            rank: (
                notification.status,
                std::cmp::Reverse(highest_severity(&notification.alerts, Status::Firing)),
            ),
        }
    }
}

/// A notification seen for rendering: its alerts ordered and bucketed.
struct GroupView<'a> {
    notification: &'a Notification,
    options: &'a RenderOptions,
    flavor: Flavor,
    /// (status, severity label) buckets in display order, each with its alerts.
    buckets: Vec<(Status, String, Vec<&'a Alert>)>,
}

impl<'a> GroupView<'a> {
    fn new(
        notification: &'a Notification,
        options: &'a RenderOptions,
        flavor: Flavor,
    ) -> GroupView<'a> {
        let mut buckets: Vec<(Status, String, Vec<&Alert>)> = Vec::new();
        let mut alerts: Vec<&Alert> = notification.alerts.iter().collect();
        alerts.sort_by_key(|a| bucket_key(a));
        for alert in alerts {
            let severity = alert.labels.get("severity").cloned().unwrap_or_default();
            let severity = if alert.status == Status::Resolved {
                String::new()
            } else {
                severity
            };
            match buckets.last_mut() {
                Some((status, sev, list)) if *status == alert.status && *sev == severity => {
                    list.push(alert);
                }
                _ => buckets.push((alert.status, severity, vec![alert])),
            }
        }
        GroupView {
            notification,
            options,
            flavor,
            buckets,
        }
    }

    fn esc(&self, text: &str, max_chars: usize) -> String {
        escape(text, max_chars, self.flavor)
    }

    fn name(&self) -> String {
        self.esc(&self.name_raw(), MAX_NAME_CHARS)
    }

    fn totals(&self) -> String {
        let hosts = hosts_of(self.notification.alerts.iter());
        let mut totals = count_noun(self.notification.total_alerts(), "alert");
        if !hosts.is_empty() {
            totals.push_str(&format!(" · {}", count_noun(hosts.len() as u64, "host")));
        }
        totals
    }

    fn status_word(&self) -> &'static str {
        match self.notification.status {
            Status::Firing => "FIRING",
            Status::Resolved => "RESOLVED",
        }
    }

    fn title(&self) -> String {
        format!(
            "[{}] {} {}: {}",
            self.options.keyword,
            self.status_word(),
            escape(&self.name_raw(), MAX_NAME_CHARS, Flavor::Text),
            self.totals().replace(" · ", ", ")
        )
    }

    /// The group's name: its `alertname`, else its group label values.
    fn name_raw(&self) -> String {
        let n = self.notification;
        if let Some(name) = n
            .group_labels
            .get("alertname")
            .or_else(|| n.common_labels.get("alertname"))
        {
            return name.clone();
        }
        let values: Vec<&str> = n.group_labels.values().map(String::as_str).collect();
        if values.is_empty() {
            "alerts".to_owned()
        } else {
            values.join(" ")
        }
    }

    fn heading(&self) -> String {
        let prefix = if self.flavor == Flavor::Markdown {
            "### "
        } else {
            ""
        };
        format!(
            "{prefix}[{}] {} · {} · {}",
            self.options.keyword,
            self.status_word(),
            self.name(),
            self.totals()
        )
    }

    /// `cluster=prod · source=app`: the common labels, once (not the name, the severity or a
    /// host shared by all: those are in the heading and the blocks).
    fn common_line(&self) -> Option<String> {
        let mut items: Vec<String> = self
            .notification
            .common_labels
            .iter()
            .filter(|(k, _)| {
                !matches!(k.as_str(), "alertname" | "severity")
                    && !HOST_LABELS.contains(&k.as_str())
            })
            .map(|(k, v)| self.esc(&format!("{k}={v}"), MAX_LABEL_CHARS))
            .collect();
        if let Some(summary) = self.notification.common_annotations.get("summary") {
            items.push(self.esc(summary, MAX_SUMMARY_CHARS));
        }
        (!items.is_empty()).then(|| items.join(" · "))
    }

    /// The buckets, with at most `shown` alerts listed in total (in display order).
    fn blocks(&self, shown: usize, descriptions: bool) -> Vec<String> {
        let mut left = shown;
        let mut blocks = Vec::new();
        for (status, severity, alerts) in &self.buckets {
            let mut lines = vec![self.bucket_line(*status, severity, alerts)];
            let take = left.min(alerts.len());
            left -= take;
            for alert in &alerts[..take] {
                lines.push(self.alert_line(alert));
                if descriptions {
                    lines.extend(self.description(alert));
                }
            }
            blocks.push(lines.join("\n"));
        }
        blocks
    }

    /// `**FIRING · CRITICAL** ×3 · app-a, app-b, app-c · since 10:00:00`.
    fn bucket_line(&self, status: Status, severity: &str, alerts: &[&Alert]) -> String {
        let mut label = match status {
            Status::Firing => "FIRING".to_owned(),
            Status::Resolved => "RESOLVED".to_owned(),
        };
        if !severity.is_empty() {
            label.push_str(&format!(" · {}", self.esc(severity, 40).to_uppercase()));
        }
        let mut line = match self.flavor {
            Flavor::Markdown => format!("**{label}** ×{}", thousands(alerts.len() as u64)),
            Flavor::Text => format!("{label} ×{}", thousands(alerts.len() as u64)),
        };
        let hosts = hosts_of(alerts.iter().copied());
        if !hosts.is_empty() {
            line.push_str(" · ");
            line.push_str(&self.esc(&fold_hosts(&hosts), MAX_LABEL_CHARS * 2));
        }
        let since = alerts.iter().filter_map(|a| began(a)).min();
        if let Some(time) = since.map(|t| self.clock(t)) {
            line.push_str(&format!(" · since {time}"));
        }
        line
    }

    /// `- app-a · peer=10.0.0.5 · db timeout ×120`: what sets this alert apart.
    fn alert_line(&self, alert: &Alert) -> String {
        let mut items = Vec::new();
        if let Some(host) = host_of(alert) {
            items.push(self.esc(host, MAX_NAME_CHARS));
        }
        let common = &self.notification.common_labels;
        for (key, value) in &alert.labels {
            let skip = key == "alertname"
                || key == "severity"
                || HOST_LABELS.contains(&key.as_str())
                || common.get(key) == Some(value);
            if !skip {
                items.push(self.esc(&format!("{key}={value}"), MAX_LABEL_CHARS));
            }
        }
        if let Some(summary) =
            own_annotation(alert, &self.notification.common_annotations, "summary")
        {
            items.push(self.esc(summary, MAX_SUMMARY_CHARS));
        }
        if items.is_empty() {
            items.push(self.esc(&alert.fingerprint, 40));
        }
        let text = items.join(" · ");
        match self.flavor {
            Flavor::Markdown => format!("- {text}"),
            Flavor::Text => format!("  - {text}"),
        }
    }

    fn description(&self, alert: &Alert) -> Option<String> {
        let text = own_annotation(alert, &self.notification.common_annotations, "description")?;
        let text = self.esc(text, MAX_DESCRIPTION_CHARS);
        Some(match self.flavor {
            Flavor::Markdown => format!("> {text}"),
            Flavor::Text => format!("    > {text}"),
        })
    }

    /// `logding relay · receiver ops · 5,000 alerts, 120 shown`.
    fn footer(&self, shown: usize) -> String {
        let n = self.notification;
        let total = n.total_alerts();
        let mut footer = format!(
            "logding relay {} · receiver {}",
            env!("CARGO_PKG_VERSION"),
            self.esc(&n.receiver, MAX_NAME_CHARS)
        );
        if (shown as u64) < total {
            footer.push_str(&format!(
                " · {}, {} shown",
                count_noun(total, "alert"),
                thousands(shown as u64)
            ));
        }
        if n.truncated_alerts > 0 {
            footer.push_str(&format!(
                " · {} truncated by Alertmanager",
                thousands(n.truncated_alerts)
            ));
        }
        footer
    }

    /// A time in the configured zone, with its date and offset (the renderer has no clock,
    /// so it cannot leave out "today").
    fn clock(&self, time: jiff::Timestamp) -> String {
        let zoned = time.to_zoned_datetime(self.options.timezone.clone());
        zoned.strftime("%Y-%m-%d %H:%M:%S (%:z)").to_string()
    }
}

/// When an alert's trouble began: a logding agent's `first_seen` annotation (its incident's
/// first hit; its `startsAt` is when the agent reported it, up to a window later), else
/// `startsAt`. `None` for a missing or zero time.
fn began(alert: &Alert) -> Option<jiff::Timestamp> {
    let time: jiff::Timestamp = alert
        .annotations
        .get("first_seen")
        .and_then(|t| t.parse().ok())
        .or_else(|| alert.starts_at.parse().ok())?;
    (time.as_second() > 0).then_some(time)
}

/// The heading line and blocks of `sections` as one body.
fn body(
    sections: &[&Section],
    part: Option<(usize, usize)>,
    mention: Option<&(String, serde_json::Value)>,
    options: &RenderOptions,
    flavor: Flavor,
) -> String {
    let title = match sections {
        [one] => one.title.clone(),
        _ => format!(
            "[{}] {} alert groups",
            options.keyword,
            thousands(sections.len() as u64)
        ),
    };
    let title = format!("{title}{}", part_label(part));
    let mut texts: Vec<String> = sections.iter().map(|s| s.text.clone()).collect();
    if let Some(first) = texts.first_mut()
        && part.is_some()
    {
        // The label goes on the first line, next to the keyword.
        let end = first.find('\n').unwrap_or(first.len());
        first.insert_str(end, &part_label(part));
    }
    if let Some((tokens, _)) = mention
        && !tokens.is_empty()
    {
        texts.push(tokens.clone());
    }
    let text = texts.join("\n\n");
    let msgtype = match flavor {
        Flavor::Markdown => MsgType::Markdown,
        Flavor::Text => MsgType::Text,
    };
    message_body(msgtype, &title, &text, mention.map(|(_, at)| at))
}

/// Where an alert goes in a message: status, then severity (most severe first), then host.
type BucketKey = (
    Status,
    std::cmp::Reverse<(Option<Severity>, String)>,
    Vec<Chunk>,
);

/// Display order: firing first, most severe first, then resolved; then by host.
fn bucket_key(alert: &Alert) -> BucketKey {
    let severity = alert.labels.get("severity").cloned().unwrap_or_default();
    let rank = if alert.status == Status::Resolved {
        (None, String::new())
    } else {
        (parse_severity(&severity), severity)
    };
    (
        alert.status,
        std::cmp::Reverse(rank),
        natural_key(host_of(alert).unwrap_or("")),
    )
}

fn parse_severity(label: &str) -> Option<Severity> {
    Severity::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(label))
        .or(match label.to_ascii_lowercase().as_str() {
            "page" | "fatal" => Some(Severity::Critical),
            "warn" => Some(Severity::Warning),
            _ => None,
        })
}

fn highest_severity(alerts: &[Alert], status: Status) -> Option<Severity> {
    alerts
        .iter()
        .filter(|a| a.status == status)
        .filter_map(|a| a.labels.get("severity").and_then(|s| parse_severity(s)))
        .max()
}

fn highest_firing(batch: &Notifications) -> Option<Severity> {
    batch
        .notifications
        .iter()
        .filter_map(|n| highest_severity(&n.alerts, Status::Firing))
        .max()
}

fn host_of(alert: &Alert) -> Option<&str> {
    HOST_LABELS
        .iter()
        .find_map(|key| alert.labels.get(*key))
        .map(String::as_str)
}

/// The distinct hosts of `alerts`, in natural order (`app-2` before `app-10`).
fn hosts_of<'a>(alerts: impl Iterator<Item = &'a Alert>) -> Vec<String> {
    let set: BTreeSet<(Vec<Chunk>, &str)> = alerts
        .filter_map(host_of)
        .map(|h| (natural_key(h), h))
        .collect();
    set.into_iter().map(|(_, h)| h.to_owned()).collect()
}

/// `app-a, app-b, app-c`, or `app-01…app-30 (30 hosts)` past [`HOSTS_LISTED`].
fn fold_hosts(hosts: &[String]) -> String {
    match hosts {
        [] => String::new(),
        _ if hosts.len() <= HOSTS_LISTED => hosts.join(", "),
        [first, .., last] => format!(
            "{first}…{last} ({})",
            count_noun(hosts.len() as u64, "host")
        ),
        [only] => only.clone(),
    }
}

/// An annotation of the alert unless it is common to the group (then it is shown once).
fn own_annotation<'a>(alert: &'a Alert, common: &Labels, key: &str) -> Option<&'a str> {
    let value = alert.annotations.get(key)?;
    (common.get(key) != Some(value) && !value.trim().is_empty()).then_some(value.as_str())
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Chunk {
    Text(String),
    Number(u128),
}

/// Splits a name into text and number chunks, so `app-2` sorts before `app-10`.
fn natural_key(name: &str) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        let is_digit = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != is_digit)
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(end);
        chunks.push(match chunk.parse() {
            Ok(n) if is_digit => Chunk::Number(n),
            _ => Chunk::Text(chunk.to_owned()),
        });
        rest = tail;
    }
    chunks
}

/// `1 alert`, `5,000 alerts`.
fn count_noun(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

#[cfg(test)]
mod tests;
