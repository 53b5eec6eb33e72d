//! The `alertmanager:` section: the Alertmanager instances every incident is posted to as an
//! alert (`POST /api/v2/alerts` to each of them, as Alertmanager's HA setup asks), the labels
//! added to every alert, and how often firing alerts are posted again.
//!
//! Label names are checked here against Alertmanager's rule (`[a-zA-Z_][a-zA-Z0-9_]*`): a bad
//! name would make every post answer 400, which is better said by `check` than by a log line.
//! The names the sink sets itself (`alertname`, `severity`, `host`, `source`) cannot be
//! configured: they identify the alert. A URL may carry credentials (a proxy in front of
//! Alertmanager): it is only ever shown through [`shown_url`].

use std::collections::BTreeMap;
use std::time::Duration;

use super::AlertmanagerOptions;
use super::walk::Ctx;
use super::walk::opt;
use super::yaml::{Kind, Node};

const KEYS: &[&str] = &["urls", "labels", "resend_every", "timeout"];

/// Labels the sink sets on every alert; configured labels may not replace them.
pub const RESERVED_LABELS: [&str; 4] = ["alertname", "severity", "host", "source"];
/// Default of `resend_every` (Prometheus re-sends firing alerts at about this rate).
const DEFAULT_RESEND_EVERY: Duration = Duration::from_secs(60);
/// Default of `timeout`: one post, connect included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `alertmanager:`; `Some(None)` when absent (no Alertmanager sink).
pub(crate) fn alertmanager(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
) -> Option<Option<AlertmanagerOptions>> {
    let Some(node) = node else {
        return Some(None);
    };
    let map = ctx.map(node, "alertmanager", KEYS)?;
    let urls = match ctx.required(&map, "urls", "`alertmanager`") {
        Some(node) => urls(ctx, node),
        None => None,
    };
    let labels = match map.get("labels") {
        Some(node) => labels(ctx, node),
        None => Some(BTreeMap::new()),
    };
    let resend_every = opt(
        ctx,
        &map,
        "resend_every",
        DEFAULT_RESEND_EVERY,
        |c, n, _| c.duration(n, "alertmanager.resend_every"),
    );
    let timeout = opt(ctx, &map, "timeout", DEFAULT_TIMEOUT, |c, n, _| {
        c.duration(n, "alertmanager.timeout")
    });
    Some(Some(AlertmanagerOptions {
        urls: urls?,
        labels: labels?,
        resend_every: resend_every?,
        timeout: timeout?,
    }))
}

fn urls(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<reqwest::Url>> {
    let written = ctx.strings(node, "alertmanager.urls")?;
    if written.is_empty() {
        ctx.error(
            node.pos,
            "`alertmanager.urls` is empty: name every Alertmanager instance",
            Some("for example `urls: [http://am-1:9093, http://am-2:9093]`".into()),
        );
        return None;
    }
    let mut urls: Vec<reqwest::Url> = Vec::new();
    let mut ok = true;
    for (text, pos) in written {
        match reqwest::Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if urls.contains(&url) {
                    ctx.error(
                        pos,
                        format!(
                            "`{}` is listed twice in `alertmanager.urls`",
                            shown_url(&url)
                        ),
                        None,
                    );
                    ok = false;
                } else {
                    urls.push(url);
                }
            }
            _ => {
                ctx.error(
                    pos,
                    format!("`{}` is not an `http://` or `https://` URL", text.trim()),
                    Some(
                        "write an instance's base URL, like `http://am-1:9093`; logding posts \
                         to `/api/v2/alerts` under it"
                            .into(),
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(urls)
}

fn labels(ctx: &mut Ctx<'_>, node: &Node) -> Option<BTreeMap<String, String>> {
    let entries = match &node.kind {
        Kind::Null => return Some(BTreeMap::new()),
        Kind::Map(entries) => entries,
        other => {
            ctx.error(
                node.pos,
                format!(
                    "`alertmanager.labels` must be a mapping of label names to values, found {}",
                    other.describe()
                ),
                None,
            );
            return None;
        }
    };
    let mut labels = BTreeMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let name = match &key.kind {
            Kind::Str(name) => name.clone(),
            _ => {
                ctx.error(key.pos, "label names must be strings", None);
                ok = false;
                continue;
            }
        };
        if !is_label_name(&name) {
            ctx.error(
                key.pos,
                format!("`{name}` is not a valid Alertmanager label name"),
                Some("use letters, digits and `_`, not starting with a digit".into()),
            );
            ok = false;
        } else if RESERVED_LABELS.contains(&name.as_str()) {
            ctx.error(
                key.pos,
                format!("label `{name}` is set by logding on every alert"),
                Some(format!(
                    "logding sets {}; choose another name",
                    RESERVED_LABELS.map(|l| format!("`{l}`")).join(", ")
                )),
            );
            ok = false;
        } else if labels.contains_key(&name) {
            ctx.error(key.pos, format!("duplicate label `{name}`"), None);
            ok = false;
        }
        match ctx.string(value, &format!("alertmanager.labels.{name}")) {
            Some(text) => {
                labels.insert(name, text);
            }
            None => ok = false,
        }
    }
    ok.then_some(labels)
}

/// `url` as logs and messages show it: without user name, password or query (a proxy in
/// front of Alertmanager may take credentials in either).
pub fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    // These fail only for URLs that cannot hold credentials: nothing to take out then.
    shown.set_username("").unwrap_or_default();
    shown.set_password(None).unwrap_or_default();
    shown.set_query(None);
    shown.to_string()
}

/// Returns true if and only if `name` is a valid Alertmanager label name.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_has_no_credentials() {
        let url = reqwest::Url::parse("https://ops:made-up-password@proxy:8443/am/?token=made-up")
            .expect("url");
        assert_eq!(shown_url(&url), "https://proxy:8443/am/");
    }
}
