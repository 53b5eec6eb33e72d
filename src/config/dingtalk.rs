//! The `dingtalk` section: the robot, its credentials and its limits.
//!
//! The webhook URL and the signing secret come from the environment (`${VAR}`) or from a file
//! (`webhook_file`, `secret_file`), and no diagnostic about them ever shows their text.

use std::time::Duration;

use super::build::{Origin, io_reason, opt, severity};
use super::walk::{Ctx, Map};
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

const DEFAULT_KEYWORD: &str = "alert";

const DEFAULT_MAX_PER_MINUTE: u64 = 18;

const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(600);

const DEFAULT_MAX_BODY_BYTES: usize = 19_000;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) fn dingtalk(ctx: &mut Ctx<'_>, node: &Node, origin: &Origin) -> Option<DingTalk> {
    let map = ctx.map(node, "dingtalk", DINGTALK_KEYS)?;
    let allow_insecure_http = opt(ctx, &map, "allow_insecure_http", false, |c, n, _| {
        c.boolean(n, "dingtalk.allow_insecure_http")
    });
    let webhook = secret_pair(ctx, &map, "webhook", origin);
    let secret = secret_pair(ctx, &map, "secret", origin);
    if let (Some(Some((url, pos))), Some(allow)) = (&webhook, allow_insecure_http) {
        check_webhook(ctx, url.expose(), *pos, allow);
    }
    let keyword = opt(
        ctx,
        &map,
        "keyword",
        DEFAULT_KEYWORD.to_owned(),
        |c, n, _| c.non_empty_string(n, "dingtalk.keyword"),
    );
    let msgtype = opt(ctx, &map, "msgtype", MsgType::Markdown, |c, n, _| {
        c.choice(n, "dingtalk.msgtype", &["markdown", "text"])
            .map(|m| {
                if m == "text" {
                    MsgType::Text
                } else {
                    MsgType::Markdown
                }
            })
    });
    let mention = opt(ctx, &map, "mention", Mention::default(), |c, n, _| {
        mention(c, n)
    });
    let max_per_minute = opt(
        ctx,
        &map,
        "max_per_minute",
        DEFAULT_MAX_PER_MINUTE,
        |c, n, _| c.integer(n, "dingtalk.max_per_minute", 1, 20),
    );
    let throttle_pause = opt(
        ctx,
        &map,
        "throttle_pause",
        DEFAULT_THROTTLE_PAUSE,
        |c, n, _| c.duration(n, "dingtalk.throttle_pause"),
    );
    let max_body_bytes = opt(
        ctx,
        &map,
        "max_body_bytes",
        DEFAULT_MAX_BODY_BYTES,
        |c, n, _| c.byte_size(n, "dingtalk.max_body_bytes", 2_000, 20_000),
    );
    let connect_timeout = opt(
        ctx,
        &map,
        "connect_timeout",
        DEFAULT_CONNECT_TIMEOUT,
        |c, n, _| c.duration(n, "dingtalk.connect_timeout"),
    );
    let timeout = opt(ctx, &map, "timeout", DEFAULT_TIMEOUT, |c, n, _| {
        c.duration(n, "dingtalk.timeout")
    });
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
            // Plain `std::fs`: the message names the path itself, and `fs-err` would repeat it.
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

/// The webhook must be `https://`, or `http://` to a loopback host (a local proxy or a test
/// server), or `http://` anywhere when explicitly allowed. Messages never contain the URL.
fn check_webhook(ctx: &mut Ctx<'_>, url: &str, pos: Pos, allow_insecure_http: bool) {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(err) => {
            ctx.error_secret(
                pos,
                format!("`dingtalk.webhook` is not a valid URL ({err})"),
                Some("expected `https://oapi.dingtalk.com/robot/send?access_token=...`".into()),
            );
            return;
        }
    };
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&parsed) => {}
        "http" => ctx.error_secret(
            pos,
            "`dingtalk.webhook` uses plain `http://` to a host that is not loopback",
            Some(
                "use `https://` so the access token is not sent in clear; \
                 set `dingtalk.allow_insecure_http: true` only for a trusted proxy"
                    .into(),
            ),
        ),
        other => ctx.error_secret(
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
    Some(Mention {
        mobiles: mobiles?,
        user_ids: user_ids?,
        all: all?,
        min_severity: min_severity?,
    })
}
