//! `logding send-test`: posts one short message carrying the keyword to the configured robot
//! and prints DingTalk's answer in plain words, so that an operator can check the webhook, the
//! keyword and the signature before relying on them.

use crate::cli::ConfigArg;
use crate::cmd::Exit;
use crate::render::RenderOptions;
use crate::sink::{self, Answer};

/// Runs the command: exit 0 when DingTalk accepted the message, 1 when it did not, 2 when the
/// configuration does not allow trying.
///
/// # Errors
///
/// The config could not be loaded, or the runtime could not start.
#[allow(clippy::print_stdout)]
pub fn run(args: ConfigArg) -> anyhow::Result<Exit> {
    let config = crate::config::load(&args.config)?;
    let render = RenderOptions::from_config(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(sink::send_test(&config.dingtalk, &render)) {
        Ok(answer) => {
            println!("{}", answer.describe(&render.keyword));
            Ok(if answer == Answer::Ok {
                Exit::Success
            } else {
                Exit::Failure
            })
        }
        Err(
            err @ (sink::Error::NoWebhook
            | sink::Error::InvalidWebhook
            | sink::Error::InsecureWebhook),
        ) => {
            crate::cmd::print_error(&anyhow::Error::new(err));
            Ok(Exit::Usage)
        }
        Err(err) => Err(err.into()),
    }
}
