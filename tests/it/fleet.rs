//! The fleet path end to end, with the real Alertmanager: alerts from several hosts → a
//! two-instance Alertmanager cluster → `logding relay` → the DingTalk robot (the mock).
//!
//! Alertmanager's timings are short (`group_wait` 4 s, `group_interval` 4 s, `peer-timeout`
//! 1 s), so each test takes seconds. "Exactly one message" is checked by waiting until the
//! message arrives and then for longer than Alertmanager would need to send a duplicate
//! (`group_interval` plus the peer's `peer-timeout` wait, with margin): [`QUIET`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::agent::wait_until;
use crate::support::alertmanager::{self, Cluster, Host, HostOptions, post_alerts};
use crate::support::dingtalk_server::{MockDingTalk, MockOptions, Request};
use crate::support::relay::Relay;

/// Longer than a duplicate would take to show up (group_interval 4 s + peer-timeout 1 s).
const QUIET: Duration = Duration::from_secs(8);
/// Bound on a notification's way through the cluster and the relay.
const ARRIVAL: Duration = Duration::from_secs(20);

/// One alert as an agent posts a newly reported incident: `startsAt` is now (when the agent
/// reports it: an older one would make Alertmanager skip `group_wait`); `firing` leaves
/// `endsAt` in the future, else it is now.
fn alert(rule: &str, host: &str, firing: bool) -> Value {
    let now = jiff::Timestamp::now();
    let ends = if firing {
        now + jiff::SignedDuration::from_secs(300)
    } else {
        now
    };
    json!({
        "labels": {"alertname": rule, "host": host, "severity": "critical", "source": "app"},
        "annotations": {"summary": format!("{rule} on {host}"), "count": "3"},
        "startsAt": now.to_string(),
        "endsAt": ends.to_string(),
    })
}

fn alerts(rule: &str, hosts: &[&str], firing: bool) -> Value {
    Value::Array(hosts.iter().map(|h| alert(rule, h, firing)).collect())
}

const HOSTS: [&str; 3] = ["app-a", "app-b", "app-c"];

/// The agents' `resolve_after`. Each host resolves on its own clock, a fraction of a second
/// apart; Alertmanager flushes a group every `group_interval` (4 s) from its first
/// notification (`group_wait`, 4 s, after the first alert, about 1 s after the hits). With 9 s
/// the resolutions fall near the middle of two flushes (the 10th second after the hits, the
/// flushes near the 9th and 13th), so they make one resolved message, as one outage ending on
/// every host should, rather than straddling a flush.
const RESOLVE_AFTER: &str = "9s";

struct Fleet {
    mock: MockDingTalk,
    relay: Relay,
    cluster: Cluster,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// One fleet at a time: two Alertmanagers and a relay each, on a 2-core CI machine, are
/// enough load already; two fleets at once can delay Alertmanager past its `group_wait` and
/// split a group's first notification.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Fleet {
    async fn start() -> Option<Fleet> {
        alertmanager::binary()?;
        let serial = SERIAL.lock().await;
        let mock = MockDingTalk::start(MockOptions::default()).await;
        let relay = Relay::start(&mock, "").await;
        let config = alertmanager::config(&relay.webhook_url(), None);
        let cluster = Cluster::start(2, &config).await?;
        Some(Fleet {
            mock,
            relay,
            cluster,
            _serial: serial,
        })
    }

    /// The fleet and its three hosts (`app-a`, `app-b`, `app-c`): real agents whose
    /// `alertmanager:` sink posts to both instances, resolving after `resolve_after` of quiet.
    async fn with_hosts(resolve_after: &str) -> Option<(Fleet, Vec<Host>)> {
        let options = HostOptions {
            resolve_after,
            ..HostOptions::default()
        };
        Fleet::with(&HOSTS, options).await
    }

    /// The fleet and hosts `names`, each as `options` say.
    async fn with(names: &[&str], options: HostOptions<'_>) -> Option<(Fleet, Vec<Host>)> {
        let fleet = Fleet::start().await?;
        let urls = fleet.cluster.urls();
        let mut hosts = Vec::new();
        for name in names {
            hosts.push(Host::start_with(name, &urls, options).await);
        }
        Some((fleet, hosts))
    }

    /// Waits until `count` messages were accepted; panics with the logs otherwise.
    async fn wait_messages(&self, count: usize) -> Vec<Request> {
        let arrived = wait_until(ARRIVAL, || self.mock.accepted().len() >= count).await;
        assert!(
            arrived,
            "{} message(s) arrived, expected {count}\nrelay:\n{}\nalertmanager:\n{}",
            self.mock.accepted().len(),
            self.relay.stderr(),
            self.cluster.logs()
        );
        self.mock.accepted()
    }

    /// Waits [`QUIET`] and checks that no more than `count` messages arrived.
    async fn assert_no_more_than(&self, count: usize) {
        tokio::time::sleep(QUIET).await;
        let heads: Vec<String> = self
            .mock
            .accepted()
            .iter()
            .map(|m| m.text().chars().take(300).collect())
            .collect();
        assert_eq!(heads.len(), count, "{heads:#?}");
    }

    /// Waits for the first message, checks that it is `db-timeout` firing on the three hosts,
    /// and that no other follows within [`QUIET`].
    async fn assert_one_message_of_all_hosts(&self) {
        let messages = self.wait_messages(1).await;
        let text = messages[0].text();
        assert!(
            text.contains("### [alert] FIRING · db-timeout · 3 alerts · 3 hosts"),
            "{text}"
        );
        self.assert_no_more_than(1).await;
    }

    /// Waits for `rule`'s RESOLVED message, then [`QUIET`], and checks that the group ended
    /// with exactly one RESOLVED message naming `hosts`, after the first (firing) message.
    ///
    /// Alertmanager reads a POST's alerts one by one; when its group_interval tick falls in
    /// between (a loaded machine), it first sends an update with some alerts resolved. That
    /// is an update, not a duplicate: it must show resolved alerts, and there is at most one.
    async fn assert_resolved_once(&self, rule: &str, hosts: &str) {
        let heading = format!("### [alert] RESOLVED · {rule}");
        let resolved = || {
            self.mock
                .accepted()
                .iter()
                .any(|m| m.text().contains(&heading))
        };
        assert!(wait_until(ARRIVAL, resolved).await, "no resolved message");
        tokio::time::sleep(QUIET).await;
        let after: Vec<String> = self.mock.accepted()[1..]
            .iter()
            .map(Request::text)
            .collect();
        let (last, updates) = after.split_last().expect("a resolved message");
        assert!(
            last.contains(&format!("**RESOLVED** ×3 · {hosts}")),
            "{last}"
        );
        assert!(updates.len() <= 1, "{after:#?}");
        for update in updates {
            assert!(update.contains("**RESOLVED** ×"), "{update}");
        }
    }
}

/// The same incident on three hosts' agents (the rule `db-timeout` hits on each) is one
/// message naming the rule and the three hosts, with the keyword; once the agents resolve
/// it, one resolved message (any duplicate firing message would be in between).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_incident_on_three_hosts_is_one_message_then_one_resolved() {
    let Some((fleet, hosts)) = Fleet::with_hosts(RESOLVE_AFTER).await else {
        return;
    };
    hit_all(&hosts, "DBTIMEOUT");
    let messages = fleet.wait_messages(1).await;
    let text = messages[0].text();
    assert!(
        text.contains("### [alert] FIRING · db-timeout · 3 alerts · 3 hosts"),
        "{text}"
    );
    assert!(text.contains("app-a, app-b, app-c"), "{text}");
    assert!(text.contains("hits on app-a"), "{text}");
    fleet
        .assert_resolved_once("db-timeout", "app-a, app-b, app-c")
        .await;
}

/// Agents whose window (5 s) is longer than Alertmanager's `group_wait` (4 s), as in
/// production (`window` 1m, `group_wait` 30s): each host posts its incident a window after
/// its first hit. The alert starts when its agent reports it, so Alertmanager waits
/// `group_wait` for the other hosts and one message names all three, with no update after
/// it. (An alert starting at its first hit is older than `group_wait`: Alertmanager would
/// notify the first host's alone, at once, and the others `group_interval` later.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_longer_than_group_wait_still_makes_one_message_of_all_hosts() {
    let options = HostOptions {
        window: "5s",
        ..HostOptions::default()
    };
    let Some((fleet, hosts)) = Fleet::with(&HOSTS, options).await else {
        return;
    };
    hit_all(&hosts, "DBTIMEOUT");
    fleet.assert_one_message_of_all_hosts().await;
}

/// An agent with `resend_every: 2s` (a firing alert's `endsAt` 8 s ahead of each post, room
/// for a restart on a loaded machine): its
/// incident stays active in Alertmanager past the `endsAt` of its first post (re-posted), and
/// past the `endsAt` it had while the agent was stopped (the restarted agent posts its
/// persisted firing alerts again at once). The robot gets the one firing message and
/// nothing else: no resolved message, no repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_incident_stays_active_through_resends_and_an_agent_restart() {
    let options = HostOptions {
        resend_every: "2s",
        ..HostOptions::default()
    };
    let Some((fleet, mut hosts)) = Fleet::with(&HOSTS[..1], options).await else {
        return;
    };
    let host = &mut hosts[0];
    host.hit("DBTIMEOUT", 3);
    let urls = fleet.cluster.urls();
    let mut first_ends = None;
    for _ in 0..1000 {
        first_ends = active_until(&urls).await;
        if first_ends.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_ends = first_ends.expect("the alert reaches both instances");
    let messages = fleet.wait_messages(1).await;
    assert!(
        messages[0].text().contains("FIRING · db-timeout"),
        "{}",
        messages[0].text()
    );
    wait_past(first_ends).await;
    let refreshed = active_until(&urls).await;
    assert!(
        refreshed.is_some_and(|ends| ends > first_ends),
        "not re-posted: {refreshed:?} after {first_ends}"
    );

    host.stop().await;
    let while_stopped = active_until(&urls).await.expect("active while stopped");
    host.start_again().await;
    wait_past(while_stopped).await;
    let after_restart = active_until(&urls).await;
    assert!(
        after_restart.is_some_and(|ends| ends > while_stopped),
        "not re-posted after the restart: {after_restart:?} after {while_stopped}:\n{}",
        host.agent.stderr()
    );
    fleet.assert_no_more_than(1).await;
}

/// The `endsAt` of the active `db-timeout` alert, the earliest of `urls`' instances; `None`
/// when one of them does not hold it active (it never came, or it expired).
async fn active_until(urls: &[String]) -> Option<jiff::Timestamp> {
    let mut earliest = jiff::Timestamp::MAX;
    for url in urls {
        let alerts = alertmanager::alerts_in(url).await;
        let alert = alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == "db-timeout")?;
        let ends: jiff::Timestamp = alert["endsAt"].as_str()?.parse().ok()?;
        earliest = earliest.min(ends);
    }
    Some(earliest)
}

/// Returns once the wall clock is a second past `at` (bounded by [`ARRIVAL`]).
async fn wait_past(at: jiff::Timestamp) {
    let past = at + jiff::SignedDuration::from_secs(1);
    let passed = wait_until(ARRIVAL, || jiff::Timestamp::now() > past).await;
    assert!(passed, "{past} is more than {ARRIVAL:?} away");
}

/// An instance killed after the agents' alerts reached it and before it notified: the
/// other one notifies, once; the agents go on posting to both (the dead one only fills its
/// own outbox), and the resolution still arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_incident_loses_nothing_and_duplicates_nothing() {
    let Some((mut fleet, hosts)) = Fleet::with_hosts(RESOLVE_AFTER).await else {
        return;
    };
    hit_all(&hosts, "DBTIMEOUT");
    for url in fleet.cluster.urls() {
        let all_three = alerts_where(&url, |alerts| alerts.len() == 3).await;
        assert!(
            all_three.is_some(),
            "the agents' alerts did not reach {url}"
        );
    }
    // Within group_wait: the instance that would have notified may be this one.
    fleet.cluster.kill(0);
    let messages = fleet.wait_messages(1).await;
    let text = messages[0].text();
    assert!(text.contains("FIRING · db-timeout · 3 alerts"), "{text}");
    fleet
        .assert_resolved_once("db-timeout", "app-a, app-b, app-c")
        .await;
}

/// The relay stopped for 60 s (the outage; `LOGDING_FLEET_OUTAGE_SECS` changes it)
/// while three agents report an incident: Alertmanager retries at every `group_interval`
/// until the relay answers, and the incident arrives once, with its three hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_alertmanager_retries_and_nothing_is_lost() {
    let Some((mut fleet, hosts)) = Fleet::with_hosts("1h").await else {
        return;
    };
    let outage = std::env::var("LOGDING_FLEET_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs);
    fleet.relay.stop().await;
    hit_all(&hosts, "DBTIMEOUT");
    tokio::time::sleep(outage).await;
    assert!(fleet.mock.accepted().is_empty());
    let logs = fleet.cluster.logs();
    assert!(
        logs.contains("Notify attempt failed") || logs.contains("Notify for alerts failed"),
        "Alertmanager did not see the relay down:\n{logs}"
    );
    fleet.relay.restart().await;
    fleet.assert_one_message_of_all_hosts().await;
}

/// 5,000 alerts in one group (standing for 5,000 hosts: posted straight to both instances,
/// as 5,000 agents' sinks would): every message within the 19,000-byte budget, exact counts
/// ("5,000 alerts, 120 shown", the figure being the alert lines the message holds), the
/// hosts folded, and no more than 18 posts in any 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_5000_alerts_is_within_budget_with_exact_counts() {
    let Some(fleet) = Fleet::start().await else {
        return;
    };
    let hosts: Vec<String> = (1..=5_000).map(|n| format!("app-{n:04}")).collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    post_alerts(&fleet.cluster.urls(), &alerts("storm", &hosts, true)).await;
    // Alertmanager may notify while the alerts are still coming in (group_wait is 4 s): the
    // group's last notification holds all of them.
    let heading = "### [alert] FIRING · storm · 5,000 alerts · 5,000 hosts";
    let complete = || {
        fleet
            .mock
            .accepted()
            .iter()
            .any(|m| m.text().contains(heading))
    };
    assert!(
        wait_until(ARRIVAL, complete).await,
        "no message with all 5,000 alerts"
    );
    let count = fleet.mock.accepted().len();
    fleet.assert_no_more_than(count).await;
    let messages = fleet.mock.accepted();
    for message in &messages {
        assert!(message.body.len() <= 19_000, "{}", message.body.len());
        let text = message.text();
        let shown = text.lines().filter(|l| l.starts_with("- app-")).count();
        let total = text.lines().find_map(|l| {
            let (_, after) = l.split_once("### [alert] FIRING · storm · ")?;
            Some(after.split(" alert").next()?.to_owned())
        });
        let total = total.unwrap_or_else(|| panic!("no heading:\n{text}"));
        let count: usize = total.replace(',', "").parse().expect("a count");
        // Every alert listed, or the footer says how many of how many.
        let footer = format!("{total} alerts, {shown} shown");
        assert!(
            shown == count || text.contains(&footer),
            "{footer}:\n{text}"
        );
    }
    let text = messages
        .iter()
        .map(Request::text)
        .find(|t| t.contains(heading))
        .expect("complete");
    let shown = text.lines().filter(|l| l.starts_with("- app-")).count();
    assert!(shown > 20, "only {shown} alerts shown");
    assert!(
        text.contains("**FIRING · CRITICAL** ×5,000 · app-0001…app-5000 (5,000 hosts)"),
        "{}",
        text.lines().take(6).collect::<Vec<_>>().join("\n")
    );
    assert_at_most_per_minute(&messages, 18);
}

/// `amtool silence add alertname=noisy` on one instance: the agents' `noisy` incidents reach
/// Alertmanager (suppressed there) and never the robot, while `control` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amtool_silence_silences_end_to_end() {
    let Some((fleet, hosts)) = Fleet::with_hosts("1h").await else {
        return;
    };
    let Some(amtool) = alertmanager::amtool() else {
        return;
    };
    let output = std::process::Command::new(amtool)
        .args([
            "silence",
            "add",
            "alertname=noisy",
            "--comment=test",
            "--author=test",
            "--duration=1h",
            &format!("--alertmanager.url={}", fleet.cluster.urls()[0]),
        ])
        .output()
        .expect("amtool runs");
    assert!(output.status.success(), "{output:?}");
    // The silence reaches the other instance by gossip.
    let second = fleet.cluster.urls()[1].clone();
    let gossiped = async {
        for _ in 0..500 {
            if alertmanager::silences_in(&second).await > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    };
    assert!(gossiped.await, "the silence did not reach instance 1");
    hit_all(&hosts, "NOISY");
    hit_all(&hosts, "CONTROL");
    let messages = fleet.wait_messages(1).await;
    assert!(messages[0].text().contains("control"));
    let suppressed = alerts_where(&second, |alerts| {
        alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == "noisy" && a["status"]["state"] == "suppressed")
            .count()
            == 3
    })
    .await;
    assert!(
        suppressed.is_some(),
        "the noisy alerts are not in Alertmanager, silenced"
    );
    fleet.assert_no_more_than(1).await;
    let texts: Vec<String> = fleet.mock.accepted().iter().map(Request::text).collect();
    assert!(!texts.iter().any(|t| t.contains("noisy")), "{texts:#?}");
}

/// Appends three lines with `word` to every host's log.
fn hit_all(hosts: &[Host], word: &str) {
    for host in hosts {
        host.hit(word, 3);
    }
}

/// No rolling 60-second span holds more than `max` of `messages`.
fn assert_at_most_per_minute(messages: &[Request], max: usize) {
    for (i, first) in messages.iter().enumerate() {
        let within = messages[i..]
            .iter()
            .take_while(|m| m.at.duration_since(first.at) < Duration::from_secs(60))
            .count();
        assert!(within <= max, "{within} posts within 60 s");
    }
}

/// The agent's `alertmanager:` sink against one real instance, a dead address and a wrong
/// path: the alert reaches the live instance with its labels and annotations, the dead one
/// does not hold it back, the wrong path is one configuration error in the log, and the
/// resolved incident ends the alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_posts_each_incident_to_every_instance_and_resolves_it() {
    let Some(cluster) = one_instance().await else {
        return;
    };
    let live = cluster.urls()[0].clone();
    let dead = format!("http://127.0.0.1:{}", alertmanager::free_port());
    let wrong = format!("{live}/not-here");
    let host = Host::start("app-a", &[dead, live.clone(), wrong], "2s").await;
    host.hit("DBTIMEOUT", 3);
    let alerts = alerts_where(&live, |alerts| !alerts.is_empty()).await;
    assert!(
        alerts.is_some(),
        "no alert reached Alertmanager:\n{}",
        host.agent.stderr()
    );
    let alerts = alerts.expect("some");
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["alertname"], "db-timeout");
    assert_eq!(alert["labels"]["host"], "app-a");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["source"], "app");
    assert_eq!(alert["labels"]["cluster"], "test");
    assert_eq!(alert["annotations"]["count"], "3");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("db-timeout: 3 hits on app-a")),
        "{alert}"
    );
    // Resolved after 2 s of quiet: the alert leaves the active list.
    let resolved = alerts_where(&live, Vec::is_empty).await;
    assert!(
        resolved.is_some(),
        "the alert was not resolved:\n{}",
        host.agent.stderr()
    );
    let stderr = host.agent.stderr();
    let refusals = stderr
        .lines()
        .filter(|l| l.contains("Alertmanager rejected the message"))
        .count();
    assert_eq!(refusals, 1, "{stderr}");
    assert!(stderr.contains("not-here/api/v2/alerts"), "{stderr}");
}

/// `run --dry-run --output json` with `alertmanager:` prints, after each summary, the alerts
/// it would post, as `{"alertmanager": [...]}`; nothing is posted and no state is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_alerts_as_json() {
    let nowhere = format!("http://127.0.0.1:{}", alertmanager::free_port());
    let options = HostOptions {
        args: &["--dry-run", "--output", "json"],
        ..HostOptions::default()
    };
    let host = Host::start_with("app-a", &[nowhere], options).await;
    host.hit("DBTIMEOUT", 2);
    let printed = || {
        host.agent
            .stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v.get("alertmanager").is_some())
    };
    assert!(
        wait_until(ARRIVAL, || printed().is_some()).await,
        "no alerts printed:\n{}\n{}",
        host.agent.stdout(),
        host.agent.stderr()
    );
    let alerts = printed().expect("printed");
    let alert = &alerts["alertmanager"][0];
    assert_eq!(alert["labels"]["alertname"], "db-timeout");
    assert_eq!(alert["labels"]["host"], "app-a");
    assert_eq!(alert["annotations"]["count"], "2");
    assert!(
        alert["startsAt"].is_string() && alert["endsAt"].is_string(),
        "{alert}"
    );
    assert!(
        !host.env.path("state").exists(),
        "a dry run writes no state"
    );
}

/// `dingtalk:` and `alertmanager:` together: the robot gets the message and the instance
/// the alert, from the same incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dingtalk_and_alertmanager_together_both_get_the_incident() {
    let Some(cluster) = one_instance().await else {
        return;
    };
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let secret = mock
        .secret()
        .map_or(String::new(), |s| format!("  secret: {s}\n"));
    let dingtalk = format!(
        "dingtalk:\n  webhook: '{}'\n{secret}  keyword: alert\n",
        mock.url()
    );
    let options = HostOptions {
        extra: &dingtalk,
        ..HostOptions::default()
    };
    let host = Host::start_with("app-b", &cluster.urls(), options).await;
    host.hit("DBTIMEOUT", 4);
    assert!(
        wait_until(ARRIVAL, || !mock.accepted().is_empty()).await,
        "no DingTalk message:\n{}",
        host.agent.stderr()
    );
    assert!(mock.accepted()[0].text().contains("db-timeout"));
    let found = alerts_where(&cluster.urls()[0], |alerts| {
        alerts.iter().any(|a| a["labels"]["host"] == "app-b")
    })
    .await
    .is_some();
    assert!(found, "no alert in Alertmanager:\n{}", host.agent.stderr());
}

/// Polls an instance's active alerts until `condition` holds (bounded by [`ARRIVAL`]).
async fn alerts_where(url: &str, condition: impl Fn(&Vec<Value>) -> bool) -> Option<Vec<Value>> {
    let start = std::time::Instant::now();
    while start.elapsed() < ARRIVAL {
        let alerts = alertmanager::alerts_in(url).await;
        if condition(&alerts) {
            return Some(alerts);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// One Alertmanager, notifying nobody: for the agent's side alone.
async fn one_instance() -> Option<Cluster> {
    Cluster::start(1, &alertmanager::config("http://127.0.0.1:9/none", None)).await
}

/// The benchmark of issue 16 (`bench/fleet.sh` runs it; it returns at once unless
/// `LOGDING_FLEET_BENCH` is set): 50 hosts' alerts for each of N incidents, posted by a load
/// generator to both instances of the cluster as 50 agents' sinks post a new incident (one
/// alert per host and post, starting when posted, the hosts at once), grouped by
/// Alertmanager and sent to the relay. Prints messages per incident (goal: 1), the relay's
/// CPU time, and the latency from Alertmanager's notification (the relay receiving it) to the
/// robot's accept, beside prometheus-webhook-dingtalk's documented behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)]
async fn bench_fifty_hosts_through_the_cluster_and_the_relay() {
    let Some(incidents) = std::env::var("LOGDING_FLEET_BENCH")
        .ok()
        .map(|n| n.parse::<usize>().unwrap_or(10))
    else {
        return;
    };
    let Some(fleet) = Fleet::start().await else {
        return;
    };
    let hosts: Vec<String> = (1..=50).map(|n| format!("app-{n:02}")).collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let cpu_before = fleet.relay.cpu_time();
    let rules: Vec<String> = (0..incidents).map(|k| format!("bench-{k:03}")).collect();
    for rule in &rules {
        // As 50 agents do: each host posts its own alert to both instances, all at once.
        let mut posts = tokio::task::JoinSet::new();
        for host in &hosts {
            let (urls, alert) = (fleet.cluster.urls(), json!([alert(rule, host, true)]));
            posts.spawn(async move { post_alerts(&urls, &alert).await });
        }
        while let Some(posted) = posts.join_next().await {
            posted.expect("posted");
        }
        // One incident after the other, as a fleet sees them.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let heading = |rule: &str| format!("FIRING · {rule} · 50 alerts · 50 hosts");
    let all_arrived = || {
        let texts: Vec<String> = fleet.mock.accepted().iter().map(Request::text).collect();
        rules
            .iter()
            .all(|rule| texts.iter().any(|t| t.contains(&heading(rule))))
    };
    assert!(
        wait_until(ARRIVAL * 3, all_arrived).await,
        "not every incident arrived"
    );
    tokio::time::sleep(QUIET).await;
    let cpu = fleet.relay.cpu_time().saturating_sub(cpu_before);
    let messages = fleet.mock.accepted();
    // Wall clock of the mock's accepts: its instants shifted by one reading of both clocks.
    let (now, wall) = (tokio::time::Instant::now(), jiff::Timestamp::now());
    let accepted_at = |m: &Request| {
        wall - jiff::SignedDuration::try_from(now.duration_since(m.at)).unwrap_or_default()
    };
    let received = fleet.relay.received_at();
    let mut latencies: Vec<f64> = rules
        .iter()
        .map(|rule| {
            let group = format!("alertname=\"{rule}\"");
            let notified = received
                .iter()
                .filter(|(key, _)| key.contains(&group))
                .map(|(_, at)| *at)
                .min()
                .expect("the relay received the group");
            let message = messages
                .iter()
                .find(|m| m.text().contains(&heading(rule)))
                .expect("arrived");
            accepted_at(message).duration_since(notified).as_secs_f64() * 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let p = |q: usize| latencies[(latencies.len() * q).div_ceil(100).saturating_sub(1)];
    let per_incident = messages.len() as f64 / incidents as f64;
    println!(
        "fleet bench: {incidents} incidents × 50 hosts, 2 Alertmanager instances: {} DingTalk \
         messages ({per_incident:.2} per incident; goal 1); relay CPU {:.3} s ({:.1} ms per \
         incident); notification → robot accept p50 {:.1} ms, p99 {:.1} ms",
        messages.len(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / incidents as f64,
        p(50),
        p(99),
    );
    println!(
        "fleet bench: prometheus-webhook-dingtalk, as documented: one post per notification \
         (both instances' copies posted: up to 2 per incident after an outage), no retry, \
         errcode not read (a throttled or refused post is lost), no rate budget, no size \
         budget (large groups fail: its issues #30, #222)"
    );
    for message in &messages {
        let title = message.text().lines().next().unwrap_or_default().to_owned();
        println!("fleet bench: message: {title}");
    }
    assert_at_most_per_minute(&messages, 18);
}
