//! `logding scan`.

use crate::cmd::Exit;

/// Runs the command.
///
/// # Errors
///
/// What stopped it.
pub fn run(_args: impl Sized) -> anyhow::Result<Exit> {
    anyhow::bail!("`scan` is not implemented yet")
}
