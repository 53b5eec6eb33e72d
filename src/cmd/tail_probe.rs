//! `logding tail-probe` (hidden): tails files and prints every line as
//! `<path>\t<offset>\t<line>`, committing each batch right after printing it, the way the agent
//! commits once a batch's hits are safe. Used by the process-level tests (kill and restart,
//! logrotate); not a user command.

use std::io::Write;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cli::TailProbeArgs;
use crate::cmd::Exit;
use crate::config::{Multiline, Source, StartAt, TailOptions};

/// Runs the command until SIGTERM or Ctrl-C.
///
/// # Errors
///
/// A bad regex or glob, or a tailer that fails.
pub fn run(args: TailProbeArgs) -> anyhow::Result<Exit> {
    let multiline = args
        .multiline_start
        .as_deref()
        .map(|start| -> anyhow::Result<Multiline> {
            Ok(Multiline {
                start: regex::bytes::Regex::new(start)?,
                max_lines: 500,
                max_bytes: 1 << 20,
                timeout: Duration::from_secs(1),
            })
        })
        .transpose()?;
    let source = Source {
        name: "probe".into(),
        paths: args.path.clone(),
        exclude: Vec::new(),
        start_at: if args.start_at == "beginning" {
            StartAt::Beginning
        } else {
            StartAt::End
        },
        multiline,
        max_line_bytes: args.max_line_bytes,
        timestamp: None,
    };
    let options = TailOptions {
        poll_interval: args.poll_interval,
        rescan_interval: args.poll_interval,
        rotate_wait: args.rotate_wait,
        poll_only: args.poll_only,
        batch_wait: None,
        max_open_files: 1024,
        read_budget_bytes: 1 << 20,
        checkpoint_interval: args.checkpoint_interval,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(probe(vec![source], options, args))
}

#[allow(clippy::print_stdout)]
async fn probe(
    sources: Vec<Source>,
    options: TailOptions,
    args: TailProbeArgs,
) -> anyhow::Result<Exit> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let handle = crate::tail::spawn(sources, options, args.state_dir, tx, shutdown.clone())?;
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler installs");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        signal.cancel();
    });
    let mut stdout = std::io::stdout().lock();
    while let Some(mut batch) = rx.recv().await {
        if batch.settle() != crate::tail::Settled::Keep {
            continue;
        }
        let path = batch.file.path.display().to_string();
        let mut text = Vec::with_capacity(batch.data.len() * 2);
        match &batch.events {
            None => {
                for (offset, line) in batch.lines() {
                    let line = line.strip_suffix(b"\n").unwrap_or(line);
                    write!(text, "{path}\t{offset}\t")?;
                    text.extend_from_slice(line);
                    text.push(b'\n');
                }
            }
            Some(events) => {
                for event in events {
                    let bytes = &batch.data[event.clone()];
                    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
                    write!(text, "{path}\t{}\t", batch.file_offset(event.start))?;
                    for &byte in bytes {
                        if byte == b'\n' {
                            text.extend_from_slice(b"\\n");
                        } else {
                            text.push(byte);
                        }
                    }
                    text.push(b'\n');
                }
            }
        }
        stdout.write_all(&text)?;
        stdout.flush()?;
        handle.commit(&batch.file.id, batch.end);
    }
    // What the metrics would say per source (the process tests check it).
    for (source, stats) in handle.counters().sources() {
        let (rotations, truncations) = (stats.rotations, stats.truncations);
        tracing::info!(
            source,
            rotations,
            truncations,
            read_errors = stats.read_errors,
            "tail counters"
        );
    }
    handle.finish()?;
    Ok(Exit::Success)
}
