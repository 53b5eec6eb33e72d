//! The schema: walks the main file's [`Node`] tree into a [`Config`], section by section.
//!
//! Every section has its keys listed once (unknown keys are errors with a suggestion), its
//! defaults as named constants, and its validation next to its reading. Rules and included rule
//! files are in `rule_files`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::rule_files::RuleReader;
use super::walk::{Ctx, Map};
use super::yaml::{Kind, Node, Pos};
use super::{
    Config, DingTalk, Mention, MsgType, Multiline, OutboxOptions, Secret, Source, StartAt,
    SummaryOptions, TailOptions,
};
use crate::rules::{REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT, RuleSet, Severity};

/// Built-in masks of `summary.masks`, in the order they apply.
pub const BUILTIN_MASKS: [&str; 6] = ["timestamp", "uuid", "ip", "hex", "quoted", "number"];

const TOP_KEYS: &[&str] = &[
    "host",
    "state_dir",
    "window",
    "include",
    "dingtalk",
    "sources",
    "summary",
    "tail",
    "outbox",
    "rules",
];
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
const SOURCE_KEYS: &[&str] = &[
    "name",
    "paths",
    "exclude",
    "start_at",
    "multiline",
    "max_line_bytes",
];
const MULTILINE_KEYS: &[&str] = &["start", "max_lines", "max_bytes", "timeout"];
const SUMMARY_KEYS: &[&str] = &[
    "max_groups",
    "max_patterns",
    "masks",
    "custom_masks",
    "timezone",
];
const CUSTOM_MASK_KEYS: &[&str] = &["name", "pattern"];
const TAIL_KEYS: &[&str] = &[
    "poll_interval",
    "rescan_interval",
    "rotate_wait",
    "poll_only",
    "max_open_files",
    "read_budget_bytes",
    "checkpoint_interval",
];
const OUTBOX_KEYS: &[&str] = &["max_entries"];

const DEFAULT_STATE_DIR: &str = "/var/lib/logding";
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
const DEFAULT_KEYWORD: &str = "alert";
const DEFAULT_MAX_PER_MINUTE: u64 = 18;
const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(600);
const DEFAULT_MAX_BODY_BYTES: usize = 19_000;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_MULTILINE_MAX_LINES: u64 = 500;
const DEFAULT_MULTILINE_MAX_BYTES: usize = 64 * 1024;
const DEFAULT_MULTILINE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;
const DEFAULT_MAX_GROUPS: u64 = 20;
const DEFAULT_MAX_PATTERNS: u64 = 5;
const MIB: u64 = 1 << 20;

/// Where the config file is, as shown to the user and as an absolute path.
pub(crate) struct Origin {
    /// As the user named it (for messages).
    pub(crate) display: PathBuf,
    /// Absolute (for resolving relative paths).
    pub(crate) absolute: PathBuf,
}

impl Origin {
    fn dir(&self) -> &Path {
        self.absolute.parent().unwrap_or(Path::new("/"))
    }

    /// Resolves a path written in the config file.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        self.dir().join(path)
    }

    /// The directory of the config file, as it should appear in messages.
    pub(crate) fn display_dir(&self) -> PathBuf {
        match self.display.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// A path written in the config file, as it should appear in messages.
    pub(crate) fn display_of(&self, path: &str) -> PathBuf {
        let written = Path::new(path);
        if written.is_absolute() {
            return written.to_owned();
        }
        self.display.parent().unwrap_or(Path::new("")).join(written)
    }
}

/// Walks the main file into a [`Config`]. `None` when any diagnostic was recorded.
pub(crate) fn config(
    ctx: &mut Ctx<'_>,
    root: &Node,
    origin: &Origin,
    check_examples: bool,
) -> Option<Config> {
    if root.kind == Kind::Null {
        ctx.error(
            root.pos,
            "the config file is empty",
            Some("start from the bundled `config/logding.yaml`".into()),
        );
        return None;
    }
    let top = ctx.map(root, "", TOP_KEYS)?;
    let host = host(ctx, &top);
    let state_dir = match top.get("state_dir") {
        Some(node) => ctx
            .non_empty_string(node, "state_dir")
            .map(|s| origin.resolve(&s)),
        None => Some(PathBuf::from(DEFAULT_STATE_DIR)),
    };
    let window = opt(ctx, &top, "window", DEFAULT_WINDOW, Ctx::duration);
    let dingtalk = match top.get("dingtalk") {
        Some(node) => dingtalk(ctx, node, origin),
        None => dingtalk(ctx, &Node::null(), origin),
    };
    let sources = sources(ctx, top.get("sources"), origin);
    let summary = summary(ctx, top.get("summary"));
    let tail = tail(ctx, top.get("tail"));
    let outbox = outbox(ctx, top.get("outbox"));

    // Names as written, even of sources with other problems: a rule naming one of them should
    // not get a second, confusing "unknown source" error.
    let source_names = top.get("sources").map(source_names).unwrap_or_default();
    let mut reader = RuleReader::new(source_names, check_examples);
    if let Some(node) = top.get("rules") {
        reader.read_rules(ctx, node);
    }
    let mut rule_files = vec![origin.absolute.clone()];
    if let Some(node) = top.get("include") {
        rule_files.extend(reader.read_includes(ctx, node, origin));
    }
    let rules = reader.finish(ctx, top.key_pos("rules").or(top.key_pos("include")), origin);

    if !ctx.diagnostics.is_empty() {
        return None;
    }
    Some(Config {
        path: origin.absolute.clone(),
        host: host?,
        state_dir: state_dir?,
        window: window?,
        dingtalk: dingtalk?,
        sources: sources?,
        rules: Arc::new(RuleSet::new(rules?)),
        rule_files,
        summary: summary?,
        tail: tail?,
        outbox: outbox?,
    })
}

/// Reads `key` with `read`, or returns `default` when absent.
fn opt<'e, T>(
    ctx: &mut Ctx<'e>,
    map: &Map<'_>,
    key: &str,
    default: T,
    read: impl FnOnce(&mut Ctx<'e>, &Node, &str) -> Option<T>,
) -> Option<T> {
    match map.get(key) {
        Some(node) => read(ctx, node, key),
        None => Some(default),
    }
}

fn host(ctx: &mut Ctx<'_>, top: &Map<'_>) -> Option<String> {
    let written = match top.get("host") {
        Some(node) => ctx.non_empty_string(node, "host")?,
        None => "auto".to_owned(),
    };
    if written != "auto" {
        return Some(written);
    }
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    Some(if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    })
}

fn dingtalk(ctx: &mut Ctx<'_>, node: &Node, origin: &Origin) -> Option<DingTalk> {
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

/// The reason of a `std::io` error, lowercase (callers print the path themselves).
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
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

/// Reads a severity name.
pub(crate) fn severity(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Severity> {
    let names = Severity::ALL.map(Severity::as_str);
    let name = ctx.choice(node, what, &names)?;
    Severity::ALL.into_iter().find(|s| s.as_str() == name)
}

fn sources(ctx: &mut Ctx<'_>, node: Option<&Node>, origin: &Origin) -> Option<Vec<Source>> {
    let Some(node) = node else {
        return Some(Vec::new());
    };
    let items = match &node.kind {
        Kind::Seq(items) => items,
        Kind::Null => return Some(Vec::new()),
        other => {
            ctx.error(
                node.pos,
                format!("`sources` must be a list, found {}", other.describe()),
                None,
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    let mut seen: Vec<(String, Pos)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(source) = source(ctx, item, i, origin) else {
            ok = false;
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == source.0.name) {
            ctx.error(
                source.1,
                format!("duplicate source name `{}`", source.0.name),
                Some(format!(
                    "the first source named so is at line {}",
                    first.line
                )),
            );
            ok = false;
        }
        seen.push((source.0.name.clone(), source.1));
        out.push(source.0);
    }
    ok.then_some(out)
}

/// The `name:` of every source mapping, without validation.
fn source_names(node: &Node) -> Vec<String> {
    let Kind::Seq(items) = &node.kind else {
        return Vec::new();
    };
    let name_of = |item: &Node| match &item.kind {
        Kind::Map(entries) => entries.iter().find_map(|(k, v)| match (&k.kind, &v.kind) {
            (Kind::Str(k), Kind::Str(v)) if k == "name" => Some(v.clone()),
            _ => None,
        }),
        _ => None,
    };
    items.iter().filter_map(name_of).collect()
}

fn source(ctx: &mut Ctx<'_>, node: &Node, index: usize, origin: &Origin) -> Option<(Source, Pos)> {
    let what = format!("sources[{index}]");
    let map = ctx.map(node, &what, SOURCE_KEYS)?;
    let name_node = ctx.required(&map, "name", &format!("source `{what}`"));
    let name = name_node.and_then(|n| ctx.non_empty_string(n, &format!("{what}.name")));
    let paths = ctx
        .required(&map, "paths", &format!("source `{what}`"))
        .and_then(|n| globs(ctx, n, &format!("{what}.paths"), Some(origin), true));
    let exclude = match map.get("exclude") {
        Some(n) => globs(ctx, n, &format!("{what}.exclude"), None, false),
        None => Some(Vec::new()),
    };
    let start_at = opt(ctx, &map, "start_at", StartAt::End, |c, n, _| {
        c.choice(n, &format!("{what}.start_at"), &["end", "beginning"])
            .map(|s| {
                if s == "beginning" {
                    StartAt::Beginning
                } else {
                    StartAt::End
                }
            })
    });
    let multiline = match map.get("multiline") {
        Some(n) => multiline(ctx, n, &format!("{what}.multiline")).map(Some),
        None => Some(None),
    };
    let max_line_bytes = opt(
        ctx,
        &map,
        "max_line_bytes",
        DEFAULT_MAX_LINE_BYTES,
        |c, n, _| c.byte_size(n, &format!("{what}.max_line_bytes"), 256, 64 * MIB),
    );
    let source = Source {
        name: name?,
        paths: paths?,
        exclude: exclude?,
        start_at: start_at?,
        multiline: multiline?,
        max_line_bytes: max_line_bytes?,
    };
    Some((source, name_node.map_or(map.pos, |n| n.pos)))
}

/// Reads glob patterns, checking their syntax. With `origin`, relative patterns are made
/// absolute against the config file's directory.
fn globs(
    ctx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    origin: Option<&Origin>,
    non_empty: bool,
) -> Option<Vec<String>> {
    let written = ctx.strings(node, what)?;
    if non_empty && written.is_empty() {
        ctx.error(
            node.pos,
            format!("`{what}` must name at least one file or glob"),
            None,
        );
        return None;
    }
    let mut out = Vec::with_capacity(written.len());
    let mut ok = true;
    for (pattern, pos) in written {
        if pattern.trim().is_empty() {
            ctx.error(pos, format!("`{what}` has an empty entry"), None);
            ok = false;
            continue;
        }
        let pattern = match origin {
            Some(origin) => origin.resolve(&pattern).to_string_lossy().into_owned(),
            None => pattern,
        };
        if let Err(err) = globset::Glob::new(&pattern) {
            ctx.error(
                pos,
                format!("`{what}` has an invalid glob: {}", err.kind()),
                None,
            );
            ok = false;
            continue;
        }
        out.push(pattern);
    }
    ok.then_some(out)
}

fn multiline(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Multiline> {
    let map = ctx.map(node, what, MULTILINE_KEYS)?;
    let start = ctx
        .required(&map, "start", &format!("`{what}`"))
        .and_then(|n| {
            let pattern = ctx.non_empty_string(n, &format!("{what}.start"))?;
            match crate::rules::compile_pattern(&pattern) {
                Ok(re) => Some(re),
                Err(message) => {
                    ctx.error(
                        n.pos,
                        format!(
                            "`{what}.start` is not a valid regex: {}",
                            short_regex_error(&message)
                        ),
                        None,
                    );
                    None
                }
            }
        });
    let max_lines = opt(
        ctx,
        &map,
        "max_lines",
        DEFAULT_MULTILINE_MAX_LINES,
        |c, n, _| c.integer(n, &format!("{what}.max_lines"), 1, 100_000),
    );
    let max_bytes = opt(
        ctx,
        &map,
        "max_bytes",
        DEFAULT_MULTILINE_MAX_BYTES,
        |c, n, _| c.byte_size(n, &format!("{what}.max_bytes"), 256, 64 * MIB),
    );
    let timeout = opt(
        ctx,
        &map,
        "timeout",
        DEFAULT_MULTILINE_TIMEOUT,
        |c, n, _| c.duration(n, &format!("{what}.timeout")),
    );
    Some(Multiline {
        start: start?,
        max_lines: usize::try_from(max_lines?).ok()?,
        max_bytes: max_bytes?,
        timeout: timeout?,
    })
}

/// The last `error: ...` line of a regex crate message (its first lines repeat the pattern).
pub(crate) fn short_regex_error(message: &str) -> String {
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(message)
        .trim()
        .to_owned()
}

fn summary(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<SummaryOptions> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "summary", SUMMARY_KEYS)?;
    let max_groups = opt(ctx, &map, "max_groups", DEFAULT_MAX_GROUPS, |c, n, _| {
        c.integer(n, "summary.max_groups", 1, 1_000)
    });
    let max_patterns = opt(
        ctx,
        &map,
        "max_patterns",
        DEFAULT_MAX_PATTERNS,
        |c, n, _| c.integer(n, "summary.max_patterns", 1, 100),
    );
    let masks = match map.get("masks") {
        Some(n) => masks(ctx, n),
        None => Some(BUILTIN_MASKS.iter().map(|m| (*m).to_owned()).collect()),
    };
    let custom_masks = match map.get("custom_masks") {
        Some(n) => custom_masks(ctx, n),
        None => Some(Vec::new()),
    };
    let timezone = match map.get("timezone") {
        Some(n) => timezone(ctx, n),
        None => Some(jiff::tz::TimeZone::system()),
    };
    Some(SummaryOptions {
        max_groups: usize::try_from(max_groups?).ok()?,
        max_patterns: usize::try_from(max_patterns?).ok()?,
        masks: masks?,
        custom_masks: custom_masks?,
        timezone: timezone?,
    })
}

fn masks(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<String>> {
    let names = ctx.strings(node, "summary.masks")?;
    let mut ok = true;
    for (name, pos) in &names {
        if !BUILTIN_MASKS.contains(&name.as_str()) {
            ctx.error(
                *pos,
                format!("unknown mask `{name}` in `summary.masks`"),
                Some(super::diag::suggestion_help(name, &BUILTIN_MASKS)),
            );
            ok = false;
        }
    }
    ok.then(|| names.into_iter().map(|(n, _)| n).collect())
}

fn custom_masks(ctx: &mut Ctx<'_>, node: &Node) -> Option<Vec<(String, regex::Regex)>> {
    let items = match &node.kind {
        Kind::Seq(items) => items.as_slice(),
        Kind::Null => &[],
        other => {
            ctx.error(
                node.pos,
                format!(
                    "`summary.custom_masks` must be a list, found {}",
                    other.describe()
                ),
                None,
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let what = format!("summary.custom_masks[{i}]");
        let Some(map) = ctx.map(item, &what, CUSTOM_MASK_KEYS) else {
            ok = false;
            continue;
        };
        let name = ctx
            .required(&map, "name", &format!("`{what}`"))
            .and_then(|n| ctx.non_empty_string(n, &format!("{what}.name")));
        let pattern = ctx
            .required(&map, "pattern", &format!("`{what}`"))
            .and_then(|n| {
                let text = ctx.non_empty_string(n, &format!("{what}.pattern"))?;
                match regex::RegexBuilder::new(&text)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
                    .build()
                {
                    Ok(re) => Some(re),
                    Err(err) => {
                        let message = short_regex_error(&err.to_string());
                        ctx.error(
                            n.pos,
                            format!("`{what}.pattern` is not a valid regex: {message}"),
                            None,
                        );
                        None
                    }
                }
            });
        match (name, pattern) {
            (Some(name), Some(pattern)) => out.push((name, pattern)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn timezone(ctx: &mut Ctx<'_>, node: &Node) -> Option<jiff::tz::TimeZone> {
    let name = ctx.non_empty_string(node, "summary.timezone")?;
    if name == "local" {
        return Some(jiff::tz::TimeZone::system());
    }
    if let Some(offset) = fixed_offset(&name) {
        return Some(jiff::tz::TimeZone::fixed(offset));
    }
    match jiff::tz::TimeZone::get(&name) {
        Ok(tz) => Some(tz),
        Err(_) => {
            ctx.error(
                node.pos,
                format!("unknown time zone `{name}` in `summary.timezone`"),
                Some("use `local`, an IANA name like `Asia/Shanghai`, `UTC`, or an offset like `+08:00`".into()),
            );
            None
        }
    }
}

/// Parses `+08:00`, `-05:30`, `+8`.
fn fixed_offset(text: &str) -> Option<jiff::tz::Offset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = text[1..].split_once(':').unwrap_or((&text[1..], "0"));
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

fn tail(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<TailOptions> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "tail", TAIL_KEYS)?;
    let duration = |ctx: &mut Ctx<'_>, key: &str, default: Duration| {
        opt(ctx, &map, key, default, |c, n, k| {
            c.duration(n, &format!("tail.{k}"))
        })
    };
    let poll_interval = duration(ctx, "poll_interval", Duration::from_secs(1));
    let rescan_interval = duration(ctx, "rescan_interval", Duration::from_secs(10));
    let rotate_wait = duration(ctx, "rotate_wait", Duration::from_secs(30));
    let checkpoint_interval = duration(ctx, "checkpoint_interval", Duration::from_secs(1));
    let poll_only = opt(ctx, &map, "poll_only", false, |c, n, _| {
        c.boolean(n, "tail.poll_only")
    });
    let max_open_files = opt(ctx, &map, "max_open_files", 512, |c, n, _| {
        c.integer(n, "tail.max_open_files", 1, 1_000_000)
    });
    let read_budget_bytes = opt(ctx, &map, "read_budget_bytes", 256 * 1024, |c, n, _| {
        c.byte_size(n, "tail.read_budget_bytes", 4096, 1024 * MIB)
    });
    Some(TailOptions {
        poll_interval: poll_interval?,
        rescan_interval: rescan_interval?,
        rotate_wait: rotate_wait?,
        poll_only: poll_only?,
        max_open_files: usize::try_from(max_open_files?).ok()?,
        read_budget_bytes: read_budget_bytes?,
        checkpoint_interval: checkpoint_interval?,
    })
}

fn outbox(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<OutboxOptions> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "outbox", OUTBOX_KEYS)?;
    let max_entries = opt(ctx, &map, "max_entries", 1000, |c, n, _| {
        c.integer(n, "outbox.max_entries", 1, 1_000_000)
    });
    Some(OutboxOptions {
        max_entries: usize::try_from(max_entries?).ok()?,
    })
}
