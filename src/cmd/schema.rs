//! `logding schema [config|rules|relay]`: prints the JSON Schema of the config file or of a rule
//! file, for editors (yaml-language-server's `# yaml-language-server: $schema=...`). The same
//! schemas are committed under `schema/` and installed by the Debian package.

use std::io::Write;

use crate::cli::{SchemaArgs, SchemaKind};
use crate::cmd::Exit;
use crate::config::schema;

/// Runs the command.
///
/// # Errors
///
/// Writing to stdout failed.
pub fn run(args: SchemaArgs) -> anyhow::Result<Exit> {
    let schema = match args.kind {
        SchemaKind::Config => schema::config_schema(),
        SchemaKind::Rules => schema::rules_schema(),
        SchemaKind::Relay => schema::fleet::relay_schema(),
    };
    let mut out = serde_json::to_string_pretty(&schema)?;
    out.push('\n');
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(Exit::Success)
}
