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
}

impl Relay {
    /// Writes `relay.yaml` (robot `ops` posting to `mock`, `extra` YAML appended at the top
    /// level) and starts the relay; returns once it answers `/-/ready`.
    pub(crate) async fn start(mock: &MockDingTalk, extra: &str) -> Relay {
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
        let args = [
            "-v",
            "relay",
            "-c",
            config.to_str().expect("utf-8 temp path"),
        ];
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

    /// SIGTERM, then waits (bounded) for a clean exit.
    pub(crate) async fn stop(&mut self) {
        let mut process = self.process.take().expect("the relay is running");
        process.signal(Signal::TERM);
        let code = process.wait_exit(Duration::from_secs(15)).await;
        assert_eq!(code, Some(0), "relay stderr:\n{}", process.stderr());
    }

    /// What the running relay logged.
    pub(crate) fn stderr(&self) -> String {
        self.process.as_ref().map(Agent::stderr).unwrap_or_default()
    }
}
