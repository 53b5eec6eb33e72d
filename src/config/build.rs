//! The schema: walks the main file's [`Node`] tree into a [`Config`], section by section.
//!
//! Every section has its keys listed once (unknown keys are errors with a suggestion), its
//! defaults as named constants, and its validation next to its reading. The larger sections
//! have their own files (`dingtalk`, `sources`, `summary`, and `rule_files` for rules and
//! included rule files); the small ones (`tail`, `outbox`) are here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::dingtalk::dingtalk;
use super::incidents::{incidents, with_rules};
use super::inhibit::{inhibit, mute};
use super::origin::Origin;
use super::rule_files::RuleReader;
use super::silences::{DEFAULT_MAX_SILENCE, SilenceReader};
use super::sources::{source_names, sources};
use super::summary::{custom_mask_names, summary};
use super::time_intervals::interval_names;
use super::units::MIB;
use super::walk::{Ctx, Map, opt};
use super::yaml::{Kind, Node};
use super::{Config, OutboxOptions, TailOptions};
use crate::absence::Watches;
use crate::rules::RuleSet;
use crate::suppress::{MutePolicies, Settings};

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
    "incidents",
    "rules",
    "metrics",
    "time_intervals",
    "alertmanager",
    "mute",
    "inhibit",
    "silences",
    "max_silence",
];
const TAIL_KEYS: &[&str] = &[
    "poll_interval",
    "rescan_interval",
    "rotate_wait",
    "poll_only",
    "batch_wait",
    "max_open_files",
    "read_budget_bytes",
    "checkpoint_interval",
];
const OUTBOX_KEYS: &[&str] = &["max_entries"];

const DEFAULT_STATE_DIR: &str = "/var/lib/logding";
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

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
    let metrics = super::metrics::metrics(ctx, top.get("metrics"));
    let incidents = incidents(ctx, top.get("incidents"));
    let time_intervals = super::time_intervals::time_intervals(ctx, top.get("time_intervals"));
    let stalls = super::absence::stalls(ctx, top.get("sources"));
    let alertmanager = super::alertmanager::alertmanager(ctx, top.get("alertmanager"));

    // Names as written, even of sources with other problems: a rule naming one of them should
    // not get a second, confusing "unknown source" error.
    let source_names = top.get("sources").map(source_names).unwrap_or_default();
    let interval_names = interval_names(top.get("time_intervals"));
    let max_silence = opt(ctx, &top, "max_silence", DEFAULT_MAX_SILENCE, Ctx::duration);
    let silences = SilenceReader::new(
        jiff::Timestamp::now(),
        max_silence.unwrap_or(DEFAULT_MAX_SILENCE),
    );
    let mut reader = RuleReader::new(source_names, check_examples)
        .with_custom_masks(custom_mask_names(top.get("summary")))
        .with_schedules(interval_names.clone())
        .with_suppression(interval_names.clone(), silences);
    if let Some(node) = top.get("rules") {
        reader.read_rules(ctx, node);
    }
    if let Some(node) = top.get("silences") {
        reader.read_silences(ctx, node);
    }
    let mut rule_files = vec![origin.absolute.clone()];
    if let Some(node) = top.get("include") {
        rule_files.extend(reader.read_includes(ctx, node, origin));
    }
    let rule_policies = reader.take_policies();
    let absence_rules = reader.take_absence();
    let read = reader.take_suppression();
    let inhibit = inhibit(ctx, top.get("inhibit"), &read.rule_names);
    let mute = match top.get("mute") {
        Some(node) => mute(ctx, node, "mute", &interval_names).map(Some),
        None => Some(None),
    };
    let rules = reader.finish(ctx, top.key_pos("rules").or(top.key_pos("include")), origin);

    if !ctx.diagnostics.is_empty() {
        return None;
    }
    let sources = sources?;
    let stalls = super::absence::with_paths(stalls, &sources);
    Some(Config {
        path: origin.absolute.clone(),
        host: host?,
        state_dir: state_dir?,
        window: window?,
        dingtalk: dingtalk?,
        sources,
        rules: Arc::new(RuleSet::new(rules?)),
        rule_files,
        summary: summary?,
        tail: tail?,
        outbox: outbox?,
        warnings: Vec::new(),
        metrics: metrics?,
        incidents: with_rules(incidents?, rule_policies).with_absence(Watches {
            rules: absence_rules,
            stalls,
        }),
        suppression: Settings {
            intervals: time_intervals.clone()?,
            mute: MutePolicies {
                defaults: mute?,
                rules: read.mutes.into_iter().collect(),
            },
            inhibit: inhibit?,
            silences: read.silences?,
            max_silence: max_silence?,
        },
        time_intervals: time_intervals?,
        alertmanager: alertmanager?,
    })
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

fn tail(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<TailOptions> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "tail", TAIL_KEYS)?;
    let defaults = TailOptions::default();
    let duration = |ctx: &mut Ctx<'_>, key: &str, default: Duration| {
        opt(ctx, &map, key, default, |c, n, k| {
            c.duration(n, &format!("tail.{k}"))
        })
    };
    let poll_interval = duration(ctx, "poll_interval", defaults.poll_interval);
    let rescan_interval = duration(ctx, "rescan_interval", defaults.rescan_interval);
    let rotate_wait = duration(ctx, "rotate_wait", defaults.rotate_wait);
    let checkpoint_interval = duration(ctx, "checkpoint_interval", defaults.checkpoint_interval);
    let batch_wait = opt(ctx, &map, "batch_wait", defaults.batch_wait, |c, n, _| {
        c.duration(n, "tail.batch_wait").map(Some)
    });
    let poll_only = opt(ctx, &map, "poll_only", defaults.poll_only, |c, n, _| {
        c.boolean(n, "tail.poll_only")
    });
    let max_files = defaults.max_open_files;
    let max_open_files = opt(ctx, &map, "max_open_files", max_files, |c, n, k| {
        c.count(n, &format!("tail.{k}"), 1, 1_000_000)
    });
    let budget = defaults.read_budget_bytes;
    let read_budget_bytes = opt(ctx, &map, "read_budget_bytes", budget, |c, n, k| {
        c.byte_size(n, &format!("tail.{k}"), 4096, 1024 * MIB)
    });
    Some(TailOptions {
        poll_interval: poll_interval?,
        rescan_interval: rescan_interval?,
        rotate_wait: rotate_wait?,
        poll_only: poll_only?,
        batch_wait: batch_wait?,
        max_open_files: max_open_files?,
        read_budget_bytes: read_budget_bytes?,
        checkpoint_interval: checkpoint_interval?,
    })
}

pub(crate) fn outbox(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<OutboxOptions> {
    let null = Node::null();
    let map = ctx.map(node.unwrap_or(&null), "outbox", OUTBOX_KEYS)?;
    let default = OutboxOptions::default().max_entries;
    let max_entries = opt(ctx, &map, "max_entries", default, |c, n, _| {
        c.count(n, "outbox.max_entries", 1, 1_000_000)
    });
    Some(OutboxOptions {
        max_entries: max_entries?,
    })
}
