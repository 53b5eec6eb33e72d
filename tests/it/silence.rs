//! End to end: `logding silence add | list | expire` against a running `logding run`, which
//! picks the silences up at its next window, without a restart.

use std::time::Duration;

use crate::support::agent::{Env, wait_until};
use crate::support::cli;
use crate::support::dingtalk_server::{MockDingTalk, MockOptions};

const RULES: &str = "rules:
  - name: db-timeout
    pattern: 'ERROR .*timeout to (?P<peer>[\\d.]+)'
    group_by: [peer]
";

fn timeouts(peer: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("ERROR db call {i} timeout to {peer}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_added_while_the_agent_runs_applies_at_its_next_window_and_expires() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let env = Env::new();
    env.write_config(&mock.url(), mock.secret().as_deref(), "1s", RULES);
    env.append("app.log", &["INFO starting".to_owned()]);
    let agent = env.start(&[]);
    agent
        .wait_event("started", 1, Duration::from_secs(10))
        .await;

    let config = env.config_path();
    let config = config.to_str().expect("utf-8 path");
    let add = cli::run(
        env.dir.path(),
        &[
            "silence",
            "add",
            "-c",
            config,
            "--rule",
            "db-timeout",
            "--match",
            "peer=10.0.0.5",
            "--for",
            "2h",
            "--comment",
            "failover drill",
        ],
    );
    assert_eq!(add.code, Some(0), "{}", add.stderr);
    assert!(
        add.stdout
            .starts_with("added SIL-1: rule=db-timeout peer=10.0.0.5 until "),
        "{}",
        add.stdout
    );
    let list = cli::run(env.dir.path(), &["silence", "list", "-c", config]);
    assert!(list.stdout.contains("SIL-1\tactive\t"), "{}", list.stdout);
    assert!(list.stdout.contains("failover drill"), "{}", list.stdout);

    let mut burst = timeouts("10.0.0.5", 5);
    burst.extend(timeouts("10.0.0.6", 2));
    env.append("app.log", &burst);
    assert!(
        wait_until(Duration::from_secs(10), || !mock.accepted().is_empty()).await,
        "no message; stderr:\n{}",
        agent.stderr()
    );
    let text = mock.accepted()[0].text();
    assert!(text.contains("10.0.0.6"), "{text}");
    assert!(!text.contains("peer=10.0.0.5 ×"), "{text}");
    assert!(
        text.contains("silenced: db-timeout ×5 (SIL-1, until "),
        "{text}"
    );

    let expire = cli::run(
        env.dir.path(),
        &["silence", "expire", "-c", config, "SIL-1"],
    );
    assert_eq!(expire.code, Some(0), "{}", expire.stderr);
    env.append("app.log", &timeouts("10.0.0.5", 3));
    assert!(
        wait_until(Duration::from_secs(10), || mock.accepted().len() >= 2).await,
        "the expired silence still applies; stderr:\n{}",
        agent.stderr()
    );
    let text = mock.accepted()[1].text();
    assert!(text.contains("10.0.0.5"), "{text}");
    assert!(!text.contains("silenced"), "{text}");

    for (rule, duration, says) in [
        ("db-timout", "1h", "did you mean `db-timeout`?"),
        ("db-timeout", "8d", "longer than `max_silence`"),
    ] {
        let args = [
            "silence", "add", "-c", config, "--rule", rule, "--for", duration,
        ];
        let refused = cli::run(env.dir.path(), &args);
        assert_eq!(refused.code, Some(2), "{}", refused.stderr);
        assert!(refused.stderr.contains(says), "{}", refused.stderr);
    }
}
