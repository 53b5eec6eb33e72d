//! [`Cluster`]: real Prometheus Alertmanager instances (Debian's `prometheus-alertmanager`),
//! clustered over loopback gossip, for the fleet tests.
//!
//! Ports are picked by binding `127.0.0.1:0` and releasing it (memberlist needs to know its
//! port in advance, and the second instance must name the first); a start that loses the
//! race for a port is retried. Readiness is a bounded poll of `/api/v2/status` until every
//! instance sees every peer, so deduplication across the cluster is in force before a test
//! posts its first alert. Timings are short (gossip 50 ms, `peer-timeout` 1 s) so a test
//! takes seconds. Instances are killed on drop.
//!
//! Without the binary a test prints why and passes, except under `CI`, where it fails:
//! `.ci/run` installs it.

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Names the Alertmanager binary goes by (Debian's first).
const BINARIES: [&str; 2] = ["prometheus-alertmanager", "alertmanager"];

/// One running instance.
pub(crate) struct Instance {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    log: PathBuf,
}

/// Instances gossiping with each other.
pub(crate) struct Cluster {
    /// The instances, in start order.
    pub(crate) instances: Vec<Instance>,
    _dir: tempfile::TempDir,
}

/// The `alertmanager.yml` of the tests: one route grouping by `alertname`, a webhook to
/// `webhook_url`, short timings.
pub(crate) fn config(webhook_url: &str, bearer_token: Option<&str>) -> String {
    let auth = bearer_token.map_or(String::new(), |token| {
        format!(
            "        http_config:\n          authorization:\n            credentials: {token}\n"
        )
    });
    format!(
        "route:
  receiver: relay
  group_by: [alertname]
  group_wait: 4s   # 2 s proved too short on a loaded 2-core machine: the hosts of one incident must make its first notification
  group_interval: 4s
  repeat_interval: 1h
receivers:
  - name: relay
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        max_alerts: 0
{auth}"
    )
}

/// The Alertmanager binary, or `None` (with the reason printed; a panic under `CI`).
pub(crate) fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in BINARIES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    skip(
        "Alertmanager is not installed (apt-get install prometheus-alertmanager): fleet test not run",
    )
}

/// `amtool` next to Alertmanager, or `None` (with the reason printed; a panic under `CI`).
pub(crate) fn amtool() -> Option<PathBuf> {
    let found = binary()?.with_file_name("amtool");
    if found.is_file() {
        return Some(found);
    }
    skip("amtool is not installed next to Alertmanager: silence test not run")
}

/// Says why a test does not run (`support::cannot_run`: a failure under `CI`, where `.ci/run`
/// installs the tools).
fn skip<T>(why: &str) -> Option<T> {
    crate::support::cannot_run("fleet", why);
    None
}

impl Cluster {
    /// Starts `size` clustered instances with `config` (an `alertmanager.yml`), ready and
    /// meshed; `None` when Alertmanager is not installed (outside CI).
    pub(crate) async fn start(size: usize, config: &str) -> Option<Cluster> {
        let binary = binary()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("alertmanager.yml");
        fs::write(&config_path, config).expect("write alertmanager.yml");
        let mut instances: Vec<Instance> = Vec::new();
        let mut first_cluster_port = None;
        for index in 0..size {
            let mut started = None;
            for _attempt in 0..5 {
                let (web, gossip) = (free_port(), free_port());
                let mut instance = Instance::spawn(
                    &binary,
                    dir.path(),
                    &config_path,
                    index,
                    web,
                    gossip,
                    first_cluster_port,
                );
                if instance.ready(Duration::from_secs(10)).await {
                    if index == 0 {
                        first_cluster_port = Some(gossip);
                    }
                    started = Some(instance);
                    break;
                }
                instance.kill();
            }
            let instance = started.unwrap_or_else(|| panic!("alertmanager {index} did not start"));
            instances.push(instance);
        }
        let cluster = Cluster {
            instances,
            _dir: dir,
        };
        cluster.wait_meshed(Duration::from_secs(20)).await;
        Some(cluster)
    }

    /// The instances' URLs.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.instances.iter().map(|i| i.url.clone()).collect()
    }

    /// Kills instance `index` (SIGKILL: no goodbye to its peers).
    pub(crate) fn kill(&mut self, index: usize) {
        self.instances[index].kill();
    }

    /// What every instance logged, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let mut text = String::new();
        for instance in &self.instances {
            text.push_str(&format!("--- {}\n", instance.url));
            text.push_str(&fs::read_to_string(&instance.log).unwrap_or_default());
        }
        text
    }

    async fn wait_meshed(&self, limit: Duration) {
        let size = self.instances.len();
        let client = http_client();
        let start = std::time::Instant::now();
        loop {
            let mut meshed = 0;
            for instance in &self.instances {
                if peers(&client, &instance.url).await == Some(size) {
                    meshed += 1;
                }
            }
            if meshed == size {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "alertmanager instances did not see each other within {limit:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Instance {
    fn spawn(
        binary: &Path,
        dir: &Path,
        config: &Path,
        index: usize,
        web: u16,
        gossip: u16,
        peer: Option<u16>,
    ) -> Instance {
        let storage = dir.join(format!("am-{index}-{web}"));
        fs::create_dir_all(&storage).expect("storage dir");
        let log = dir.join(format!("am-{index}-{web}.log"));
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .arg(format!("--cluster.listen-address=127.0.0.1:{gossip}"))
            .arg("--cluster.gossip-interval=50ms")
            .arg("--cluster.pushpull-interval=1s")
            .arg("--cluster.peer-timeout=1s")
            .arg("--cluster.settle-timeout=2s")
            .arg("--cluster.reconnect-interval=1s")
            .arg("--log.level=debug");
        if let Some(peer) = peer {
            command.arg(format!("--cluster.peer=127.0.0.1:{peer}"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn alertmanager");
        Instance {
            child,
            url: format!("http://127.0.0.1:{web}"),
            log,
        }
    }

    /// Polls `/-/ready` until 200, the process exits, or `limit` passes.
    async fn ready(&mut self, limit: Duration) -> bool {
        let client = http_client();
        let url = format!("{}/-/ready", self.url);
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if let Ok(answer) = client.get(&url).send().await
                && answer.status().is_success()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn kill(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Number of cluster members an instance sees, `None` when it does not answer.
async fn peers(client: &reqwest::Client, url: &str) -> Option<usize> {
    let answer = client
        .get(format!("{url}/api/v2/status"))
        .send()
        .await
        .ok()?;
    let status: serde_json::Value = answer.json().await.ok()?;
    Some(status["cluster"]["peers"].as_array()?.len())
}

/// A port free on loopback for both TCP and UDP (memberlist uses both), at the time of asking.
pub(crate) fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Posts `alerts` (a JSON array in `/api/v2/alerts` form) to every URL; panics on a refusal
/// by an instance that is up.
pub(crate) async fn post_alerts(urls: &[String], alerts: &serde_json::Value) {
    let client = http_client();
    for url in urls {
        let answer = client
            .post(format!("{url}/api/v2/alerts"))
            .json(alerts)
            .send()
            .await
            .expect("alertmanager answers");
        assert!(
            answer.status().is_success(),
            "alertmanager refused the alerts: {}",
            answer.status()
        );
    }
}

/// A plain HTTP client for the tests' own calls (reqwest is built without a default TLS
/// provider; ring is the one logding uses).
pub(crate) fn http_client() -> reqwest::Client {
    drop(rustls::crypto::ring::default_provider().install_default());
    reqwest::Client::new()
}

/// A host of the fleet: a real `logding run` (`host: <name>`) whose only sink is
/// `alertmanager:` with `urls`, as [`HostOptions`] say. Its rules: `db-timeout` (lines with
/// `DBTIMEOUT`), `noisy` (`NOISY`), `control` (`CONTROL`), all critical.
pub(crate) struct Host {
    /// The agent's directory, config and logs.
    pub(crate) env: crate::support::agent::Env,
    /// The running agent.
    pub(crate) agent: crate::support::agent::Agent,
    args: Vec<String>,
}

/// How a [`Host`] runs.
#[derive(Clone, Copy)]
pub(crate) struct HostOptions<'a> {
    /// `window`.
    pub(crate) window: &'a str,
    /// `incidents.resolve_after`.
    pub(crate) resolve_after: &'a str,
    /// `alertmanager.resend_every` (its default: 1 minute).
    pub(crate) resend_every: &'a str,
    /// YAML at the top level.
    pub(crate) extra: &'a str,
    /// Keys added to the `app` source (`, source_stalled: 2s`).
    pub(crate) source: &'a str,
    /// Arguments after `run -c FILE`.
    pub(crate) args: &'a [&'a str],
}

impl Default for HostOptions<'_> {
    /// A 1 s window, incidents resolved after an hour of quiet.
    fn default() -> Self {
        HostOptions {
            window: "1s",
            resolve_after: "1h",
            resend_every: "1m",
            extra: "",
            source: "",
            args: &[],
        }
    }
}

impl Host {
    /// Writes the config and starts the agent (incidents resolved after `resolve_after` of
    /// quiet); returns once it logged `started`.
    pub(crate) async fn start(name: &str, urls: &[String], resolve_after: &str) -> Host {
        let options = HostOptions {
            resolve_after,
            ..HostOptions::default()
        };
        Host::start_with(name, urls, options).await
    }

    /// [`Host::start`] as `options` say.
    pub(crate) async fn start_with(name: &str, urls: &[String], options: HostOptions<'_>) -> Host {
        let env = crate::support::agent::Env::new();
        let urls: Vec<String> = urls.iter().map(|u| format!("'{u}'")).collect();
        let HostOptions {
            window,
            resolve_after,
            resend_every,
            extra,
            source,
            args,
        } = options;
        let yaml = format!(
            "host: {name}
state_dir: state
window: {window}
sources: [{{name: app, paths: [logs/*.log], start_at: beginning{source}}}]
tail: {{poll_interval: 100ms}}
summary: {{timezone: UTC}}
incidents:
  resolve_after: {resolve_after}
alertmanager:
  urls: [{}]
  labels: {{cluster: test}}
  timeout: 2s
  resend_every: {resend_every}
rules:
  - name: db-timeout
    pattern: DBTIMEOUT
    severity: critical
  - name: noisy
    pattern: NOISY
    severity: critical
  - name: control
    pattern: CONTROL
    severity: critical
{extra}",
            urls.join(", ")
        );
        fs::write(env.config_path(), yaml).expect("write config");
        let agent = Host::run(&env, args).await;
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Host { env, agent, args }
    }

    async fn run(env: &crate::support::agent::Env, args: &[&str]) -> crate::support::agent::Agent {
        let agent = env.start(args);
        agent
            .wait_event("started", 1, Duration::from_secs(10))
            .await;
        agent
    }

    /// Stops the agent: SIGTERM, then a clean exit (bounded).
    pub(crate) async fn stop(&mut self) {
        self.agent.signal(rustix::process::Signal::TERM);
        let code = self.agent.wait_exit(Duration::from_secs(15)).await;
        assert_eq!(code, Some(0), "agent stderr:\n{}", self.agent.stderr());
    }

    /// Starts the agent again (after [`Host::stop`]), with the state it left.
    pub(crate) async fn start_again(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.agent = Host::run(&self.env, &args).await;
    }

    /// Appends `count` lines containing `word` to the host's log.
    pub(crate) fn hit(&self, word: &str, count: usize) {
        let lines: Vec<String> = (0..count)
            .map(|i| format!("2026-12-01 10:00:00 ERROR {word} request {i} failed"))
            .collect();
        self.env.append("app.log", &lines);
    }
}

/// The alerts an instance holds (`GET /api/v2/alerts`: active ones, resolved left out).
pub(crate) async fn alerts_in(url: &str) -> Vec<serde_json::Value> {
    let answer = http_client()
        .get(format!("{url}/api/v2/alerts"))
        .send()
        .await
        .expect("alertmanager answers");
    answer
        .json::<Vec<serde_json::Value>>()
        .await
        .expect("a JSON list")
}

/// How many silences an instance knows (`GET /api/v2/silences`); 0 when it does not answer.
pub(crate) async fn silences_in(url: &str) -> usize {
    let Ok(answer) = http_client()
        .get(format!("{url}/api/v2/silences"))
        .send()
        .await
    else {
        return 0;
    };
    answer
        .json::<Vec<serde_json::Value>>()
        .await
        .map_or(0, |list| list.len())
}
