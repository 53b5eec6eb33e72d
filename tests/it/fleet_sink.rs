//! The agent's `alertmanager:` sink beyond incidents: absences and stalled sources as alerts
//! (with the real Alertmanager), and what a reload (SIGHUP) does with the sinks.

use std::time::Duration;

use rustix::process::Signal;
use serde_json::Value;

use crate::support::agent::wait_until;
use crate::support::alertmanager::{self, Cluster, Host, HostOptions};
use crate::support::cli;
use crate::support::dingtalk_server::{MockDingTalk, MockOptions};

/// Bound on an alert's way from the agent to Alertmanager's API.
const ARRIVAL: Duration = Duration::from_secs(20);

/// An absence rule added to the fleet host's rules: a `beat` line every 3 s.
const HEARTBEAT: &str = "  - name: heartbeat
    kind: absence
    pattern: beat
    window: 3s
    severity: critical
";

/// `run` arguments of a dry run printing JSON.
const DRY_RUN: &[&str] = &["--dry-run", "--output", "json"];

/// One Alertmanager notifying nobody (for the agent's side alone), and its URL.
async fn instance() -> Option<(Cluster, String)> {
    let cluster = Cluster::start(1, &alertmanager::config("http://127.0.0.1:9/none", None)).await?;
    let url = cluster.urls()[0].clone();
    Some((cluster, url))
}

/// Polls an instance's active alerts until `condition` holds (bounded by [`ARRIVAL`]), writing
/// `beat` lines to `host` meanwhile when asked.
async fn alerts_where(
    url: &str,
    beating: Option<&Host>,
    condition: impl Fn(&[Value]) -> bool,
) -> Option<Vec<Value>> {
    let start = std::time::Instant::now();
    let mut beats = 0;
    while start.elapsed() < ARRIVAL {
        let alerts = alertmanager::alerts_in(url).await;
        if condition(&alerts) {
            return Some(alerts);
        }
        if let Some(host) = beating {
            beats += 1;
            host.env.append("app.log", &[format!("INFO beat {beats}")]);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The alert named `alertname` among `alerts`, if any.
fn named<'a>(alerts: &'a [Value], alertname: &str) -> Option<&'a Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname)
}

/// The `heartbeat` alert among `alerts`, if any.
fn heartbeat(alerts: &[Value]) -> Option<&Value> {
    named(alerts, "heartbeat")
}

/// Waits for the alert named `alertname` to be active in `url`, and checks that it is the only
/// one there; returns it.
async fn the_only_alert(url: &str, host: &Host, alertname: &str) -> Value {
    let fired = alerts_where(url, None, |a| named(a, alertname).is_some()).await;
    let Some(alerts) = fired else {
        panic!("no {alertname} alert:\n{}", host.agent.stderr());
    };
    assert_eq!(alerts.len(), 1, "one alert, no other: {alerts:#?}");
    named(&alerts, alertname).expect("found").clone()
}

/// Writes `count` beats, 500 ms apart.
async fn beat(host: &Host, count: u32) {
    for i in 0..count {
        host.env.append("app.log", &[format!("INFO beat {i}")]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A heartbeat that stops is one alert in Alertmanager saying what is missing; the agent,
/// restarted against an instance that never saw it, posts it again at once (the firing set
/// is persisted); beats coming back resolve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_heartbeat_is_an_alert_until_it_is_back_even_across_a_restart() {
    let Some((first, url)) = instance().await else {
        return;
    };
    let mut host = Host::start_with(
        "app-a",
        std::slice::from_ref(&url),
        HostOptions {
            extra: HEARTBEAT,
            ..HostOptions::default()
        },
    )
    .await;
    beat(&host, 4).await;
    let alert = the_only_alert(&url, &host, "heartbeat").await;
    assert_eq!(alert["labels"]["host"], "app-a");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["source"], "app");
    assert_eq!(alert["labels"]["cluster"], "test");
    assert_eq!(
        alert["annotations"]["summary"], "heartbeat: no `beat` for 3s on app-a",
        "{alert}"
    );
    let description = alert["annotations"]["description"].as_str().unwrap_or("");
    assert!(
        description.starts_with("absent since ")
            && description.contains("expected at least 1 line(s) matching `beat` every 3s"),
        "{alert}"
    );
    // It began when the absence fired (Alertmanager keeps milliseconds).
    let second = |v: &Value| {
        v.as_str()
            .unwrap_or("")
            .chars()
            .take(19)
            .collect::<String>()
    };
    assert_eq!(
        second(&alert["startsAt"]),
        second(&alert["annotations"]["absent_since"])
    );

    // Restart against a second instance that never saw the alert: posted again at once.
    let (_second, second_url) = instance().await.expect("alertmanager is installed");
    drop(first);
    host.stop().await;
    let config = std::fs::read_to_string(host.env.config_path()).expect("config");
    std::fs::write(host.env.config_path(), config.replace(&url, &second_url)).expect("config");
    host.start_again().await;
    let reposted = alerts_where(&second_url, None, |a| heartbeat(a).is_some()).await;
    assert!(
        reposted.is_some(),
        "the firing absence was not posted after the restart:\n{}",
        host.agent.stderr()
    );

    // Beats come back: the alert is resolved (it leaves the active list).
    let resolved = alerts_where(&second_url, Some(&host), |a| heartbeat(a).is_none()).await;
    assert!(
        resolved.is_some(),
        "the absence was not resolved:\n{}",
        host.agent.stderr()
    );
}

/// `run --dry-run --output json` prints an absence's alert like an incident's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_an_absence_as_an_alert() {
    let nowhere = [format!("http://127.0.0.1:{}", alertmanager::free_port())];
    let options = HostOptions {
        extra: HEARTBEAT,
        args: DRY_RUN,
        ..HostOptions::default()
    };
    let host = Host::start_with("app-a", &nowhere, options).await;
    // The alerts of every `{"alertmanager": [...]}` line printed so far.
    let printed = || -> Vec<Value> {
        let stdout = host.agent.stdout();
        let lines = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok());
        lines
            .flat_map(|v| v["alertmanager"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let absent = || heartbeat(&printed()).cloned();
    let found = wait_until(ARRIVAL, || absent().is_some()).await;
    assert!(found, "no absence alert printed:\n{}", host.agent.stdout());
    let alert = absent().expect("printed");
    assert_eq!(alert["labels"]["host"], "app-a");
    assert_eq!(
        alert["annotations"]["summary"], "heartbeat: no `beat` for 3s on app-a",
        "{alert}"
    );
}

/// SIGHUP adds and removes sinks: DingTalk added to an Alertmanager-only agent gets the next
/// incident; Alertmanager removed gets no more alerts; removing the last sink is refused with
/// a warning and it keeps delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_and_removes_sinks_but_never_the_last() {
    let Some((_cluster, url)) = instance().await else {
        return;
    };
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let host = Host::start("app-a", std::slice::from_ref(&url), "1h").await;
    let config = std::fs::read_to_string(host.env.config_path()).expect("config");
    // The mock robot, signed when it wants a secret.
    let signed = mock.secret().map(|s| format!("  secret: {s}\n"));
    let webhook = format!("dingtalk:\n  webhook: '{}'\n  keyword: alert\n", mock.url());
    let dingtalk = webhook + &signed.unwrap_or_default();
    let reload = |yaml: String, times: usize| {
        std::fs::write(host.env.config_path(), yaml).expect("config");
        host.agent.signal(Signal::HUP);
        host.agent
            .wait_event("reloaded", times, Duration::from_secs(10))
    };
    // Hits `word` and waits until the robot got a message naming `rule`.
    let hit_and_see = async |word: &str, rule: &str| {
        host.hit(word, 2);
        let seen = || mock.accepted().iter().any(|r| r.text().contains(rule));
        let arrived = wait_until(ARRIVAL, seen).await;
        assert!(arrived, "no {rule} message:\n{}", host.agent.stderr());
    };

    // DingTalk added: the next incident reaches the robot and Alertmanager.
    reload(format!("{config}{dingtalk}"), 1).await;
    host.agent
        .wait_event_where("sink_started", 1, ARRIVAL, |e| e["sink"] == "dingtalk")
        .await;
    hit_and_see("DBTIMEOUT", "db-timeout").await;
    let alert = alerts_where(&url, None, |a| {
        a.iter().any(|a| a["labels"]["alertname"] == "db-timeout")
    })
    .await;
    assert!(alert.is_some(), "{}", host.agent.stderr());

    // Alertmanager removed: DingTalk alone gets the next incident.
    let am_block = config
        .split_once("alertmanager:")
        .and_then(|(_, rest)| rest.split_once("rules:"))
        .map(|(block, _)| format!("alertmanager:{block}"))
        .expect("the host's alertmanager block");
    let dingtalk_only = format!("{config}{dingtalk}").replace(&am_block, "");
    reload(dingtalk_only.clone(), 2).await;
    host.agent
        .wait_event_where("sink_stopped", 1, ARRIVAL, |e| e["sink"] == "alertmanager")
        .await;
    hit_and_see("NOISY", "noisy").await;
    let alerts = alertmanager::alerts_in(&url).await;
    assert!(
        !alerts.iter().any(|a| a["labels"]["alertname"] == "noisy"),
        "a removed Alertmanager still got an alert: {alerts:#?}"
    );

    // Removing DingTalk too would leave no sink: refused, and it keeps delivering.
    reload(dingtalk_only.replace(&dingtalk, ""), 3).await;
    let stderr = host.agent.stderr();
    assert!(
        stderr.contains("removes the only working sink: it keeps running"),
        "{stderr}"
    );
    hit_and_see("CONTROL", "control").await;
}

/// An Alertmanager post logs `delivered` with its own fields (the URL without credentials,
/// the HTTP status, the number of alerts), not DingTalk's; a refusal logs the status and
/// Alertmanager's answer; the password in a URL is never logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_posts_are_logged_with_their_own_fields_and_no_credentials() {
    let Some((_cluster, base)) = instance().await else {
        return;
    };
    let live = base.replace("http://", "http://ops:made-up-password@");
    let wrong = format!("{live}/not-here");
    let host = Host::start("app-a", &[live, wrong], "1h").await;
    host.hit("DBTIMEOUT", 2);
    let delivered = host
        .agent
        .wait_event_where("delivered", 1, ARRIVAL, |e| {
            e["sink"] == format!("{base}/api/v2/alerts")
        })
        .await;
    assert_eq!(delivered["status"], 200, "{delivered}");
    assert_eq!(delivered["alerts"], 1, "{delivered}");
    assert_eq!(
        delivered["message"], "delivered to Alertmanager",
        "{delivered}"
    );
    for dingtalk_field in ["errcode", "robot", "id", "windows", "matches", "parts"] {
        assert!(
            delivered.get(dingtalk_field).is_none(),
            "{dingtalk_field} in {delivered}"
        );
    }
    let refused = wait_until(ARRIVAL, || {
        host.agent
            .stderr()
            .contains("Alertmanager rejected the message")
    })
    .await;
    let stderr = host.agent.stderr();
    assert!(refused, "{stderr}");
    let refusal: Value = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Alertmanager rejected"))
        })
        .expect("the refusal as JSON");
    assert_eq!(refusal["status"], 404, "{refusal}");
    assert_eq!(
        refusal["sink"],
        format!("{base}/not-here/api/v2/alerts"),
        "{refusal}"
    );
    assert!(refusal.get("errcode").is_none(), "{refusal}");
    assert!(!stderr.contains("made-up-password"), "{stderr}");
}

/// A silence added while an absence fires takes it out of the next message, as out of
/// DingTalk's: its alert ends in Alertmanager then, and the incident that made the message
/// fires as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_added_while_absent_ends_the_absence_alert_at_the_next_message() {
    let Some((_cluster, url)) = instance().await else {
        return;
    };
    let options = HostOptions {
        extra: HEARTBEAT,
        ..HostOptions::default()
    };
    let host = Host::start_with("app-a", std::slice::from_ref(&url), options).await;
    beat(&host, 4).await;
    let fired = alerts_where(&url, None, |a| heartbeat(a).is_some()).await;
    assert!(
        fired.is_some(),
        "no heartbeat alert:\n{}",
        host.agent.stderr()
    );
    let config = host.env.config_path();
    let config = config.to_str().expect("utf-8 path");
    let silence = [
        "silence",
        "add",
        "-c",
        config,
        "--rule",
        "heartbeat",
        "--for",
        "1h",
    ];
    let added = cli::run(host.env.dir.path(), &silence);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    host.hit("DBTIMEOUT", 2);
    let after = alerts_where(&url, None, |a| {
        heartbeat(a).is_none() && a.iter().any(|a| a["labels"]["alertname"] == "db-timeout")
    })
    .await;
    assert!(
        after.is_some(),
        "the silenced absence still fires, or the incident does not:\n{}",
        host.agent.stderr()
    );
}

/// A source that stops growing (`source_stalled`) is one `source_stalled` alert in
/// Alertmanager naming the source and the host; the file growing again resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_source_is_an_alert_until_its_file_grows_again() {
    let Some((_cluster, url)) = instance().await else {
        return;
    };
    let options = HostOptions {
        source: ", source_stalled: 2s",
        ..HostOptions::default()
    };
    let host = Host::start_with("app-a", std::slice::from_ref(&url), options).await;
    beat(&host, 2).await;
    let alert = the_only_alert(&url, &host, "source_stalled").await;
    assert_eq!(alert["labels"]["source"], "app");
    assert_eq!(alert["labels"]["host"], "app-a");
    assert_eq!(alert["labels"]["cluster"], "test");
    let summary = alert["annotations"]["summary"].as_str().unwrap_or("");
    assert!(
        summary.starts_with("source app: `") && summary.ends_with("has not grown for 2s on app-a"),
        "{alert}"
    );

    // The file grows again: the alert leaves the active list.
    let resolved = alerts_where(&url, Some(&host), |a| named(a, "source_stalled").is_none()).await;
    assert!(
        resolved.is_some(),
        "the stalled source was not resolved:\n{}",
        host.agent.stderr()
    );
}
