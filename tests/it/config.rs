//! `logding check` and `logding explain`, run as a user would: the real binary, exit codes and
//! whole outputs pinned with insta.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary from the package root (so fixture paths in messages are short and stable).
fn logding(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logding"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env_remove("DINGTALK_WEBHOOK")
        .env_remove("DINGTALK_SECRET")
        .output()
        .expect("run logding")
}

#[test]
fn check_accepts_the_bundled_config() {
    let out = logding(&["check", "-c", "config/logding.yaml"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: 13 rules from 5 files, 4 sources\n"
    );
    assert_eq!(out.status.code(), Some(0));
}
