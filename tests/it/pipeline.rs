//! End to end: the real `logding run` binary following a temporary log and posting to the
//! local DingTalk-like server (issue 6's acceptance).

use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::support::agent::{Agent, Env, wait_until};
use crate::support::dingtalk_server::{MockDingTalk, MockOptions, Mode};
use crate::support::{count_of, total};

const RULES: &str = "rules:
  - name: db-timeout
    pattern: 'ERROR .*timeout to (?P<peer>[\\d.]+)'
    group_by: [peer]
  - name: oom
    pattern: 'OutOfMemoryError'
    severity: critical
";

/// The length of the window a message shows (`HH:MM:SS–HH:MM:SS`), in seconds.
fn window_seconds(text: &str) -> Option<i64> {
    let seconds = |hms: &str| -> Option<i64> {
        let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
        Some(parts.next()?? * 3600 + parts.next()?? * 60 + parts.next()??)
    };
    let (_, rest) = text.split_once('–')?;
    let before = &text[..text.len() - rest.len() - '–'.len_utf8()];
    let start = before.get(before.len().checked_sub(8)?..)?;
    let end = rest.get(..8)?;
    Some((seconds(end)? - seconds(start)?).rem_euclid(86_400))
}

fn lines(prefix: &str, from: u32, to: u32, body: &str) -> Vec<String> {
    (from..to).map(|i| format!("{prefix} {i} {body}")).collect()
}

async fn mock() -> MockDingTalk {
    MockDingTalk::start(MockOptions::default()).await
}

/// Starts `logding run` on `env` and waits until it says it started.
async fn started(env: &Env) -> Agent {
    let agent = env.start(&[]);
    agent
        .wait_event("started", 1, Duration::from_secs(10))
        .await;
    agent
}

fn env_with(mock: &MockDingTalk, window: &str, rules: &str) -> Env {
    let env = Env::new();
    env.write_config(&mock.url(), mock.secret().as_deref(), window, rules);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_lines_arrive_as_exactly_one_summary_after_one_window() {
    let mock = mock().await;
    let env = env_with(&mock, "2s", RULES);
    env.append("app.log", &["INFO starting".to_owned()]);
    let agent = started(&env).await;
    // The agent is following (it read the first line); now the burst.
    agent
        .wait_event("batch_scanned", 1, Duration::from_secs(10))
        .await;

    let written = Instant::now();
    let mut burst = lines("ERROR db call", 0, 5, "timeout to 10.0.0.5");
    burst.extend(lines("ERROR db call", 0, 2, "timeout to 10.0.0.6"));
    burst.push("ERROR java.lang.OutOfMemoryError: Java heap space".to_owned());
    burst.extend(lines("INFO noise", 0, 50, "ok"));
    env.append("app.log", &burst);

    assert!(
        wait_until(Duration::from_secs(10), || !mock.accepted().is_empty()).await,
        "no summary arrived; stderr:\n{}",
        agent.stderr()
    );
    // The window opened when the burst was read and lasted its 2 s: never sooner (however
    // loaded the machine, a window cannot close early), and the message spans exactly 2 s.
    // How much later is up to the scheduler; the wait above bounds it.
    let elapsed = written.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2),
        "summary after {elapsed:?}, before its 2s window closed"
    );
    assert_eq!(
        window_seconds(&mock.accepted()[0].text()),
        Some(2),
        "{}",
        mock.accepted()[0].text()
    );
    // Nothing else is pending: a second message would be a flood.
    let quiet = wait_until(Duration::from_secs(3), || mock.requests().len() > 1).await;
    assert!(!quiet, "a second message arrived: {:#?}", mock.requests());

    let request = &mock.accepted()[0];
    let text = request.text();
    assert!(text.contains("alert"), "{text}");
    assert_eq!(count_of(&text, "db-timeout"), Some(7), "{text}");
    assert_eq!(count_of(&text, "oom"), Some(1), "{text}");
    assert!(text.contains("10.0.0.5"), "{text}");
    assert!(
        !agent
            .stderr()
            .contains(crate::support::dingtalk_server::TOKEN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_and_copytruncate_mid_window_lose_no_matching_line() {
    let mock = mock().await;
    let env = env_with(&mock, "3s", RULES);
    env.append("app.log", &["INFO starting".to_owned()]);
    let agent = started(&env).await;

    agent
        .wait_event("batch_scanned", 1, Duration::from_secs(10))
        .await;
    let log = env.path("logs/app.log");
    env.append("app.log", &lines("ERROR a", 0, 10, "timeout to 10.0.0.1"));
    // Rename rotation: the old file moves away (out of the glob), a new one is created.
    std::fs::rename(&log, env.path("logs/app.log.1")).expect("rename");
    // A different line length makes the new file's size tell its batch from the old one's.
    env.append("app.log", &lines("ERROR bbb", 0, 10, "timeout to 10.0.0.1"));
    // copytruncate of the new file, after the agent has had the chance to read it.
    agent
        .wait_event("window_opened", 1, Duration::from_secs(5))
        .await;
    let size = std::fs::metadata(&log).expect("stat").len();
    agent
        .wait_event_where("batch_scanned", 1, Duration::from_secs(5), |e| {
            e["end"] == size
        })
        .await;
    std::fs::copy(&log, env.path("logs/app.log.2")).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .expect("truncate");
    env.append("app.log", &lines("ERROR c", 0, 10, "timeout to 10.0.0.1"));

    let all = wait_until(Duration::from_secs(20), || {
        total(&mock.accepted(), "db-timeout") >= 30
    })
    .await;
    assert!(
        all,
        "expected 30 db-timeout hits, got {}; stderr:\n{}",
        total(&mock.accepted(), "db-timeout"),
        agent.stderr()
    );
    assert_eq!(total(&mock.accepted(), "db-timeout"), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_window_delivers_the_summary_before_exiting() {
    let mock = mock().await;
    let env = env_with(&mock, "1h", RULES);
    let mut agent = started(&env).await;
    env.append("app.log", &lines("ERROR x", 0, 4, "timeout to 10.0.0.9"));
    agent
        .wait_event("window_opened", 1, Duration::from_secs(10))
        .await;
    assert!(mock.requests().is_empty());

    agent.signal(Signal::TERM);
    let code = agent.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(code, Some(0), "stderr:\n{}", agent.stderr());
    let accepted = mock.accepted();
    assert_eq!(accepted.len(), 1, "stderr:\n{}", agent.stderr());
    assert_eq!(count_of(&accepted[0].text(), "db-timeout"), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_reports_every_matching_line_at_least_once() {
    let mock = mock().await;
    let env = env_with(&mock, "1h", RULES);
    let mut agent = started(&env).await;
    env.append("app.log", &lines("ERROR k", 0, 6, "timeout to 10.0.0.7"));
    agent
        .wait_event("window_opened", 1, Duration::from_secs(10))
        .await;
    agent.signal(Signal::KILL);
    assert_eq!(
        agent.wait_exit(Duration::from_secs(10)).await,
        None,
        "killed: no exit code"
    );
    drop(agent);
    // While it is down, more lines arrive.
    env.append("app.log", &lines("ERROR k", 6, 9, "timeout to 10.0.0.7"));

    // Restart with a short window so the summary comes quickly.
    env.write_config(&mock.url(), mock.secret().as_deref(), "1s", RULES);
    let agent = env.start(&[]);
    let all = wait_until(Duration::from_secs(15), || {
        total(&mock.accepted(), "db-timeout") >= 9
    })
    .await;
    assert!(all, "stderr:\n{}", agent.stderr());
    assert!(total(&mock.accepted(), "db-timeout") >= 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_new_rule_applies_it_without_restart_or_lost_hits() {
    let mock = mock().await;
    let env = env_with(&mock, "2s", RULES);
    let mut agent = started(&env).await;
    env.append(
        "app.log",
        &lines("ERROR before", 0, 3, "timeout to 10.0.0.1"),
    );
    agent
        .wait_event("window_opened", 1, Duration::from_secs(10))
        .await;

    let rules = format!("{RULES}  - name: disk-full\n    pattern: 'No space left on device'\n");
    env.write_config(&mock.url(), mock.secret().as_deref(), "2s", &rules);
    agent.signal(Signal::HUP);
    agent
        .wait_event("reloaded", 1, Duration::from_secs(10))
        .await;
    env.append(
        "app.log",
        &["ERROR write failed: No space left on device".to_owned()],
    );
    env.append(
        "app.log",
        &lines("ERROR after", 0, 2, "timeout to 10.0.0.1"),
    );

    let both = wait_until(Duration::from_secs(15), || {
        total(&mock.accepted(), "disk-full") >= 1 && total(&mock.accepted(), "db-timeout") >= 5
    })
    .await;
    assert!(
        both,
        "requests: {:#?}\nstderr:\n{}",
        mock.requests(),
        agent.stderr()
    );
    assert_eq!(total(&mock.accepted(), "db-timeout"), 5);
    assert_eq!(total(&mock.accepted(), "disk-full"), 1);
    // Same process all along.
    assert_eq!(agent.stderr().matches("logding started").count(), 1);
    assert!(agent.wait_exit(Duration::from_millis(1)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_reload_is_rejected_and_the_old_config_keeps_running() {
    let mock = mock().await;
    let env = env_with(&mock, "1s", RULES);
    let mut agent = started(&env).await;
    std::fs::write(env.config_path(), "window: [broken\n").expect("write");
    agent.signal(Signal::HUP);
    agent
        .wait_event("reload_rejected", 1, Duration::from_secs(10))
        .await;
    env.append(
        "app.log",
        &lines("ERROR still", 0, 2, "timeout to 10.0.0.1"),
    );
    let arrived = wait_until(Duration::from_secs(10), || {
        total(&mock.accepted(), "db-timeout") >= 2
    })
    .await;
    assert!(arrived, "stderr:\n{}", agent.stderr());
    assert!(agent.wait_exit(Duration::from_millis(1)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_then_sigkill_then_restart_delivers_the_outbox() {
    let mock = mock().await;
    mock.set_mode(Mode::Down);
    let env = env_with(&mock, "1s", RULES);
    let agent = started(&env).await;
    env.append("app.log", &lines("ERROR o", 0, 3, "timeout to 10.0.0.3"));
    // The summary is in the outbox once a delivery attempt failed.
    agent
        .wait_event("window_opened", 1, Duration::from_secs(10))
        .await;
    let queued = wait_until(Duration::from_secs(10), || {
        std::fs::read_dir(env.path("state"))
            .map(|dir| dir.count() > 0)
            .unwrap_or(false)
            && agent.stderr().contains("retry")
    })
    .await;
    assert!(queued, "stderr:\n{}", agent.stderr());
    agent.signal(Signal::KILL);
    drop(agent);

    mock.set_mode(Mode::Normal);
    let agent = env.start(&[]);
    let delivered = wait_until(Duration::from_secs(15), || {
        total(&mock.accepted(), "db-timeout") >= 3
    })
    .await;
    assert!(delivered, "stderr:\n{}", agent.stderr());
    let log = agent.stderr();
    assert!(
        !log.contains(crate::support::dingtalk_server::TOKEN),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_quick_start_prints_a_summary_of_the_bundled_example() {
    // README: `cargo run -- run -c config/logding.yaml --dry-run`, from the repository root.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut agent = Agent::spawn(
        root,
        scratch.path(),
        &["run", "-c", "config/logding.yaml", "--dry-run"],
    );
    // The bundled window is 10 s.
    let printed = wait_until(Duration::from_secs(20), || {
        agent.stdout().contains("logding 0.1.0 · window 10s")
    })
    .await;
    assert!(
        printed,
        "stdout:\n{}\nstderr:\n{}",
        agent.stdout(),
        agent.stderr()
    );
    let stdout = agent.stdout();
    assert!(stdout.starts_with("[alert] "), "{stdout}");
    for rule in ["java-oom", "nginx-5xx", "python-traceback", "go-panic"] {
        assert!(stdout.contains(rule), "{rule} missing from:\n{stdout}");
    }
    agent.signal(Signal::INT);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).await, Some(0));
    // A dry run writes no state.
    assert!(!root.join(".logding-state").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_json_prints_one_json_line_per_summary() {
    let env = Env::new();
    let rules = format!("{RULES}    exclude: ['10\\.0\\.0\\.99']\n");
    env.write_config("", None, "1s", &rules);
    let mut input = lines("ERROR j", 0, 3, "timeout to 10.0.0.8");
    input.push("ERROR java.lang.OutOfMemoryError from 10.0.0.99".to_owned());
    env.append("app.log", &input);
    let agent = env.start(&["--dry-run", "--output", "json"]);
    let printed = wait_until(Duration::from_secs(10), || {
        agent.stdout().lines().count() >= 1
    })
    .await;
    assert!(printed, "stderr:\n{}", agent.stderr());
    let stdout = agent.stdout();
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().next().expect("a line"))
        .expect("one JSON object per line");
    let rule = &summary["rules"][0];
    assert_eq!(rule["name"], "db-timeout");
    assert_eq!(rule["count"], 3);
    assert_eq!(rule["groups"][0]["count"], 3);
    assert!(summary["start"].is_string() && summary["end"].is_string());
    // The excluded line came in the batch that opened the window: it is counted there.
    assert_eq!(summary["excluded"], 1, "{stdout}");
    assert!(!env.path("state").exists(), "a dry run writes no state");
}
