//! Issue 12, "lost lines": with `state_dir` on a full filesystem the summary cannot be saved.
//! The agent must hold it, commit nothing past its lines, and deliver every hit exactly once
//! when space comes back. Runs as root (it mounts a 64 KiB tmpfs); CI runs as root, so there
//! the test fails instead of skipping when the mount is refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::agent::{Env, wait_until};
use crate::support::dingtalk_server::{MockDingTalk, MockOptions};
use crate::support::total;

/// Every window is a message (an ongoing incident is reported again after 1s): this test is
/// about the full disk, not about incidents.
const RULES: &str = "incidents: {repeat_interval: 1s}
rules:
  - name: db-timeout
    pattern: 'ERROR .*timeout to (?P<peer>[\\d.]+)'
";

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a `size` tmpfs on `dir`; `None` (after saying why) when that is refused and env
    /// `CI` is not set; panics when it is.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        let why = match out {
            Ok(out) if out.status.success() => return Some(Tmpfs(dir.to_owned())),
            Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
            Err(err) => err.to_string(),
        };
        crate::support::cannot_run(
            "full_disk",
            &format!("cannot mount a tmpfs (root needed): {why}"),
        );
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        drop(Command::new("umount").arg("-l").arg(&self.0).status());
    }
}

/// Writes `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = [b'x'; 4096];
    while file.write_all(&block).is_ok() {}
    drop(file.sync_all());
}

fn lines(from: u32, to: u32) -> Vec<String> {
    (from..to)
        .map(|i| format!("ERROR call {i} timeout to 10.0.0.4"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_dir_holds_the_summary_and_delivers_every_hit_once_space_is_back() {
    let mock = MockDingTalk::start(MockOptions::default()).await;
    let env = Env::new();
    let Some(_tmpfs) = Tmpfs::mount(&env.path("state"), "64k") else {
        return;
    };
    env.write_config(&mock.url(), mock.secret().as_deref(), "1s", RULES);
    env.append("app.log", &["INFO starting".to_owned()]);
    let agent = env.start(&[]);
    agent
        .wait_event("batch_scanned", 1, Duration::from_secs(10))
        .await;

    let filler = env.path("state/filler");
    fill(&filler);
    env.append("app.log", &lines(0, 5));
    agent
        .wait_event("summary_not_saved", 1, Duration::from_secs(15))
        .await;
    // More lines while the disk is full: read only once the held summary is saved.
    env.append("app.log", &lines(5, 9));
    std::fs::remove_file(&filler).expect("free space");

    let all = wait_until(Duration::from_secs(40), || {
        total(&mock.accepted(), "db-timeout") >= 9
    })
    .await;
    assert!(
        all,
        "{} of 9 hits delivered; stderr:\n{}",
        total(&mock.accepted(), "db-timeout"),
        agent.stderr()
    );
    // Nothing more arrives: every hit exactly once.
    let more = wait_until(Duration::from_secs(3), || {
        total(&mock.accepted(), "db-timeout") > 9
    })
    .await;
    assert!(!more, "duplicates: {:#?}", mock.accepted());
    assert_eq!(
        agent.events("summary_not_saved").len(),
        1,
        "logged once per streak"
    );
    assert_eq!(agent.events("summary_saved").len(), 1);
}
