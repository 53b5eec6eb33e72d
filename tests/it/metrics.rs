//! The metrics and health listener during a real run: a scrape tells what happened (lines
//! read and excluded, hits per rule, windows, posts), `/healthz` and `/readyz` answer, and
//! `promtool check metrics` accepts the exposition (issue 17).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::agent::{Env, wait_until};
use crate::support::dingtalk_server::{MockDingTalk, MockOptions};

const RULES: &str = "rules:
  - name: app-error
    pattern: ' ERROR '
    exclude: ['healthz']
  - name: oom
    pattern: 'OutOfMemoryError'
    severity: critical
metrics:
  listen: 127.0.0.1:0
";

/// `GET path` on `address`: the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The value of the sample named exactly `series` (with its labels), if exposed.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_during_a_run_counts_what_happened_and_promtool_accepts_it() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let env = Env::new();
    env.write_config(&mock.url(), mock.secret().as_deref(), "1s", RULES);
    let agent = env.start(&[]);
    let listening = agent
        .wait_event("metrics_listening", 1, Duration::from_secs(10))
        .await;
    let address = listening["address"]
        .as_str()
        .expect("the listener's address in the log")
        .to_owned();
    agent
        .wait_event("started", 1, Duration::from_secs(10))
        .await;
    assert_eq!(get(&address, "/healthz").0, "HTTP/1.1 200 OK");

    let mut lines: Vec<String> = (0..5)
        .map(|i| format!("2026-01-01 ERROR job {i} failed"))
        .collect();
    lines.extend((0..2).map(|i| format!("2026-01-01 ERROR GET /healthz {i}")));
    lines.extend((0..3).map(|i| format!("2026-01-01 INFO all good {i}")));
    lines.push("2026-01-01 FATAL java.lang.OutOfMemoryError: Java heap space".into());
    env.append("app.log", &lines);

    let posted = wait_until(Duration::from_secs(15), || {
        value(
            &get(&address, "/metrics").1,
            r#"logding_posts_total{result="ok"}"#,
        ) == Some(1.0)
    })
    .await;
    assert!(posted, "no ok post counted; stderr:\n{}", agent.stderr());
    assert_eq!(mock.accepted().len(), 1);

    let (status, text) = get(&address, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for (series, expected) in [
        (r#"logding_build_info{version="0.1.0"}"#, 1.0),
        (r#"logding_source_lines_read_total{source="app"}"#, 11.0),
        (r#"logding_source_lines_excluded_total{source="app"}"#, 2.0),
        (r#"logding_rule_hits_total{rule="app-error"}"#, 5.0),
        (r#"logding_rule_hits_total{rule="oom"}"#, 1.0),
        ("logding_windows_closed_total", 1.0),
        ("logding_summaries_queued_total", 1.0),
        ("logding_post_duration_seconds_count", 1.0),
        ("logding_files_open", 1.0),
        ("logding_rotations_total", 0.0),
        (r#"logding_config_reloads_total{result="success"}"#, 1.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in:\n{text}");
    }
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert_eq!(
        value(&text, r#"logding_source_bytes_read_total{source="app"}"#),
        Some(bytes as f64)
    );
    assert!(value(&text, "logding_last_successful_post_timestamp_seconds").unwrap_or(0.0) > 1.7e9);
    assert!(!text.contains("app.log"), "no file names in labels");
    assert_eq!(
        get(&address, "/readyz"),
        ("HTTP/1.1 200 OK".into(), "ready\n".into())
    );
    assert_eq!(get(&address, "/nope").0, "HTTP/1.1 404 Not Found");

    promtool_check(&text);
}

/// `promtool check metrics` on the exposition; fails in CI when promtool is missing.
#[allow(clippy::print_stderr)]
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            let why = format!("promtool (Debian package `prometheus`) cannot run: {err}");
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipping the promtool check: {why}");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
