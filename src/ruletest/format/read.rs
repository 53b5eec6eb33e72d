//! Reading a test file's YAML into the model of [`super`], with the readers the configuration
//! uses (`config::yaml`'s node tree, `config::walk`'s [`Ctx`]): unknown keys, wrong types and
//! values that do not parse are all reported in one round, each at its `file:line:column`,
//! worded as `check` words them.
//!
//! To add a key to a mapping: add its name to that mapping's key list below (`FILE_KEYS`,
//! `CASE_KEYS`, `INPUT_KEYS`, `EXPECT_KEYS`, `FIRE_KEYS`), read it in the function of the same
//! name with [`opt`] (optional) or [`Ctx::required`] and a `Ctx` reader, and store it in the
//! model's field.

use std::time::Duration;

use jiff::Timestamp;

use crate::config::walk::{Ctx, Map};
use crate::config::walk::{opt, severity};
use crate::config::yaml::{Kind, Node};

use super::{
    AbsentExpect, Case, DEFAULT_START, Fire, IncidentExpect, Input, MAX_OFFSET, MAX_REPEAT, Named,
    TestFile, WindowExpect,
};

const FILE_KEYS: &[&str] = &["config", "start", "cases"];
const CASE_KEYS: &[&str] = &[
    "name",
    "input",
    "expect",
    "expect_no_alerts",
    "windows",
    "absent",
    "silences",
];
const ABSENT_KEYS: &[&str] = &["rule", "source", "group", "at", "back"];
const INPUT_KEYS: &[&str] = &["at", "every", "repeat", "source", "file", "line", "lines"];
const EXPECT_KEYS: &[&str] = &[
    "window",
    "fires",
    "not_firing",
    "contains",
    "not_contains",
    "title_contains",
    "shows",
    "new",
    "ongoing",
    "resolved",
    "sent",
];
const FIRE_KEYS: &[&str] = &["rule", "count", "group", "severity"];

/// Reads a whole test file (`ctx` reads its path and text); `None` when a problem was recorded.
pub(super) fn file(ctx: &mut Ctx<'_>, root: &Node) -> Option<TestFile> {
    let map = ctx.map(root, "", FILE_KEYS)?;
    let config = ctx
        .required(&map, "config", "the test file")
        .and_then(|node| Some((ctx.non_empty_string(node, "config")?, node)));
    let start_time = opt(ctx, &map, "start", None, |c, n, _| start(c, n).map(Some));
    let cases = opt(ctx, &map, "cases", Vec::new(), |c, n, k| {
        items(c, n, k, case)
    });
    if cases.as_ref().is_some_and(Vec::is_empty) {
        ctx.error_at(None, 1, "the file has no `cases`", None);
    }
    let (config, config_node) = config?;
    let path = ctx.file().to_owned();
    let base = path.parent().unwrap_or(std::path::Path::new(""));
    Some(TestFile {
        config: base.join(config),
        config_position: config_node.pos.line_col(),
        text: ctx.text().to_owned(),
        path,
        start: start_time?.unwrap_or_else(|| {
            DEFAULT_START
                .parse()
                .expect("the default start is a valid timestamp")
        }),
        cases: cases?,
    })
}

/// Reads the list `node` (named `what`) with `read`, which gets each item and its name
/// (`what[i]`); `None` when any item had a problem.
fn items<T>(
    ctx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    read: impl Fn(&mut Ctx<'_>, &Node, &str) -> Option<T>,
) -> Option<Vec<T>> {
    let nodes = ctx.list(node, what)?;
    let read: Vec<Option<T>> = nodes
        .iter()
        .enumerate()
        .map(|(i, item)| read(ctx, item, &format!("{what}[{i}]")))
        .collect();
    read.into_iter().collect()
}

fn start(ctx: &mut Ctx<'_>, node: &Node) -> Option<Timestamp> {
    let text = ctx.string(node, "start")?;
    match text.parse() {
        Ok(start) => Some(start),
        Err(err) => {
            ctx.error(
                node.pos,
                format!("invalid `start` time `{text}`: {err}"),
                Some("write an RFC 3339 time like `2026-11-28T10:00:00+08:00`".into()),
            );
            None
        }
    }
}

fn case(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Case> {
    let map = ctx.map(node, what, CASE_KEYS)?;
    let name_node = ctx.required(&map, "name", &format!("`{what}`"));
    let name = name_node.and_then(|n| ctx.string(n, &format!("{what}.name")));
    let input = opt(ctx, &map, "input", Vec::new(), |c, n, k| {
        items(c, n, &format!("{what}.{k}"), input)
    });
    let expect = opt(ctx, &map, "expect", Vec::new(), |c, n, k| {
        items(c, n, &format!("{what}.{k}"), expect)
    });
    let expect_no_alerts = opt(ctx, &map, "expect_no_alerts", false, |c, n, k| {
        c.boolean(n, &format!("{what}.{k}"))
    });
    let windows = opt(ctx, &map, "windows", None, |c, n, k| {
        c.integer(n, &format!("{what}.{k}"), 0, u32::MAX.into())
            .map(|w| u32::try_from(w).ok())
    });
    let absent = opt(ctx, &map, "absent", None, |c, n, k| {
        items(c, n, &format!("{what}.{k}"), absent).map(Some)
    });
    let silences = opt(ctx, &map, "silences", Vec::new(), |c, n, k| {
        super::silences::silences(c, n, &format!("{what}.{k}"))
    });
    let (name, name_node) = (name?, name_node?);
    let (expect, expect_no_alerts, windows) = (expect?, expect_no_alerts?, windows?);
    let absent = absent?;
    if expect_no_alerts && !expect.is_empty() {
        ctx.error(
            name_node.pos,
            format!("case `{name}` has both `expect` and `expect_no_alerts: true`"),
            Some("keep one: `expect_no_alerts` already means no rule fires in any window".into()),
        );
    }
    if !expect_no_alerts && expect.is_empty() && windows.is_none() && absent.is_none() {
        ctx.error(
            name_node.pos,
            format!("case `{name}` expects nothing"),
            Some("add `expect:`, `expect_no_alerts: true`, `windows:` or `absent:`".into()),
        );
    }
    Some(Case {
        name,
        position: name_node.pos.line_col(),
        input: input?,
        expect,
        expect_no_alerts,
        windows,
        absent,
        silences: silences?,
    })
}

/// An `absent:` entry: `{rule | source, group, at, back}`.
fn absent(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<AbsentExpect> {
    let map = ctx.map(node, what, ABSENT_KEYS)?;
    let name = |ctx: &mut Ctx<'_>, key: &str| {
        opt(ctx, &map, key, None, |c, n, k| {
            named(c, n, &format!("{what}.{k}")).map(Some)
        })
    };
    let (rule, source) = (name(ctx, "rule"), name(ctx, "source"));
    let group = opt(ctx, &map, "group", Vec::new(), |c, n, k| {
        group(c, n, &format!("{what}.{k}"))
    });
    let time = |ctx: &mut Ctx<'_>, key: &str| {
        opt(ctx, &map, key, None, |c, n, k| {
            c.duration_or_zero(n, &format!("{what}.{k}")).map(Some)
        })
    };
    let (at, back) = (time(ctx, "at"), time(ctx, "back"));
    let (name, is_source) = match (rule?, source?) {
        (Some(rule), None) => (rule, false),
        (None, Some(source)) => (source, true),
        _ => {
            ctx.error(
                node.pos,
                format!("`{what}` names either a `rule` or a `source`"),
                Some("`rule:` an absence rule, or `source:` a source with `source_stalled`".into()),
            );
            return None;
        }
    };
    Some(AbsentExpect {
        name,
        is_source,
        group: group?,
        at: at?,
        back: back?,
    })
}

fn input(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Input> {
    let map = ctx.map(node, what, INPUT_KEYS)?;
    let at_node = ctx.required(&map, "at", &format!("`{what}`"));
    let at = at_node.and_then(|n| ctx.duration_or_zero(n, &format!("{what}.at")));
    let every = opt(ctx, &map, "every", Duration::ZERO, |c, n, k| {
        c.duration_or_zero(n, &format!("{what}.{k}"))
    });
    let repeat = opt(ctx, &map, "repeat", 1, |c, n, k| {
        c.integer(n, &format!("{what}.{k}"), 1, MAX_REPEAT.into())
    })
    .and_then(|repeat| u32::try_from(repeat).ok());
    if let (Some(every), None) = (map.get("every"), map.get("repeat")) {
        ctx.error(
            every.pos,
            "`every` without `repeat`",
            Some("add `repeat: N`, the number of times the line is written".into()),
        );
    }
    let source = opt(ctx, &map, "source", None, |c, n, k| {
        named(c, n, &format!("{what}.{k}")).map(Some)
    });
    let file = opt(ctx, &map, "file", None, |c, n, k| {
        c.string(n, &format!("{what}.{k}")).map(Some)
    });
    let lines = lines(ctx, &map, node, what);
    if let (Some(at_node), Some(first), Some(every), Some(repeat)) = (at_node, at, every, repeat) {
        let last = every
            .checked_mul(repeat.saturating_sub(1))
            .and_then(|span| span.checked_add(first));
        if last.is_none_or(|last| last > MAX_OFFSET) {
            ctx.error(
                at_node.pos,
                "input times must stay within 10 years of `start`",
                None,
            );
            return None;
        }
    }
    Some(Input {
        at: at?,
        every: every?,
        repeat: repeat?,
        source: source?,
        position: node.pos.line_col(),
        file: file?,
        lines: lines?,
    })
}

/// The input's `line` or `lines` (exactly one of them, not empty).
fn lines(ctx: &mut Ctx<'_>, map: &Map<'_>, node: &Node, what: &str) -> Option<Vec<String>> {
    let (message, help) = match (map.get("line"), map.get("lines")) {
        (Some(line), None) => return ctx.string(line, &format!("{what}.line")).map(|l| vec![l]),
        (None, Some(lines)) => {
            let lines = ctx.strings(lines, &format!("{what}.lines"))?;
            if !lines.is_empty() {
                return Some(lines.into_iter().map(|(line, _)| line).collect());
            }
            ("`lines` is empty", None)
        }
        (Some(_), Some(_)) => (
            "input has both `line` and `lines`",
            Some("use `line` for one line, `lines` for several"),
        ),
        (None, None) => (
            "input has neither `line` nor `lines`",
            Some("add `line: \"...\"` or `lines: [\"...\", \"...\"]`"),
        ),
    };
    ctx.error(node.pos, message, help.map(str::to_owned));
    None
}

fn expect(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<WindowExpect> {
    let map = ctx.map(node, what, EXPECT_KEYS)?;
    let window = ctx
        .required(&map, "window", &format!("`{what}`"))
        .and_then(|n| {
            let window = ctx.integer(n, &format!("{what}.window"), 0, u32::MAX.into())?;
            if window == 0 {
                ctx.error(n.pos, "windows are numbered from 1", None);
            }
            u32::try_from(window).ok().filter(|w| *w > 0)
        });
    let fires = opt(ctx, &map, "fires", Vec::new(), |c, n, k| {
        items(c, n, &format!("{what}.{k}"), fire)
    });
    let read_names = |ctx: &mut Ctx<'_>, key: &str| {
        opt(ctx, &map, key, None, |c, n, k| {
            names(c, n, &format!("{what}.{k}")).map(Some)
        })
    };
    let not_firing = read_names(ctx, "not_firing");
    let new = read_names(ctx, "new");
    let ongoing = read_names(ctx, "ongoing");
    let resolved = read_names(ctx, "resolved");
    let texts = |ctx: &mut Ctx<'_>, key: &str| {
        opt(ctx, &map, key, Vec::new(), |c, n, k| {
            let texts = c.strings(n, &format!("{what}.{k}"))?;
            Some(texts.into_iter().map(|(text, _)| text).collect())
        })
    };
    let contains = texts(ctx, "contains");
    let not_contains = texts(ctx, "not_contains");
    let title_contains = texts(ctx, "title_contains");
    let shows = texts(ctx, "shows");
    let sent = opt(ctx, &map, "sent", None, |c, n, k| {
        c.boolean(n, &format!("{what}.{k}")).map(Some)
    });
    let (fires, not_firing) = (fires?, not_firing?.unwrap_or_default());
    for fire in &fires {
        if not_firing.iter().any(|n| n.name == fire.rule.name) {
            ctx.error_at(
                fire.rule.position,
                fire.rule.name.len(),
                format!(
                    "rule `{}` is both in `fires` and `not_firing`",
                    fire.rule.name
                ),
                None,
            );
        }
    }
    Some(WindowExpect {
        window: window?,
        position: node.pos.line_col(),
        fires,
        not_firing,
        contains: contains?,
        not_contains: not_contains?,
        title_contains: title_contains?,
        shows: shows?,
        incidents: IncidentExpect {
            new: new?,
            ongoing: ongoing?,
            resolved: resolved?,
            sent: sent?,
        },
    })
}

fn fire(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Fire> {
    let map = ctx.map(node, what, FIRE_KEYS)?;
    let rule = ctx
        .required(&map, "rule", &format!("`{what}`"))
        .and_then(|n| named(ctx, n, &format!("{what}.rule")));
    let count = ctx
        .required(&map, "count", &format!("`{what}`"))
        .and_then(|n| ctx.integer(n, &format!("{what}.count"), 0, u64::MAX));
    let group = opt(ctx, &map, "group", Vec::new(), |c, n, k| {
        group(c, n, &format!("{what}.{k}"))
    });
    let severity = opt(ctx, &map, "severity", None, |c, n, k| {
        severity(c, n, &format!("{what}.{k}")).map(Some)
    });
    Some(Fire {
        rule: rule?,
        count: count?,
        group: group?,
        severity: severity?,
    })
}

/// `group: {name: value, ...}`: `group_by` names and values, in the file's order.
fn group(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<(String, String)>> {
    let entries = match &node.kind {
        Kind::Map(entries) => entries.as_slice(),
        Kind::Null => &[],
        other => {
            ctx.error(
                node.pos,
                format!(
                    "`{what}` must map `group_by` names to values, found {}",
                    other.describe()
                ),
                Some("for example `group: {peer: 10.0.0.5}`".into()),
            );
            return None;
        }
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut ok = true;
    for (key, value) in entries {
        let name = ctx.string(key, what);
        let value = name
            .as_ref()
            .and_then(|name| ctx.string(value, &format!("{what}.{name}")));
        match (name, value) {
            (Some(name), _) if out.iter().any(|(seen, _)| *seen == name) => {
                ctx.error(key.pos, format!("duplicate key `{name}` in `{what}`"), None);
                ok = false;
            }
            (Some(name), Some(value)) => out.push((name, value)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// A name written in the file, with its position.
fn named(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Named> {
    let name = ctx.string(node, what)?;
    Some(Named {
        name,
        position: node.pos.line_col(),
    })
}

/// A list of names (one name is a list of one).
fn names(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<Named>> {
    let names = ctx.strings(node, what)?;
    Some(
        names
            .into_iter()
            .map(|(name, pos)| Named {
                name,
                position: pos.line_col(),
            })
            .collect(),
    )
}
