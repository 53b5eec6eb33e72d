//! `render`: a [`Summary`] into DingTalk JSON bodies (and the same text for a terminal). Pure.
//!
//! An on-call engineer must know in 5 seconds, on a phone, what broke, how often, where and
//! why. So the title (the push notification) names the top severity, rule and count
//! (`[alert] CRITICAL java-oom ×2 · app-01 (+2 rules)`); the heading repeats it with the time
//! span and the files' place (said once, see `paths`); then one section per rule in rank
//! order (severity, then count), each sample shown once with its count and the ends of its
//! exception chain (see `section`).
//!
//! Two guarantees hold for every body returned, whatever the summary holds:
//! - it carries the robot's keyword (the markdown title and the first line of the text), since
//!   DingTalk rejects a message without it;
//! - its serialized JSON is at most `max_body_bytes`. When the full form is larger, detail is
//!   shed in this order, lowest-ranked entries first: samples are shortened and lose the lines
//!   under them, then all but the top sample go, then every sample; then each severity (lowest
//!   first) collapses to one line listing its rules and counts. Header, keyword and every
//!   count stay. When even that is too large, the message is split into numbered parts
//!   `(1/3)`, each with the keyword and within budget.
//!
//! Log text is untrusted and is escaped here and nowhere else (see `escape`): it can never
//! create a mention, a link, an image, a heading, a list or a quote, nor break the layout.

mod absent;
mod alerts;
mod escape;
mod incidents;
mod number;
mod paths;
mod section;
mod suppressed;

use std::time::Duration;

use serde_json::{Value, json};

pub use self::alerts::{render_alerts, render_alerts_text};
use self::escape::{Flavor, escape};
pub use self::incidents::sparkline;
pub(crate) use self::number::thousands;
use self::paths::Paths;
use crate::config::{Config, Mention, MsgType};
use crate::rules::Severity;
use crate::summary::{RuleSummary, Summary};

const MAX_NAME_CHARS: usize = 100;
const MAX_FILE_CHARS: usize = 120;
const MAX_SAMPLE_CHARS: usize = 300;
const MAX_SHORT_SAMPLE_CHARS: usize = 100;
const MAX_GROUP_CHARS: usize = 80;
const BELOW_THRESHOLD_SHOWN: usize = 10;

/// Everything `render` needs besides the summary.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// The robot's keyword; in the title and the first line of every body.
    pub keyword: String,
    /// Markdown or text.
    pub msgtype: MsgType,
    /// Mentions, and from which severity.
    pub mention: Mention,
    /// Byte budget of one serialized JSON body.
    pub max_body_bytes: usize,
    /// Time zone for window times.
    pub timezone: jiff::tz::TimeZone,
    /// The configured window, shown in the footer.
    pub window: Duration,
}

impl RenderOptions {
    /// The options a configuration implies.
    pub fn from_config(config: &Config) -> RenderOptions {
        RenderOptions {
            keyword: config.dingtalk.keyword.clone(),
            msgtype: config.dingtalk.msgtype,
            mention: config.dingtalk.mention.clone(),
            max_body_bytes: config.dingtalk.max_body_bytes,
            timezone: config.summary.timezone.clone(),
            window: config.window,
        }
    }
}

/// Renders a summary into one or more JSON bodies (more than one only when even the most
/// compact form exceeds the budget), each at most `max_body_bytes`, each with the keyword.
/// Mentions (the `at` object and the `@` tokens) are added, to the first body only, when the
/// summary has a rule at or above `mention.min_severity`.
pub fn render(summary: &Summary, options: &RenderOptions) -> Vec<String> {
    let flavor = match options.msgtype {
        MsgType::Markdown => Flavor::Markdown,
        MsgType::Text => Flavor::Text,
    };
    Doc::new(summary, options, flavor).bodies()
}

/// The one place a DingTalk message body is built: `{"msgtype": "markdown", "markdown":
/// {"title", "text"}}` or `{"msgtype": "text", "text": {"content"}}` (the title is only shown
/// in notifications, so the text must repeat it), plus the `at` object when people are
/// mentioned. `title` and `text` are used as given: escaping is the caller's job.
pub fn message_body(msgtype: MsgType, title: &str, text: &str, at: Option<&Value>) -> String {
    let mut body = match msgtype {
        MsgType::Markdown => json!({
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
        }),
        MsgType::Text => json!({"msgtype": "text", "text": {"content": text}}),
    };
    if let Some(at) = at {
        body["at"] = at.clone();
    }
    body.to_string()
}

/// `body` (from [`message_body`]) with `line` appended to its text as a last line of its own:
/// how delivery stamps a message id (`#a3f9`) on every body it posts. Adds the line's JSON
/// length plus 4 bytes (the escaped blank line); a body that is not a message is returned as is.
pub fn append_line(body: &str, line: &str) -> String {
    let Ok(mut json) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    for pointer in ["/markdown/text", "/text/content"] {
        if let Some(Value::String(text)) = json.pointer_mut(pointer) {
            text.push_str("\n\n");
            text.push_str(line);
            return json.to_string();
        }
    }
    body.to_owned()
}

/// The human-readable text of a summary, in full detail (what `--dry-run` prints).
pub fn render_text(summary: &Summary, options: &RenderOptions) -> String {
    let doc = Doc::new(summary, options, Flavor::Text);
    let blocks: Vec<String> = summary
        .rules
        .iter()
        .map(|rule| doc.entry(rule, Detail::Full))
        .collect();
    doc.text(None, &blocks, true, true)
}

/// One rule's section of `summary` as text, in full detail (the `description` of its
/// Alertmanager alerts).
pub fn rule_text(summary: &Summary, rule: &RuleSummary, options: &RenderOptions) -> String {
    Doc::new(summary, options, Flavor::Text).entry(rule, Detail::Full)
}

/// How much of a rule entry is shown, from most to least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Detail {
    Full,
    NoSamples,
    TopPattern,
    Bare,
}

const DETAILS: [Detail; 4] = [
    Detail::Full,
    Detail::NoSamples,
    Detail::TopPattern,
    Detail::Bare,
];

/// What is shown of each entry: the state of the shrinking loop.
struct Plan {
    details: Vec<Detail>,
    collapsed: [bool; 4],
}

impl Plan {
    /// One step less detail; false when nothing is left to shed.
    fn shrink(&mut self, rules: &[RuleSummary]) -> bool {
        for level in &DETAILS[1..] {
            if let Some(i) = (0..self.details.len())
                .rev()
                .find(|&i| self.details[i] < *level)
            {
                self.details[i] = *level;
                return true;
            }
        }
        for severity in Severity::ALL {
            let index = severity as usize;
            if !self.collapsed[index] && rules.iter().any(|r| r.severity == severity) {
                self.collapsed[index] = true;
                return true;
            }
        }
        false
    }
}

struct Doc<'a> {
    summary: &'a Summary,
    options: &'a RenderOptions,
    flavor: Flavor,
    /// The `@...` tokens line and the `at` object, when mentions apply.
    mention: Option<(String, Value)>,
    /// Where the files are, said once per message.
    paths: Paths,
}

impl<'a> Doc<'a> {
    fn new(summary: &'a Summary, options: &'a RenderOptions, flavor: Flavor) -> Doc<'a> {
        Doc {
            summary,
            options,
            flavor,
            mention: mention_of(summary.max_severity(), &options.mention),
            paths: Paths::new(&summary.rules),
        }
    }

    fn budget(&self) -> usize {
        self.options.max_body_bytes
    }

    fn bodies(&self) -> Vec<String> {
        let rules = &self.summary.rules;
        let sizes: Vec<[usize; 4]> = rules
            .iter()
            .map(|rule| DETAILS.map(|detail| json_len(&self.entry(rule, detail))))
            .collect();
        let collapsed_sizes = Severity::ALL.map(|severity| {
            self.collapsed_lines(severity, usize::MAX)
                .first()
                .map_or(0, |line| json_len(line))
        });
        let separator = json_len("\n\n");
        let base = self
            .body(None, &self.text(None, &[], true, true), true)
            .len();
        let mut plan = Plan {
            details: vec![Detail::Full; rules.len()],
            collapsed: [false; 4],
        };
        loop {
            let mut estimate = base;
            for (i, rule) in rules.iter().enumerate() {
                if !plan.collapsed[rule.severity as usize] {
                    estimate += separator + sizes[i][plan.details[i] as usize];
                }
            }
            for severity in Severity::ALL {
                if plan.collapsed[severity as usize] {
                    estimate += separator + collapsed_sizes[severity as usize];
                }
            }
            if estimate <= self.budget() {
                let blocks = self.blocks(&plan);
                let body = self.body(None, &self.text(None, &blocks, true, true), true);
                if body.len() <= self.budget() {
                    return vec![body];
                }
            }
            if !plan.shrink(rules) {
                return self.split();
            }
        }
    }

    /// The blocks of the message body for a plan, in rank order.
    fn blocks(&self, plan: &Plan) -> Vec<String> {
        let mut blocks = Vec::new();
        let mut collapsed_done = [false; 4];
        for (rule, detail) in self.summary.rules.iter().zip(&plan.details) {
            let index = rule.severity as usize;
            if !plan.collapsed[index] {
                blocks.push(self.entry(rule, *detail));
            } else if !collapsed_done[index] {
                collapsed_done[index] = true;
                blocks.extend(self.collapsed_lines(rule.severity, usize::MAX));
            }
        }
        blocks
    }

    /// The most compact form, cut into numbered parts that each fit the budget.
    fn split(&self) -> Vec<String> {
        let widest = Some((9999, 9999));
        let reserve = self
            .body(widest, &self.text(widest, &[], true, true), true)
            .len();
        let separator = json_len("\n\n");
        let available = self.budget().saturating_sub(reserve);
        let mut atoms = Vec::new();
        for severity in Severity::ALL.iter().rev() {
            atoms.extend(self.collapsed_lines(*severity, available.saturating_sub(separator)));
        }
        let mut parts: Vec<Vec<String>> = vec![Vec::new()];
        let mut used = 0;
        for atom in atoms {
            let size = separator + json_len(&atom);
            let current = parts.last_mut().expect("parts starts non-empty");
            if used + size > available && !current.is_empty() {
                parts.push(vec![atom]);
                used = size;
            } else {
                current.push(atom);
                used += size;
            }
        }
        let count = parts.len();
        parts
            .iter()
            .enumerate()
            .map(|(k, blocks)| {
                let part = (count > 1).then_some((k + 1, count));
                let (first, last) = (k == 0, k + 1 == count);
                let text = self.text(part, blocks, last, first);
                let body = self.body(part, &text, first);
                if body.len() <= self.budget() {
                    body
                } else {
                    self.fit(part, &text, first)
                }
            })
            .collect()
    }

    /// Last resort (a budget too small for even one line per part): the text cut to fit.
    fn fit(&self, part: Option<(usize, usize)>, text: &str, with_at: bool) -> String {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let (mut low, mut high) = (0, chars.len());
        let cut = |n: usize| {
            let end = chars.get(n).map_or(text.len(), |(i, _)| *i);
            format!("{}…", &text[..end])
        };
        while low < high {
            let mid = (low + high).div_ceil(2);
            if self.body(part, &cut(mid), with_at).len() <= self.budget() {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        self.body(part, &cut(low), with_at)
    }

    fn body(&self, part: Option<(usize, usize)>, text: &str, with_at: bool) -> String {
        let msgtype = match self.flavor {
            Flavor::Markdown => MsgType::Markdown,
            Flavor::Text => MsgType::Text,
        };
        let at = self.mention.as_ref().filter(|_| with_at).map(|(_, at)| at);
        message_body(msgtype, &self.title(part), text, at)
    }

    fn text(
        &self,
        part: Option<(usize, usize)>,
        blocks: &[String],
        with_footer: bool,
        with_mention: bool,
    ) -> String {
        let mut sections = vec![self.heading(part)];
        sections.extend(blocks.iter().filter(|b| !b.is_empty()).cloned());
        sections.extend(absent::blocks(
            self.summary,
            &self.options.timezone,
            self.flavor,
        ));
        sections.extend(incidents::blocks(
            self.summary,
            &self.options.timezone,
            self.flavor,
        ));
        // The mention tokens share the footer's line: one line less on a phone.
        let mut last = Vec::new();
        if with_footer {
            last.push(self.footer());
        }
        if with_mention
            && let Some((tokens, _)) = &self.mention
            && !tokens.is_empty()
        {
            last.push(tokens.clone());
        }
        if !last.is_empty() {
            sections.push(last.join(" · "));
        }
        sections.join("\n\n")
    }

    /// The push notification and chat-list preview: what broke, how often, where.
    /// `[alert] CRITICAL java-oom ×2 · app-01 (+2 rules)`; plain text in every flavor.
    fn title(&self, part: Option<(usize, usize)>) -> String {
        self.headline(Flavor::Text, part)
    }

    fn headline(&self, flavor: Flavor, part: Option<(usize, usize)>) -> String {
        let keyword = &self.options.keyword;
        let host = escape(&self.summary.host, MAX_NAME_CHARS, flavor);
        let Some(top) = self.summary.rules.first() else {
            if let Some(what) = absent::headline(self.summary, flavor) {
                return format!("[{keyword}] {what} · {host}{}", part_label(part));
            }
            // A message that only says which incidents go on or ended.
            let (what, matches) = incidents::totals(self.summary)
                .unwrap_or_else(|| ("no rules".into(), "no matches".into()));
            return format!("[{keyword}] {host}: {what}, {matches}{}", part_label(part));
        };
        let others = match self.summary.rules.len() - 1 {
            0 => String::new(),
            n => format!(" (+{})", plural(n as u64, "rule")),
        };
        format!(
            "[{keyword}] {} {} ×{} · {host}{others}{}",
            top.severity.as_str().to_uppercase(),
            escape(&top.name, MAX_NAME_CHARS, flavor),
            top.count,
            part_label(part)
        )
    }

    /// The title again (DingTalk does not show it in the message), then the time span and the
    /// files' common directory (or the one file).
    fn heading(&self, part: Option<(usize, usize)>) -> String {
        let prefix = if self.flavor == Flavor::Markdown {
            "### "
        } else {
            ""
        };
        let mut second = self.span();
        if let Some(place) = self.paths.heading() {
            second.push_str(" · ");
            second.push_str(&escape(place, MAX_FILE_CHARS, self.flavor));
        }
        format!("{prefix}{}\n{second}", self.headline(self.flavor, part))
    }

    /// `2026-11-28 10:00:00–10:01:00 (+08:00)`.
    fn span(&self) -> String {
        let tz = &self.options.timezone;
        let start = self.summary.start.to_zoned_datetime(tz.clone());
        let end = self.summary.end.to_zoned_datetime(tz.clone());
        let end_format = if start.date() == end.date() {
            "%H:%M:%S"
        } else {
            "%Y-%m-%d %H:%M:%S"
        };
        let mut span = format!(
            "{}–{} ({})",
            start.strftime("%Y-%m-%d %H:%M:%S"),
            end.strftime(end_format),
            start.strftime("%:z"),
        );
        if self.summary.windows > 1 {
            span.push_str(&format!(" · {} windows", self.summary.windows));
        }
        span.push_str(&incidents::seen(self.summary, tz));
        span
    }

    fn footer(&self) -> String {
        let mut footer = format!(
            "logding {} · window {}",
            env!("CARGO_PKG_VERSION"),
            crate::config::format_duration(self.options.window)
        );
        footer.push_str(&self.suppressed_footer());
        if self.summary.excluded > 0 {
            footer.push_str(&format!(
                " · {} excluded",
                plural(self.summary.excluded, "match")
            ));
        }
        let below = &self.summary.below_threshold;
        if !below.is_empty() {
            let shown: Vec<String> = below
                .iter()
                .take(BELOW_THRESHOLD_SHOWN)
                .map(|(name, count)| format!("{} ×{count}", self.name(name)))
                .collect();
            footer.push_str(&format!(" · below threshold: {}", shown.join(", ")));
            if below.len() > BELOW_THRESHOLD_SHOWN {
                let rest = &below[BELOW_THRESHOLD_SHOWN..];
                let count: u64 = rest.iter().map(|(_, n)| n).sum();
                footer.push_str(&format!(
                    " (+{} more, {})",
                    rest.len(),
                    plural(count, "match")
                ));
            }
        }
        footer
    }

    fn name(&self, name: &str) -> String {
        escape(name, MAX_NAME_CHARS, self.flavor)
    }

    /// One severity's rules on as few lines as fit `max_json_bytes` each:
    /// `**WARNING** db-timeout ×2 · slow-query ×5`.
    fn collapsed_lines(&self, severity: Severity, max_json_bytes: usize) -> Vec<String> {
        let label = severity.as_str().to_uppercase();
        let prefix = match self.flavor {
            Flavor::Markdown => format!("**{label}** "),
            Flavor::Text => format!("{label}: "),
        };
        let mut lines: Vec<String> = Vec::new();
        let mut current = String::new();
        for rule in self.summary.rules.iter().filter(|r| r.severity == severity) {
            let item = format!("{} ×{}", self.name(&rule.name), rule.count);
            let candidate = if current.is_empty() {
                format!("{prefix}{item}")
            } else {
                format!("{current} · {item}")
            };
            if !current.is_empty() && json_len(&candidate) > max_json_bytes {
                lines.push(std::mem::replace(&mut current, format!("{prefix}{item}")));
            } else {
                current = candidate;
            }
        }
        if !current.is_empty() {
            lines.push(current);
        }
        lines
    }
}

/// The `@...` tokens and the `at` object when the highest severity reaches
/// `mention.min_severity` and someone is to be mentioned.
fn mention_of(max: Option<Severity>, mention: &Mention) -> Option<(String, Value)> {
    let max = max?;
    let has_anyone = !mention.mobiles.is_empty() || !mention.user_ids.is_empty() || mention.all;
    if max < mention.min_severity || !has_anyone {
        return None;
    }
    let tokens: Vec<String> = mention
        .mobiles
        .iter()
        .chain(&mention.user_ids)
        .map(|who| format!("@{who}"))
        .collect();
    let at = json!({
        "atMobiles": mention.mobiles,
        "atUserIds": mention.user_ids,
        "isAtAll": mention.all,
    });
    Some((tokens.join(" "), at))
}

fn part_label(part: Option<(usize, usize)>) -> String {
    part.map_or_else(String::new, |(k, n)| format!(" ({k}/{n})"))
}

fn plural(count: u64, noun: &str) -> String {
    match (count, noun) {
        (1, _) => format!("1 {noun}"),
        (_, "match") => format!("{count} matches"),
        _ => format!("{count} {noun}s"),
    }
}

/// Bytes `text` takes inside a JSON string (without the quotes).
fn json_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(text.len() * 6, |s| s.len() - 2)
}

#[cfg(test)]
mod acceptance;
#[cfg(test)]
mod tests;
