//! The relay's config file (`logding relay -c relay.yaml`): where it listens, how callers
//! authenticate, where its outboxes live, and the robots it posts to.
//!
//! Each robot takes every key of the agent's `dingtalk:` section (read by the same code), plus
//! its `name`, which is its path: Alertmanager posts to `http://relay:9099/robots/<name>`.
//! A listener outside loopback without a bearer token is refused: anyone who can reach it
//! could post into the group.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::build::outbox;
use super::dingtalk::dingtalk;
use super::origin::Origin;
use super::walk::Ctx;
use super::walk::opt;
use super::yaml::{Kind, Node};
use super::{DingTalk, LoadError, OutboxOptions, Secret};

const TOP_KEYS: &[&str] = &[
    "listen",
    "auth",
    "state_dir",
    "max_request_bytes",
    "dedupe_window",
    "outbox",
    "robots",
];
const AUTH_KEYS: &[&str] = &["bearer_token", "bearer_token_file"];
const DEFAULT_LISTEN: &str = "127.0.0.1:9099";
const DEFAULT_STATE_DIR: &str = "/var/lib/logding-relay";
/// Alertmanager sends a whole group per call: 5,000 alerts are about 2 MiB of JSON.
const DEFAULT_MAX_REQUEST_BYTES: usize = 16 << 20;
/// Alertmanager's default `group_interval`: both instances' retries land within it.
const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(300);

/// A validated relay configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The file it was read from (absolute).
    pub path: PathBuf,
    /// Where the HTTP listener binds.
    pub listen: SocketAddr,
    /// The token callers must send as `Authorization: Bearer <token>`; `None`: no auth
    /// (loopback only).
    pub bearer_token: Option<Secret>,
    /// Outboxes and post times, one directory per robot.
    pub state_dir: PathBuf,
    /// Larger request bodies are refused with 413.
    pub max_request_bytes: usize,
    /// A notification identical to one accepted for the same group within this long is a
    /// copy from the other Alertmanager instance: answered 200, not posted again.
    pub dedupe_window: Duration,
    /// Bound of each robot's outbox.
    pub outbox: OutboxOptions,
    /// The robots, by name.
    pub robots: Vec<Robot>,
}

/// One DingTalk robot the relay posts to.
#[derive(Debug, Clone)]
pub struct Robot {
    /// Its path segment: `/robots/<name>`.
    pub name: String,
    /// Webhook, secret, keyword, mentions and limits, as in the agent's `dingtalk:`.
    pub dingtalk: DingTalk,
}

/// Returns true if and only if the file at `path` looks like a relay config (it has a
/// top-level `robots:` key), so that `logding check` knows which schema to apply.
pub fn is_relay_config(path: &Path) -> bool {
    let Ok(text) = super::read_text(path) else {
        return false;
    };
    match super::yaml::parse(&text) {
        Ok(Node {
            kind: Kind::Map(entries),
            ..
        }) => entries
            .iter()
            .any(|(k, _)| matches!(&k.kind, Kind::Str(s) if s == "robots")),
        _ => false,
    }
}

/// Reads and validates a relay config; `${VAR}` references read the process environment.
///
/// # Errors
///
/// Every problem found.
pub fn load_relay(path: &Path) -> Result<RelayConfig, LoadError> {
    load_relay_with(path, &|name| std::env::var(name).ok())
}

/// [`load_relay`] with an explicit environment (for tests).
///
/// # Errors
///
/// Every problem found.
pub fn load_relay_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RelayConfig, LoadError> {
    super::load_document(path, "failed to read", Some(env), relay)
}

fn relay(ctx: &mut Ctx<'_>, root: &Node, origin: &Origin) -> Option<RelayConfig> {
    let top = ctx.map(root, "", TOP_KEYS)?;
    let listen = opt(ctx, &top, "listen", DEFAULT_LISTEN.to_owned(), |c, n, _| {
        c.non_empty_string(n, "listen")
    })
    .and_then(|text| match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let pos = top.get("listen").map_or(top.pos, |n| n.pos);
            ctx.error(
                pos,
                format!("`listen` must be an address and port, like `{DEFAULT_LISTEN}`"),
                None,
            );
            None
        }
    });
    let bearer_token = auth(ctx, top.get("auth"));
    if let (Some(addr), Some(None)) = (listen, &bearer_token)
        && !addr.ip().is_loopback()
    {
        let pos = top.get("listen").map_or(top.pos, |n| n.pos);
        ctx.error(
            pos,
            format!("`listen` is `{addr}`, outside loopback, but no `auth.bearer_token` is set"),
            Some(
                "anyone who reaches the relay could post into the group: set \
                 `auth: {bearer_token: ${RELAY_TOKEN}}` and the same token in Alertmanager's \
                 `http_config.authorization`"
                    .into(),
            ),
        );
    }
    let state_dir = opt(
        ctx,
        &top,
        "state_dir",
        PathBuf::from(DEFAULT_STATE_DIR),
        |c, n, _| {
            c.non_empty_string(n, "state_dir")
                .map(|s| origin.resolve(&s))
        },
    );
    let max_request_bytes = opt(
        ctx,
        &top,
        "max_request_bytes",
        DEFAULT_MAX_REQUEST_BYTES,
        |c, n, _| c.byte_size(n, "max_request_bytes", 1 << 10, 1 << 30),
    );
    let dedupe_window = opt(
        ctx,
        &top,
        "dedupe_window",
        DEFAULT_DEDUPE_WINDOW,
        |c, n, _| c.duration(n, "dedupe_window"),
    );
    let outbox = outbox(ctx, top.get("outbox"));
    let robots = robots(ctx, top.get("robots"), top.pos, origin);
    Some(RelayConfig {
        path: origin.absolute.clone(),
        listen: listen?,
        bearer_token: bearer_token?,
        state_dir: state_dir?,
        max_request_bytes: max_request_bytes?,
        dedupe_window: dedupe_window?,
        outbox: outbox?,
        robots: robots?,
    })
}

fn auth(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Option<Secret>> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "auth", AUTH_KEYS)?;
    let token = match (map.get("bearer_token"), map.get("bearer_token_file")) {
        (Some(_), Some(node)) => {
            ctx.error_secret(
                node.pos,
                "`auth.bearer_token` and `auth.bearer_token_file` are mutually exclusive",
                None,
            );
            return None;
        }
        (Some(node), None) => ctx.secret(node, "auth.bearer_token")?,
        (None, Some(node)) => {
            let file = ctx.non_empty_string(node, "auth.bearer_token_file")?;
            match std::fs::read_to_string(&file) {
                Ok(text) => text.trim().to_owned(),
                Err(err) => {
                    ctx.error_secret(
                        node.pos,
                        format!("failed to read `auth.bearer_token_file` `{file}`"),
                        Some(super::diag::io_reason(&err)),
                    );
                    return None;
                }
            }
        }
        (None, None) => String::new(),
    };
    Some((!token.is_empty()).then(|| Secret::new(token)))
}

fn robots(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    top: super::yaml::Pos,
    origin: &Origin,
) -> Option<Vec<Robot>> {
    let Some(node) = node else {
        ctx.error(top, "the relay config has no `robots`", None);
        return None;
    };
    let Kind::Seq(items) = &node.kind else {
        ctx.error(
            node.pos,
            format!("`robots` must be a list, found {}", node.kind.describe()),
            None,
        );
        return None;
    };
    let mut robots = Vec::new();
    let mut failed = false;
    for item in items {
        match robot(ctx, item, origin, &robots) {
            Some(robot) => robots.push(robot),
            None => failed = true,
        }
    }
    if robots.is_empty() && !failed {
        ctx.error(node.pos, "`robots` is empty: name at least one robot", None);
        return None;
    }
    (!failed).then_some(robots)
}

fn robot(ctx: &mut Ctx<'_>, item: &Node, origin: &Origin, earlier: &[Robot]) -> Option<Robot> {
    let Kind::Map(entries) = &item.kind else {
        ctx.error(item.pos, "each robot must be a mapping with a `name`", None);
        return None;
    };
    let Some((key, value)) = entries
        .iter()
        .find(|(k, _)| matches!(&k.kind, Kind::Str(s) if s == "name"))
    else {
        ctx.error(item.pos, "this robot has no `name`", None);
        return None;
    };
    let name = ctx.non_empty_string(value, "robots.name")?;
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        ctx.error(
            value.pos,
            format!("robot name `{name}` must be letters, digits, `-` or `_` (it is a URL path)"),
            None,
        );
        return None;
    }
    if earlier.iter().any(|r| r.name == name) {
        ctx.error(key.pos, format!("duplicate robot name `{name}`"), None);
        return None;
    }
    // The rest is the agent's `dingtalk:` section, read by the same code.
    let rest = Node {
        pos: item.pos,
        kind: Kind::Map(
            entries
                .iter()
                .filter(|(k, _)| !matches!(&k.kind, Kind::Str(s) if s == "name"))
                .cloned()
                .collect(),
        ),
    };
    ctx.set_prefix(Some(format!("robot `{name}`")));
    let dingtalk = dingtalk(ctx, &rest, origin);
    ctx.set_prefix(None);
    Some(Robot {
        name,
        dingtalk: dingtalk?,
    })
}
