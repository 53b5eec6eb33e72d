//! The JSON Schema of the config file and of an included rule file, for editors
//! (yaml-language-server completes keys, shows these descriptions and flags mistakes).
//!
//! The loader (`walk`, `build` and the section files) stays the authority: the schema is
//! written here by hand, next to it, and `schema::tests` keeps the two in step. It records
//! every key list the loader reads with (`walk::recording`) over the bundled configs and
//! `tests/fixtures/schema/every-section.yaml`, and fails when a key is in one and not in the
//! other, and when `schema/*.json` differs from what `logding schema` prints.
//!
//! To add a key: add it to the loader's key list, add it to the section's `object(...)` below
//! with its type and a one-line description, then `UPDATE_SCHEMA=1 cargo test --lib schema`
//! rewrites `schema/*.json`. A new section (a mapping the loader reads with `Ctx::map`) also
//! needs a line in the fixture, so that the test sees the loader read it.

use serde_json::{Value, json};

use crate::window::BUILTIN_MASKS;

pub mod fleet;
mod suppress;
mod values;

use suppress::{inhibit, mute, silences, time_intervals};
use values::{
    boolean, byte_size, choice, duration, integer, list, object, require, severity, string, strings,
};

/// The schema of the main config file (`logding.yaml`).
pub fn config_schema() -> Value {
    let mut root = object(
        "logding's configuration (`logding check -c FILE` validates it).",
        vec![
            (
                "host",
                string("Shown in every message. `auto` (the default): the hostname."),
            ),
            (
                "state_dir",
                string("Checkpoints and the outbox. Default `/var/lib/logding`."),
            ),
            (
                "window",
                duration("Matches within a window become one summary. Default `1m`."),
            ),
            (
                "include",
                strings("Rule files (globs), relative to this file; each holds `rules:` only."),
            ),
            ("dingtalk", dingtalk()),
            ("sources", list("Files to follow.", source())),
            ("rules", rules()),
            ("summary", summary()),
            ("tail", tail()),
            ("incidents", incidents()),
            ("alertmanager", fleet::alertmanager()),
            ("time_intervals", time_intervals()),
            (
                "mute",
                mute("Mute hours of every rule without its own `mute:`."),
            ),
            ("inhibit", inhibit()),
            ("silences", silences()),
            (
                "max_silence",
                duration("`check` warns about silences longer than this. Default `7d`."),
            ),
            (
                "metrics",
                object(
                    "The metrics and health listener (`/metrics`, `/healthz`, `/readyz`); off when absent.",
                    vec![
                        (
                            "listen",
                            string(
                                "Address and port. Default `127.0.0.1:9687`; `0.0.0.0:9687` exposes it to the network.",
                            ),
                        ),
                        (
                            "ready_max_failing",
                            duration(
                                "`/readyz` fails once posts have failed for longer than this. Default `10m`.",
                            ),
                        ),
                    ],
                ),
            ),
            (
                "outbox",
                object(
                    "Bounds of the outbox.",
                    vec![(
                        "max_entries",
                        integer(
                            "When more summaries wait than this, the oldest are merged. Default `1000`.",
                            1,
                            1_000_000,
                        ),
                    )],
                ),
            ),
        ],
    );
    with_header(&mut root, "logding.schema.json", "logding configuration");
    root
}

/// The schema of an included rule file (`rules/*.yaml`).
pub fn rules_schema() -> Value {
    let mut root = object(
        "A rule file included by `include:`; it holds `rules:` and `silences:`.",
        vec![("rules", rules()), ("silences", silences())],
    );
    with_header(&mut root, "rules.schema.json", "logding rule file");
    root
}

fn with_header(root: &mut Value, id: &str, title: &str) {
    let map = root.as_object_mut().expect("object() builds an object");
    map.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    map.insert(
        "$id".into(),
        json!(format!("https://logding.dev/schema/{id}")),
    );
    map.insert("title".into(), json!(title));
    // The file itself may not be empty or a list (the loader says so with a better message).
    map.insert("type".into(), json!("object"));
}

fn dingtalk() -> Value {
    object(
        "The DingTalk robot.",
        vec![
            (
                "webhook",
                string(
                    "Webhook URL with its `access_token`, usually `${DINGTALK_WEBHOOK}`; empty: not configured. Never write the token here.",
                ),
            ),
            (
                "webhook_file",
                string("Read the webhook from this file (trimmed). Exclusive with `webhook`."),
            ),
            (
                "secret",
                string(
                    "Signing secret (`SEC...`), usually `${DINGTALK_SECRET}`; empty: not configured.",
                ),
            ),
            (
                "secret_file",
                string("Read the secret from this file (trimmed). Exclusive with `secret`."),
            ),
            (
                "keyword",
                string("The robot's custom keyword; every message carries it. Default `alert`."),
            ),
            (
                "msgtype",
                choice("Message type. Default `markdown`.", &["markdown", "text"]),
            ),
            (
                "mention",
                object(
                    "Who is @-mentioned, from which severity.",
                    vec![
                        ("mobiles", strings("Mobile numbers to @.")),
                        ("user_ids", strings("DingTalk user ids to @.")),
                        ("all", boolean("@all. Default `false`.")),
                        (
                            "min_severity",
                            severity(
                                "Mention only when a rule at or above this severity fired. Default `critical`.",
                            ),
                        ),
                    ],
                ),
            ),
            (
                "max_per_minute",
                integer(
                    "Client-side budget of posts per rolling minute. Default `18`.",
                    1,
                    20,
                ),
            ),
            (
                "throttle_pause",
                duration("Silence after DingTalk reports the robot throttled. Default `10m`."),
            ),
            (
                "max_body_bytes",
                byte_size("Budget of one JSON body, 2000..=20000 bytes. Default `19000`."),
            ),
            (
                "connect_timeout",
                duration("TCP/TLS connect timeout. Default `5s`."),
            ),
            ("timeout", duration("Whole-request timeout. Default `15s`.")),
            (
                "allow_insecure_http",
                boolean("Allow `http://` webhooks to non-loopback hosts. Default `false`."),
            ),
        ],
    )
}

fn source() -> Value {
    let mut source = object(
        "A set of log files, named for rules' `sources:`.",
        vec![
            ("name", string("Unique; rules name it in `sources:`.")),
            (
                "paths",
                strings("Globs of files to follow, relative to this file. At least one."),
            ),
            (
                "exclude",
                strings("Files to skip; a glob without `/` matches the file name (`*.gz`)."),
            ),
            (
                "start_at",
                choice(
                    "Where to start in a file seen the first time. Default `end`.",
                    &["end", "beginning"],
                ),
            ),
            ("multiline", multiline()),
            (
                "max_line_bytes",
                byte_size("Longer lines are cut (256 bytes..=64MiB). Default `64KiB`."),
            ),
            ("timestamp", timestamp()),
            (
                "source_stalled",
                duration("Fires when no file of the source grew for this long, or none matches."),
            ),
        ],
    );
    require(&mut source, &["name", "paths"]);
    source
}

/// `multiline: java` (a preset), or the mapping.
fn multiline() -> Value {
    let presets: Vec<&str> = super::multiline::PRESETS.iter().map(|(n, _)| *n).collect();
    let mut multiline = object(
        "Lines that belong to one event (stack traces).",
        vec![
            (
                "start",
                string("Regex: a line matching it begins an event (or `preset`)."),
            ),
            ("preset", choice("A preset `start` regex.", &presets)),
            (
                "max_lines",
                integer(
                    "An event is cut after this many lines. Default `500`.",
                    1,
                    100_000,
                ),
            ),
            (
                "max_bytes",
                byte_size("An event is cut after this many bytes. Default `64KiB`."),
            ),
            (
                "timeout",
                duration("An open event is flushed after this long without a line. Default `1s`."),
            ),
        ],
    );
    multiline["type"] = json!(["object", "null", "string"]);
    multiline["if"] = json!({"type": "string"});
    multiline["then"] = choice(
        "A preset: `java`, `jul`, `python`, `go`, `postgres`, `dotnet`.",
        &presets,
    );
    multiline
}

fn rules() -> Value {
    let mut rule = object(
        "A rule: regexes whose matches are counted per window.",
        vec![
            (
                "name",
                string("Unique across the main file and every included file."),
            ),
            (
                "pattern",
                strings("Regex, or list of regexes: any of them matching is a hit."),
            ),
            (
                "exclude",
                strings("Regexes: a line matching any of them is not a hit (counted as excluded)."),
            ),
            (
                "severity",
                severity("Severity of the hits. Default `error`."),
            ),
            (
                "min_count",
                integer(
                    "Reported only with at least this many hits per group in a window. Default `1`.",
                    1,
                    1_000_000_000,
                ),
            ),
            (
                "group_by",
                strings("Named captures (`(?P<status>...)`) that split the count."),
            ),
            (
                "sources",
                strings("Sources the rule applies to. Default: all."),
            ),
            (
                "repeat_interval",
                duration("This rule's `incidents.repeat_interval`."),
            ),
            (
                "resolve_after",
                duration("This rule's `incidents.resolve_after`."),
            ),
            (
                "send_resolved",
                boolean("This rule's `incidents.send_resolved`."),
            ),
            (
                "keep_firing_for",
                duration("This rule's `incidents.keep_firing_for` (`0s` allowed)."),
            ),
            (
                "kind",
                choice(
                    "`absence`: fires when fewer than `min_count` lines match in `window`. Default `match`.",
                    &["match", "absence"],
                ),
            ),
            (
                "window",
                duration("Absence rules: the time span in which lines are expected."),
            ),
            ("keys", absence_keys()),
            (
                "arm",
                choice(
                    "Absence rules: watch keys from the start, or once seen. Default `on_start`.",
                    &["on_start", "after_first_seen"],
                ),
            ),
            (
                "schedule",
                string("Absence rules: the time interval (`time_intervals:`) in which it fires."),
            ),
            (
                "mute",
                mute("This rule's mute hours (replaces the top-level `mute:`)."),
            ),
            (
                "examples",
                object(
                    "Lines `logding check` tests the rule against.",
                    vec![
                        ("match", strings("Lines that must be hits.")),
                        ("no_match", strings("Lines that must not be hits.")),
                    ],
                ),
            ),
            (
                "masks",
                strings(
                    "Masks of this rule's line shapes (built-in or custom names), or `none`. \
                     Default: `summary.masks` and every custom mask.",
                ),
            ),
            (
                "show",
                strings(
                    "Regexes: lines of a multiline event matching any are shown under its sample.",
                ),
            ),
            ("severity_from", severity_from()),
        ],
    );
    require(&mut rule, &["name", "pattern"]);
    list("Rules; more may come from `include`.", rule)
}

fn severity_from() -> Value {
    let levels = json!({
        "description": "Captured value (ignoring ASCII case) to severity; others take `severity`.",
        "type": "object",
        "additionalProperties": severity("A severity."),
    });
    let mut from = object(
        "Where the line's level is read: `{capture: level, map: {ERROR: error, FATAL: critical}}`.",
        vec![
            (
                "capture",
                string("A named capture of the rule's patterns holding the level."),
            ),
            ("map", levels),
        ],
    );
    require(&mut from, &["capture", "map"]);
    from
}

fn summary() -> Value {
    let mut mask = object(
        "A custom mask: the regex's matches are shown as `<name>`.",
        vec![
            ("name", string("Shown as `<name>`.")),
            ("pattern", string("Regex.")),
        ],
    );
    require(&mut mask, &["name", "pattern"]);
    object(
        "How summaries are built.",
        vec![
            (
                "max_groups",
                integer(
                    "Groups shown per rule; the rest fold into \"other\". Default `20`.",
                    1,
                    1_000,
                ),
            ),
            (
                "max_patterns",
                integer(
                    "De-duplicated line patterns shown per rule. Default `5`.",
                    1,
                    100,
                ),
            ),
            (
                "masks",
                json!({
                    "description": "Built-in masks that make similar lines one pattern.",
                    "type": ["array", "null"],
                    "items": {"enum": BUILTIN_MASKS},
                }),
            ),
            ("custom_masks", list("Extra masks.", mask)),
            (
                "timezone",
                string(
                    "Time zone of window times: `local`, an IANA name, `UTC` or `+08:00`. Default `local`.",
                ),
            ),
        ],
    )
}

fn tail() -> Value {
    object(
        "How files are followed.",
        vec![
            (
                "poll_interval",
                duration("Stat of every followed file. Default `1s`."),
            ),
            (
                "rescan_interval",
                duration("Globs re-expanded to find new files. Default `10s`."),
            ),
            (
                "rotate_wait",
                duration("A rotated or deleted file is closed once idle this long. Default `30s`."),
            ),
            (
                "poll_only",
                boolean("Never use filesystem notifications. Default `false`."),
            ),
            (
                "batch_wait",
                duration("Let inotify events gather this long before reading. Default: not set."),
            ),
            (
                "max_open_files",
                integer("Cap on open file descriptors. Default `512`.", 1, 1_000_000),
            ),
            (
                "read_budget_bytes",
                byte_size("Bytes read from one file per pass (4KiB..=1GiB). Default `256KiB`."),
            ),
            (
                "checkpoint_interval",
                duration("How often committed offsets are persisted. Default `1s`."),
            ),
        ],
    )
}

/// The `incidents:` section: lifecycle defaults (the first four also per rule).
fn incidents() -> Value {
    object(
        "The incident lifecycle: new, ongoing (held), repeat, resolved.",
        vec![
            (
                "repeat_interval",
                duration(
                    "An ongoing incident is reported in full again after this long. Default `30m`.",
                ),
            ),
            (
                "resolve_after",
                duration("An incident with no hits for this long is resolved. Default `5m`."),
            ),
            (
                "send_resolved",
                boolean(
                    "A resolved incident gets a message of its own (else a line in the next). Default `true`.",
                ),
            ),
            (
                "keep_firing_for",
                duration(
                    "Flapping guard: more quiet time before resolving (`0s` allowed). Default `0s`.",
                ),
            ),
            (
                "escalate_ratio",
                integer(
                    "A window with more than this many times the previous window's hits is reported at once. Default `10`.",
                    2,
                    1_000_000,
                ),
            ),
            (
                "max_incidents",
                integer(
                    "Incidents kept in `state_dir/incidents.json`; the oldest resolved go first. Default `1000`.",
                    1,
                    1_000_000,
                ),
            ),
        ],
    )
}

/// A source's `timestamp:`: a preset name, or a mapping.
fn timestamp() -> Value {
    let presets: Vec<&str> = crate::event_time::PRESETS
        .iter()
        .map(|(name, _, _)| *name)
        .collect();
    let preset = "A layout preset.";
    json!({
        "description": "How the lines say when they happened: a preset name, or a mapping.",
        "anyOf": [
            choice(preset, &presets),
            object(
                "`preset`, or `pattern` and `format`; with `timezone` and `max_skew`.",
                vec![
                    ("preset", choice(preset, &presets)),
                    ("pattern", string("Regex with a capture named `ts` (and optionally `tz`).")),
                    ("format", string("strftime format of `ts`, or `iso8601`, `epoch`, `epoch_ms`.")),
                    ("timezone", string("Zone of times without an offset. Default `local`.")),
                    ("max_skew", duration("Lines stamped further ahead of the clock are skewed. Default `10m`.")),
                ],
            ),
        ],
    })
}

/// A mapping with exactly these keys; `null` reads as an empty mapping, as in the loader.
/// An absence rule's `keys:`.
fn absence_keys() -> Value {
    let value = json!({"type": ["string", "object"], "additionalProperties": {"type": "string"}});
    object(
        "Absence rules: the `group_by` values expected.",
        vec![
            (
                "static",
                list(
                    "Values expected even if never seen (a mapping with several captures).",
                    value,
                ),
            ),
            (
                "learn",
                boolean("Values seen in the last `learn_window` are expected too."),
            ),
            (
                "learn_window",
                duration("How long a learned value stays expected. Default `7d`."),
            ),
        ],
    )
}

#[cfg(test)]
mod tests;
