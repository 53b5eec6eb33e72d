//! The `logding` binary: parse the command line, set up logging, dispatch, map errors to exit
//! codes. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use logding::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logding::logging::init(cli.verbose, cli.quiet, cli.log_format);
    match logding::cmd::dispatch(cli.command) {
        Ok(exit) => exit.into(),
        Err(err) => {
            logding::cmd::print_error(&err);
            logding::cmd::exit_code_of(&err).into()
        }
    }
}
