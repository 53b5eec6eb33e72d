//! `send_test` (what `logding send-test` does) against the local DingTalk-like robot: the
//! signature, keyword and security checks, each answer in plain words.

use logding::sink::{self, Answer, ConfigProblem};

use crate::support::dingtalk_server::{MockDingTalk, MockOptions, Mode, TOKEN, render_options};
use crate::support::logs;

#[tokio::test]
async fn send_test_is_accepted_when_webhook_keyword_and_signature_are_right() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let dingtalk = mock.dingtalk_config();
    let answer = sink::send_test(&dingtalk, &render_options(&dingtalk))
        .await
        .expect("sent");
    assert_eq!(answer, Answer::Ok);
    assert_eq!(answer.describe("alert"), "ok");
    let accepted = mock.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].text().contains("alert"));
    // Signed exactly once: one timestamp and one sign in the query.
    assert_eq!(
        accepted[0].query.matches("sign=").count(),
        1,
        "{}",
        accepted[0].query
    );
    assert!(!logs.contents().contains(TOKEN));
}

#[tokio::test]
async fn send_test_explains_a_keyword_rejection() {
    let mock = MockDingTalk::start(MockOptions {
        keywords: vec!["告警".into()],
        ..MockOptions::default()
    })
    .await;
    let dingtalk = mock.dingtalk_config();
    let answer = sink::send_test(&dingtalk, &render_options(&dingtalk))
        .await
        .expect("sent");
    assert!(
        matches!(
            answer,
            Answer::Config {
                problem: ConfigProblem::Keyword,
                errcode: 310_000,
                ..
            }
        ),
        "{answer:?}"
    );
    let words = answer.describe("alert");
    assert!(
        words.starts_with(
            "rejected: keyword not in content — the robot expects one of its keywords; logding sends 'alert'"
        ),
        "{words}"
    );
}

#[tokio::test]
async fn send_test_names_a_wrong_secret() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let mut dingtalk = mock.dingtalk_config();
    dingtalk.secret = Some(logding::config::Secret::new("SECnot-the-robots-secret"));
    let answer = sink::send_test(&dingtalk, &render_options(&dingtalk))
        .await
        .expect("sent");
    assert!(
        matches!(
            answer,
            Answer::Config {
                problem: ConfigProblem::Signature,
                ..
            }
        ),
        "{answer:?}"
    );
    assert!(answer.describe("alert").contains("dingtalk.secret"));
}

#[tokio::test]
async fn send_test_reports_transient_failures_without_the_url() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let dingtalk = mock.dingtalk_config();
    for mode in [Mode::Http500, Mode::Html, Mode::Reset, Mode::Down] {
        mock.set_mode(mode.clone());
        let answer = sink::send_test(&dingtalk, &render_options(&dingtalk))
            .await
            .expect("sent");
        assert!(
            matches!(answer, Answer::Retry { .. }),
            "{mode:?}: {answer:?}"
        );
        let words = format!("{answer:?} {}", answer.describe("alert"));
        assert!(!words.contains(TOKEN), "{words}");
        assert!(!words.contains("127.0.0.1"), "{words}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_robot_times_out() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Hang);
    let dingtalk = mock.dingtalk_config();
    let started = tokio::time::Instant::now();
    let answer = sink::send_test(&dingtalk, &render_options(&dingtalk))
        .await
        .expect("sent");
    assert!(
        matches!(&answer, Answer::Retry { reason } if reason.contains("timed out")),
        "{answer:?}"
    );
    assert!(started.elapsed() >= dingtalk.timeout);
}

#[tokio::test]
async fn plain_http_is_refused_except_to_loopback() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let mut dingtalk = mock.dingtalk_config();
    dingtalk.webhook = Some(logding::config::Secret::new(format!(
        "http://oapi.dingtalk.invalid/robot/send?access_token={TOKEN}"
    )));
    let err = sink::send_test(&dingtalk, &render_options(&dingtalk))
        .await
        .expect_err("insecure");
    assert!(matches!(err, sink::Error::InsecureWebhook), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(TOKEN));

    dingtalk.webhook = None;
    let err = sink::send_test(&dingtalk, &render_options(&dingtalk))
        .await
        .expect_err("none");
    assert!(matches!(err, sink::Error::NoWebhook));
}

#[tokio::test]
async fn mock_rejects_oversized_bodies_and_unsigned_requests() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    drop(rustls::crypto::ring::default_provider().install_default());
    let client = reqwest::Client::new();
    let big = serde_json::json!({"msgtype": "text", "text": {"content": "alert ".repeat(4_000)}});
    let answer: serde_json::Value = client
        .post(mock.url())
        .json(&big)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    // Unsigned: the signature check comes first, as on DingTalk.
    assert_eq!(answer["errcode"], 310_000);
    let unsigned = MockDingTalk::start(MockOptions {
        secret: None,
        ..MockOptions::default()
    })
    .await;
    let answer: serde_json::Value = client
        .post(unsigned.url())
        .json(&big)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["errcode"], 460_101);
}

/// Runs `logding send-test -c FILE` against the mock, with the webhook and secret from the
/// environment as an operator would pass them. Returns (exit code, stdout, stderr).
async fn send_test_cli(mock: &MockDingTalk, keyword: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("logding.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {dir}/state\n\
             dingtalk:\n  webhook: ${{DINGTALK_WEBHOOK}}\n  secret: ${{DINGTALK_SECRET}}\n  keyword: {keyword}\n\
             sources:\n  - name: app\n    paths: [{dir}/*.log]\n\
             rules:\n  - name: oom\n    pattern: 'OutOfMemoryError'\n",
            dir = dir.path().display()
        ),
    )
    .expect("config written");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_logding"))
        .arg("send-test")
        .arg("-c")
        .arg(&config)
        .env("DINGTALK_WEBHOOK", mock.url())
        .env("DINGTALK_SECRET", mock.secret().expect("the mock signs"))
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run logding");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn send_test_command_prints_ok_and_exits_0() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let (code, stdout, stderr) = send_test_cli(&mock, "alert").await;
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "ok\n"),
        "stderr: {stderr}"
    );
    assert_eq!(mock.accepted().len(), 1);
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[tokio::test]
async fn send_test_command_explains_a_rejection_and_exits_1() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let (code, stdout, stderr) = send_test_cli(&mock, "logding").await;
    assert_eq!(code, Some(1), "stdout: {stdout} stderr: {stderr}");
    assert!(
        stdout.starts_with(
            "rejected: keyword not in content — the robot expects one of its keywords; logding sends 'logding'"
        ),
        "{stdout}"
    );
    assert!(!format!("{stdout}{stderr}").contains(TOKEN));
}

/// Issue 12: an answer is read up to 64 KiB; a larger one is an error, never read whole.
#[tokio::test]
async fn an_oversized_answer_is_an_error() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Oversized);
    let dingtalk = mock.dingtalk_config();
    let answer = sink::send_test(&dingtalk, &render_options(&dingtalk))
        .await
        .expect("sent");
    assert!(
        matches!(&answer, Answer::Retry { reason } if reason.contains("larger than 64 KiB")),
        "{answer:?}"
    );
}
