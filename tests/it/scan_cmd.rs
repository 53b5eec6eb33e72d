//! `logding scan` end to end: the real binary on files in a temp directory.

use std::path::Path;

const RULES: &str = r#"
rules:
  - name: java-oom
    pattern: 'java\.lang\.OutOfMemoryError'
    severity: critical
  - name: http-5xx
    pattern: 'status=(?P<status>5\d\d)\b'
    exclude: ['/healthz']
    group_by: [status]
  - name: trace
    sources: [app]
    pattern: 'Exception\n\tat '
    severity: warning
  - name: line-end
    pattern: 'END$'
    severity: info
"#;

/// A temp dir with `logding.yaml` (source `app` = `app*.log`, multiline on dates) and rules.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display();
    let config = format!(
        "host: test-host\nstate_dir: {root}/state\nwindow: 1m\ninclude: [rules.yaml]\n\
         sources:\n  - name: app\n    paths: ['{root}/app*.log']\n    max_line_bytes: 300\n\
         \x20   multiline: {{start: '^\\d{{4}}-'}}\n"
    );
    std::fs::write(dir.path().join("logding.yaml"), config).unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    dir
}

fn logding(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let run = crate::support::cli::run(dir, args);
    (run.code.unwrap_or(-1), run.stdout, run.stderr)
}

/// The counts table: rule name → count.
fn counts(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.contains(" lines in "))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields[0].to_owned(), fields[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn counts_per_rule_and_prints_the_summary_that_would_be_sent() {
    let dir = setup();
    let nginx = "10.0.0.1 GET /api status=502 x\r\n\
                 10.0.0.1 GET /healthz status=503 x\r\n\
                 10.0.0.1 GET /api status=200 END\r\n\
                 10.0.0.1 GET /api status=504 java.lang.OutOfMemoryError\n";
    std::fs::write(dir.path().join("nginx.log"), nginx).unwrap();
    let (code, stdout, stderr) = logding(dir.path(), &["scan", "-c", "logding.yaml", "nginx.log"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        counts(&stdout),
        [
            ("java-oom".into(), 1),
            ("http-5xx".into(), 2),
            ("trace".into(), 0),
            ("line-end".into(), 1),
        ]
    );
    assert!(
        stdout.contains("4 lines in 1 files, 3 matching any rule, 1 excluded"),
        "{stdout}"
    );
    // The summary: keyword, host, rules by severity.
    assert!(
        stdout.contains("[alert] CRITICAL java-oom ×1 · test-host (+2 rules)"),
        "{stdout}"
    );
    assert!(stdout.contains("CRITICAL · java-oom ×1"), "{stdout}");
}

#[test]
fn multiline_sources_match_whole_events_and_long_lines_are_cut() {
    let dir = setup();
    let long = format!("2026-11-28 10:00:01 INFO {} END", "x".repeat(400));
    let app = format!(
        "2026-11-28 10:00:00 ERROR boom java.lang.IllegalStateException\n\
         \tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n{long}\n2026-11-28 10:00:02 INFO fine END\n"
    );
    std::fs::write(dir.path().join("app-1.log"), app).unwrap();
    let (code, stdout, stderr) = logding(dir.path(), &["scan", "-c", "logding.yaml", "app-1.log"]);
    assert_eq!(code, 0, "{stderr}");
    // Three events; the `\n\tat` rule sees the stack trace; the long line lost its `END`.
    assert!(
        stdout.contains("3 lines in 1 files, 2 matching any rule, 0 excluded"),
        "{stdout}"
    );
    assert_eq!(counts(&stdout)[2], ("trace".into(), 1));
    assert_eq!(counts(&stdout)[3], ("line-end".into(), 1));
}

#[test]
fn a_missing_file_is_reported_and_the_others_are_scanned() {
    let dir = setup();
    std::fs::write(dir.path().join("ok.log"), "java.lang.OutOfMemoryError\n").unwrap();
    let (code, stdout, stderr) = logding(
        dir.path(),
        &[
            "scan",
            "-c",
            "logding.yaml",
            "missing.log",
            "ok.log",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("missing.log"), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["type"], "counts");
    assert_eq!(lines[0]["files"], 1);
    assert_eq!(lines[0]["rules"][0]["count"], 1);
    assert_eq!(lines[1]["rules"][0]["name"], "java-oom");
}

#[test]
fn a_bad_config_exits_2() {
    let dir = setup();
    std::fs::write(dir.path().join("bad.yaml"), "nonsense: [").unwrap();
    let (code, _, stderr) = logding(dir.path(), &["scan", "-c", "bad.yaml", "x.log"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn a_fifo_is_skipped_with_a_message_instead_of_blocking() {
    let dir = setup();
    std::fs::write(
        dir.path().join("app-1.log"),
        "2026-11-28 java.lang.OutOfMemoryError\n",
    )
    .unwrap();
    let fifo = dir.path().join("app-pipe.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = crate::support::cli::command(
        dir.path(),
        &["scan", "-c", "logding.yaml", "app-pipe.log", "app-1.log"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // A bounded wait: before the fix, the scan waited for a writer forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`logding scan` blocked on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("app-pipe.log` is not a regular file (a FIFO): skipped"),
        "{stderr}"
    );
    assert_eq!(counts(&stdout)[0], ("java-oom".to_owned(), 1), "{stdout}");
}

#[test]
fn two_days_of_logs_are_reported_with_their_own_range_and_hits_per_hour() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display();
    let config = format!(
        "host: test-host\nstate_dir: {root}/state\nsummary: {{timezone: UTC}}\n\
         sources:\n  - {{name: app, paths: ['{root}/app.log'], timestamp: {{preset: iso8601, timezone: UTC}}}}\n\
         rules:\n  - {{name: db, pattern: 'db timeout'}}\n"
    );
    std::fs::write(dir.path().join("logding.yaml"), config).unwrap();
    let log = "2026-11-26T10:00:00Z ERROR db timeout\n\
               2026-11-26T10:20:00Z ERROR db timeout\n\
               2026-11-26T10:59:59Z ERROR db timeout\n\
               2026-11-27T22:15:00Z INFO all good\n\
               2026-11-27T22:15:00Z ERROR db timeout\n\
               2026-11-28T09:00:00Z ERROR db timeout\n\
               2026-11-28T09:59:59Z ERROR db timeout\n";
    std::fs::write(dir.path().join("app.log"), log).unwrap();

    let (code, stdout, stderr) = logding(
        dir.path(),
        &[
            "scan",
            "-c",
            "logding.yaml",
            "--by",
            "hour",
            "--output",
            "json",
            "app.log",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hours = lines
        .iter()
        .find(|l| l["type"] == "hours")
        .expect("an hours line");
    let hours = hours["hours"].as_array().unwrap();
    assert_eq!(
        hours.len(),
        48,
        "every hour from the first to the last, quiet ones included"
    );
    assert_eq!(
        (hours[0]["hour"].as_str(), hours[0]["count"].as_u64()),
        (Some("2026-11-26T10:00:00Z"), Some(3))
    );
    assert_eq!(
        (hours[47]["hour"].as_str(), hours[47]["count"].as_u64()),
        (Some("2026-11-28T09:00:00Z"), Some(2))
    );
    assert_eq!(
        hours
            .iter()
            .map(|h| h["count"].as_u64().unwrap())
            .sum::<u64>(),
        6
    );
    let summary = lines
        .iter()
        .find(|l| l.get("rules").is_some_and(|r| r.is_array()) && l.get("host").is_some())
        .expect("a summary");
    let rule = &summary["rules"][0];
    assert_eq!(
        (rule["first"].as_str(), rule["last"].as_str()),
        (Some("2026-11-26T10:00:00Z"), Some("2026-11-28T09:59:59Z"))
    );

    let (code, stdout, _) = logding(
        dir.path(),
        &["scan", "-c", "logding.yaml", "--by", "hour", "app.log"],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("2026-11-26 10:00         3  ████████████████████████████████████████"),
        "{stdout}"
    );
    assert!(stdout.contains("shape: "), "{stdout}");
    assert!(
        stdout.contains("seen 2026-11-26 10:00:00–2026-11-28 09:59:59"),
        "{stdout}"
    );
}

#[test]
fn every_thread_count_gives_the_same_counts_on_a_log_of_many_blocks() {
    // About 7 MiB: many blocks for the reading thread, parts for the scanning threads, events
    // and cut lines across block boundaries, with and without multiline.
    let dir = setup();
    let mut log = String::new();
    for i in 0..60_000u32 {
        match i % 7 {
            0 => log.push_str(&format!(
                "2026-11-28 10:00:00 ERROR {i} java.lang.OutOfMemoryError\n\tat a.B.c(B.java:1)\n"
            )),
            1 => log.push_str(&format!(
                "2026-11-28 10:00:01 GET /api status=50{} END\r\n",
                i % 10
            )),
            2 => log.push_str(&format!(
                "2026-11-28 10:00:02 {} END\n",
                "y".repeat((i % 900) as usize)
            )),
            3 => log.push_str(&format!(
                "2026-11-28 10:00:03 IllegalStateException\n\tat x.Y.z(Y.java:{i})\n"
            )),
            _ => log.push_str(&format!(
                "2026-11-28 10:00:04 INFO request {i} served in 12 ms\n"
            )),
        }
    }
    std::fs::write(dir.path().join("app-big.log"), &log).unwrap();
    std::fs::write(dir.path().join("plain.log"), &log).unwrap();
    let report = |threads: &str, file: &str| {
        let (code, stdout, stderr) =
            logding(dir.path(), &["scan", threads, "-c", "logding.yaml", file]);
        assert_eq!(code, 0, "{stderr}");
        let totals = stdout
            .lines()
            .find(|l| l.contains(" lines in "))
            .map(str::to_owned);
        (counts(&stdout), totals)
    };
    for file in ["app-big.log", "plain.log"] {
        let one = report("-j1", file);
        let rules_hit = one.0.iter().filter(|(_, count)| *count > 0).count();
        assert!(rules_hit >= 3, "{file}: {one:?}");
        assert_eq!(report("-j2", file), one, "{file}");
        assert_eq!(report("-j5", file), one, "{file}");
    }
}
