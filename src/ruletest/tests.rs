//! Unit tests of the test-file format, the runner and the diff, on a hand-built config.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    Config, DingTalk, Multiline, OutboxOptions, Source, StartAt, SummaryOptions, TailOptions,
};
use crate::rules::{Rule, RuleDef, RuleSet, Severity};
use crate::ruletest::{compare, format, run_file};

fn rule(name: &str, pattern: &str) -> RuleDef {
    RuleDef {
        name: name.into(),
        patterns: vec![pattern.into()],
        ..RuleDef::default()
    }
}

fn source(name: &str, multiline: Option<&str>) -> Source {
    Source {
        name: name.into(),
        paths: vec![format!("/var/log/{name}/*.log")],
        exclude: Vec::new(),
        start_at: StartAt::End,
        multiline: multiline.map(|start| Multiline {
            start: crate::rules::compile_pattern(start).expect("valid multiline start"),
            max_lines: 500,
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(1),
        }),
        max_line_bytes: 16 * 1024,
        timestamp: None,
    }
}

/// A config with a `java` source (multiline on a date) and an `nginx` source, and rules
/// `db-timeout` (grouped by peer), `java-oom` (critical) and `upstream-5xx` (min_count 3).
fn config() -> Config {
    let mut db = rule("db-timeout", r"db: timeout to (?P<peer>[\d.]+)");
    db.severity = Some(Severity::Warning);
    db.group_by = vec!["peer".into()];
    let mut oom = rule("java-oom", r"java\.lang\.OutOfMemoryError");
    oom.severity = Some(Severity::Critical);
    let mut upstream = rule("upstream-5xx", r#"" (?P<status>5\d\d) "#);
    upstream.sources = vec!["nginx".into()];
    upstream.min_count = Some(3);
    upstream.exclude = vec!["/healthz".into()];
    upstream.group_by = vec!["status".into()];
    let rules = [db, oom, upstream]
        .iter()
        .map(|def| Rule::compile(def).expect("valid test rule"))
        .collect();
    Config {
        path: PathBuf::from("/etc/logding/logding.yaml"),
        host: "app-01".into(),
        state_dir: PathBuf::from("/var/lib/logding"),
        window: Duration::from_secs(60),
        dingtalk: DingTalk {
            max_body_bytes: 20_000,
            timeout: Duration::from_secs(10),
            ..DingTalk::default()
        },
        sources: vec![
            source("java", Some(r"^\d{4}-\d{2}-\d{2}")),
            source("nginx", None),
        ],
        rules: Arc::new(RuleSet::new(rules)),
        rule_files: Vec::new(),
        summary: SummaryOptions {
            max_groups: 10,
            max_patterns: 5,
            masks: Vec::new(),
            custom_masks: Vec::new(),
            timezone: jiff::tz::TimeZone::UTC,
        },
        tail: TailOptions {
            poll_interval: Duration::from_secs(1),
            rescan_interval: Duration::from_secs(10),
            rotate_wait: Duration::from_secs(5),
            poll_only: false,
            batch_wait: None,
            max_open_files: 100,
            read_budget_bytes: 1 << 20,
            checkpoint_interval: Duration::from_secs(5),
        },
        outbox: OutboxOptions { max_entries: 100 },
        warnings: Vec::new(),
        metrics: None,
        incidents: crate::incident::Policies::default(),
        time_intervals: crate::suppress::TimeIntervals::default(),
        alertmanager: None,
        suppression: crate::suppress::Settings::default(),
    }
}

fn parse(text: &str) -> format::TestFile {
    match format::parse(Path::new("tests/t.yaml"), text) {
        Ok(file) => file,
        Err(diagnostics) => panic!("{}", errors(&diagnostics)),
    }
}

/// `file:line:column: message (help)` per diagnostic: the facts, independent of how `config`
/// renders diagnostics (the CLI tests pin that).
fn errors(diagnostics: &[crate::config::Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| {
            let (line, column) = d.position.unwrap_or((0, 0));
            let help = d
                .help
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!("{}:{line}:{column}: {}{help}", d.file.display(), d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a test file's text against [`config`] and returns each case as `name: ok` or
/// `name: FAILED` followed by its diff, the quoted message shortened to `| ...` (the render
/// tests pin the message itself).
#[track_caller]
fn run(text: &str) -> String {
    let file = parse(text);
    let results = run_file(&file, &config()).unwrap_or_else(|err| panic!("{err}"));
    results
        .iter()
        .map(|result| {
            if result.mismatches.is_empty() {
                format!("{}: ok", result.name)
            } else {
                let diff = compare::render_diff(&result.mismatches, "  ");
                let mut lines: Vec<&str> = Vec::new();
                for line in diff.lines() {
                    let is_quote = line.trim_start().starts_with('|');
                    if !(is_quote && lines.last().is_some_and(|l| l.ends_with("| ..."))) {
                        lines.push(if is_quote { "    | ..." } else { line });
                    }
                }
                format!("{}: FAILED\n{}", result.name, lines.join("\n"))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn malformed(text: &str) -> String {
    match format::parse(Path::new("tests/t.yaml"), text) {
        Ok(file) => match format::resolve(&file, &config()) {
            Ok(()) => panic!("expected errors"),
            Err(diagnostics) => errors(&diagnostics),
        },
        Err(diagnostics) => errors(&diagnostics),
    }
}

#[test]
fn config_path_is_relative_to_the_test_file_and_start_defaults() {
    let file = parse("config: ../logding.yaml\ncases: [{name: a, windows: 0}]\n");
    assert_eq!(file.config, Path::new("tests/../logding.yaml"));
    assert_eq!(file.start.to_string(), "2026-01-01T00:00:00Z");
    assert_eq!(file.config_position, Some((1, 9)));
}

#[test]
fn repeat_writes_at_every_interval() {
    let out = run(r#"
config: x.yaml
cases:
  - name: five DB timeouts in a minute fire once, grouped by peer
    input:
      - {at: 0s, source: java, line: "2026-11-28 10:00:00.100 ERROR db: timeout to 10.0.0.5"}
      - {at: 10s, every: 10s, repeat: 4, source: java, line: "2026-11-28 10:00:10 ERROR db: timeout to 10.0.0.5"}
    windows: 1
    expect:
      - window: 1
        fires: [{rule: db-timeout, count: 5, group: {peer: 10.0.0.5}, severity: warning}]
        not_firing: [java-oom]
        contains: ["alert", "db-timeout"]
"#);
    assert_eq!(
        out,
        "five DB timeouts in a minute fire once, grouped by peer: ok"
    );
}

#[test]
fn a_stack_trace_is_one_event() {
    let out = run(r#"
config: x.yaml
cases:
  - name: oom with trace
    input:
      - at: 5s
        source: java
        lines:
          - "2026-11-28 10:00:00 ERROR [main] c.a.OrderService - failed"
          - "java.lang.OutOfMemoryError: Java heap space"
          - "    at c.a.OrderService.load(OrderService.java:42)"
      - {at: 30s, source: java, line: "2026-11-28 10:00:30 INFO done"}
    expect:
      - window: 1
        fires: [{rule: java-oom, count: 1, severity: critical}]
"#);
    assert_eq!(out, "oom with trace: ok");
}

#[test]
fn min_count_and_exclude() {
    let out = run(r#"
config: x.yaml
start: 2026-11-28T10:00:00+08:00
cases:
  - name: two 502 stay below min_count, healthz is excluded
    input:
      - {at: 0s, every: 1s, repeat: 2, source: nginx, line: '1.2.3.4 "GET /api HTTP/1.1" 502 0'}
      - {at: 3s, every: 1s, repeat: 5, source: nginx, line: '1.2.3.4 "GET /healthz HTTP/1.1" 503 0'}
    expect_no_alerts: true
  - name: three 502 fire
    input:
      - {at: 0s, every: 1s, repeat: 3, source: nginx, line: '1.2.3.4 "GET /api HTTP/1.1" 502 0'}
    expect:
      - {window: 1, fires: [{rule: upstream-5xx, count: 3, group: {status: 502}}]}
"#);
    assert_eq!(
        out,
        "two 502 stay below min_count, healthz is excluded: ok\nthree 502 fire: ok"
    );
}

#[test]
fn windows_are_numbered_in_order_of_closing() {
    let out = run(r#"
config: x.yaml
cases:
  - name: two windows
    input:
      - {at: 0s, source: nginx, line: "java.lang.OutOfMemoryError"}
      - {at: 2m, source: nginx, line: "db: timeout to 10.0.0.1"}
    windows: 2
    expect:
      - {window: 1, fires: [{rule: java-oom, count: 1}], not_firing: [db-timeout]}
      - {window: 2, fires: [{rule: db-timeout, count: 1}], not_firing: [java-oom]}
"#);
    assert_eq!(out, "two windows: ok");
}

#[test]
fn an_event_is_observed_when_it_closes() {
    // The trace starts before the first window's deadline, but its event only closes after
    // `multiline.timeout` (1s) of silence, in the next window, as it would in the agent.
    let out = run(r#"
config: x.yaml
cases:
  - name: closed by timeout
    input:
      - {at: 0s, source: nginx, line: "java.lang.OutOfMemoryError"}
      - {at: 59500ms, source: java, lines: ["2026-11-28 10:00:59 ERROR failed", "  db: timeout to 10.0.0.1"]}
    windows: 2
    expect:
      - {window: 1, not_firing: [db-timeout]}
      - {window: 2, fires: [{rule: db-timeout, count: 1}]}
  - name: closed by the next start line
    input:
      - {at: 0s, source: nginx, line: "java.lang.OutOfMemoryError"}
      - {at: 59s, source: java, lines: ["2026-11-28 10:00:59 ERROR failed", "  db: timeout to 10.0.0.1"]}
      - {at: 59900ms, source: java, line: "2026-11-28 10:00:59 INFO next"}
    windows: 1
    expect:
      - {window: 1, fires: [{rule: db-timeout, count: 1}]}
"#);
    assert_eq!(
        out,
        "closed by timeout: ok\nclosed by the next start line: ok"
    );
}

#[test]
fn a_failing_case_shows_expected_and_actual() {
    let out = run(r#"
config: x.yaml
cases:
  - name: broken
    input:
      - {at: 0s, every: 1s, repeat: 4, source: nginx, line: "db: timeout to 10.0.0.5"}
      - {at: 1s, source: nginx, line: "java.lang.OutOfMemoryError"}
    windows: 2
    expect:
      - window: 1
        fires:
          - {rule: db-timeout, count: 5}
          - {rule: db-timeout, count: 4, group: {peer: 10.0.0.9}}
          - {rule: java-oom, count: 1, severity: warning}
        not_firing: [upstream-5xx]
        contains: ["disk full"]
      - {window: 3, fires: [{rule: java-oom, count: 1}]}
"#);
    insta::assert_snapshot!(out, @r#"
        broken: FAILED
          windows:
          - 2 windows close
          + 1 window closed
            window 1 (0s to 1m): java-oom ×1 (critical), db-timeout ×4 (warning)
          window 1 (0s to 1m):
          - db-timeout ×5
          + db-timeout ×4 (warning)
          - db-timeout peer=10.0.0.9 ×4
          + db-timeout peer=10.0.0.5 ×4
          - java-oom ×1 (warning)
          + java-oom ×1 (critical)
          - message contains "disk full"
          + message does not contain it:
            | ...
          window 3:
          - window 3 closes
          + only 1 window closed
            window 1 (0s to 1m): java-oom ×1 (critical), db-timeout ×4 (warning)
    "#);
}

#[test]
fn unknown_keys_are_errors() {
    insta::assert_snapshot!(malformed(r#"
config: x.yaml
cases:
  - name: typo
    input:
      - {at: 0s, sorce: java, line: x}
"#), @r#"
        tests/t.yaml:4:11: case `typo` expects nothing (add `expect:`, `expect_no_alerts: true`, `windows:` or `absent:`)
        tests/t.yaml:6:18: unknown key `sorce` in `cases[0].input[0]` (did you mean `source`?)
    "#);
}

#[test]
fn malformed_values_are_all_reported() {
    insta::assert_snapshot!(malformed(r#"
config: x.yaml
start: yesterday
cases:
  - name: bad values
    input:
      - {at: soon, source: java, line: x}
      - {at: 0s, every: 1s, source: java, line: x}
      - {at: 0s, source: java}
      - {at: 0s, every: 1s, repeat: 0, source: java, line: x}
      - {at: 4000d, source: java, line: x}
    expect:
      - window: 0
        fires: [{rule: java-oom, count: 1}]
"#), @r#"
        tests/t.yaml:3:8: invalid `start` time `yesterday`: failed to parse four digit integer as year: invalid digit, expected 0-9 but got y (write an RFC 3339 time like `2026-11-28T10:00:00+08:00`)
        tests/t.yaml:7:14: `cases[0].input[0].at` is not a valid duration: expected a number at `soon` (write a number and a unit, like `500ms`, `30s`, `5m` or `1h`)
        tests/t.yaml:8:25: `every` without `repeat` (add `repeat: N`, the number of times the line is written)
        tests/t.yaml:9:9: input has neither `line` nor `lines` (add `line: "..."` or `lines: ["...", "..."]`)
        tests/t.yaml:10:37: `cases[0].input[3].repeat` must be between 1 and 1000000, found 0
        tests/t.yaml:11:14: input times must stay within 10 years of `start`
        tests/t.yaml:13:17: windows are numbered from 1
    "#);
}

#[test]
fn unknown_names_are_errors_with_suggestions() {
    insta::assert_snapshot!(malformed(r#"
config: x.yaml
cases:
  - name: unknown names
    input:
      - {at: 0s, source: jav, line: x}
      - {at: 0s, line: x}
    expect:
      - window: 1
        fires: [{rule: java-om, count: 1}, {rule: db-timeout, count: 1, group: {host: a}}]
        not_firing: [nope]
"#), @r#"
        tests/t.yaml:6:26: unknown source `jav` (did you mean `java`?)
        tests/t.yaml:7:9: input needs a `source`: the config has 2 sources (add `source:` with one of: java, nginx)
        tests/t.yaml:10:24: unknown rule `java-om` (did you mean `java-oom`?)
        tests/t.yaml:11:22: unknown rule `nope` (known: db-timeout, java-oom, upstream-5xx)
        tests/t.yaml:10:51: rule `db-timeout` has no `group_by` named `host` (its `group_by` is: peer)
    "#);
}

#[test]
fn expectations_on_a_silent_window_say_why_it_is_silent() {
    let out = run(r#"
config: x.yaml
cases:
  - name: below min_count
    input:
      - {at: 0s, every: 1s, repeat: 2, source: nginx, line: '1.2.3.4 "GET /api HTTP/1.1" 502 0'}
    expect:
      - window: 1
        fires: [{rule: upstream-5xx, count: 2}]
        contains: [upstream-5xx]
        not_contains: [java-oom]
"#);
    insta::assert_snapshot!(out, @r#"
        below min_count: FAILED
          window 1 (0s to 1m):
          - upstream-5xx ×2
          + upstream-5xx not reported: ×2, below its min_count
          - message contains "upstream-5xx"
          + no message: no rule reached its threshold
    "#);
}

#[test]
fn groups_below_min_count_are_shown() {
    let out = run(r#"
config: x.yaml
cases:
  - name: one group reaches min_count, the other does not
    input:
      - {at: 0s, every: 1s, repeat: 3, source: nginx, line: '1.2.3.4 "GET /api HTTP/1.1" 502 0'}
      - {at: 0s, every: 1s, repeat: 2, source: nginx, line: '1.2.3.4 "GET /api HTTP/1.1" 504 0'}
    expect:
      - window: 1
        fires: [{rule: upstream-5xx, count: 2, group: {status: 504}}]
"#);
    insta::assert_snapshot!(out, @r#"
        one group reaches min_count, the other does not: FAILED
          window 1 (0s to 1m):
          - upstream-5xx status=504 ×2
          + upstream-5xx status=502 ×3
          + upstream-5xx (groups below its min_count) ×2
    "#);
}

#[test]
fn title_contains_and_shows() {
    let case = |title: &str, shows: &str| {
        format!(
            r#"
config: x.yaml
cases:
  - name: oom
    input:
      - at: 5s
        source: java
        lines:
          - "2026-11-28 10:00:00 ERROR [main] c.a.OrderService - failed"
          - "java.lang.IllegalStateException: order failed"
          - "    at c.a.OrderService.load(OrderService.java:42)"
          - "Caused by: java.lang.OutOfMemoryError: Java heap space"
      - {{at: 30s, source: java, line: "2026-11-28 10:00:30 INFO done"}}
    expect:
      - window: 1
        title_contains: ["{title}"]
        shows: ["{shows}"]
"#
        )
    };
    let out = run(&case(
        "CRITICAL java-oom ×1",
        "Caused by: java.lang.OutOfMemoryError: Java heap space",
    ));
    assert_eq!(out, "oom: ok");
    let out = run(&case("WARNING", "OrderService.load"));
    assert!(out.contains("- title contains \"WARNING\""), "{out}");
    assert!(
        out.contains("+ title is \"[alert] CRITICAL java-oom ×1 · app-01\""),
        "{out}"
    );
    assert!(
        out.contains("- message shows \"OrderService.load\" on a line"),
        "{out}"
    );
}

#[test]
fn shape_errors_are_all_reported_in_one_round() {
    // Two shape errors in one case (an unknown key, a list where a name belongs) and one in
    // the next (a string where a number belongs): none stops the reading of the others.
    insta::assert_snapshot!(malformed(r#"
config: x.yaml
cases:
  - name: first
    input:
      - {at: 0s, source: java, line: x, colour: red}
    expect:
      - {window: 1, fires: [{rule: [java-oom], count: 1}]}
  - name: second
    windows: many
"#), @r#"
        tests/t.yaml:6:41: unknown key `colour` in `cases[0].input[0]` (expected one of: `at`, `every`, `repeat`, `source`, `file`, `line`, `lines`)
        tests/t.yaml:8:36: `cases[0].expect[0].fires[0].rule` must be a string, found a list
        tests/t.yaml:10:14: `cases[1].windows` must be an integer, found a string
    "#);
}
