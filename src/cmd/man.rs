//! `logding man`: the man page, generated from the clap definition (clap_mangen), so options
//! and their help stay the ones `--help` shows. `--dir` writes `logding.1` and one page per
//! subcommand (`logding-run.1`, ...), which is what the Debian package installs.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::cmd::Exit;

/// Runs the command.
///
/// # Errors
///
/// Writing the page(s) failed.
pub fn run(args: ManArgs) -> anyhow::Result<Exit> {
    let command = Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("failed to write man pages to `{}`", dir.display()))?;
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command).render(&mut out)?;
            std::io::stdout().lock().write_all(&out)?;
        }
    }
    Ok(Exit::Success)
}
