//! The metrics of the real binaries during real runs (issue 17): a scrape tells what happened
//! (lines read and excluded per source and per rule, hits, windows, posts by result, the
//! outbox and its oldest entry while DingTalk fails, the rate budget, rotations, truncations,
//! lag, reloads), `/healthz` answers, `/readyz` turns 503 while posts fail for longer than
//! `ready_max_failing` and 200 again after, the relay counts its requests, alerts and posts,
//! and `promtool check metrics` accepts both expositions.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::process::Signal;

use crate::support::agent::{Env, wait_until};
use crate::support::alertmanager::http_client;
use crate::support::dingtalk_server::{MockDingTalk, MockOptions, Mode};
use crate::support::relay::Relay;

const RULES: &str = "incidents: {repeat_interval: 1s}
rules:
  - name: app-error
    pattern: ' ERROR '
    exclude: ['healthz']
  - name: oom
    pattern: 'OutOfMemoryError'
    severity: critical
metrics:
  listen: 127.0.0.1:0
  ready_max_failing: 1s
";

/// `GET path` on `address`: the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
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

/// Asserts each `(series, value)` of `expected` in `text`.
#[track_caller]
fn assert_values(text: &str, expected: &[(&str, f64)]) {
    for (series, value_expected) in expected {
        assert_eq!(
            value(text, series),
            Some(*value_expected),
            "{series} in:\n{text}"
        );
    }
}

/// Asserts that `robot` posted once, successfully, and has nothing left to deliver.
#[track_caller]
fn assert_delivered_once(text: &str, robot: &str) {
    let series = |name: &str| format!("logding_{name}{{robot=\"{robot}\"}}");
    for (name, expected) in [
        ("post_duration_seconds_count", 1.0),
        ("outbox_entries", 0.0),
        ("outbox_oldest_entry_age_seconds", 0.0),
        // The default budget is 18 a minute; one post holds a slot for 61 s.
        ("rate_budget_left", 17.0),
    ] {
        assert_eq!(
            value(text, &series(name)),
            Some(expected),
            "{name} in:\n{text}"
        );
    }
    let ok = format!("logding_posts_total{{robot=\"{robot}\",result=\"ok\"}}");
    assert_eq!(value(text, &ok), Some(1.0), "{ok} in:\n{text}");
    let success = series("last_successful_post_timestamp_seconds");
    assert!(value(text, &success).unwrap_or(0.0) > 1.7e9, "{text}");
}

/// Scrapes until `series` has `expected` (bounded); returns the last scrape.
async fn scrape_until(
    address: &str,
    series: &str,
    expected: f64,
    stderr: impl Fn() -> String,
) -> String {
    let mut text = String::new();
    let found = wait_until(Duration::from_secs(20), || {
        text = get(address, "/metrics").1;
        value(&text, series) == Some(expected)
    })
    .await;
    assert!(
        found,
        "{series} never reached {expected}:\n{text}\nstderr:\n{}",
        stderr()
    );
    text
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
    let stderr = || agent.stderr();

    // One window: 5 hits of app-error, 2 of its lines excluded, 1 oom, 3 other lines.
    let mut lines: Vec<String> = (0..5)
        .map(|i| format!("2026-01-01 ERROR job {i} failed"))
        .collect();
    lines.extend((0..2).map(|i| format!("2026-01-01 ERROR GET /healthz {i}")));
    lines.extend((0..3).map(|i| format!("2026-01-01 INFO all good {i}")));
    lines.push("2026-01-01 FATAL java.lang.OutOfMemoryError: Java heap space".into());
    env.append("app.log", &lines);
    let ok = r#"logding_posts_total{robot="dingtalk",result="ok"}"#;
    scrape_until(&address, ok, 1.0, stderr).await;
    assert_eq!(mock.accepted().len(), 1);
    // Committed once the summary is in the outbox: no lag left.
    let lag = r#"logding_source_lag_bytes{source="app"}"#;
    scrape_until(&address, lag, 0.0, stderr).await;
    // Removed from the outbox once the answer is in.
    let entries = r#"logding_outbox_entries{robot="dingtalk"}"#;
    let text = scrape_until(&address, entries, 0.0, stderr).await;
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert_values(
        &text,
        &[
            (r#"logding_build_info{version="0.1.0"}"#, 1.0),
            (r#"logding_source_lines_read_total{source="app"}"#, 11.0),
            (
                r#"logding_source_bytes_read_total{source="app"}"#,
                bytes as f64,
            ),
            (r#"logding_source_lines_excluded_total{source="app"}"#, 2.0),
            (r#"logding_rule_hits_total{rule="app-error"}"#, 5.0),
            (r#"logding_rule_hits_total{rule="oom"}"#, 1.0),
            (r#"logding_rule_excluded_total{rule="app-error"}"#, 2.0),
            ("logding_windows_closed_total", 1.0),
            ("logding_summaries_queued_total", 1.0),
            ("logding_files_open", 1.0),
            (r#"logding_source_files{source="app"}"#, 1.0),
            (r#"logding_source_rotations_total{source="app"}"#, 0.0),
            (r#"logding_source_truncations_total{source="app"}"#, 0.0),
            (r#"logding_source_read_errors_total{source="app"}"#, 0.0),
            (r#"logding_config_reloads_total{result="success"}"#, 1.0),
        ],
    );
    assert_delivered_once(&text, "dingtalk");
    assert!(!text.contains("app.log"), "no file names in labels");
    assert_eq!(
        get(&address, "/readyz"),
        ("HTTP/1.1 200 OK".into(), "ready\n".into())
    );
    assert_eq!(get(&address, "/nope").0, "HTTP/1.1 404 Not Found");
    promtool_check(&text);

    // DingTalk fails: the summary waits in the outbox, ageing; each failure is counted.
    mock.set_mode(Mode::Http500);
    env.append(
        "app.log",
        &["2026-01-01 ERROR during the outage".to_owned()],
    );
    let transient = r#"logding_posts_total{robot="dingtalk",result="transient"}"#;
    let found = wait_until(Duration::from_secs(20), || {
        let text = get(&address, "/metrics").1;
        value(&text, transient).unwrap_or(0.0) >= 1.0 && value(&text, entries) == Some(1.0)
    })
    .await;
    assert!(
        found,
        "no failed post with a queued entry; stderr:\n{}",
        stderr()
    );
    let age = r#"logding_outbox_oldest_entry_age_seconds{robot="dingtalk"}"#;
    let aged = wait_until(Duration::from_secs(10), || {
        value(&get(&address, "/metrics").1, age).unwrap_or(0.0) >= 0.5
    })
    .await;
    assert!(aged, "the queued entry does not age");
    // Failing for longer than `ready_max_failing`: not ready, and it says why.
    let mut ready = (String::new(), String::new());
    let unready = wait_until(Duration::from_secs(10), || {
        ready = get(&address, "/readyz");
        ready.0 == "HTTP/1.1 503 Service Unavailable"
    })
    .await;
    assert!(unready, "{ready:?}");
    assert!(
        ready.1.starts_with("posts to DingTalk failing for"),
        "{ready:?}"
    );
    mock.set_mode(Mode::Normal);
    scrape_until(&address, ok, 2.0, stderr).await;
    scrape_until(&address, entries, 0.0, stderr).await;
    assert_eq!(get(&address, "/readyz").0, "HTTP/1.1 200 OK");

    // Rotation (rename and create) and truncation, each seen once, per source.
    std::fs::rename(env.path("logs/app.log"), env.path("logs/app.log.1")).expect("rotate");
    env.append("app.log", &["2026-01-01 INFO after rotation".to_owned()]);
    env.append("other.log", &["2026-01-01 INFO first".to_owned()]);
    let other_read = r#"logding_source_lines_read_total{source="app"}"#;
    scrape_until(&address, other_read, 14.0, stderr).await;
    std::fs::write(env.path("logs/other.log"), "").expect("truncate");
    let truncations = r#"logding_source_truncations_total{source="app"}"#;
    scrape_until(&address, truncations, 1.0, stderr).await;
    let rotations = r#"logding_source_rotations_total{source="app"}"#;
    scrape_until(&address, rotations, 1.0, stderr).await;
    // The rotated file is closed after `rotate_wait` (2s): app.log and other.log remain.
    scrape_until(
        &address,
        r#"logding_source_files{source="app"}"#,
        2.0,
        stderr,
    )
    .await;

    // A reload with a broken config is counted as a failure, a good one as a success.
    let config = std::fs::read_to_string(env.config_path()).expect("config");
    std::fs::write(env.config_path(), "rules: [").expect("break the config");
    agent.signal(Signal::HUP);
    let failure = r#"logding_config_reloads_total{result="failure"}"#;
    scrape_until(&address, failure, 1.0, stderr).await;
    std::fs::write(env.config_path(), config).expect("restore the config");
    agent.signal(Signal::HUP);
    let success = r#"logding_config_reloads_total{result="success"}"#;
    let text = scrape_until(&address, success, 2.0, stderr).await;
    promtool_check(&text);
    assert_documented(&text);
}

/// One Alertmanager notification (version 4) of `alerts` firing alerts.
fn notification(alerts: usize) -> String {
    let alert = |i: usize| {
        format!(
            r#"{{"status":"firing","labels":{{"alertname":"db","host":"app-{i}"}},"annotations":{{"summary":"db down"}},"startsAt":"2026-12-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f{i}"}}"#
        )
    };
    let alerts: Vec<String> = (0..alerts).map(alert).collect();
    format!(
        r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"db\"}}","status":"firing","receiver":"relay","groupLabels":{{"alertname":"db"}},"commonLabels":{{"alertname":"db"}},"commonAnnotations":{{}},"externalURL":"http://am:9093","alerts":[{}],"truncatedAlerts":0}}"#,
        alerts.join(",")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_counts_requests_alerts_and_posts_and_promtool_accepts_it() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let relay = Relay::start(&mock, "").await;
    let client = http_client();
    let post = |url: String, body: String| {
        let client = client.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("the relay answers")
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(relay.webhook_url(), notification(3)).await, 200);
    assert_eq!(post(relay.webhook_url(), "{".into()).await, 400);
    let unknown = format!("http://127.0.0.1:{}/robots/nobody", relay.port);
    assert_eq!(post(unknown, notification(1)).await, 404);

    let address = format!("127.0.0.1:{}", relay.port);
    let ok = r#"logding_posts_total{robot="ops",result="ok"}"#;
    scrape_until(&address, ok, 1.0, || relay.stderr()).await;
    let entries = r#"logding_outbox_entries{robot="ops"}"#;
    let text = scrape_until(&address, entries, 0.0, || relay.stderr()).await;
    assert_values(
        &text,
        &[
            (r#"logding_relay_requests_total{result="ok"}"#, 1.0),
            (r#"logding_relay_requests_total{result="invalid"}"#, 1.0),
            (
                r#"logding_relay_requests_total{result="unknown_robot"}"#,
                1.0,
            ),
            (r#"logding_relay_alerts_received_total{robot="ops"}"#, 3.0),
            (r#"logding_config_reloads_total{result="success"}"#, 1.0),
        ],
    );
    assert_delivered_once(&text, "ops");
    assert!(!text.contains("nobody"), "no label from a request's path");
    assert_eq!(mock.accepted().len(), 1);
    promtool_check(&text);
    assert_documented(&text);
}

/// Every metric of the exposition `text` is in the README's tables.
#[track_caller]
fn assert_documented(text: &str) {
    let readme = include_str!("../../README.md");
    let missing: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .filter(|name| !readme.contains(&format!("`{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "not documented in README.md: {missing:?}"
    );
}

/// `promtool check metrics` on the exposition; fails in CI when promtool is missing.
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
            crate::support::cannot_run("metrics::promtool_check", &why);
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
