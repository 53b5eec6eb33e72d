//! `logding check` and `logding explain`, run as a user would: the real binary, exit codes and
//! whole outputs pinned with insta. Fixtures live in `tests/fixtures/config/`, one per kind of
//! mistake; the binary runs from the package root so paths in messages are short and stable.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn command(args: &[&str]) -> Command {
    crate::support::cli::command(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn logding(args: &[&str]) -> Output {
    command(args).output().expect("run logding")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `check` on a broken fixture: exit code 2, nothing on stdout, the first problem at
/// `location`. Returns stderr.
#[track_caller]
fn check_fails(fixture: &str, location: &str) -> String {
    let path = format!("tests/fixtures/config/{fixture}.yaml");
    let out = logding(&["check", "-c", &path]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(stdout(&out), "");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains(&format!("--> {location}\n")),
        "no `{location}` in:\n{err}"
    );
    err
}

/// One test per broken fixture: its exit code, where the first problem is, and the whole
/// message (snapshot named after the fixture).
macro_rules! broken {
    ($($test:ident: $fixture:literal at $location:literal;)*) => {$(
        #[test]
        fn $test() {
            let err = check_fails($fixture, $location);
            insta::assert_snapshot!($fixture, err);
        }
    )*};
}

broken! {
    invalid_yaml_points_at_the_parser_error:
        "invalid-yaml" at "tests/fixtures/config/invalid-yaml.yaml:5:6";
    unknown_keys_suggest_the_closest_key:
        "unknown-key" at "tests/fixtures/config/unknown-key.yaml:2:1";
    duplicate_keys_name_the_first_one:
        "duplicate-key" at "tests/fixtures/config/duplicate-key.yaml:6:5";
    wrong_types_are_all_reported:
        "wrong-type" at "tests/fixtures/config/wrong-type.yaml:1:9";
    bad_regex_names_the_rule_and_the_error:
        "bad-regex" at "tests/fixtures/config/bad-regex.yaml:3:26";
    look_around_is_explained:
        "look-around" at "tests/fixtures/config/look-around.yaml:3:20";
    backreferences_are_explained:
        "backreference" at "tests/fixtures/config/backreference.yaml:3:23";
    unset_environment_variables_are_named:
        "unset-env" at "tests/fixtures/config/unset-env.yaml:1:7";
    include_matching_nothing_is_an_error:
        "include-nothing" at "tests/fixtures/config/include-nothing.yaml:1:11";
    empty_rule_set_is_an_error:
        "empty-rules" at "tests/fixtures/config/empty-rules.yaml:5:1";
    group_by_must_name_a_capture:
        "unknown-group" at "tests/fixtures/config/unknown-group.yaml:4:24";
    duplicate_rule_names_show_both_places:
        "duplicate-rule-names" at "tests/fixtures/config/rules-dup/java.yaml:4:11";
    bad_durations_are_explained:
        "bad-duration" at "tests/fixtures/config/bad-duration.yaml:1:9";
    webhook_and_webhook_file_are_exclusive:
        "webhook-and-file" at "tests/fixtures/config/webhook-and-file.yaml:3:3";
    rules_must_name_existing_sources:
        "unknown-source" at "tests/fixtures/config/unknown-source.yaml:8:15";
    failing_examples_are_reported:
        "invalid-example" at "tests/fixtures/config/invalid-example.yaml:8:11";
    out_of_range_and_unknown_values_are_all_reported:
        "bad-values" at "tests/fixtures/config/bad-values.yaml:2:12";
    several_yaml_documents_are_an_error:
        "multiple-documents" at "tests/fixtures/config/multiple-documents.yaml:5:1";
    included_rule_files_hold_only_rules:
        "rule-file-extra-key" at "tests/fixtures/config/rules-extra/app.yaml:1:1";
    the_config_must_be_a_mapping:
        "not-a-mapping" at "tests/fixtures/config/not-a-mapping.yaml:1:1";
    invalid_utf8_is_located:
        "not-utf8" at "tests/fixtures/config/not-utf8.yaml:2:14";
    an_empty_file_is_an_error:
        "empty" at "tests/fixtures/config/empty.yaml:1:1";
    included_files_must_be_utf8:
        "include-not-utf8" at "tests/fixtures/config/rules-bad-utf8/app.yaml:4:14";
}

#[test]
fn http_webhook_is_refused_without_showing_the_url() {
    let err = check_fails(
        "http-webhook",
        "tests/fixtures/config/http-webhook.yaml:2:12",
    );
    assert!(!err.contains("made-up-token"), "{err}");
    assert!(!err.contains("oapi.dingtalk.com"), "{err}");
    insta::assert_snapshot!("http-webhook", err);
}

#[test]
fn check_accepts_the_bundled_config() {
    let out = logding(&["check", "-c", "config/logding.yaml"]);
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "ok: 18 rules from 6 files, 5 sources\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn check_accepts_the_bundled_config_with_a_webhook_from_the_environment() {
    let out = command(&["check", "-c", "config/logding.yaml"])
        .env(
            "DINGTALK_WEBHOOK",
            "https://oapi.dingtalk.com/robot/send?access_token=made-up-token-1234",
        )
        .env("DINGTALK_SECRET", "SECmade-up-secret")
        .output()
        .expect("run logding");
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn check_counts_in_the_singular() {
    let out = logding(&["check", "-c", "tests/fixtures/config/ok-minimal.yaml"]);
    assert_eq!(stdout(&out), "ok: 1 rule from 1 file, 0 sources\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_missing_config_file_is_named() {
    let out = logding(&["check", "-c", "tests/fixtures/config/no-such-file.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&out), @r"
    error: failed to read `tests/fixtures/config/no-such-file.yaml`: no such file or directory (os error 2)
     --> tests/fixtures/config/no-such-file.yaml
    ");
}

#[test]
fn an_unreadable_config_file_is_named() {
    // A directory cannot be read as a file, even by root (tests may run as root).
    let out = logding(&["check", "-c", "tests/fixtures/config"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&out), @r"
    error: failed to read `tests/fixtures/config`: is a directory (os error 21)
     --> tests/fixtures/config
    ");
}

#[test]
fn explain_shows_the_matching_pattern_and_captures() {
    let line = "10.0.0.11 - - [28/Nov/2026:10:00:03 +0800] \"GET /api/orders/1002 HTTP/1.1\" 502 157 \"-\" \"okhttp/4.12.0\"";
    let out = logding(&["explain", "-c", "config/logding.yaml", line]);
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&out), @r#"
    line:   10.0.0.11 - - [28/Nov/2026:10:00:03 +0800] "GET /api/orders/1002 HTTP/1.1" 502 157 "-" "okhttp/4.12.0"
    masked: <ip> - - [<ts>] "<str>" <n> <n> "<str>" "<str>"
      logding-smoke-test           no match
      go-panic                     no match
      go-fatal                     no match
      go-error-log                 no match
      java-oom                     no match
      java-db-timeout              no match
      java-exception-cause         no match
      java-error                   no match
      nginx-5xx                    match `"(?P<method>[A-Z]+) (?P<path>[^ "?]*)[^"]*" (?P<status>5\d\d) ` (error)
                                   method = GET
                                   path = /api/orders/1002
                                   status = 502
      nginx-upstream-timeout       no match
      nginx-connect-failed         no match
      postgres-panic               no match
      postgres-out-of-connections  no match
      postgres-auth-failed         no match
      postgres-deadlock            no match
      postgres-fatal               no match
      python-traceback             no match
      python-error                 no match
    "#);
}

#[test]
fn explain_reads_stdin_and_names_the_excluding_pattern() {
    let mut child = command(&["explain", "-c", "tests/fixtures/config/explain.yaml"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run logding");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET /healthz 503\r\nGET /api/pay 502\nnothing to see\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for logding");
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&out), @r"
    line:   GET /healthz 503
    masked: GET /healthz <n>
      upstream-5xx  excluded by `/healthz`
                    method = GET
                    path = /healthz
                    status = 503
      pay           no match

    line:   GET /api/pay 502
    masked: GET <api> <n>
      upstream-5xx  match `(?P<method>GET|POST) (?P<path>\S+) (?P<status>5\d\d)` (error)
                    method = GET
                    path = /api/pay
                    status = 502
      pay           match `/api/pay` (critical)

    line:   nothing to see
    masked: nothing to see
      upstream-5xx  no match
      pay           no match
    ");
}

#[test]
fn explain_with_a_broken_config_exits_2() {
    let out = logding(&["explain", "-c", "tests/fixtures/config/bad-regex.yaml", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--> tests/fixtures/config/bad-regex.yaml:3:26"));
}

#[test]
fn the_optional_example_rule_files_pass_check() {
    let out = logding(&["check", "-c", "tests/fixtures/config/example-rules.yaml"]);
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), "ok: 5 rules from 3 files, 0 sources\n");
}

/// Every rule of the bundled config catches something in the example logs of its sources, so
/// `run --dry-run` on the quick start shows every kind of summary. Events are assembled with the
/// source's `multiline.start` the simple way (a start line begins an event).
#[test]
fn every_bundled_rule_catches_something_in_the_example_logs() {
    let config = logding::config::load(Path::new("config/logding.yaml")).expect("load");
    let mut caught = std::collections::BTreeSet::new();
    for source in &config.sources {
        for pattern in &source.paths {
            let dir = Path::new(pattern).parent().expect("a directory");
            let name_glob = globset::Glob::new(
                &Path::new(pattern)
                    .file_name()
                    .expect("a file glob")
                    .to_string_lossy(),
            )
            .expect("glob")
            .compile_matcher();
            for entry in std::fs::read_dir(dir).expect("read examples/logs") {
                let path = entry.expect("entry").path();
                if !name_glob.is_match(path.file_name().expect("file name")) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read log");
                for event in events(&text, source.multiline.as_ref().map(|m| &m.start)) {
                    for rule in config.rules.rules() {
                        if rule.applies_to(&source.name)
                            && matches!(
                                rule.verdict(event.as_bytes()),
                                logding::rules::Verdict::Match { .. }
                            )
                        {
                            caught.insert(rule.name.clone());
                        }
                    }
                }
            }
        }
    }
    let missed: Vec<&str> = config
        .rules
        .rules()
        .iter()
        .map(|r| r.name.as_str())
        .filter(|name| !caught.contains(*name) && *name != "logding-smoke-test")
        .collect();
    assert!(missed.is_empty(), "no example log line for: {missed:?}");
}

fn events(text: &str, start: Option<&regex::bytes::Regex>) -> Vec<String> {
    let Some(start) = start else {
        return text.lines().map(str::to_owned).collect();
    };
    let mut events: Vec<String> = Vec::new();
    for line in text.lines() {
        match events.last_mut() {
            Some(event) if !start.is_match(line.as_bytes()) => {
                event.push('\n');
                event.push_str(line);
            }
            _ => events.push(line.to_owned()),
        }
    }
    events
}

#[test]
fn run_output_json_without_dry_run_is_a_usage_error_not_ignored() {
    let out = logding(&["run", "-c", "config/logding.yaml", "--output", "json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--dry-run"), "{err}");
    assert_eq!(stdout(&out), "");
}
