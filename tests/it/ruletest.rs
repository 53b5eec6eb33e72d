//! `logding test` end to end: the real binary on test files, exit codes and output pinned.

use std::path::Path;
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ruletest");

/// Runs the binary in `dir` and returns `exit code`, stdout and stderr as one text.
fn logding(dir: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_logding"))
        .args(args)
        .current_dir(dir)
        .env_remove("DINGTALK_WEBHOOK")
        .env_remove("DINGTALK_SECRET")
        .env_remove("RUST_LOG")
        .output()
        .expect("the logding binary runs");
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn passing_tests_exit_0_with_the_count_line() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "pass.yaml"]), @"");
}

#[test]
fn a_broken_test_shows_expected_and_actual() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "pass.yaml", "broken.yaml"]), @"");
}

#[test]
fn unknown_keys_are_reported_with_file_line_and_column() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "malformed.yaml"]), @"");
}

#[test]
fn bad_values_are_all_reported() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "bad-values.yaml"]), @"");
}

#[test]
fn names_missing_from_the_config_are_errors_not_failures() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "unknown-names.yaml", "pass.yaml"]), @"");
}

#[test]
fn a_missing_config_is_an_error() {
    insta::assert_snapshot!(logding(FIXTURES, &["test", "missing-config.yaml"]), @"");
}

#[test]
fn the_rules_repo_example_passes_check_and_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rules-repo");
    let check = logding(dir, &["check", "-c", "logding.yaml"]);
    assert!(check.starts_with("exit: 0\n"), "{check}");
    let mut tests: Vec<String> = fs_err::read_dir(Path::new(dir).join("tests"))
        .expect("examples/rules-repo/tests exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .map(|path| format!("tests/{}", path.file_name().expect("a file name").to_string_lossy()))
        .collect();
    tests.sort();
    let args: Vec<&str> = std::iter::once("test").chain(tests.iter().map(String::as_str)).collect();
    let test = logding(dir, &args);
    assert!(test.starts_with("exit: 0\n"), "{test}");
    assert!(test.contains(" passed, 0 failed\n"), "{test}");
}

#[test]
fn the_bundled_config_passes_its_tests() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut tests: Vec<String> = fs_err::read_dir(Path::new(root).join("config/tests"))
        .expect("config/tests exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .map(|path| format!("config/tests/{}", path.file_name().expect("a file name").to_string_lossy()))
        .collect();
    tests.sort();
    let args: Vec<&str> = std::iter::once("test").chain(tests.iter().map(String::as_str)).collect();
    let test = logding(root, &args);
    assert!(test.starts_with("exit: 0\n"), "{test}");
    assert!(test.contains(" passed, 0 failed\n"), "{test}");
}
