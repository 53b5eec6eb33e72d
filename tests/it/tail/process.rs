//! Process-level tests: the real `logding-tail` thread, and `logding tail-probe` processes
//! killed, restarted and rotated under by the real `logrotate`.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logding::config::{Source, StartAt};
use tokio_util::sync::CancellationToken;

use super::harness;

/// Waits until `condition` holds, polling; panics after `timeout`.
#[track_caller]
pub(crate) fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn poll_only_thread_delivers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let source = source_of(&logs);
    let mut options = harness::options();
    options.poll_interval = Duration::from_millis(20);
    options.rescan_interval = Duration::from_millis(20);
    options.checkpoint_interval = Duration::from_millis(50);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = dir.path().join("state");
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let shutdown = CancellationToken::new();
        let handle = logding::tail::spawn(
            vec![source],
            options,
            Some(state.clone()),
            tx,
            shutdown.clone(),
        )
        .unwrap();
        let write = |name: &str, text: String| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join(name))
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        };
        write("a.log", harness::lines("a", 0, 1000));
        let mut got = Vec::new();
        let expect = |got: &Vec<String>| got.len();
        while expect(&got) < 1000 {
            let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("lines within 10 s")
                .unwrap();
            got.extend(
                batch
                    .lines()
                    .map(|(_, l)| String::from_utf8_lossy(l).into_owned()),
            );
            handle.commit(&batch.file.id, batch.end);
        }
        std::fs::rename(logs.join("a.log"), logs.join("a.log.1")).unwrap();
        write("a.log", harness::lines("b", 0, 10));
        write("c.log", harness::lines("c", 0, 10));
        while got.len() < 1020 {
            let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("lines within 10 s")
                .unwrap();
            got.extend(
                batch
                    .lines()
                    .map(|(_, l)| String::from_utf8_lossy(l).into_owned()),
            );
            handle.commit(&batch.file.id, batch.end);
        }
        shutdown.cancel();
        while let Some(batch) = rx.recv().await {
            got.extend(
                batch
                    .lines()
                    .map(|(_, l)| String::from_utf8_lossy(l).into_owned()),
            );
            handle.commit(&batch.file.id, batch.end);
        }
        handle.finish().unwrap();
        let mut expected = harness::line_list("a", 0, 1000);
        expected.extend(harness::line_list("b", 0, 10));
        expected.extend(harness::line_list("c", 0, 10));
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
    });
    match logding::checkpoint::load(&state) {
        logding::checkpoint::Loaded::Found { checkpoint, .. } => {
            let total: u64 = checkpoint.files.iter().map(|e| e.offset).sum();
            assert_eq!(
                total,
                2 * 10 * 9,
                "only the followed files' committed offsets"
            );
        }
        other => panic!("no final checkpoint: {other:?}"),
    }
}

/// A source following `*.log` in `logs` from the beginning.
fn source_of(logs: &Path) -> Source {
    Source {
        name: "app".into(),
        paths: vec![format!("{}/*.log", logs.display())],
        exclude: vec![],
        start_at: StartAt::Beginning,
        multiline: None,
        max_line_bytes: 1024,
        timestamp: None,
    }
}

/// The real tail thread goes on reading while a checkpoint write cannot finish (a disk busy
/// syncing logrotate's copy, here a FIFO full of bytes nobody reads where the checkpoint's
/// temporary file goes).
pub(crate) fn a_stuck_checkpoint_write_does_not_stop_reading() {
    use rustix::fs::{FileType, Mode, OFlags};
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let tmp = state.join("tail-checkpoint.json.tmp");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &tmp,
        FileType::Fifo,
        Mode::RUSR | Mode::WUSR,
        0,
    )
    .unwrap();
    let nonblocking =
        |flags: OFlags| rustix::fs::open(&tmp, flags | OFlags::NONBLOCK, Mode::empty()).unwrap();
    let reader = nonblocking(OFlags::RDONLY);
    let filler = nonblocking(OFlags::WRONLY);
    while rustix::io::write(&filler, &[0; 4096]).is_ok() {}
    let mut options = harness::options();
    options.checkpoint_interval = Duration::from_millis(10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let handle = logding::tail::spawn(
            vec![source_of(&logs)],
            options,
            Some(state.clone()),
            tx,
            shutdown.clone(),
        )
        .unwrap();
        // The first checkpoint write has opened the FIFO: it now waits for room in it.
        let opened = || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to == tmp))
                .count()
        };
        wait_until(Duration::from_secs(10), "a checkpoint write", || {
            opened() > 2
        });
        std::fs::write(logs.join("a.log"), harness::lines("a", 0, 10)).unwrap();
        let mut got = Vec::new();
        while got.len() < 10 {
            let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("lines read while the checkpoint write is stuck")
                .unwrap();
            got.extend(batch.lines().map(|(_, l)| l.to_vec()));
            handle.commit(&batch.file.id, batch.end);
        }
        // Unstuck: the write into the FIFO ends, its fsync fails, the next one is a file.
        drop(filler);
        std::fs::remove_file(&tmp).unwrap();
        let mut buf = vec![0; 4096];
        wait_until(Duration::from_secs(10), "the stuck write to end", || {
            loop {
                match rustix::io::read(&reader, &mut buf[..]) {
                    // No writer left.
                    Ok(0) => break true,
                    Ok(_) => {}
                    Err(_) => break false,
                }
            }
        });
        shutdown.cancel();
        while rx.recv().await.is_some() {}
        handle.finish().unwrap();
    });
    match logding::checkpoint::load(&state) {
        logding::checkpoint::Loaded::Found { checkpoint, .. } => {
            let offsets: Vec<u64> = checkpoint.files.iter().map(|e| e.offset).collect();
            assert_eq!(offsets, [harness::lines("a", 0, 10).len() as u64]);
        }
        other => panic!("no final checkpoint: {other:?}"),
    }
}

/// A running `logding tail-probe` and what it printed.
pub(crate) struct Probe {
    child: Child,
    out: Arc<Mutex<Vec<(PathBuf, u64, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    pub(crate) fn start(glob: &Path, state: &Path, extra: &[&str]) -> Probe {
        let mut child = Command::new(env!("CARGO_BIN_EXE_logding"))
            .arg("-q")
            .arg("tail-probe")
            .arg("--path")
            .arg(glob)
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let reader = std::thread::spawn(move || {
            let mut stdout = std::io::BufReader::new(stdout);
            let mut line = Vec::new();
            while stdout.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if line.ends_with(b"\n") {
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                    let mut parts = text.splitn(3, '\t');
                    let (Some(path), Some(offset), Some(rest)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        panic!("bad probe line {text:?}");
                    };
                    sink.lock().unwrap().push((
                        PathBuf::from(path),
                        offset.parse().unwrap(),
                        rest.to_owned(),
                    ));
                }
                line.clear();
            }
        });
        Probe {
            child,
            out,
            reader: Some(reader),
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.out.lock().unwrap().len()
    }

    pub(crate) fn contains(&self, text: &str) -> bool {
        self.out.lock().unwrap().iter().any(|(_, _, t)| t == text)
    }

    /// SIGKILL: no final checkpoint.
    pub(crate) fn kill(mut self) -> Vec<(PathBuf, u64, String)> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.collect()
    }

    /// SIGTERM: a clean shutdown.
    pub(crate) fn stop(mut self) -> Vec<(PathBuf, u64, String)> {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tail-probe exited with {status}");
        self.collect()
    }

    fn collect(&mut self) -> Vec<(PathBuf, u64, String)> {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        std::mem::take(&mut *self.out.lock().unwrap())
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// Writes `seq-N` lines to `path` at `rate` lines/s for `duration`, reopening the path when it
/// names a new file (what an application does on logrotate's signal), keeping its descriptor
/// otherwise (late writes to a renamed file). Returns the number of lines written.
/// Writes `rate × duration` numbered lines, paced at `rate` per second (catching up after a
/// stall), following the file across rotation. A writer starved of CPU on a loaded machine takes
/// longer but still writes every line, so tests never depend on the machine's speed. Returns the
/// number of lines written.
pub(crate) fn write_at_rate(path: &Path, rate: usize, duration: Duration) -> usize {
    use std::os::unix::fs::MetadataExt;
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    };
    let mut file = open();
    let tick = Duration::from_millis(10);
    let per_tick = rate / 100;
    let start = Instant::now();
    let mut seq = 0;
    let mut buf = Vec::new();
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    while seq < total {
        if let Ok(meta) = std::fs::metadata(path)
            && meta.ino() != file.metadata().unwrap().ino()
        {
            file = open();
        }
        buf.clear();
        for _ in 0..per_tick {
            writeln!(
                buf,
                "seq-{seq:09} the quick brown fox jumps over the lazy dog"
            )
            .unwrap();
            seq += 1;
        }
        file.write_all(&buf).unwrap();
        let next = start + tick * (seq / per_tick) as u32;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            // Pacing the writer, not synchronising with the tailer.
            std::thread::sleep(wait);
        }
    }
    seq
}

/// Counts of each `seq-N` line printed.
pub(crate) fn seq_counts(lines: &[(PathBuf, u64, String)]) -> HashMap<usize, usize> {
    let mut counts = HashMap::new();
    for (_, _, text) in lines {
        if let Some(n) = text.strip_prefix("seq-").and_then(|t| t.get(..9)) {
            *counts.entry(n.parse().unwrap()).or_insert(0) += 1;
        }
    }
    counts
}

/// As root, permissions are not enforced: run the probe as `nobody` (with `setpriv`) to see a
/// permission denied file warned about once, retried, and read once readable. Returns false
/// when that is not possible here.
pub(crate) fn permission_denied_as_nobody() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let has_setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_setpriv {
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, b"secret\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_logding"))
        .args([
            "tail-probe",
            "--start-at",
            "beginning",
            "--poll-interval",
            "20ms",
        ])
        .arg("--path")
        .arg(&log)
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let collect = |mut pipe: Box<dyn std::io::Read + Send>| {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        (text, reader)
    };
    let (stdout, out_reader) = collect(Box::new(child.stdout.take().unwrap()));
    let (stderr, err_reader) = collect(Box::new(child.stderr.take().unwrap()));
    wait_until(Duration::from_secs(10), "the permission warning", || {
        stderr.lock().unwrap().contains("permission denied")
    });
    // Let several rescans retry (and not warn again) before making it readable.
    let rescans = Instant::now();
    wait_until(Duration::from_secs(5), "a few rescans", || {
        rescans.elapsed() > Duration::from_millis(200)
    });
    assert!(
        stdout.lock().unwrap().is_empty(),
        "read without permission?"
    );
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    wait_until(Duration::from_secs(10), "the line once readable", || {
        stdout.lock().unwrap().contains("secret")
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    out_reader.join().unwrap();
    err_reader.join().unwrap();
    let stderr = stderr.lock().unwrap();
    assert_eq!(
        stderr.matches("permission denied").count(),
        1,
        "warned once: {stderr}"
    );
    let read_errors = stderr
        .split("read_errors=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    assert!(read_errors >= Some(1), "counted for the metrics: {stderr}");
    assert_eq!(
        *stdout.lock().unwrap(),
        format!("{}\t0\tsecret\n", log.display())
    );
    true
}
