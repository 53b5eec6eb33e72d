//! Loader tests: values and defaults a user relies on, and the never-panic property.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `text` as if it were `dir/logding.yaml`.
fn load_in(
    dir: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, LoadError> {
    load_text(&dir.join("logding.yaml"), text.to_owned(), true, env)
}

#[track_caller]
fn load_ok(text: &str) -> Config {
    load_in(Path::new("/etc/logding"), text, &no_env).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn load_err(text: &str) -> String {
    match load_in(Path::new("/etc/logding"), text, &no_env) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(err) => err.to_string(),
    }
}

const RULE: &str = "rules:\n  - name: oom\n    pattern: OutOfMemoryError\n";

#[test]
fn defaults_fill_every_section() {
    let config = load_ok(RULE);
    assert_eq!(config.window, Duration::from_secs(60));
    assert_eq!(config.state_dir, PathBuf::from("/var/lib/logding"));
    assert!(!config.host.is_empty());
    let dingtalk = &config.dingtalk;
    assert!(dingtalk.webhook.is_none() && dingtalk.secret.is_none());
    assert_eq!(dingtalk.keyword, "alert");
    assert_eq!(dingtalk.msgtype, MsgType::Markdown);
    assert_eq!(dingtalk.mention, Mention::default());
    assert_eq!(dingtalk.max_per_minute, 18);
    assert_eq!(dingtalk.throttle_pause, Duration::from_secs(600));
    assert_eq!(dingtalk.max_body_bytes, 19_000);
    assert_eq!(
        (dingtalk.connect_timeout, dingtalk.timeout),
        (Duration::from_secs(5), Duration::from_secs(15))
    );
    assert_eq!(config.summary.max_groups, 20);
    assert_eq!(config.summary.max_patterns, 5);
    assert_eq!(
        config.summary.masks,
        crate::window::BUILTIN_MASKS
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(config.tail.poll_interval, Duration::from_secs(1));
    assert_eq!(config.tail.rescan_interval, Duration::from_secs(10));
    assert_eq!(config.tail.rotate_wait, Duration::from_secs(30));
    assert_eq!(
        config.tail.batch_wait, None,
        "files are read at once by default"
    );
    assert_eq!(config.tail.max_open_files, 512);
    assert_eq!(config.tail.read_budget_bytes, 256 * 1024);
    assert_eq!(config.outbox.max_entries, 1000);
    let rule = &config.rules.rules()[0];
    assert_eq!(
        (rule.severity, rule.min_count.get()),
        (crate::rules::Severity::Error, 1)
    );
}

#[test]
fn relative_paths_are_resolved_against_the_config_directory() {
    let config = load_ok(&format!(
        "state_dir: ../state\nsources:\n  - name: app\n    paths: [logs/*.log, /var/log/x.log]\n    exclude: ['*.gz']\n{RULE}"
    ));
    assert_eq!(config.state_dir, PathBuf::from("/etc/state"));
    assert_eq!(
        config.sources[0].paths,
        ["/etc/logding/logs/*.log", "/var/log/x.log"]
    );
    assert_eq!(config.sources[0].exclude, ["*.gz"]);
    assert_eq!(config.path, PathBuf::from("/etc/logding/logding.yaml"));
}

#[test]
fn sources_read_multiline_and_sizes() {
    let config = load_ok(&format!(
        "sources:\n  - name: app\n    paths: [/a.log]\n    start_at: beginning\n    max_line_bytes: 1MiB\n    multiline: {{start: '^\\d', max_bytes: 8KiB, timeout: 500ms}}\n{RULE}"
    ));
    let source = &config.sources[0];
    assert_eq!(source.start_at, StartAt::Beginning);
    assert_eq!(source.max_line_bytes, 1 << 20);
    let multiline = source.multiline.as_ref().expect("multiline");
    assert!(multiline.start.is_match(b"2026-11-28"));
    assert_eq!(
        (multiline.max_lines, multiline.max_bytes, multiline.timeout),
        (500, 8192, Duration::from_millis(500))
    );
}

#[test]
fn webhook_and_secret_come_from_the_environment() {
    let env = |name: &str| match name {
        "HOOK" => {
            Some("https://oapi.dingtalk.com/robot/send?access_token=made-up-token-1234".to_owned())
        }
        "SECRET" => Some(" SECmade-up-secret\n".to_owned()),
        _ => None,
    };
    let text = format!("dingtalk:\n  webhook: ${{HOOK}}\n  secret: ${{SECRET}}\n{RULE}");
    let config = load_in(Path::new("/etc/logding"), &text, &env).unwrap_or_else(|e| panic!("{e}"));
    let dingtalk = &config.dingtalk;
    assert_eq!(
        dingtalk.webhook.as_ref().map(Secret::expose),
        Some("https://oapi.dingtalk.com/robot/send?access_token=made-up-token-1234")
    );
    assert_eq!(
        dingtalk.secret.as_ref().map(Secret::expose),
        Some("SECmade-up-secret")
    );
    assert!(!format!("{config:?}").contains("made-up"));
}

#[test]
fn an_empty_webhook_means_not_configured() {
    let config = load_ok(&format!(
        "dingtalk:\n  webhook: ${{NOPE:-}}\n  secret: ''\n{RULE}"
    ));
    assert!(config.dingtalk.webhook.is_none() && config.dingtalk.secret.is_none());
}

#[test]
fn secrets_can_be_read_from_files_and_are_trimmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("hook"),
        "http://127.0.0.1:9/robot?access_token=made-up\n",
    )
    .expect("write");
    let text = format!("dingtalk:\n  webhook_file: hook\n{RULE}");
    let config = load_in(dir.path(), &text, &no_env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.dingtalk.webhook.as_ref().map(Secret::expose),
        Some("http://127.0.0.1:9/robot?access_token=made-up")
    );
}

#[test]
fn plain_http_is_allowed_to_loopback_or_when_asked() {
    for host in [
        "127.0.0.1:8080",
        "127.1.2.3",
        "[::1]:80",
        "localhost:3000",
        "LOCALHOST",
    ] {
        load_ok(&format!(
            "dingtalk:\n  webhook: http://{host}/robot/send?access_token=made-up\n{RULE}"
        ));
    }
    load_ok(&format!(
        "dingtalk:\n  webhook: http://proxy.internal/robot?access_token=made-up\n  allow_insecure_http: true\n{RULE}"
    ));
    let err = load_err(&format!(
        "dingtalk:\n  webhook: http://10.0.0.1/robot?access_token=made-up-token\n{RULE}"
    ));
    assert!(
        err.contains("not loopback") && !err.contains("made-up"),
        "{err}"
    );
    let err = load_err(&format!(
        "dingtalk:\n  webhook: ftp://x/made-up-token\n{RULE}"
    ));
    assert!(
        err.contains("scheme `ftp`") && !err.contains("made-up"),
        "{err}"
    );
    let err = load_err(&format!(
        "dingtalk:\n  webhook: not a url made-up-token\n{RULE}"
    ));
    assert!(
        err.contains("not a valid URL") && !err.contains("made-up"),
        "{err}"
    );
}

#[test]
fn more_mentions_than_logding_sends_are_rejected() {
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("'1380000{i:04}'"))
            .collect::<Vec<_>>()
    };
    let text = |mobiles: usize, users: usize| {
        format!(
            "dingtalk:\n  mention:\n    mobiles: [{}]\n    user_ids: [{}]\n{RULE}",
            list(mobiles).join(", "),
            list(users).join(", ")
        )
    };
    assert_eq!(load_ok(&text(30, 20)).dingtalk.mention.mobiles.len(), 30);
    let err = load_err(&text(2_000, 1));
    assert!(
        err.contains("lists 2001 people; at most 50"),
        "names the count and the cap: {err}"
    );
    // 40 mentions fit a 19,000-byte budget, not a 2,000-byte one.
    let small = text(40, 0).replace("dingtalk:\n", "dingtalk:\n  max_body_bytes: 2000\n");
    let err = load_err(&small);
    assert!(
        err.contains("more than a quarter of `dingtalk.max_body_bytes` (2000)"),
        "{err}"
    );
}

#[test]
fn a_malformed_reference_in_a_secret_does_not_show_it() {
    let err = load_err(&format!(
        "dingtalk:\n  webhook: https://x.invalid/robot?access_token=${{0made-up-token}}\n{RULE}"
    ));
    assert!(
        err.contains("invalid variable reference in `dingtalk.webhook`"),
        "{err}"
    );
    assert!(!err.contains("made-up"), "{err}");
}

#[test]
fn a_typo_next_to_a_literal_token_does_not_show_it() {
    let err = load_err(&format!(
        "dingtalk:\n  webhok: https://oapi.dingtalk.com/robot/send?access_token=made-up-token-1234\n{RULE}"
    ));
    assert!(err.contains("did you mean `webhook`?"), "{err}");
    assert!(!err.contains("made-up-token"), "{err}");
}

#[test]
fn rule_fields_are_read() {
    let config = load_ok(
        "sources:\n  - {name: nginx, paths: [/n.log]}\nrules:\n  - name: five\n    pattern: ['\" (?P<status>5\\d\\d) ', 'upstream (?P<status>5\\d\\d)']\n    exclude: /healthz\n    severity: critical\n    min_count: 20\n    group_by: [status]\n    sources: [nginx]\n    examples: {match: ['\"GET /\" 502 1'], no_match: ['\"GET /healthz\" 502 1']}\n",
    );
    let rule = &config.rules.rules()[0];
    assert_eq!(rule.patterns.len(), 2);
    assert_eq!(rule.excludes[0].as_str(), "/healthz");
    assert_eq!(rule.min_count.get(), 20);
    assert_eq!(rule.group_by, ["status"]);
    assert_eq!(rule.sources, ["nginx"]);
    assert_eq!(rule.severity, crate::rules::Severity::Critical);
}

#[test]
fn problems_are_collected_across_sections() {
    let err = load_err(
        "window: 0s\ndingtalk: {max_per_minute: 21}\nrules:\n  - name: a\n    pattern: '('\n  - name: a\n    pattern: x\n",
    );
    for expected in [
        "`window` must be greater than zero",
        "between 1 and 20",
        "unclosed group",
        "duplicate rule name `a`",
    ] {
        assert!(err.contains(expected), "no `{expected}` in:\n{err}");
    }
    assert!(err.ends_with("error: found 4 problems"), "{err}");
}

#[test]
fn a_source_with_problems_does_not_make_its_rules_fail_too() {
    let err = load_err(
        "sources:\n  - {name: app, paths: [/a.log], start_at: never}\nrules:\n  - {name: r, pattern: x, sources: [app]}\n",
    );
    assert!(!err.contains("unknown source"), "{err}");
}

#[test]
fn timezones_accept_names_offsets_and_local() {
    for tz in ["local", "UTC", "Asia/Shanghai", "+08:00", "-05:30"] {
        load_ok(&format!("summary: {{timezone: '{tz}'}}\n{RULE}"));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for text in [
        format!("rules: {}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("rules: {}", "{a: ".repeat(100_000)),
        "- ".repeat(50_000),
    ] {
        let _ = load_in(Path::new("/etc/logding"), &text, &no_env)
            .map(|_| ())
            .unwrap_err();
    }
}

/// The bundled example config and two of its rule files: the bases of the mutations below.
fn examples() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    ["logding.yaml", "rules/java.yaml", "rules/nginx.yaml"]
        .iter()
        .map(|name| {
            let path = root.join(name);
            let text = std::fs::read_to_string(&path).expect("read the bundled config");
            (path, text)
        })
        .collect()
}

/// Values swapped in for whatever follows a `: `.
const REPLACEMENTS: &[&str] = &[
    "[1, 2]",
    "{a: b}",
    "~",
    "",
    "99999999999999999999999999999",
    "-1",
    "0",
    "1e308",
    ".nan",
    "''",
    "'${NOPE}'",
    "${X:-}",
    "true",
    "&a [*a, *a]",
    "*missing",
    "!!binary aGVsbG8=",
    "'(?=x)'",
    "'(a'",
    "\"\\u0000\"",
    "0s",
    "1ms",
    "18446744073709551616",
    "\"\\xff\"",
];

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    ReplaceValue(usize, usize),
    Indent(usize, bool),
    InsertBytes(usize, Vec<u8>),
    HugeValue(usize, usize),
    DeepNesting(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), 0..REPLACEMENTS.len()).prop_map(|(l, r)| Mutation::ReplaceValue(l, r)),
        (any::<usize>(), any::<bool>()).prop_map(|(l, more)| Mutation::Indent(l, more)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::InsertBytes(at, bytes)),
        (any::<usize>(), 1_000usize..200_000).prop_map(|(l, n)| Mutation::HugeValue(l, n)),
        (any::<usize>(), 1usize..300).prop_map(|(l, n)| Mutation::DeepNesting(l, n)),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return text.to_owned();
    }
    let n = lines.len();
    let set_value = |lines: &mut Vec<String>, at: usize, value: &str| {
        let line = &mut lines[at % n];
        match line.find(": ") {
            Some(i) => line.replace_range(i + 2.., value),
            None => line.push_str(&format!(": {value}")),
        }
    };
    match mutation {
        Mutation::DeleteLine(at) => {
            lines.remove(at % n);
        }
        Mutation::DuplicateLine(at) => {
            let line = lines[at % n].clone();
            lines.insert(at % n, line);
        }
        Mutation::ReplaceValue(at, r) => set_value(&mut lines, *at, REPLACEMENTS[*r]),
        Mutation::Indent(at, more) => {
            let line = &mut lines[at % n];
            if *more {
                line.insert_str(0, "  ");
            } else {
                *line = line.trim_start().to_owned();
            }
        }
        Mutation::InsertBytes(at, bytes) => {
            let mut raw = lines.join("\n").into_bytes();
            let at = at % (raw.len() + 1);
            raw.splice(at..at, bytes.iter().copied());
            return String::from_utf8_lossy(&raw).into_owned();
        }
        Mutation::HugeValue(at, len) => set_value(&mut lines, *at, &"x".repeat(*len)),
        Mutation::DeepNesting(at, depth) => {
            let value = format!("{}1{}", "[".repeat(*depth), "]".repeat(*depth));
            set_value(&mut lines, *at, &value);
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random mutations of the example config only ever give `Ok` or `Err`.
    #[test]
    fn mutated_examples_never_panic(
        base in 0usize..3,
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let (path, text) = examples().swap_remove(base);
        let text = mutations.iter().fold(text, |text, m| apply(&text, m));
        // Ok or Err are both fine: only a panic (or a stack overflow) fails.
        drop(load_text(&path, text, true, &no_env));
    }

    /// Random bytes only ever give `Ok` or `Err`.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        drop(load_text(Path::new("/nonexistent/logding.yaml"), text, true, &no_env));
    }
}

#[test]
fn batch_wait_is_optional_and_a_duration() {
    let config = load_ok(&format!("tail:\n  batch_wait: 50ms\n{RULE}"));
    assert_eq!(config.tail.batch_wait, Some(Duration::from_millis(50)));
    let err = load_err(&format!("tail:\n  batch_wait: 50\n{RULE}"));
    assert!(err.contains("`tail.batch_wait` needs a unit"), "{err}");
}

#[test]
fn no_error_shows_a_line_of_a_secret_field_whatever_the_value() {
    // A short secret and a token in the URL path: nothing `redact` would recognise.
    for text in [
        format!("dingtalk:\n  secret: abc123\n  secret: abc123\n{RULE}"),
        format!(
            "dingtalk:\n  webhook: https://x.invalid/hook/t0k3n\n  webhook: https://x.invalid/hook/t0k3n\n{RULE}"
        ),
        format!("dingtalk:\n  secret:\n    abc123: 1\n{RULE}"),
        format!("dingtalk:\n  secrte: abc123\n{RULE}"),
    ] {
        let err = load_err(&text);
        assert!(
            !err.contains("abc123") && !err.contains("t0k3n"),
            "secret shown:\n{err}"
        );
        assert!(err.contains("logding.yaml:"), "still located:\n{err}");
    }
}

#[test]
fn a_secret_written_literally_loads_with_a_warning_that_does_not_show_it() {
    let config = load_ok(&format!(
        "dingtalk:\n  webhook: https://x.invalid/robot/send?access_token=made-up\n  secret: SECmade-up\n{RULE}"
    ));
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("`dingtalk.webhook` is written in the config file"));
    assert!(warnings[1].contains("secret_file"), "{warnings:?}");
    assert!(!warnings.concat().contains("made-up"), "{warnings:?}");
    // From the environment: no warning.
    let config = load_in(
        Path::new("/etc/logding"),
        &format!("dingtalk:\n  secret: ${{S}}\n{RULE}"),
        &|_| Some("SECmade-up".into()),
    )
    .expect("loads");
    assert!(config.warnings.is_empty());
}

#[track_caller]
fn check_message(text: &str, env: &dyn Fn(&str) -> Option<String>, expected: &str) {
    let err = match load_in(Path::new("/etc/logding"), text, env) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains(expected), "{expected:?} not in:\n{err}");
}

#[test]
fn number_and_quote_mistakes_are_named_as_written() {
    let w = |name: &str| (name == "W").then(|| "abc".to_owned());
    check_message(
        &format!("window: ${{W}}\n{RULE}"),
        &w,
        "`window` is not a valid duration: `abc` (from `${W}`)",
    );
    check_message(
        &format!("dingtalk:\n  max_per_minute: ${{W}}\n{RULE}"),
        &w,
        "`dingtalk.max_per_minute` must be an integer, found `abc` (from `${W}`)",
    );
    let source = "sources:\n  - name: a\n    paths: [/x/*.log]\n    max_line_bytes: SIZE\n";
    check_message(
        &format!("{}{RULE}", source.replace("SIZE", "${W}")),
        &w,
        "is not a byte size: `abc` (from `${W}`)",
    );
    check_message(
        &format!("{}{RULE}", source.replace("SIZE", "1TiB")),
        &no_env,
        "must be between 256 and 67108864 bytes, found 1099511627776",
    );
    check_message(
        &format!("{}{RULE}", source.replace("SIZE", "1e26")),
        &no_env,
        "must be a whole number of bytes, found `1e26`",
    );
    check_message(
        "rules:\n  - name: a\n    pattern: \"x\n  - name: b\n    pattern: '\\d+'\n",
        &no_env,
        "this double-quoted string is not closed on its line",
    );
}

#[test]
fn alertmanager_section_loads_with_defaults() {
    let config = load_ok(&format!(
        "alertmanager:\n  urls: [http://am-1:9093, 'https://proxy/am/']\n  labels: {{cluster: prod}}\n{RULE}"
    ));
    let am = config.alertmanager.expect("configured");
    assert_eq!(am.urls.len(), 2);
    assert_eq!(am.labels["cluster"], "prod");
    assert_eq!(am.resend_every, Duration::from_secs(60));
    assert_eq!(am.timeout, Duration::from_secs(10));
    assert!(load_ok(RULE).alertmanager.is_none());
}

#[test]
fn alertmanager_problems_are_all_reported() {
    let err = load_err(&format!(
        "alertmanager:\n  urls: [am-1:9093, 'ftp://x', http://a:1, http://a:1]\n  labels: {{host: x, 9lives: y, ok_name: z}}\n  resend_every: 0s\n{RULE}"
    ));
    for expected in [
        "`am-1:9093` is not an `http://` or `https://` URL",
        "`ftp://x` is not an `http://` or `https://` URL",
        "`http://a:1/` is listed twice",
        "label `host` is set by logding on every alert",
        "`9lives` is not a valid Alertmanager label name",
        "`alertmanager.resend_every` must be greater than zero",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    let err = load_err(&format!("alertmanager: {{urls: []}}\n{RULE}"));
    assert!(err.contains("`alertmanager.urls` is empty"), "{err}");
    let err = load_err(&format!("alertmanager: {{labels: {{a: b}}}}\n{RULE}"));
    assert!(err.contains("missing the required key `urls`"), "{err}");
}
