//! End to end: the real `logding run` binary and the DingTalk-like server, a heartbeat that
//! stops and resumes (issue 15's absence acceptance).

use std::time::{Duration, Instant};

use crate::support::agent::{Env, wait_until};
use crate::support::dingtalk_server::{MockDingTalk, MockOptions};

/// A config following `logs/*.log` (stalled after 3 s without growth) with one absence rule:
/// a `beat` line every 3 s.
fn config(env: &Env, mock: &MockDingTalk) {
    let yaml = format!(
        "host: test-host
state_dir: state
window: 1s
dingtalk:
  webhook: '{}'
{}  keyword: alert
sources:
  - name: app
    paths: [logs/*.log]
    start_at: beginning
    source_stalled: 3s
tail:
  poll_interval: 100ms
summary:
  timezone: UTC
rules:
  - name: heartbeat
    kind: absence
    pattern: beat
    window: 3s
    severity: critical
",
        mock.url(),
        mock.secret()
            .map_or(String::new(), |s| format!("  secret: {s}\n"))
    );
    std::fs::write(env.config_path(), yaml).expect("write config");
}

/// Messages whose text contains `needle`.
fn saying(mock: &MockDingTalk, needle: &str) -> Vec<String> {
    mock.accepted()
        .iter()
        .map(|r| r.text())
        .filter(|t| t.contains(needle))
        .collect()
}

/// Writes a beat every 500 ms for `beats` beats; returns when the last was written.
async fn beat(env: &Env, beats: u32) -> Instant {
    let mut last = Instant::now();
    for i in 0..beats {
        env.append("app.log", &[format!("INFO beat {i}")]);
        last = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_heartbeat_is_one_message_within_its_window_and_one_more_then_back() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let env = Env::new();
    config(&env, &mock);
    env.append("app.log", &["INFO starting".to_owned()]);
    let agent = env.start(&[]);
    agent
        .wait_event("started", 1, Duration::from_secs(10))
        .await;

    let last = beat(&env, 6).await;
    let fired = wait_until(Duration::from_secs(20), || {
        !saying(&mock, "**ABSENT**").is_empty()
    })
    .await;
    assert!(fired, "no absence message; stderr:\n{}", agent.stderr());
    let elapsed = last.elapsed();
    let text = saying(&mock, "**ABSENT**").remove(0);
    // Not before its 3 s window; within the window plus one 1 s window (plus 2 s for the
    // scheduler of a loaded machine and the post). The paused-clock test bounds it exactly.
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed <= Duration::from_secs(6),
        "absence told {elapsed:?} after the last beat:\n{text}"
    );
    assert!(
        text.contains("CRITICAL · heartbeat: no `beat` for 3s · last seen "),
        "{text}"
    );
    assert!(text.contains("has not grown for 3s"), "{text}");
    assert!(text.contains("[alert] CRITICAL heartbeat absent"), "{text}");

    // Beats resume: one message says it is back, and nothing fires twice.
    let mut back = false;
    for i in 0..20 {
        env.append("app.log", &[format!("INFO beat again {i}")]);
        if !saying(&mock, "**BACK**").is_empty() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(back, "no back message; stderr:\n{}", agent.stderr());
    let text = saying(&mock, "**BACK**").remove(0);
    assert!(text.contains("heartbeat: `beat` is back"), "{text}");
    assert!(text.contains("source app: logging again"), "{text}");
    assert_eq!(
        saying(&mock, "**ABSENT**").len(),
        1,
        "{:#?}",
        mock.accepted()
    );
}
