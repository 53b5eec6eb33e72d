//! [`Relay`]: the real `logding relay` binary as a child process, posting to a
//! [`MockDingTalk`], behind a [`Front`]: a forwarding listener the test owns for its whole
//! run, so the relay can be stopped and started again while Alertmanager keeps one address.
//!
//! Each start of the relay binds `127.0.0.1:0` (its `listen`) and the front forwards to the
//! address it logged. Re-binding the port a stopped relay had would race with every other
//! process on the machine for it (it once lost, during the 60 s outage test).

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::Signal;
use tokio::net::{TcpListener, TcpStream};

use super::agent::Agent;
use super::alertmanager::http_client;
use super::dingtalk_server::MockDingTalk;

/// A relay's directory, config and (when running) process.
pub(crate) struct Relay {
    dir: tempfile::TempDir,
    /// The port of its [`Front`]: the relay's address for the whole test.
    pub(crate) port: u16,
    front: Front,
    process: Option<Agent>,
    /// Arguments after `relay -c relay.yaml` (`--dry-run`).
    args: Vec<String>,
}

/// A TCP listener on `127.0.0.1:0` that forwards each connection to the running relay, and
/// closes it at once while none runs (a caller sees the relay down, as without a front).
struct Front {
    port: u16,
    backend: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    async fn start() -> Front {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let backend: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let target = Arc::clone(&backend);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Some(addr) = *target.lock().expect("front lock") else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut relay) = TcpStream::connect(addr).await {
                        drop(tokio::io::copy_bidirectional(&mut client, &mut relay).await);
                    }
                });
            }
        });
        Front {
            port,
            backend,
            task,
        }
    }

    /// Forwards new connections to `addr`, or closes them (`None`).
    fn point_at(&self, addr: Option<SocketAddr>) {
        *self.backend.lock().expect("front lock") = addr;
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
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
        let front = Front::start().await;
        let secret = mock
            .secret()
            .map_or(String::new(), |s| format!("    secret: {s}\n"));
        let yaml = format!(
            "listen: 127.0.0.1:0
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
            port: front.port,
            front,
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

    /// Starts the relay again (after [`Relay::stop`]) on a port of its own choosing, points
    /// the front at it, and waits until it is ready through the front.
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
            if let Some(addr) = listening_at(&process.stderr()) {
                self.front.point_at(Some(addr));
                if let Ok(answer) = client.get(&url).send().await
                    && answer.status().is_success()
                {
                    break;
                }
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

    /// SIGTERM, then waits (bounded) for a clean exit; returns what it logged. From now on
    /// the front closes each connection at once.
    pub(crate) async fn stop(&mut self) -> String {
        let mut process = self.process.take().expect("the relay is running");
        self.front.point_at(None);
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

/// The address the relay logged it listens on (`relay listening`, JSON log).
fn listening_at(stderr: &str) -> Option<SocketAddr> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|record| record["message"] == "relay listening")?["addr"]
        .as_str()?
        .parse()
        .ok()
}
