//! Running the real `logding` binary for one command, the way a user would: a clean
//! environment (no webhook, no secret, no `RUST_LOG`), a chosen working directory.

use std::path::Path;
use std::process::Command;

/// `logding ARGS` in `dir`, with the variables that would change its behaviour removed.
pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logding"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DINGTALK_WEBHOOK")
        .env_remove("DINGTALK_SECRET")
        .env_remove("RUST_LOG");
    command
}

/// What one run printed and how it ended.
pub(crate) struct Run {
    /// The exit code; `None` when killed by a signal.
    pub(crate) code: Option<i32>,
    /// Standard output, lossily decoded.
    pub(crate) stdout: String,
    /// Standard error, lossily decoded.
    pub(crate) stderr: String,
}

/// Runs `logding ARGS` in `dir` to completion.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Run {
    let output = command(dir, args)
        .output()
        .expect("the logding binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
