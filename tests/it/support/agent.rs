//! [`Agent`]: the real `logding run` binary as a child process, with a config in a temporary
//! directory, for end-to-end tests. Waits are bounded polls on a condition, never sleeps.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// A temporary directory with `logs/`, `state/` and `logding.yaml`.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        Env { dir }
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.path("logding.yaml")
    }

    /// Writes `logding.yaml` posting to `webhook` (signed with `secret`), following
    /// `logs/*.log`, with `window` and the given `rules:` YAML block.
    pub(crate) fn write_config(
        &self,
        webhook: &str,
        secret: Option<&str>,
        window: &str,
        rules: &str,
    ) {
        let secret = secret.map_or(String::new(), |s| format!("  secret: {s}\n"));
        let yaml = format!(
            "host: test-host
state_dir: state
window: {window}
dingtalk:
  webhook: '{webhook}'
{secret}  keyword: alert
sources:
  - name: app
    paths: [logs/*.log]
    start_at: beginning
tail:
  poll_interval: 100ms
  rotate_wait: 2s
summary:
  timezone: UTC
{rules}"
        );
        fs::write(self.config_path(), yaml).expect("write config");
    }

    /// Appends lines (each gets a `\n`) to `logs/<name>`.
    pub(crate) fn append(&self, name: &str, lines: &[String]) {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("logs").join(name))
            .expect("open log");
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        file.write_all(text.as_bytes()).expect("append");
    }

    /// Starts `logding -v --log-format json run -c logding.yaml` plus `extra` arguments
    /// (JSON logs: tests wait on the agent's `event` fields, see [`Agent::wait_event`]).
    pub(crate) fn start(&self, extra: &[&str]) -> Agent {
        let config = self.config_path();
        let mut args = vec![
            "-v",
            "--log-format",
            "json",
            "run",
            "-c",
            config.to_str().expect("utf-8 temp path"),
        ];
        args.extend_from_slice(extra);
        Agent::spawn(self.dir.path(), self.dir.path(), &args)
    }
}

/// A running `logding run`.
pub(crate) struct Agent {
    child: Child,
    stderr: PathBuf,
    stdout: PathBuf,
}

impl Agent {
    /// Starts `logding ARGS` in `cwd`, capturing stdout and stderr into files under `scratch`.
    pub(crate) fn spawn(cwd: &Path, scratch: &Path, args: &[&str]) -> Agent {
        let stderr = scratch.join(format!("stderr-{}.log", fastrand::u32(..)));
        let stdout = scratch.join(format!("stdout-{}.log", fastrand::u32(..)));
        let child = Command::new(env!("CARGO_BIN_EXE_logding"))
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "debug,hyper=info,reqwest=info,notify=info")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("stdout file"))
            .stderr(fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn logding");
        Agent {
            child,
            stderr,
            stdout,
        }
    }

    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub(crate) fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// CPU time (user + system) used so far, from `/proc/<pid>/stat` (Linux; clock ticks
    /// of 10 ms, the kernel's `USER_HZ` on every architecture logding is built for).
    pub(crate) fn cpu_time(&self) -> Duration {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) end with `)`.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the `)`.
        Duration::from_millis((ticks(11) + ticks(12)) * 10)
    }

    pub(crate) fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32).expect("pid");
        kill_process(pid, signal).expect("kill");
    }

    /// The log records (JSON lines on stderr) whose `event` field is `name`.
    pub(crate) fn events(&self, name: &str) -> Vec<serde_json::Value> {
        self.stderr()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|record| record["event"] == name)
            .collect()
    }

    /// Waits (bounded) until the agent logged `times` records with `event` = `name` for which
    /// `condition` holds; returns the last one.
    pub(crate) async fn wait_event_where(
        &self,
        name: &str,
        times: usize,
        limit: Duration,
        condition: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let matching = || -> Vec<serde_json::Value> {
            self.events(name)
                .into_iter()
                .filter(|e| condition(e))
                .collect()
        };
        let found = wait_until(limit, || matching().len() >= times).await;
        assert!(
            found,
            "logding did not log event {name:?} {times} time(s) within {limit:?}; stderr:\n{}",
            self.stderr()
        );
        matching().pop().expect("found")
    }

    /// Waits (bounded) until the agent logged `times` records with `event` = `name`.
    pub(crate) async fn wait_event(
        &self,
        name: &str,
        times: usize,
        limit: Duration,
    ) -> serde_json::Value {
        self.wait_event_where(name, times, limit, |_| true).await
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if start.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn kill(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
pub(crate) async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
