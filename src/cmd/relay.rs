//! `logding relay`: load the relay config, bind the listener, connect signals, run the relay.
//!
//! SIGINT/SIGTERM: stop accepting, let each robot deliver within the grace period, exit 0;
//! what is not delivered stays in the outboxes for the next start. SIGHUP: reload the config;
//! an invalid one is rejected and the running one keeps going.

use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::RelayArgs;
use crate::cmd::Exit;
use crate::cmd::run::watch_signals;
use crate::config;
use crate::relay::{self, Controls, RelayOptions};

/// How long delivery may go on after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

/// Runs the command.
///
/// # Errors
///
/// Configuration errors (exit 2) and startup failures (exit 1).
pub fn run(args: RelayArgs) -> anyhow::Result<Exit> {
    let config = config::load_relay(&args.config)?;
    let options = RelayOptions {
        dry_run: args.dry_run,
        grace: GRACE,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("logding-relay")
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("failed to listen on `{}`", config.listen))?;
        let shutdown = CancellationToken::new();
        let (reload_tx, reload_rx) = mpsc::channel(1);
        let signals = tokio::spawn(watch_signals(shutdown.clone(), reload_tx));
        let controls = Controls {
            shutdown,
            reload: reload_rx,
        };
        let result = relay::run(config, listener, options, controls).await;
        signals.abort();
        result.context("the relay failed")
    })?;
    Ok(Exit::Success)
}
