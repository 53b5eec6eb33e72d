//! `render`: a [`Summary`] into DingTalk JSON bodies. Pure.
//!
//! STUB: the window/render issue replaces this body; the signatures are the contract the sink
//! and the agent code against.

use std::time::Duration;

use crate::config::{Config, Mention, MsgType};
use crate::summary::Summary;

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
pub fn render(summary: &Summary, options: &RenderOptions) -> Vec<String> {
    let text = render_text(summary, options);
    let title = format!("[{}] {}", options.keyword, summary.host);
    let body = match options.msgtype {
        MsgType::Markdown => serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
        }),
        MsgType::Text => serde_json::json!({"msgtype": "text", "text": {"content": text}}),
    };
    vec![body.to_string()]
}

/// The human-readable text of a summary (what `--dry-run` prints).
pub fn render_text(summary: &Summary, options: &RenderOptions) -> String {
    let mut out = format!("[{}] {}\n", options.keyword, summary.host);
    for rule in &summary.rules {
        out.push_str(&format!(
            "{} {} x{}\n",
            rule.severity, rule.name, rule.count
        ));
    }
    out
}
