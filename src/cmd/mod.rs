//! Subcommands: one file each, each a `run(args) -> anyhow::Result<Exit>`.

pub mod check;
pub mod completions;
pub mod explain;
pub mod init;
pub mod man;
pub mod relay;
pub mod run;
pub mod scan;
pub mod schema;
pub mod send_test;
pub mod silence;
pub mod tail_probe;
pub mod test;

use crate::cli::Command;

/// Exit status of a command: 0 success, 1 runtime failure, 2 usage or configuration error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0.
    Success,
    /// 1: the command ran and failed (a test failed, DingTalk said no, ...).
    Failure,
    /// 2: the config or the command line is wrong.
    Usage,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
        })
    }
}

/// Runs a subcommand.
///
/// # Errors
///
/// Whatever stopped the command; see [`exit_code_of`].
pub fn dispatch(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Relay(args) => relay::run(args),
        Command::Silence(command) => silence::run(command),
        Command::Scan(args) => scan::run(args),
        Command::Test(args) => test::run(args),
        Command::SendTest(args) => send_test::run(args),
        Command::Init(args) => init::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::TailProbe(args) => tail_probe::run(args),
    }
}

/// The exit code for an error: 2 when a configuration error is in its chain, else 1.
pub fn exit_code_of(err: &anyhow::Error) -> Exit {
    if err
        .chain()
        .any(|cause| cause.downcast_ref::<crate::config::LoadError>().is_some())
    {
        Exit::Usage
    } else {
        Exit::Failure
    }
}

/// Prints `error: ...` and one indented `caused by: ...` line per cause, to stderr.
#[allow(clippy::print_stderr)]
pub fn print_error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
