//! Incidents as Alertmanager alerts (the body of `POST /api/v2/alerts`), and [`AlertBatch`],
//! the outbox payload of one Alertmanager instance. No IO and no clock: times come from the
//! summary (or are passed in).
//!
//! One alert per incident, that is per rule and `group_by` values, exactly as the incident
//! stage keys them ([`crate::incident::split`]: each shown group, plus one alert for the rest). Its
//! labels are its identity in Alertmanager: `alertname` (the rule), `severity`, `host`,
//! `source`, the group's captures (names made valid, values bounded) and the configured
//! labels. Its annotations are for people: `summary` (one line), `description` (the rule's
//! section as the DingTalk message would show it: counts, patterns, samples, root cause),
//! `count`, `first_seen`, `last_seen`. Absences (an absence rule's key, a stalled source) are
//! alerts too, with their own annotations (`absent`).
//!
//! A firing alert's `endsAt` lies [`ENDS_AFTER_RESENDS`] re-posts ahead, so that Alertmanager
//! resolves it by itself only when the agent is gone; a resolved incident is posted with
//! `endsAt` = its resolution time, which tells Alertmanager it is over.

mod absent;

pub use self::absent::STALLED_ALERTNAME;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::incident::IncidentLine;
use crate::render::RenderOptions;
use crate::summary::Summary;

/// A firing alert's `endsAt` is this many `resend_every` ahead of its last post.
pub const ENDS_AFTER_RESENDS: u32 = 4;
/// Longest label value, in bytes (group values come from log lines).
pub(crate) const MAX_LABEL_VALUE_BYTES: usize = 200;
/// Longest `description`, in bytes.
pub(crate) const MAX_DESCRIPTION_BYTES: usize = 4_000;

/// One alert as Alertmanager's API takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identity.
    pub labels: BTreeMap<String, String>,
    /// Text for people.
    pub annotations: BTreeMap<String, String>,
    /// When the incident began.
    pub starts_at: Timestamp,
    /// In the future while firing; the resolution time once resolved.
    pub ends_at: Timestamp,
}

/// An incident's key: rule and `group_by` values (as the incident stage has them).
pub type IncidentKey = (String, Vec<(String, String)>);

/// An alert and the incident it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentAlert {
    /// Which incident.
    pub key: IncidentKey,
    /// The alert to post.
    pub alert: PostableAlert,
    /// False when the incident resolved.
    pub firing: bool,
    /// An absence (`kind: absence` or `source_stalled`): it stays firing while the incident
    /// stage's messages show it, whatever their age (see `absent`).
    pub absence: bool,
}

/// What the conversion needs besides the summary.
#[derive(Clone, Debug)]
pub struct AlertContext {
    /// `alertmanager.labels`.
    pub labels: BTreeMap<String, String>,
    /// The `source` label of each rule (the sources it reads, comma-separated).
    pub sources: BTreeMap<String, String>,
    /// How descriptions are rendered (text).
    pub render: RenderOptions,
    /// `alertmanager.resend_every`.
    pub resend_every: Duration,
}

impl AlertContext {
    /// How far ahead of `now` a firing alert's `endsAt` lies.
    pub fn ends_at(&self, now: Timestamp) -> Timestamp {
        let ahead = self.resend_every.saturating_mul(ENDS_AFTER_RESENDS);
        now.checked_add(SignedDuration::try_from(ahead).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX)
    }
}

/// The alerts a message of the incident stage stands for: the rules shown in full (one alert
/// per group, and one for the rest), the ongoing lines (firing), the resolved lines (ended at
/// the summary's end, the time the stage resolved them).
pub fn alerts_of(summary: &Summary, context: &AlertContext) -> Vec<IncidentAlert> {
    let now = summary.end;
    let mut out = Vec::new();
    for rule in &summary.rules {
        let note = summary.incidents.notes.iter().find(|n| n.rule == rule.name);
        let description = bounded(
            &crate::render::rule_text(summary, rule, &context.render),
            MAX_DESCRIPTION_BYTES,
        );
        for (group, count) in crate::incident::split(rule) {
            // Without groups the rule is one incident: the note knows its history.
            let (since, total) = match note {
                Some(note) if rule.groups.is_empty() => (note.since.min(rule.first), note.total),
                _ => (rule.first, count),
            };
            let facts = Facts {
                severity: rule.severity.as_str(),
                count: total,
                since,
                last_seen: rule.last,
                description: description.clone(),
            };
            let alert = build(
                summary,
                context,
                &rule.name,
                &group,
                &facts,
                context.ends_at(now),
            );
            out.push(IncidentAlert {
                key: (rule.name.clone(), group),
                alert,
                firing: true,
                absence: false,
            });
        }
    }
    let lines = summary.incidents.ongoing.iter().map(|l| (l, true));
    let lines = lines.chain(summary.incidents.resolved.iter().map(|l| (l, false)));
    for (line, firing) in lines {
        let facts = Facts {
            severity: line.severity.as_str(),
            count: line.total,
            since: line.since,
            last_seen: line.last_seen,
            description: line_description(line, firing),
        };
        let ends_at = if firing { context.ends_at(now) } else { now };
        let alert = build(summary, context, &line.rule, &line.group, &facts, ends_at);
        out.push(IncidentAlert {
            key: (line.rule.clone(), line.group.clone()),
            alert,
            firing,
            absence: false,
        });
    }
    out.extend(absent::alerts_of(summary, context));
    out
}

/// What differs between the alerts of one summary.
struct Facts<'a> {
    severity: &'a str,
    count: u64,
    since: Timestamp,
    last_seen: Timestamp,
    description: String,
}

fn build(
    summary: &Summary,
    context: &AlertContext,
    rule: &str,
    group: &[(String, String)],
    facts: &Facts<'_>,
    ends_at: Timestamp,
) -> PostableAlert {
    let source = context.sources.get(rule).cloned().unwrap_or_default();
    let labels = labels(summary, context, [rule, facts.severity, &source], group);
    let values: Vec<&str> = group.iter().map(|(_, v)| v.as_str()).collect();
    let on = if values.is_empty() {
        String::new()
    } else {
        format!(" ({})", values.join(", "))
    };
    let summary_line = format!("{rule}{on}: {} on {}", hits(facts.count), summary.host);
    let annotations = BTreeMap::from([
        (
            "summary".to_owned(),
            bounded(&summary_line, MAX_LABEL_VALUE_BYTES),
        ),
        ("description".to_owned(), facts.description.clone()),
        ("count".to_owned(), facts.count.to_string()),
        ("first_seen".to_owned(), facts.since.to_string()),
        ("last_seen".to_owned(), facts.last_seen.to_string()),
    ]);
    PostableAlert {
        labels,
        annotations,
        starts_at: facts.since,
        ends_at,
    }
}

/// An alert's labels: the configured ones, the group's captures, then `alertname`,
/// `severity` and `source` (in this order in `identity`) and `host`.
pub(super) fn labels(
    summary: &Summary,
    context: &AlertContext,
    identity: [&str; 3],
    group: &[(String, String)],
) -> BTreeMap<String, String> {
    let mut labels = context.labels.clone();
    for (name, value) in group {
        labels.insert(label_name(name), bounded(value, MAX_LABEL_VALUE_BYTES));
    }
    let [alertname, severity, source] = identity;
    for (name, value) in [
        ("alertname", alertname),
        ("severity", severity),
        ("host", summary.host.as_str()),
        ("source", source),
    ] {
        labels.insert(name.to_owned(), bounded(value, MAX_LABEL_VALUE_BYTES));
    }
    labels
}

fn line_description(line: &IncidentLine, firing: bool) -> String {
    let state = if firing { "ongoing" } else { "resolved" };
    format!(
        "{state}: {} since {}, last at {} ({} since the last message)",
        hits(line.total),
        line.since,
        line.last_seen,
        hits(line.count)
    )
}

pub(super) fn hits(count: u64) -> String {
    let n = crate::render::thousands(count);
    if count == 1 {
        format!("{n} hit")
    } else {
        format!("{n} hits")
    }
}

/// A capture name as a valid label name: invalid characters become `_`, a leading digit gets
/// a `_` before it, and the names logding sets itself get a `group_` prefix.
pub fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if crate::config::RESERVED_LABELS.contains(&out.as_str()) {
        out.insert_str(0, "group_");
    }
    out
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub(super) fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Alerts waiting for one Alertmanager instance: its outbox payload, posted as one JSON array.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBatch {
    /// At most one per label set.
    pub alerts: Vec<PostableAlert>,
}

impl AlertBatch {
    /// Folds a newer batch in: an alert with the same labels takes the newer state (keeping
    /// the earlier `startsAt`, as Alertmanager does), others are appended.
    pub fn merge(&mut self, newer: AlertBatch) {
        for alert in newer.alerts {
            match self.alerts.iter_mut().find(|a| a.labels == alert.labels) {
                Some(older) => {
                    let starts_at = older.starts_at.min(alert.starts_at);
                    *older = PostableAlert { starts_at, ..alert };
                }
                None => self.alerts.push(alert),
            }
        }
    }
}

impl crate::outbox::Payload for AlertBatch {
    fn merge(&mut self, newer: AlertBatch) {
        AlertBatch::merge(self, newer);
    }

    fn render(&self, _options: &RenderOptions) -> Vec<String> {
        vec![serde_json::to_string(&self.alerts).expect("alerts serialize")]
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self
            .alerts
            .iter()
            .take(5)
            .map(|a| {
                let name = a.labels.get("alertname").map_or("?", String::as_str);
                let host = a.labels.get("host").map_or("?", String::as_str);
                format!("{name}@{host}")
            })
            .collect();
        let more = self.alerts.len().saturating_sub(names.len());
        let more = if more > 0 {
            format!(" (+{more})")
        } else {
            String::new()
        };
        format!("{} alert(s): {}{more}", self.alerts.len(), names.join(", "))
    }

    fn tally(&self) -> (u64, u64) {
        (1, self.alerts.len() as u64)
    }
}

#[cfg(test)]
mod tests;
