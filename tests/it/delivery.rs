//! The delivery task against the local DingTalk-like robot, in paused tokio time: the rate
//! budget, outages, throttling, configuration errors, crashes, and secret hygiene.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use logding::config::OutboxOptions;
use logding::rules::Severity;
use logding::sink::{Delivery, DeliveryHandle};
use logding::summary::{RuleSummary, Summary};
use rustix::process::Signal;
use tokio::time::Instant;

use crate::support::agent::{Env, wait_until as real_wait};
use crate::support::dingtalk_server::{
    MockDingTalk, MockOptions, Mode, Request, TOKEN, render_options,
};
use crate::support::logs::{self, Logs};

const RULE: &str = "java-oom";

/// A one-window summary with `hits` hits of [`RULE`].
fn summary(window: i64, hits: u64) -> Summary {
    let start = Timestamp::from_second(1_800_000_000 + window * 60).expect("valid");
    let end = Timestamp::from_second(1_800_000_060 + window * 60).expect("valid");
    Summary {
        host: "web-01".into(),
        start,
        end,
        rules: vec![RuleSummary {
            name: RULE.into(),
            severity: Severity::Critical,
            count: hits,
            first: start,
            last: end,
            files: vec!["/var/log/app/app.log".into()],
            other_files: 0,
            groups: vec![],
            other_groups_count: 0,
            patterns: vec![],
            other_patterns: 0,
            other_patterns_count: 0,
        }],
        below_threshold: vec![],
        excluded: 0,
        windows: 1,
        skewed: 0,
        incidents: Default::default(),
    }
}

/// The hit count a posted message reports for [`RULE`] (`java-oom ×12`, `java-oom** ×12`,
/// `java-oom x12`).
fn hits_in(request: &Request) -> u64 {
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(&format!(r"{RULE}\**\s*(?:·\s*)?[×x]\s*(\d+)")).expect("valid")
    });
    let pattern = &*PATTERN;
    let text = request.text();
    let captures = pattern
        .captures(&text)
        .unwrap_or_else(|| panic!("no count in {text}"));
    captures[1].parse().expect("a number")
}

fn open(mock: &MockDingTalk, state_dir: &Path) -> DeliveryHandle {
    open_with(&mock.dingtalk_config(), state_dir)
}

fn open_with(dingtalk: &logding::config::DingTalk, state_dir: &Path) -> DeliveryHandle {
    Delivery::open(
        dingtalk,
        render_options(dingtalk),
        state_dir,
        &OutboxOptions { max_entries: 1000 },
    )
    .expect("opens")
    .spawn()
}

/// A robot whose only keyword is `keyword`.
async fn robot_with_keyword(keyword: &str) -> MockDingTalk {
    MockDingTalk::start(MockOptions {
        keywords: vec![keyword.into()],
        ..MockOptions::default()
    })
    .await
}

/// Queues a one-hit summary and waits until it has been posted (summaries queued together
/// would be merged into one message).
async fn enqueue_and_wait_for_its_post(
    delivery: &DeliveryHandle,
    mock: &MockDingTalk,
    window: i64,
) {
    let before = mock.requests().len();
    delivery.enqueue(summary(window, 1)).await.expect("queued");
    assert!(wait_until(Duration::from_secs(120), || mock.requests().len() > before).await);
}

/// Lets virtual time pass, one second at a time, until `done` holds or `limit` has passed.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    done()
}

fn total_accepted_hits(mock: &MockDingTalk) -> u64 {
    mock.accepted().iter().map(hits_in).sum()
}

/// The most requests in any 60 s.
fn max_per_rolling_minute(requests: &[Request]) -> usize {
    requests
        .iter()
        .map(|first| {
            requests
                .iter()
                .filter(|r| r.at >= first.at && r.at - first.at < Duration::from_secs(60))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Neither the logs nor any state file holds the token, the secret or a signature.
fn assert_no_secret(logs: &Logs, mock: &MockDingTalk, state_dir: &Path) {
    let mut text = logs.contents();
    for file in walk(state_dir) {
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(&file).expect("readable"),
        ));
    }
    assert!(
        !text.contains(TOKEN),
        "the token leaked into the logs:\n{text}"
    );
    if let Some(secret) = mock.secret() {
        assert!(
            !text.contains(&secret),
            "the secret leaked into the logs:\n{text}"
        );
    }
    for request in mock.requests() {
        if let Some((_, sign)) = request.query.split_once("sign=") {
            assert!(!text.contains(sign), "a signature leaked into the logs");
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("listable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(start_paused = true)]
async fn a_hundred_windows_in_a_minute_stay_within_the_budget_and_lose_no_hit() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    let mut expected = 0;
    for window in 0..100 {
        let hits = u64::try_from(window).expect("small") + 1;
        delivery
            .enqueue(summary(window, hits))
            .await
            .expect("queued");
        expected += hits;
        tokio::time::sleep(Duration::from_millis(590)).await;
    }
    let delivered = wait_until(Duration::from_secs(600), || {
        total_accepted_hits(&mock) >= expected
    })
    .await;
    let requests = mock.requests();
    assert!(
        delivered,
        "{} of {expected} hits delivered",
        total_accepted_hits(&mock)
    );
    assert_eq!(
        total_accepted_hits(&mock),
        expected,
        "every hit accounted for once"
    );
    assert!(
        requests.iter().all(Request::is_accepted),
        "the robot was never throttled"
    );
    assert!(
        max_per_rolling_minute(&requests) <= 18,
        "{} posts in a minute",
        max_per_rolling_minute(&requests)
    );
    assert!(
        requests.len() < 40,
        "backlog merged rather than trickled: {} posts",
        requests.len()
    );
    delivery.shutdown(Duration::from_secs(5)).await;
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn an_outage_loses_nothing_keeps_order_and_retries_slowly() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Down);
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    // Powers of two: any run of consecutive summaries has a distinct sum, so the posted counts
    // show both what was merged and in which order.
    let sent: Vec<u64> = (0..6).map(|i| 1 << i).collect();
    for (window, hits) in sent.iter().enumerate() {
        delivery
            .enqueue(summary(i64::try_from(window).expect("small"), *hits))
            .await
            .expect("queued");
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    assert!(mock.requests().is_empty());
    let attempts_while_down = logs.lines_with("post to DingTalk failed").len();
    assert!(
        attempts_while_down >= 3,
        "it kept trying: {attempts_while_down}"
    );
    assert!(
        attempts_while_down <= 12,
        "no hot retry loop: {attempts_while_down} attempts in 2 minutes"
    );

    mock.set_mode(Mode::Normal);
    let expected: u64 = sent.iter().sum();
    let delivered = wait_until(Duration::from_secs(900), || {
        total_accepted_hits(&mock) >= expected
    })
    .await;
    assert!(
        delivered,
        "{} of {expected} hits delivered",
        total_accepted_hits(&mock)
    );
    let posted: Vec<u64> = mock.accepted().iter().map(hits_in).collect();
    let prefix_sums: Vec<u64> = sent
        .iter()
        .scan(0, |sum, h| {
            *sum += h;
            Some(*sum)
        })
        .collect();
    let mut running = 0;
    for hits in &posted {
        running += hits;
        assert!(
            prefix_sums.contains(&running),
            "out of order or partial: posted {posted:?}"
        );
    }
    assert_eq!(running, expected, "posted {posted:?}");
    delivery.shutdown(Duration::from_secs(5)).await;
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn a_throttled_robot_gets_silence_then_one_merged_message() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Answer {
        errcode: 660_026,
        errmsg: "sending too many messages per minute".into(),
    });
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    delivery.enqueue(summary(0, 1)).await.expect("queued");
    assert!(wait_until(Duration::from_secs(10), || mock.requests().len() == 1).await);
    let throttled_at = mock.requests()[0].at;
    mock.set_mode(Mode::Normal);
    for window in 1..5 {
        delivery.enqueue(summary(window, 10)).await.expect("queued");
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    // Still inside the 10-minute pause: nothing posted.
    tokio::time::sleep_until(throttled_at + Duration::from_secs(590)).await;
    assert_eq!(mock.requests().len(), 1, "posted during the pause");
    assert!(wait_until(Duration::from_secs(60), || mock.requests().len() >= 2).await);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "one merged message after the pause");
    assert!(requests[1].at >= throttled_at + Duration::from_secs(600));
    assert_eq!(
        hits_in(&requests[1]),
        41,
        "the merged message carries every hit"
    );
    assert_eq!(
        logs.lines_with("throttled")
            .iter()
            .filter(|l| l.contains("WARN"))
            .count(),
        1
    );
    delivery.shutdown(Duration::from_secs(5)).await;
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn a_keyword_rejection_is_logged_once_and_kept_until_fixed() {
    let (_guard, logs) = logs::capture();
    let mock = robot_with_keyword("告警").await;
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    for window in 0..3 {
        delivery.enqueue(summary(window, 5)).await.expect("queued");
    }
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    let errors: Vec<String> = logs.lines_with("ERROR");
    assert_eq!(errors.len(), 1, "logged once: {errors:#?}");
    assert!(
        errors[0].contains("keywords not in content"),
        "DingTalk's errmsg: {}",
        errors[0]
    );
    assert!(
        errors[0].contains("set dingtalk.keyword"),
        "a hint: {}",
        errors[0]
    );
    let attempts = mock.requests().len();
    assert!(
        attempts <= 8,
        "no retry storm: {attempts} posts in 30 minutes"
    );
    assert!(mock.accepted().is_empty());

    // The operator adds logding's keyword to the robot: what was kept is delivered.
    mock.set_keywords(&["告警", "alert"]);
    assert!(
        wait_until(Duration::from_secs(600), || total_accepted_hits(&mock)
            == 15)
        .await
    );
    delivery.shutdown(Duration::from_secs(5)).await;
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn a_crash_during_an_outage_loses_nothing() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Down);
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    for window in 0..3 {
        delivery.enqueue(summary(window, 7)).await.expect("queued");
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    // Dropped without shutdown: the task stops at once, as in a crash.
    drop(delivery);
    tokio::time::sleep(Duration::from_secs(30)).await;
    mock.set_mode(Mode::Normal);
    let delivery = open(&mock, state.path());
    assert!(
        wait_until(Duration::from_secs(600), || total_accepted_hits(&mock)
            == 21)
        .await
    );
    delivery.shutdown(Duration::from_secs(5)).await;
    assert_eq!(total_accepted_hits(&mock), 21, "delivered once");
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn transient_faults_are_retried_until_delivered_once() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    mock.set_mode(Mode::Http500);
    let delivery = open(&mock, state.path());
    delivery.enqueue(summary(0, 3)).await.expect("queued");
    for mode in [
        Mode::Html,
        Mode::Answer {
            errcode: -1,
            errmsg: "系统繁忙".into(),
        },
        Mode::Reset,
        Mode::Hang,
    ] {
        let seen = mock.connections();
        assert!(
            wait_until(Duration::from_secs(600), || mock.connections() > seen).await,
            "{mode:?}"
        );
        mock.set_mode(mode);
    }
    let seen = mock.connections();
    assert!(wait_until(Duration::from_secs(600), || mock.connections() > seen).await);
    mock.set_mode(Mode::Normal);
    assert!(wait_until(Duration::from_secs(900), || total_accepted_hits(&mock) == 3).await);
    delivery.shutdown(Duration::from_secs(5)).await;
    assert_eq!(mock.accepted().len(), 1);
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn a_restart_does_not_reset_the_budget() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    for window in 0..18 {
        enqueue_and_wait_for_its_post(&delivery, &mock, window).await;
    }
    assert!(wait_until(Duration::from_secs(30), || mock.accepted().len() == 18).await);
    delivery.shutdown(Duration::from_secs(1)).await;
    let delivery = open(&mock, state.path());
    delivery.enqueue(summary(18, 1)).await.expect("queued");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(mock.requests().len(), 18, "the restart allowed a burst");
    delivery.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_delivers_what_it_can_within_grace_and_keeps_the_rest() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Down);
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    delivery.enqueue(summary(0, 2)).await.expect("queued");
    let started = Instant::now();
    delivery.shutdown(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() <= Duration::from_secs(6),
        "bounded by grace"
    );
    mock.set_mode(Mode::Normal);
    let delivery = open(&mock, state.path());
    assert!(wait_until(Duration::from_secs(60), || total_accepted_hits(&mock) == 2).await);
    delivery.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_message_too_long_is_rendered_smaller_or_set_aside_never_retried_forever() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    let mut huge = summary(0, 1);
    huge.rules[0].files = (0..400)
        .map(|i| format!("/var/log/app/{i:0>60}.log"))
        .collect();
    huge.rules[0].name = format!("{RULE}-{}", "x".repeat(25_000));
    delivery.enqueue(huge).await.expect("queued");
    delivery.enqueue(summary(1, 2)).await.expect("queued");
    tokio::time::sleep(Duration::from_secs(120)).await;
    let requests = mock.requests();
    assert!(requests.len() <= 8, "{} posts", requests.len());
    let dropped = state.path().join("outbox").join("dropped");
    let set_aside = dropped.exists() && std::fs::read_dir(&dropped).expect("listable").count() == 1;
    let delivered_smaller = requests
        .iter()
        .any(|r| r.is_accepted() && r.text().contains("-xxx"));
    assert!(
        set_aside || delivered_smaller,
        "neither delivered nor set aside"
    );
    if set_aside {
        assert_eq!(logs.lines_with("refuses this message for good").len(), 1);
    }
    // The next summary is not held up.
    assert!(
        requests
            .last()
            .is_some_and(|r| r.is_accepted() && r.text().contains("web-01"))
    );
    delivery.shutdown(Duration::from_secs(1)).await;
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn an_invalid_timestamp_is_signed_again_once_then_reported_as_a_clock_problem() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Answer {
        errcode: 310_000,
        errmsg: "invalid timestamp".into(),
    });
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    delivery.enqueue(summary(0, 4)).await.expect("queued");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "signed again once, then waits");
    assert_ne!(requests[0].query, requests[1].query, "a fresh signature");
    let errors = logs.lines_with("ERROR");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("synchronise this host's clock"),
        "{}",
        errors[0]
    );
    mock.set_mode(Mode::Normal);
    assert!(wait_until(Duration::from_secs(600), || total_accepted_hits(&mock) == 4).await);
    delivery.shutdown(Duration::from_secs(1)).await;
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test(start_paused = true)]
async fn a_budget_above_dingtalks_limit_is_throttled_and_recovers_without_loss() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let mut dingtalk = mock.dingtalk_config();
    dingtalk.max_per_minute = 30;
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open_with(&dingtalk, state.path());
    // One at a time until the robot throttles, then the rest at once.
    for window in 0..40 {
        if mock.requests().iter().any(|r| r.errcode == 660_026) {
            delivery.enqueue(summary(window, 1)).await.expect("queued");
        } else {
            enqueue_and_wait_for_its_post(&delivery, &mock, window).await;
        }
    }
    assert!(
        wait_until(Duration::from_secs(1200), || total_accepted_hits(&mock)
            == 40)
        .await
    );
    let requests = mock.requests();
    let throttled: Vec<&Request> = requests.iter().filter(|r| r.errcode == 660_026).collect();
    assert_eq!(throttled.len(), 1, "one throttle answer, then silence");
    let after: Vec<&Request> = requests.iter().filter(|r| r.at > throttled[0].at).collect();
    assert_eq!(after.len(), 1, "then one merged message");
    assert!(after[0].at - throttled[0].at >= Duration::from_secs(600));
    delivery.shutdown(Duration::from_secs(1)).await;
    assert_no_secret(&logs, &mock, state.path());
}

#[tokio::test]
async fn debug_output_never_shows_the_webhook() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    let dingtalk = mock.dingtalk_config();
    let delivery: Delivery = Delivery::open(
        &dingtalk,
        render_options(&dingtalk),
        state.path(),
        &OutboxOptions { max_entries: 10 },
    )
    .expect("opens");
    let text = format!("{delivery:?} {dingtalk:?}");
    assert!(!text.contains(TOKEN), "{text}");
    let handle = delivery.spawn();
    assert!(!format!("{handle:?}").contains(TOKEN));
    handle.shutdown(Duration::ZERO).await;
}

/// Issue 12, "burst after recovery": what queued up during an outage goes out as one message
/// when the robot is back, not one post per window (which spent the minute's budget at once).
#[tokio::test(start_paused = true)]
async fn a_backlog_after_an_outage_goes_out_as_one_message() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Down);
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    for window in 0..12 {
        delivery.enqueue(summary(window, 1)).await.expect("queued");
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    mock.set_mode(Mode::Normal);
    assert!(
        wait_until(Duration::from_secs(120), || total_accepted_hits(&mock)
            == 12)
        .await
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(mock.accepted().len(), 1, "one merged message");
    assert!(mock.accepted()[0].text().contains("12 windows"));
    // One INFO line per delivered post, with what an operator wants to see.
    let delivered = logs.lines_with("delivered to DingTalk");
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    for field in ["INFO", "windows=12", "matches=12", "bytes=", "latency"] {
        assert!(delivered[0].contains(field), "{field}: {}", delivered[0]);
    }

    // The same after a crash: the outbox left behind goes out as one message.
    mock.set_mode(Mode::Down);
    for window in 12..20 {
        delivery.enqueue(summary(window, 1)).await.expect("queued");
    }
    drop(delivery);
    mock.set_mode(Mode::Normal);
    let delivery = open(&mock, state.path());
    assert!(
        wait_until(Duration::from_secs(120), || total_accepted_hits(&mock)
            == 20)
        .await
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        mock.accepted().len(),
        2,
        "one merged message after the restart"
    );
    delivery.shutdown(Duration::from_secs(1)).await;
    assert_no_secret(&logs, &mock, state.path());
}

/// Issue 12, "budget edge": DingTalk counts by its own arrival times. With requests that take
/// a while to arrive, no 60 s span at the robot holds more than the budget.
#[tokio::test(start_paused = true)]
async fn no_minute_at_the_robot_holds_more_posts_than_the_budget_whatever_the_latency() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    for window in 0..24 {
        // The first request is slow to arrive; the later ones are fast.
        mock.set_delay(if window == 0 {
            Duration::from_secs(3)
        } else {
            Duration::ZERO
        });
        enqueue_and_wait_for_its_post(&delivery, &mock, window).await;
    }
    let requests = mock.requests();
    assert!(requests.iter().all(Request::is_accepted), "never throttled");
    assert!(
        max_per_rolling_minute(&requests) <= 18,
        "{} arrivals within 60 s",
        max_per_rolling_minute(&requests)
    );
    delivery.shutdown(Duration::from_secs(1)).await;
}

/// Issue 12, "slow recovery": retries after transient failures are at most 30 s apart, so
/// the first post follows soon after the robot is back, however long the outage was.
#[tokio::test(start_paused = true)]
async fn after_a_long_outage_the_first_post_follows_the_recovery_within_30_seconds() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Http500);
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    delivery.enqueue(summary(0, 5)).await.expect("queued");
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    let failed = mock.requests().len();
    assert!(failed <= 60, "no hot loop: {failed} attempts in 15 minutes");
    mock.set_mode(Mode::Normal);
    let back = Instant::now();
    assert!(wait_until(Duration::from_secs(120), || total_accepted_hits(&mock) == 5).await);
    let first = mock.accepted()[0].at;
    assert!(
        first - back <= Duration::from_secs(31),
        "first post {:?} after the robot was back",
        first - back
    );
    delivery.shutdown(Duration::from_secs(1)).await;
}

/// Issue 12, "timeouts duplicate history": a post that got no answer may have been shown. It
/// is retried as itself (same text, same id), never merged with newer windows; newer windows
/// follow in their own message.
#[tokio::test(start_paused = true)]
async fn a_post_without_an_answer_is_retried_as_itself_with_its_id() {
    let (_guard, logs) = logs::capture();
    let mock = MockDingTalk::start(MockOptions::default()).await;
    mock.set_mode(Mode::Hang);
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&mock, state.path());
    delivery.enqueue(summary(0, 1)).await.expect("queued");
    assert!(wait_until(Duration::from_secs(10), || mock.requests().len() == 1).await);
    mock.set_mode(Mode::Normal);
    delivery.enqueue(summary(1, 2)).await.expect("queued");
    delivery.enqueue(summary(2, 4)).await.expect("queued");
    assert!(wait_until(Duration::from_secs(300), || total_accepted_hits(&mock) == 7).await);
    let hung = &mock.requests()[0];
    let accepted = mock.accepted();
    assert_eq!(
        hits_in(&accepted[0]),
        1,
        "retried alone: {}",
        accepted[0].text()
    );
    assert_eq!(accepted[0].body, hung.body, "retried as itself");
    let ids: Vec<Option<String>> = accepted.iter().map(Request::message_id).collect();
    assert!(
        hung.message_id().is_some(),
        "an id on the last line: {}",
        hung.text()
    );
    assert_eq!(ids[0], hung.message_id(), "the retry carries the same id");
    assert_eq!(accepted.len(), 2, "newer windows merged into one message");
    assert_eq!(hits_in(&accepted[1]), 6);
    assert!(
        ids[1].is_some() && ids[1] != ids[0],
        "a new message, a new id: {ids:?}"
    );
    delivery.shutdown(Duration::from_secs(1)).await;
    assert_no_secret(&logs, &mock, state.path());
}

/// Issue 12, SIGHUP: every `dingtalk` setting applies to a running delivery, and summaries held
/// by a configuration error are retried at once.
#[tokio::test(start_paused = true)]
async fn reconfigure_applies_every_dingtalk_setting_and_retries_held_summaries_at_once() {
    let (_guard, logs) = logs::capture();
    let old = robot_with_keyword("告警").await;
    let state = tempfile::tempdir().expect("tempdir");
    let delivery = open(&old, state.path());
    delivery.enqueue(summary(0, 3)).await.expect("queued");
    assert!(wait_until(Duration::from_secs(10), || !old.requests().is_empty()).await);
    assert!(old.accepted().is_empty(), "keyword rejected");

    // The operator moves to another robot, with another secret, keyword, budget and mentions.
    let new = MockDingTalk::start(MockOptions {
        keywords: vec!["告警".into()],
        secret: Some("SECanother-made-up-secret".into()),
        ..MockOptions::default()
    })
    .await;
    let mut dingtalk = new.dingtalk_config();
    dingtalk.keyword = "告警".into();
    dingtalk.max_per_minute = 2;
    dingtalk.mention.mobiles = vec!["13800000000".into()];
    let reloaded = Instant::now();
    delivery
        .reconfigure(&dingtalk, render_options(&dingtalk))
        .await
        .expect("reconfigured");
    assert!(wait_until(Duration::from_secs(5), || new.accepted().len() == 1).await);
    assert!(
        new.accepted()[0].at - reloaded <= Duration::from_secs(2),
        "at once"
    );
    let text = new.accepted()[0].text();
    assert!(
        text.contains("告警") && text.contains("@13800000000"),
        "{text}"
    );
    assert_eq!(hits_in(&new.accepted()[0]), 3);

    // The new budget holds: 2 posts per minute.
    for window in 1..5 {
        enqueue_and_wait_for_its_post(&delivery, &new, window).await;
    }
    assert_eq!(new.accepted().len(), 5);
    assert!(max_per_rolling_minute(&new.requests()) <= 2);
    assert_eq!(old.requests().len(), 1, "nothing more to the old robot");
    delivery.shutdown(Duration::from_secs(1)).await;
    assert_no_secret(&logs, &new, state.path());
    assert!(!logs.contents().contains("SECanother-made-up-secret"));
}

/// Issue 12, mentions: however many people are mentioned (up to the cap) and however long
/// their ids, every message carries the keyword and fits the byte budget.
#[tokio::test(start_paused = true)]
async fn the_most_mentions_allowed_never_cost_the_keyword_or_the_budget() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let state = tempfile::tempdir().expect("tempdir");
    let mut dingtalk = mock.dingtalk_config();
    dingtalk.max_body_bytes = logding::config::MIN_BODY_BYTES;
    // As many long user ids as `check` lets through at the smallest budget.
    for i in 0..logding::config::MAX_MENTIONS {
        dingtalk.mention.user_ids.push(format!("{i:0>64}"));
        if dingtalk.mention.cost_bytes() > dingtalk.max_body_bytes / logding::config::MENTION_SHARE
        {
            dingtalk.mention.user_ids.pop();
            break;
        }
    }
    assert!(!dingtalk.mention.user_ids.is_empty());
    let delivery = open_with(&dingtalk, state.path());
    delivery.enqueue(summary(0, 9)).await.expect("queued");
    assert!(wait_until(Duration::from_secs(600), || total_accepted_hits(&mock) >= 9).await);
    for request in mock.requests() {
        assert!(
            request.body.len() <= dingtalk.max_body_bytes,
            "{}",
            request.body.len()
        );
        assert!(request.text().contains("[alert]"), "{}", request.text());
    }
    delivery.shutdown(Duration::from_secs(1)).await;
}

/// Issue 12, end to end: the operator fixes `dingtalk.keyword` and sends SIGHUP; the summary
/// held by the keyword rejection goes out at once (not at the next 5-minute retry), without a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_keyword_and_delivers_held_summaries_at_once() {
    let mock = robot_with_keyword("告警").await;
    let env = Env::new();
    let rules = "rules:\n  - name: oom\n    pattern: OutOfMemoryError\n";
    env.write_config(&mock.url(), mock.secret().as_deref(), "1s", rules);
    let agent = env.start(&[]);
    agent
        .wait_event("started", 1, Duration::from_secs(10))
        .await;
    let oom: Vec<String> = (0..3)
        .map(|i| format!("java.lang.OutOfMemoryError {i}"))
        .collect();
    env.append("app.log", &oom);
    let rejected = real_wait(Duration::from_secs(15), || !mock.requests().is_empty()).await;
    assert!(rejected, "stderr:\n{}", agent.stderr());
    assert!(
        mock.accepted().is_empty(),
        "the robot wants its own keyword"
    );

    let yaml = std::fs::read_to_string(env.config_path()).expect("read config");
    std::fs::write(
        env.config_path(),
        yaml.replace("keyword: alert", "keyword: 告警"),
    )
    .expect("write config");
    agent.signal(Signal::HUP);
    agent
        .wait_event("dingtalk_reloaded", 1, Duration::from_secs(10))
        .await;
    let delivered = real_wait(Duration::from_secs(15), || !mock.accepted().is_empty()).await;
    assert!(delivered, "stderr:\n{}", agent.stderr());
    let text = mock.accepted()[0].text();
    assert!(text.contains("告警") && text.contains("×3"), "{text}");
    agent
        .wait_event("delivered", 1, Duration::from_secs(10))
        .await;
    assert_eq!(
        agent.stderr().matches("logding started").count(),
        1,
        "no restart"
    );
    assert!(!agent.stderr().contains("take effect only after a restart"));
}
