//! `logding check`: validate the config, its included rule files and every rule's examples,
//! like `promtool check rules`. Prints one line on success; on failure every problem, each with
//! `file:line:column` and a snippet, and exits 2. A relay config (one with `robots:`) is
//! checked against the relay's schema.

use crate::cli::ConfigArg;
use crate::cmd::Exit;
use crate::config;

/// Runs the command.
///
/// # Errors
///
/// The [`config::LoadError`] listing every problem (exit code 2).
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn run(args: ConfigArg) -> anyhow::Result<Exit> {
    if config::is_relay_config(&args.config) {
        let relay = config::load_relay(&args.config).map_err(anyhow::Error::new)?;
        let names: Vec<&str> = relay.robots.iter().map(|r| r.name.as_str()).collect();
        println!(
            "ok: relay config, listening on {}, robots: {}",
            relay.listen,
            names.join(", ")
        );
        return Ok(Exit::Success);
    }
    let config = config::check(&args.config).map_err(anyhow::Error::new)?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}\n");
    }
    println!("{}", summary_line(&config));
    Ok(Exit::Success)
}

/// `ok: 12 rules from 3 files, 2 sources`.
pub fn summary_line(config: &config::Config) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "ok: {} from {}, {}",
        plural(config.rules.len(), "rule"),
        plural(config.rule_files.len(), "file"),
        plural(config.sources.len(), "source"),
    )
}
