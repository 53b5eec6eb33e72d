//! The `sources` section: named sets of log files, with multiline event assembly.

use std::time::Duration;

use super::origin::Origin;
use super::units::MIB;
use super::walk::{Ctx, names_in, opt};
use super::yaml::{Kind, Node, Pos};
use super::{Multiline, Source, StartAt};
use crate::rules::short_regex_error;

const SOURCE_KEYS: &[&str] = &[
    "name",
    "paths",
    "exclude",
    "start_at",
    "multiline",
    "max_line_bytes",
    "timestamp",
    // Read by `super::absence::stalls`.
    "source_stalled",
];

const MULTILINE_KEYS: &[&str] = &["start", "preset", "max_lines", "max_bytes", "timeout"];

const DEFAULT_MULTILINE_MAX_LINES: u64 = 500;

const DEFAULT_MULTILINE_MAX_BYTES: usize = 64 * 1024;

const DEFAULT_MULTILINE_TIMEOUT: Duration = Duration::from_secs(1);

const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

pub(crate) fn sources(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    origin: &Origin,
) -> Option<Vec<Source>> {
    let Some(node) = node else {
        return Some(Vec::new());
    };
    let items = ctx.list(node, "sources")?;
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
pub(crate) fn source_names(node: &Node) -> Vec<String> {
    names_in(node)
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
        c.choice_of(
            n,
            &format!("{what}.start_at"),
            &[("end", StartAt::End), ("beginning", StartAt::Beginning)],
        )
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
    let timestamp = match map.get("timestamp") {
        Some(n) => super::incidents::timestamp(ctx, n, &format!("{what}.timestamp")).map(Some),
        None => Some(None),
    };
    let source = Source {
        name: name?,
        paths: paths?,
        exclude: exclude?,
        start_at: start_at?,
        multiline: multiline?,
        max_line_bytes: max_line_bytes?,
        timestamp: timestamp?,
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
        if let Err(err) = crate::discover::glob(&pattern) {
            ctx.error(
                pos,
                format!("`{what}` has an invalid glob: {}", err.source.kind()),
                None,
            );
            ok = false;
            continue;
        }
        out.push(pattern);
    }
    ok.then_some(out)
}

/// `multiline: java` (a preset with the defaults), or the mapping with `start:` or `preset:`.
fn multiline(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Multiline> {
    if let Kind::Str(name) = &node.kind {
        let start = super::multiline::preset(ctx, name, node.pos, what)?;
        return Some(Multiline {
            start,
            max_lines: usize::try_from(DEFAULT_MULTILINE_MAX_LINES).ok()?,
            max_bytes: DEFAULT_MULTILINE_MAX_BYTES,
            timeout: DEFAULT_MULTILINE_TIMEOUT,
        });
    }
    let map = ctx.map(node, what, MULTILINE_KEYS)?;
    let start = match (map.get("start"), map.get("preset")) {
        (Some(_), Some(preset)) => {
            ctx.error(
                preset.pos,
                format!("`{what}` has both `start` and `preset`"),
                Some("a preset is a `start` regex; keep one of them".into()),
            );
            None
        }
        (None, Some(preset)) => ctx
            .non_empty_string(preset, &format!("{what}.preset"))
            .and_then(|name| super::multiline::preset(ctx, &name, preset.pos, what)),
        _ => multiline_start(ctx, &map, what),
    };
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

fn multiline_start(
    ctx: &mut Ctx<'_>,
    map: &super::walk::Map<'_>,
    what: &str,
) -> Option<regex::bytes::Regex> {
    let node = ctx.required(map, "start", &format!("`{what}`"))?;
    let pattern = ctx.non_empty_string(node, &format!("{what}.start"))?;
    match crate::rules::compile_pattern(&pattern) {
        Ok(re) => Some(re),
        Err(message) => {
            ctx.error(
                node.pos,
                format!(
                    "`{what}.start` is not a valid regex: {}",
                    short_regex_error(&message)
                ),
                None,
            );
            None
        }
    }
}
