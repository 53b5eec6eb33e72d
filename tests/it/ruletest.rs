//! `logding test` end to end: the real binary on test files, exit codes and output pinned.

use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ruletest");

/// Runs the binary in `dir` and returns `exit code`, stdout and stderr as one text.
fn logding(dir: &str, args: &[&str]) -> String {
    let run = crate::support::cli::run(Path::new(dir), args);
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        run.code.map_or("signal".into(), |c| c.to_string()),
        run.stdout,
        run.stderr,
    )
}

#[test]
fn passing_tests_exit_0_with_the_count_line() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "pass.yaml"]), @r#"
        exit: 0
        --- stdout
        pass.yaml
          ok      five DB timeouts in a minute fire once, grouped by peer
          ok      health checks are excluded

        2 passed, 0 failed
        --- stderr
    "#);
}

#[test]
fn a_broken_test_shows_expected_and_actual() {
    let output = logding(FIXTURES, &["test", "pass.yaml", "broken.yaml"]);
    // The quoted DingTalk message belongs to `render`'s snapshots; here one line stands for it.
    insta::with_settings!({filters => vec![(r"(?m)^( +)\| .*\n(?: +\|(?: .*)?\n)*", "$1| <the rendered message>\n")]}, {
        insta::assert_snapshot!(output, @r#"
            exit: 1
            --- stdout
            pass.yaml
              ok      five DB timeouts in a minute fire once, grouped by peer
              ok      health checks are excluded
            broken.yaml
              ok      an OutOfMemoryError is critical
              FAILED  db timeouts are counted per peer
                      window 1 (1s to 1m 1s):
                      - db-timeout ×6
                      + db-timeout ×5 (warning)
                      - db-timeout peer=10.0.0.5 ×5
                      + db-timeout peer=10.0.0.5 ×4
                      + db-timeout peer=10.0.0.6 ×1
                      - message contains "10.0.0.7"
                      + message does not contain it:
                        | <the rendered message>
              FAILED  502s reach min_count
                      windows:
                      - 1 window closes
                      + 2 windows closed
                        window 1 (0s to 1m): no rule fired
                        window 2 (2m 1s to 3m 1s): java-oom ×1 (critical)
                      window 1 (0s to 1m):
                      - upstream-5xx status=502 ×4
                      + upstream-5xx not reported: ×4, below its min_count
                      window 2 (2m 1s to 3m 1s):
                      - java-oom not firing
                      + java-oom ×1 (critical)

            3 passed, 2 failed
            --- stderr
        "#);
    });
}

#[test]
fn unknown_keys_are_reported_with_file_line_and_column() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "malformed.yaml"]), @r#"
        exit: 2
        --- stdout
        0 passed, 0 failed
        --- stderr
        error: invalid `start` time `2026-11-28 10:00`: failed to find offset component, which is required for parsing a timestamp
         --> malformed.yaml:2:8
          |
        2 | start: 2026-11-28 10:00
          |        ^^^^^^^^^^^^^^^^
          = help: write an RFC 3339 time like `2026-11-28T10:00:00+08:00`

        error: unknown key `fire` in `cases[0].expect[0]`
         --> malformed.yaml:9:9
          |
        9 |         fire: [{rule: java-oom, count: 1}]
          |         ^^^^
          = help: did you mean `fires`?

        error: found 2 problems
    "#);
}

#[test]
fn bad_values_are_all_reported() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "bad-values.yaml"]), @r#"
        exit: 2
        --- stdout
        0 passed, 0 failed
        --- stderr
        error: invalid `start` time `2026-11-28 10:00`: failed to find offset component, which is required for parsing a timestamp
         --> bad-values.yaml:2:8
          |
        2 | start: 2026-11-28 10:00
          |        ^^^^^^^^^^^^^^^^
          = help: write an RFC 3339 time like `2026-11-28T10:00:00+08:00`

        error: `cases[0].input[0].at` needs a unit: `5` is ambiguous
         --> bad-values.yaml:6:14
          |
        6 |       - {at: 5, source: app, line: x}
          |              ^
          = help: write `5s` for seconds, `5ms` for milliseconds, `5m` for minutes

        error: `every` without `repeat`
         --> bad-values.yaml:7:25
          |
        7 |       - {at: 0s, every: 1s, source: app, line: x}
          |                         ^^
          = help: add `repeat: N`, the number of times the line is written

        error: windows are numbered from 1
         --> bad-values.yaml:9:17
          |
        9 |       - window: 0
          |                 ^

        error: found 4 problems
    "#);
}

#[test]
fn names_missing_from_the_config_are_errors_not_failures() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "unknown-names.yaml", "pass.yaml"]), @r#"
        exit: 2
        --- stdout
        pass.yaml
          ok      five DB timeouts in a minute fire once, grouped by peer
          ok      health checks are excluded

        2 passed, 0 failed
        --- stderr
        error: unknown source `ap`
         --> unknown-names.yaml:5:26
          |
        5 |       - {at: 0s, source: ap, line: x}
          |                          ^^
          = help: did you mean `app`?

        error: input needs a `source`: the config has 2 sources
         --> unknown-names.yaml:6:9
          |
        6 |       - {at: 0s, every: 1s, repeat: 2, line: x}
          |         ^
          = help: add `source:` with one of: app, nginx

        error: unknown rule `java-omm`
         --> unknown-names.yaml:9:24
          |
        9 |         fires: [{rule: java-omm, count: 1}, {rule: db-timeout, count: 1, group: {host: a}}]
          |                        ^^^^^^^^
          = help: did you mean `java-oom`?

        error: rule `db-timeout` has no `group_by` named `host`
         --> unknown-names.yaml:9:52
          |
        9 |         fires: [{rule: java-omm, count: 1}, {rule: db-timeout, count: 1, group: {host: a}}]
          |                                                    ^^^^^^^^^^
          = help: its `group_by` is: peer

        error: found 4 problems
    "#);
}

#[test]
fn a_missing_config_is_an_error() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "missing-config.yaml"]), @r#"
        exit: 2
        --- stdout
        0 passed, 0 failed
        --- stderr
        error: failed to read `no-such-config.yaml`: no such file or directory (os error 2)
         --> no-such-config.yaml
         = note: the config of the test file, named by `config:` at missing-config.yaml:1:9
    "#);
}

#[test]
fn the_rules_repo_example_passes_check_and_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rules-repo");
    let check = logding(dir, &["check", "-c", "logding.yaml"]);
    assert!(check.starts_with("exit: 0\n"), "{check}");
    let mut tests: Vec<String> = std::fs::read_dir(Path::new(dir).join("tests"))
        .expect("examples/rules-repo/tests exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .map(|path| {
            format!(
                "tests/{}",
                path.file_name().expect("a file name").to_string_lossy()
            )
        })
        .collect();
    tests.sort();
    let args: Vec<&str> = std::iter::once("test")
        .chain(tests.iter().map(String::as_str))
        .collect();
    let test = logding(dir, &args);
    assert!(test.starts_with("exit: 0\n"), "{test}");
    assert!(test.contains(" passed, 0 failed\n"), "{test}");
    // The CI snippets run exactly these two commands, from the repository's root.
    for ci in [".github/workflows/rules.yml", ".gitlab-ci.yml"] {
        let text = std::fs::read_to_string(Path::new(dir).join(ci)).expect("the CI snippet exists");
        for command in ["logding check -c logding.yaml", "logding test tests/*.yaml"] {
            assert!(text.contains(command), "{ci} does not run `{command}`");
        }
    }
}

#[test]
fn the_bundled_config_passes_its_tests() {
    // A directory argument runs its `*.yaml` files, in name order.
    let test = logding(env!("CARGO_MANIFEST_DIR"), &["test", "config/tests"]);
    assert!(test.starts_with("exit: 0\n"), "{test}");
    assert!(test.contains("\nconfig/tests/go.yaml\n"), "{test}");
    assert!(test.contains(" passed, 0 failed\n"), "{test}");
}

#[test]
fn incident_expectations_follow_the_lifecycle_on_the_virtual_clock() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "incidents.yaml"]), @r#"
        exit: 0
        --- stdout
        incidents.yaml
          ok      an hour of steady timeouts is one new, one repeat and one resolved message
          ok      a second incident in minute 20 is reported at once, the first as ongoing

        2 passed, 0 failed
        --- stderr
    "#);
}

#[test]
fn silences_mute_hours_and_inhibition_run_on_the_virtual_clock() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "suppress.yaml"]), @r#"
        exit: 0
        --- stdout
        suppress.yaml
          ok      a silenced peer is counted, not reported, until its silence expires
          ok      database down folds the timeouts logged before it in its window
          ok      timeouts in the quiet half hour are reported in full when it ends

        3 passed, 0 failed
        --- stderr
    "#);
}
