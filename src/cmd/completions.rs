//! `logding completions SHELL`: the shell completion script, generated from the same clap
//! definition that parses the command line, so it never lists a flag that does not exist.
//! The Debian package installs the bash, zsh and fish scripts where those shells look.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::cmd::Exit;

/// Runs the command.
///
/// # Errors
///
/// Writing to stdout failed.
pub fn run(args: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut command = without_hidden_subcommands(Cli::command());
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "logding", &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(Exit::Success)
}

/// `command` without its hidden subcommands (clap_complete would offer them): a copy with the
/// same about text, arguments and visible subcommands.
fn without_hidden_subcommands(command: clap::Command) -> clap::Command {
    let mut visible = clap::Command::new("logding")
        .about(command.get_about().cloned().unwrap_or_default())
        .subcommand_required(command.is_subcommand_required_set());
    for arg in command.get_arguments() {
        visible = visible.arg(arg.clone());
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        visible = visible.subcommand(sub.clone());
    }
    visible
}
