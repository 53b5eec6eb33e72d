//! `logding relay` on its own, with hand-written Alertmanager webhook payloads and the
//! DingTalk mock (no Alertmanager needed, so these take about a second each): its answers
//! (401, 400 for another payload version, 404, 413, 503 when it cannot persist), a group's
//! queued updates posted once as its latest state, `--dry-run`, SIGHUP reload, SIGTERM
//! drain, and `check -c relay.yaml`.

use std::time::Duration;

use rustix::process::Signal;
use serde_json::{Value, json};

use crate::support::agent::wait_until;
use crate::support::alertmanager::http_client;
use crate::support::cli;
use crate::support::dingtalk_server::{MockDingTalk, MockOptions, Mode};
use crate::support::relay::Relay;

const TOKEN: &str = "made-up-relay-token";
const LIMIT: Duration = Duration::from_secs(15);

/// A version-`version` webhook call for group `rule`, one firing alert per host.
fn notification(version: &str, rule: &str, hosts: &[String]) -> String {
    let alerts: Vec<Value> = hosts
        .iter()
        .map(|host| {
            json!({
                "status": "firing",
                "labels": {"alertname": rule, "host": host, "severity": "critical"},
                "annotations": {"summary": format!("{rule} on {host}")},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": host,
            })
        })
        .collect();
    json!({
        "version": version,
        "groupKey": format!("{{}}:{{alertname=\"{rule}\"}}"),
        "status": "firing",
        "receiver": "relay",
        "groupLabels": {"alertname": rule},
        "commonLabels": {"alertname": rule, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "truncatedAlerts": 0,
        "alerts": alerts,
    })
    .to_string()
}

fn hosts(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("app-{i:02}")).collect()
}

/// POSTs `body` to `/robots/<robot>` with the bearer token (if any); the status and answer.
async fn post(relay: &Relay, robot: &str, token: Option<&str>, body: String) -> (u16, String) {
    let mut request = http_client()
        .post(format!("http://127.0.0.1:{}/robots/{robot}", relay.port))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.expect("the relay answers");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_refuses_bad_calls_with_clear_4xx_and_queues_good_ones() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let extra = format!("auth: {{bearer_token: {TOKEN}}}\nmax_request_bytes: 4KiB\n");
    let relay = Relay::start(&mock, &extra).await;
    let good = || notification("4", "db-timeout", &hosts(3));

    let (status, _) = post(&relay, "ops", None, good()).await;
    assert_eq!(status, 401, "no token");
    let (status, _) = post(&relay, "ops", Some("made-up-wrong"), good()).await;
    assert_eq!(status, 401, "wrong token");
    let (status, text) = post(
        &relay,
        "ops",
        Some(TOKEN),
        notification("3", "x", &hosts(1)),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("unsupported payload version `3`: this relay understands version 4"),
        "{text}"
    );
    let (status, text) = post(&relay, "ops", Some(TOKEN), "{not json".into()).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("not an Alertmanager webhook payload"),
        "{text}"
    );
    let (status, text) = post(&relay, "nope", Some(TOKEN), good()).await;
    assert_eq!(status, 404);
    assert!(
        text.contains("unknown robot `nope`; configured: ops"),
        "{text}"
    );
    let big = notification("4", "storm", &hosts(60));
    assert!(big.len() > 4096);
    let (status, _) = post(&relay, "ops", Some(TOKEN), big).await;
    assert_eq!(status, 413);
    assert!(mock.accepted().is_empty(), "nothing refused was posted");

    let (status, text) = post(&relay, "ops", Some(TOKEN), good()).await;
    assert_eq!((status, text.trim()), (200, "queued"));
    assert!(
        wait_until(LIMIT, || mock.accepted().len() == 1).await,
        "{}",
        relay.stderr()
    );
    assert!(
        mock.accepted()[0]
            .text()
            .contains("FIRING · db-timeout · 3 alerts")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_answers_503_when_it_cannot_persist_so_alertmanager_retries() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let relay = Relay::start(&mock, "").await;
    let outbox = relay.path("state/robots/ops/outbox");
    assert!(outbox.is_dir());
    // A file where the outbox directory was: no write can succeed, whoever runs the test.
    std::fs::remove_dir_all(&outbox).expect("remove the outbox");
    std::fs::write(&outbox, b"").expect("a file in its place");
    let (status, text) = post(&relay, "ops", None, notification("4", "oom", &hosts(2))).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("failed to persist"), "{text}");
    assert!(relay.stderr().contains("Alertmanager will retry"));

    // Alertmanager's retry, once the disk is usable again, is not taken for a copy.
    std::fs::remove_file(&outbox).expect("remove the file");
    std::fs::create_dir(&outbox).expect("the outbox again");
    let (status, _) = post(&relay, "ops", None, notification("4", "oom", &hosts(2))).await;
    assert_eq!(status, 200);
    assert!(
        wait_until(LIMIT, || mock.accepted().len() == 1).await,
        "{}",
        relay.stderr()
    );
}

/// While the robot fails (HTTP 500), Alertmanager's updates of one group pile up in the
/// relay's outbox: a group's newer notification (its whole state) replaces the undelivered
/// older one, so once the robot is back it gets one message with the latest state, the host
/// added and the host resolved meanwhile both told, the stale versions never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_updates_of_a_group_go_out_once_as_its_latest_state() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Http500);
    let relay = Relay::start(&mock, "").await;
    let first = notification("4", "db-timeout", &hosts(2));
    assert_eq!(post(&relay, "ops", None, first).await.0, 200);
    let tried = wait_until(LIMIT, || !mock.requests().is_empty()).await;
    assert!(tried, "the relay never tried:\n{}", relay.stderr());
    let grown = notification("4", "db-timeout", &hosts(3));
    let mut latest: Value = serde_json::from_str(&grown).expect("json");
    latest["alerts"][0]["status"] = "resolved".into();
    latest["alerts"][0]["endsAt"] = "2026-12-01T10:05:00Z".into();
    for body in [grown, latest.to_string()] {
        assert_eq!(post(&relay, "ops", None, body).await.0, 200);
    }
    mock.set_mode(Mode::Normal);
    let outbox = relay.path("state/robots/ops/outbox");
    let emptied = || {
        std::fs::read_dir(&outbox).is_ok_and(|entries| {
            !entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
    };
    assert!(wait_until(LIMIT, emptied).await, "{}", relay.stderr());
    let texts: Vec<String> = mock.accepted().iter().map(|m| m.text()).collect();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].contains("**FIRING · CRITICAL** ×2 · app-02, app-03"),
        "{}",
        texts[0]
    );
    assert!(
        texts[0].contains("**RESOLVED** ×1 · app-01"),
        "{}",
        texts[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_dry_run_prints_each_notification_and_posts_nothing() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let relay = Relay::start_with(&mock, "", &["--dry-run"]).await;
    let (status, text) = post(
        &relay,
        "ops",
        None,
        notification("4", "db-timeout", &hosts(3)),
    )
    .await;
    assert_eq!((status, text.trim()), (200, "printed"));
    let printed = || relay.stdout().contains("FIRING · db-timeout · 3 alerts");
    assert!(wait_until(LIMIT, printed).await, "{}", relay.stdout());
    assert!(
        relay.stdout().contains("app-01, app-02, app-03"),
        "{}",
        relay.stdout()
    );
    assert!(mock.requests().is_empty());
    assert!(!relay.path("state").exists(), "a dry run writes no state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_robots_and_keeps_the_running_config_when_invalid() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let relay = Relay::start(&mock, "").await;
    let call = || notification("4", "disk-full", &hosts(1));
    assert_eq!(post(&relay, "dev", None, call()).await.0, 404);

    let yaml = std::fs::read_to_string(relay.config_path()).expect("relay.yaml");
    let dev = yaml.replace("  - name: ops\n", "  - name: dev\n");
    let robots_at = yaml.find("robots:\n").expect("robots") + "robots:\n".len();
    let both = format!("{}{}", yaml, &dev[robots_at..]);
    std::fs::write(relay.config_path(), both).expect("write");
    relay.signal(Signal::HUP);
    let mut status = 0;
    for _ in 0..250 {
        status = post(&relay, "dev", None, call()).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        200,
        "robot `dev` after the reload:\n{}",
        relay.stderr()
    );

    std::fs::write(
        relay.config_path(),
        "robots: [{name: ops, keyword: 1}]\nlisten: nowhere\n",
    )
    .expect("write");
    relay.signal(Signal::HUP);
    let rejected = || relay.stderr().contains("reload rejected");
    assert!(wait_until(LIMIT, rejected).await, "{}", relay.stderr());
    let (status, _) = post(&relay, "dev", None, notification("4", "other", &hosts(1))).await;
    assert_eq!(status, 200, "the running config goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_what_cannot_be_delivered_waits_in_the_outbox() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let mut relay = Relay::start(&mock, "").await;
    // Delivered during the drain: queued, then SIGTERM at once.
    assert_eq!(
        post(&relay, "ops", None, notification("4", "first", &hosts(1)))
            .await
            .0,
        200
    );
    relay.stop().await;
    assert!(
        mock.accepted().iter().any(|m| m.text().contains("first")),
        "{}",
        relay.stderr()
    );

    // DingTalk down: the drain gives up after its grace, the outbox keeps the notification.
    relay.restart().await;
    mock.set_mode(Mode::Http500);
    assert_eq!(
        post(&relay, "ops", None, notification("4", "second", &hosts(1)))
            .await
            .0,
        200
    );
    let stderr = relay.stop().await;
    assert!(
        stderr.contains("kept in the outbox for the next start"),
        "{stderr}"
    );
    mock.set_mode(Mode::Normal);
    relay.restart().await;
    let delivered = || mock.accepted().iter().any(|m| m.text().contains("second"));
    assert!(wait_until(LIMIT, delivered).await, "{}", relay.stderr());
}

#[test]
fn check_validates_a_relay_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = "listen: 127.0.0.1:9099\nrobots:\n  - name: ops\n    webhook: ${DINGTALK_WEBHOOK:-}\n    keyword: alert\n";
    std::fs::write(dir.path().join("relay.yaml"), good).expect("write");
    let run = cli::run(dir.path(), &["check", "-c", "relay.yaml"]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);

    let open = "listen: 0.0.0.0:9099\nrobots:\n  - name: ops\n    keyword: alert\n  - name: ops\n";
    std::fs::write(dir.path().join("relay.yaml"), open).expect("write");
    let run = cli::run(dir.path(), &["check", "-c", "relay.yaml"]);
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    for expected in [
        "`listen` is `0.0.0.0:9099`, outside loopback, but no `auth.bearer_token` is set",
        "duplicate robot name `ops`",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}
