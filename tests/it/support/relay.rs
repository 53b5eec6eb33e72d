//! [`Relay`]: the real `logding relay` binary as a child process, posting to a
//! [`MockDingTalk`], on a port chosen up front (so it can be stopped and started again at
//! the address Alertmanager knows).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use rustix::process::Signal;

use super::agent::Agent;
use super::alertmanager::{free_port, http_client};
use super::dingtalk_server::MockDingTalk;

/// A relay's directory, config and (when running) process.
pub(crate) struct Relay {
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub(crate) port: u16,
    process: Option<Agent>,
    /// Arguments after `relay -c relay.yaml` (`--dry-run`).
    args: Vec<String>,
}

impl Relay {
    /// Writes `relay.yaml` (robot `ops` posting to `mock`, `extra` YAML appended at the top
    /// level) and starts the relay; returns once it answers `/-/ready`.
    pub(crate) async fn start(mock: &MockDingTalk, extra: &str) -> Relay {
        Relay::start_with(mock, extra, &[]).await
    }

    /// [`Relay::start`] with `args` after `relay -c relay.yaml`.
    pub(crate) async fn start_with(mock: &MockDingTalk, extra: &str, args: &[&str]) -> Relay {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let secret = mock
            .secret()
            .map_or(String::new(), |s| format!("    secret: {s}\n"));
        let yaml = format!(
            "listen: 127.0.0.1:{port}
state_dir: state
robots:
  - name: ops
    webhook: '{}'
{secret}    keyword: alert
{extra}",
            mock.url()
        );
        fs::write(dir.path().join("relay.yaml"), yaml).expect("write relay.yaml");
        let mut relay = Relay {
            dir,
            port,
            process: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        relay.restart().await;
        relay
    }

    /// `http://127.0.0.1:<port>/robots/ops`.
    pub(crate) fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/robots/ops", self.port)
    }

    /// The config file.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("relay.yaml")
    }

    /// Starts the relay again (after [`Relay::stop`]), and waits until it is ready.
    pub(crate) async fn restart(&mut self) {
        let config = self.config_path();
        let mut args = vec![
            "-v",
            "--log-format",
            "json",
            "relay",
            "-c",
            config.to_str().expect("utf-8 temp path"),
        ];
        args.extend(self.args.iter().map(String::as_str));
        let process = Agent::spawn(self.dir.path(), self.dir.path(), &args);
        let url = format!("http://127.0.0.1:{}/-/ready", self.port);
        let client = http_client();
        let start = std::time::Instant::now();
        loop {
            if let Ok(answer) = client.get(&url).send().await
                && answer.status().is_success()
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the relay did not become ready; stderr:\n{}",
                process.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.process = Some(process);
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns what it logged.
    pub(crate) async fn stop(&mut self) -> String {
        let mut process = self.process.take().expect("the relay is running");
        process.signal(Signal::TERM);
        let code = process.wait_exit(Duration::from_secs(15)).await;
        assert_eq!(code, Some(0), "relay stderr:\n{}", process.stderr());
        process.stderr()
    }

    /// Sends `signal` to the running relay.
    pub(crate) fn signal(&self, signal: Signal) {
        self.process
            .as_ref()
            .expect("the relay is running")
            .signal(signal);
    }

    /// What the running relay printed on stdout (`--dry-run`).
    pub(crate) fn stdout(&self) -> String {
        self.process.as_ref().map(Agent::stdout).unwrap_or_default()
    }

    /// A path in the relay's directory (`state/robots/ops/outbox`).
    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Each notification the running relay received: (group key, when), from its JSON log.
    pub(crate) fn received_at(&self) -> Vec<(String, jiff::Timestamp)> {
        self.stderr()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|record| record["message"] == "notification received")
            .filter_map(|record| {
                let at = record["timestamp"].as_str()?.parse().ok()?;
                Some((record["group"].as_str()?.to_owned(), at))
            })
            .collect()
    }

    /// CPU time (user + system) the running relay has used so far (Linux `/proc`).
    pub(crate) fn cpu_time(&self) -> Duration {
        self.process
            .as_ref()
            .map_or(Duration::ZERO, Agent::cpu_time)
    }

    /// What the running relay logged.
    pub(crate) fn stderr(&self) -> String {
        self.process.as_ref().map(Agent::stderr).unwrap_or_default()
    }
}
