//! The `dingtalk` section: the robot, its credentials and its limits.
//!
//! The webhook URL and the signing secret come from the environment (`${VAR}`) or from a file
//! (`webhook_file`, `secret_file`), and no diagnostic about them ever shows their text.

use std::time::Duration;

use super::diag::io_reason;
use super::origin::Origin;
use super::walk::{Ctx, Map};
use super::walk::{opt, severity};
use super::yaml::{Node, Pos};
use super::{DingTalk, Mention, MsgType, Secret};
use crate::rules::Severity;

const DINGTALK_KEYS: &[&str] = &[
    "webhook",
    "webhook_file",
    "secret",
    "secret_file",
    "keyword",
    "msgtype",
    "mention",
    "max_per_minute",
    "throttle_pause",
    "max_body_bytes",
    "connect_timeout",
    "timeout",
    "allow_insecure_http",
];

const MENTION_KEYS: &[&str] = &["mobiles", "user_ids", "all", "min_severity"];

/// The smallest `dingtalk.max_body_bytes` accepted, and the smallest budget delivery re-renders
/// to when DingTalk says a message is too long: room for the header and a few entries.
pub const MIN_BODY_BYTES: usize = 2_000;

/// DingTalk rejects bodies over 20,000 bytes.
const MAX_BODY_BYTES: usize = 20_000;

/// At most this many people (`mobiles` + `user_ids`) are mentioned. DingTalk documents no limit
/// for custom robots; logding caps the list so that the `@` tokens (which must be in the text for
/// a mention to notify) never take more than a small part of the byte budget.
pub const MAX_MENTIONS: usize = 50;

/// Mentions may take at most this fraction (1/4) of the byte budget, so that the header, the
/// keyword and the counts always fit beside them.
pub const MENTION_SHARE: usize = 4;

impl Mention {
    /// Bytes the mentions add to a serialized body: the `@` tokens in the text and the `at`
    /// object (an upper bound: JSON escaping of unusual ids may add a little).
    pub fn cost_bytes(&self) -> usize {
        let people = self.mobiles.iter().chain(&self.user_ids);
        let tokens: usize = people.clone().map(|who| who.len() + 2).sum();
        let listed: usize = people.map(|who| who.len() + 3).sum();
        tokens + listed + r#"\n\n,"at":{"atMobiles":[],"atUserIds":[],"isAtAll":false}"#.len()
    }
}

impl Default for DingTalk {
    /// The defaults of every `dingtalk` key: no webhook, keyword `alert`, markdown, 18 posts
    /// per minute, a 10-minute pause after a throttle, 19,000-byte bodies.
    fn default() -> Self {
        DingTalk {
            webhook: None,
            secret: None,
            keyword: "alert".into(),
            msgtype: MsgType::Markdown,
            mention: Mention::default(),
            max_per_minute: 18,
            throttle_pause: Duration::from_secs(600),
            max_body_bytes: 19_000,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            allow_insecure_http: false,
        }
    }
}

/// Why a webhook URL is refused. Never holds the URL: it is a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookProblem {
    /// Not a URL at all (the parser's reason, which does not quote the input).
    NotUrl(String),
    /// Plain `http://` to a host other than loopback, not explicitly allowed.
    Insecure,
    /// A scheme other than `http` or `https`.
    Scheme(String),
}

/// A webhook URL that passed [`check_webhook_url`].
#[derive(Debug)]
pub struct CheckedWebhook {
    /// The parsed URL.
    pub url: reqwest::Url,
    /// Returns true if and only if the host is loopback (`localhost`, `127.0.0.0/8`, `::1`).
    pub is_loopback: bool,
}

/// The one check of a webhook URL, used by `check` and by the DingTalk client: `https://`, or
/// `http://` to a loopback host (a local proxy or a test server), or `http://` anywhere when
/// `allow_insecure_http` is set.
///
/// # Errors
///
/// What is wrong, without the URL.
pub fn check_webhook_url(
    url: &str,
    allow_insecure_http: bool,
) -> Result<CheckedWebhook, WebhookProblem> {
    let url = reqwest::Url::parse(url).map_err(|err| WebhookProblem::NotUrl(err.to_string()))?;
    let is_loopback = is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback => {}
        "http" => return Err(WebhookProblem::Insecure),
        other => return Err(WebhookProblem::Scheme(other.to_owned())),
    }
    Ok(CheckedWebhook { url, is_loopback })
}

pub(crate) fn dingtalk(ctx: &mut Ctx<'_>, node: &Node, origin: &Origin) -> Option<DingTalk> {
    let map = ctx.map(node, "dingtalk", DINGTALK_KEYS)?;
    let defaults = DingTalk::default();
    let allow_insecure_http = opt(
        ctx,
        &map,
        "allow_insecure_http",
        defaults.allow_insecure_http,
        |c, n, _| c.boolean(n, "dingtalk.allow_insecure_http"),
    );
    let webhook = secret_pair(ctx, &map, "webhook", origin);
    let secret = secret_pair(ctx, &map, "secret", origin);
    if let (Some(Some((url, pos))), Some(allow)) = (&webhook, allow_insecure_http) {
        check_webhook(ctx, url.expose(), *pos, allow);
    }
    let keyword = opt(ctx, &map, "keyword", defaults.keyword, |c, n, _| {
        c.non_empty_string(n, "dingtalk.keyword")
    });
    let msgtype = opt(ctx, &map, "msgtype", defaults.msgtype, |c, n, _| {
        c.choice_of(
            n,
            "dingtalk.msgtype",
            &[("markdown", MsgType::Markdown), ("text", MsgType::Text)],
        )
    });
    let mention = opt(ctx, &map, "mention", defaults.mention, |c, n, _| {
        mention(c, n)
    });
    let max_per_minute = opt(
        ctx,
        &map,
        "max_per_minute",
        u64::from(defaults.max_per_minute),
        |c, n, _| c.integer(n, "dingtalk.max_per_minute", 1, 20),
    );
    let throttle_pause = opt(
        ctx,
        &map,
        "throttle_pause",
        defaults.throttle_pause,
        |c, n, _| c.duration(n, "dingtalk.throttle_pause"),
    );
    let max_body_bytes = opt(
        ctx,
        &map,
        "max_body_bytes",
        defaults.max_body_bytes,
        |c, n, _| {
            c.byte_size(
                n,
                "dingtalk.max_body_bytes",
                MIN_BODY_BYTES as u64,
                MAX_BODY_BYTES as u64,
            )
        },
    );
    let connect_timeout = opt(
        ctx,
        &map,
        "connect_timeout",
        defaults.connect_timeout,
        |c, n, _| c.duration(n, "dingtalk.connect_timeout"),
    );
    let timeout = opt(ctx, &map, "timeout", defaults.timeout, |c, n, _| {
        c.duration(n, "dingtalk.timeout")
    });
    if let (Some(mention), Some(max_body_bytes), Some(node)) =
        (&mention, max_body_bytes, map.get("mention"))
        && mention.cost_bytes() > max_body_bytes / MENTION_SHARE
    {
        ctx.error(
            node.pos,
            format!(
                "`dingtalk.mention` takes {} bytes of every first message, more than a quarter \
                 of `dingtalk.max_body_bytes` ({max_body_bytes})",
                mention.cost_bytes()
            ),
            Some("mention fewer people, or raise `dingtalk.max_body_bytes`".into()),
        );
        return None;
    }
    Some(DingTalk {
        webhook: webhook?.map(|(s, _)| s),
        secret: secret?.map(|(s, _)| s),
        keyword: keyword?,
        msgtype: msgtype?,
        mention: mention?,
        max_per_minute: u32::try_from(max_per_minute?).ok()?,
        throttle_pause: throttle_pause?,
        max_body_bytes: max_body_bytes?,
        connect_timeout: connect_timeout?,
        timeout: timeout?,
        allow_insecure_http: allow_insecure_http?,
    })
}

/// Reads `key` or `key_file` (exclusive). `Some(None)`: not configured (absent or empty).
fn secret_pair(
    ctx: &mut Ctx<'_>,
    map: &Map<'_>,
    key: &str,
    origin: &Origin,
) -> Option<Option<(Secret, Pos)>> {
    let file_key = format!("{key}_file");
    let what = format!("dingtalk.{key}");
    let file_what = format!("dingtalk.{file_key}");
    match (map.get(key), map.get(&file_key)) {
        (Some(_), Some(file_node)) => {
            let pos = map.key_pos(&file_key).unwrap_or(file_node.pos);
            ctx.error(
                pos,
                format!("`{what}` and `{file_what}` are mutually exclusive"),
                Some(format!(
                    "keep `{key}` (it may be `${{ENV_VAR}}`) or `{file_key}`, not both"
                )),
            );
            None
        }
        (Some(node), None) => {
            let value = ctx.secret(node, &what)?;
            let value = value.trim();
            Some((!value.is_empty()).then(|| (Secret::new(value), node.pos)))
        }
        (None, Some(node)) => {
            let written = ctx.non_empty_string(node, &file_what)?;
            let path = origin.resolve(&written);
            let shown = origin.display_of(&written);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let value = text.trim();
                    if value.is_empty() {
                        ctx.error(
                            node.pos,
                            format!("`{file_what}` `{}` is empty", shown.display()),
                            None,
                        );
                        return None;
                    }
                    Some(Some((Secret::new(value), node.pos)))
                }
                Err(err) => {
                    ctx.error(
                        node.pos,
                        format!(
                            "failed to read `{file_what}` `{}`: {}",
                            shown.display(),
                            io_reason(&err)
                        ),
                        None,
                    );
                    None
                }
            }
        }
        (None, None) => Some(None),
    }
}

/// Reports a webhook [`check_webhook_url`] refuses. Messages never contain the URL.
fn check_webhook(ctx: &mut Ctx<'_>, url: &str, pos: Pos, allow_insecure_http: bool) {
    let Err(problem) = check_webhook_url(url, allow_insecure_http) else {
        return;
    };
    match problem {
        WebhookProblem::NotUrl(reason) => ctx.error_secret(
            pos,
            format!("`dingtalk.webhook` is not a valid URL ({reason})"),
            Some("expected `https://oapi.dingtalk.com/robot/send?access_token=...`".into()),
        ),
        WebhookProblem::Insecure => ctx.error_secret(
            pos,
            "`dingtalk.webhook` uses plain `http://` to a host that is not loopback",
            Some(
                "use `https://` so the access token is not sent in clear; \
                 set `dingtalk.allow_insecure_http: true` only for a trusted proxy"
                    .into(),
            ),
        ),
        WebhookProblem::Scheme(other) => ctx.error_secret(
            pos,
            format!("`dingtalk.webhook` must be an `https://` URL, found scheme `{other}`"),
            None,
        ),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn mention(ctx: &mut Ctx<'_>, node: &Node) -> Option<Mention> {
    let map = ctx.map(node, "dingtalk.mention", MENTION_KEYS)?;
    let strings = |ctx: &mut Ctx<'_>, key: &str| match map.get(key) {
        Some(n) => ctx
            .strings(n, &format!("dingtalk.mention.{key}"))
            .map(|v| v.into_iter().map(|(s, _)| s).collect()),
        None => Some(Vec::new()),
    };
    let mobiles = strings(ctx, "mobiles");
    let user_ids = strings(ctx, "user_ids");
    let all = opt(ctx, &map, "all", false, |c, n, _| {
        c.boolean(n, "dingtalk.mention.all")
    });
    let min_severity = opt(ctx, &map, "min_severity", Severity::Critical, |c, n, _| {
        severity(c, n, "dingtalk.mention.min_severity")
    });
    let (mobiles, user_ids) = (mobiles?, user_ids?);
    let people = mobiles.len() + user_ids.len();
    if people > MAX_MENTIONS {
        ctx.error(
            node.pos,
            format!(
                "`dingtalk.mention` lists {people} people; at most {MAX_MENTIONS} \
                 (`mobiles` and `user_ids` together) are mentioned"
            ),
            Some("mention a duty roster or use `all: true` instead of listing everyone".into()),
        );
        return None;
    }
    Some(Mention {
        mobiles,
        user_ids,
        all: all?,
        min_severity: min_severity?,
    })
}
