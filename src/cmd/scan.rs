//! `logding scan`: one pass over existing files, from their beginning, with the config's rules.
//!
//! It answers "what would logding have said about this log?" and is the command the
//! benchmarks time against ripgrep and grep, so it reads the way the agent does: large blocks
//! split at line ends, each searched whole by [`Matcher::scan`] (or, for a multiline source,
//! [`Matcher::scan_events`]), never line by line. A file is read and scanned in blocks by every
//! thread at once (see `blocks`; a multiline file's blocks cut their own events, joined at
//! the seams in file order: see `events`). Each path is matched to the first source whose globs match it (its rules, its
//! `multiline` and `max_line_bytes`); a path matching no source gets every rule, no multiline
//! and [`DEFAULT_MAX_LINE_BYTES`].
//!
//! Output: per-rule hit counts (every rule, in rule order), a totals line, then the summary
//! that would be sent. All hits go into one summary, observed at one fixed time (the moment
//! the scan started): a scan has no time axis, the log's own timestamps are not parsed.
//!
//! An error on one file is reported and the scan goes on; the exit code is 1 at the end. A path
//! that is not a regular file (a FIFO, a socket, a device) is skipped with a warning, as `run`
//! skips it: reading a FIFO would wait for a writer forever.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use jiff::Timestamp;
use serde::Serialize;

mod blocks;
mod events;
mod hours;

use self::hours::Hours;
use crate::cli::{Output, ScanArgs};
use crate::cmd::Exit;
use crate::config::{self, Config, Multiline};
use crate::discover::Globs;
use crate::event_time::TimestampSpec;
use crate::render::{self, RenderOptions};
use crate::rules::RuleSet;
use crate::scan::{Hit, Matcher, ScanStats};
use crate::window::Aggregator;

/// Line cap for files that belong to no source.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 10;

/// Runs the command.
///
/// # Errors
///
/// The config does not load (exit 2), or stdout cannot be written.
#[allow(clippy::print_stderr)]
pub fn run(args: ScanArgs) -> anyhow::Result<Exit> {
    let config = config::load(&args.config.config)?;
    let mut scan = Scan::new(&config, Timestamp::now())?;
    if let Some(threads) = args.threads {
        scan.set_threads(usize::from(threads));
    }
    if args.by.is_some() {
        scan.hours = Some(Hours::default());
    }
    let mut failed = false;
    for path in &args.paths {
        match scan.file(path) {
            Ok(()) => {}
            Err(err) if err.is::<NotRegular>() => eprintln!("warning: {err}"),
            Err(err) => {
                crate::cmd::print_error(&err);
                failed = true;
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    scan.report(&config, args.output, &mut stdout)
        .context("failed to write to stdout")?;
    Ok(if failed { Exit::Failure } else { Exit::Success })
}

/// The state of one `scan` run across its files.
pub struct Scan {
    rules: Arc<RuleSet>,
    sources: Vec<SourcePlan>,
    /// For paths of no source; built when first needed (large rule sets take a while).
    all_rules: std::sync::OnceLock<Matcher>,
    now: Timestamp,
    aggregator: Aggregator,
    totals: Totals,
    /// Threads that scan one file.
    threads: usize,
    /// `threads` threads that read and scan a file's blocks (built when first needed; `None`: threads
    /// could not be started, the scan stays on this one).
    pool: std::sync::OnceLock<Option<rayon::ThreadPool>>,
    /// Hits per hour, with `--by hour`.
    hours: Option<Hours>,
}

/// What is counted, for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Files scanned without error.
    pub files: u64,
    /// Lines (or multiline events) looked at.
    pub lines: u64,
    /// Lines (or events) with at least one hit.
    pub matching_lines: u64,
    /// Line-rule pairs removed by an `exclude`.
    pub excluded: u64,
    /// Hits per rule, by rule id.
    pub counts: Vec<u64>,
}

/// How the files of one source are read.
struct SourcePlan {
    name: String,
    globs: Globs,
    matcher: Matcher,
    multiline: Option<Multiline>,
    max_line_bytes: usize,
    timestamp: Option<TimestampSpec>,
}

/// The plan of one file, borrowed from [`Scan`].
struct FilePlan<'a> {
    matcher: &'a Matcher,
    multiline: Option<&'a Multiline>,
    max_line_bytes: usize,
    timestamp: Option<&'a TimestampSpec>,
}

impl Scan {
    /// Prepares a scan with `config`'s rules; every hit is observed at `now`.
    ///
    /// # Errors
    ///
    /// A source glob does not compile.
    pub fn new(config: &Config, now: Timestamp) -> anyhow::Result<Scan> {
        let rules = config.rules.clone();
        let sources = config
            .sources
            .iter()
            .map(|source| {
                Ok(SourcePlan {
                    name: source.name.clone(),
                    globs: Globs::new(&source.paths, &source.exclude)
                        .with_context(|| format!("invalid glob in source `{}`", source.name))?,
                    matcher: Matcher::new(rules.clone(), &source.name),
                    multiline: source.multiline.clone(),
                    max_line_bytes: source.max_line_bytes,
                    timestamp: source.timestamp.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Scan {
            all_rules: std::sync::OnceLock::new(),
            aggregator: Aggregator::new(rules.clone(), config.window_options()),
            totals: Totals {
                counts: vec![0; rules.len()],
                ..Totals::default()
            },
            rules,
            sources,
            now,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            pool: std::sync::OnceLock::new(),
            hours: None,
        })
    }

    /// Scans each file on up to `threads` threads (default: one per core).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
        self.pool = std::sync::OnceLock::new();
    }
}

/// The `threads` threads that read and scan a file's blocks, kept in `pool`.
fn pool_of(
    pool: &std::sync::OnceLock<Option<rayon::ThreadPool>>,
    threads: usize,
) -> Option<&rayon::ThreadPool> {
    let build = || {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("logding-scan-{i}"))
            .build()
            .inspect_err(|err| tracing::warn!(error = %err, "scanning on one thread"))
            .ok()
    };
    pool.get_or_init(build).as_ref()
}

impl Scan {
    /// Scans one file from its beginning.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or read; what was read before the error is counted.
    pub fn file(&mut self, path: &Path) -> anyhow::Result<()> {
        let source = self.source_of(path);
        let plan = match source {
            Some(i) => FilePlan {
                matcher: &self.sources[i].matcher,
                multiline: self.sources[i].multiline.as_ref(),
                max_line_bytes: self.sources[i].max_line_bytes,
                timestamp: self.sources[i].timestamp.as_ref(),
            },
            None => FilePlan {
                matcher: self
                    .all_rules
                    .get_or_init(|| Matcher::with_all_rules(self.rules.clone())),
                multiline: None,
                max_line_bytes: DEFAULT_MAX_LINE_BYTES,
                timestamp: None,
            },
        };
        tracing::debug!(
            path = %path.display(),
            source = source.map_or("(none)", |i| self.sources[i].name.as_str()),
            "scanning"
        );
        let (file, size) = open_regular(path)?;
        let name = path.display().to_string();
        let mut observer = Observer {
            totals: &mut self.totals,
            aggregator: &mut self.aggregator,
            now: self.now,
            file: &name,
            timestamp: plan.timestamp,
            hours: self.hours.as_mut(),
        };
        let pool = (self.threads > 1)
            .then(|| pool_of(&self.pool, self.threads))
            .flatten();
        let plan = blocks::Plan {
            matcher: plan.matcher,
            max_line_bytes: plan.max_line_bytes,
            block_bytes: blocks::BLOCK_BYTES,
            multiline: plan.multiline,
        };
        let read = blocks::scan_file(&file, size, &plan, pool, |bytes, hits, stats| {
            observer.observe(bytes, hits, stats);
        });
        read.with_context(|| format!("failed to read `{}`", path.display()))?;
        self.totals.files += 1;
        Ok(())
    }

    /// The totals so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Writes the per-rule counts, the totals and the summary that would be sent.
    ///
    /// # Errors
    ///
    /// `out` fails.
    pub fn report(
        &mut self,
        config: &Config,
        output: Output,
        out: &mut impl Write,
    ) -> std::io::Result<()> {
        let summary = self.aggregator.flush(self.now);
        let rows = self.rules.rules().iter().zip(&self.totals.counts);
        match output {
            Output::Text => {
                let width = self.rules.rules().iter().map(|r| r.name.len()).max();
                let width = width.unwrap_or(0).max(4);
                writeln!(out, "{:width$}  {:8}  {:>10}", "rule", "severity", "count")?;
                for (rule, count) in rows {
                    let severity = rule.severity.as_str();
                    writeln!(out, "{:width$}  {severity:8}  {count:>10}", rule.name)?;
                }
                let t = &self.totals;
                writeln!(
                    out,
                    "{} lines in {} files, {} matching any rule, {} excluded",
                    t.lines, t.files, t.matching_lines, t.excluded
                )?;
                writeln!(out)?;
                if let Some(hours) = &self.hours {
                    hours.write_text(&config.summary.timezone, out)?;
                }
                match &summary {
                    Some(summary) if !summary.rules.is_empty() => {
                        let options = RenderOptions::from_config(config);
                        writeln!(out, "{}", render::render_text(summary, &options))?;
                    }
                    Some(_) => {
                        writeln!(out, "no rule reached its min_count: nothing would be sent")?
                    }
                    None => writeln!(out, "no matches: nothing would be sent")?,
                }
            }
            Output::Json => {
                let rules: Vec<_> = rows
                    .map(|(rule, count)| {
                        serde_json::json!({"rule": rule.name, "severity": rule.severity, "count": count})
                    })
                    .collect();
                let t = &self.totals;
                let counts = serde_json::json!({
                    "type": "counts",
                    "files": t.files,
                    "lines": t.lines,
                    "matching_lines": t.matching_lines,
                    "excluded": t.excluded,
                    "rules": rules,
                });
                writeln!(out, "{counts}")?;
                if let Some(hours) = &self.hours {
                    hours.write_json(&self.rules, out)?;
                }
                if let Some(summary) = &summary {
                    let json = serde_json::to_string(summary).map_err(std::io::Error::other)?;
                    writeln!(out, "{json}")?;
                }
            }
        }
        Ok(())
    }

    fn source_of(&self, path: &Path) -> Option<usize> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let canonical = std::fs::canonicalize(path).ok();
        self.sources.iter().position(|source| {
            source.globs.matches(&absolute)
                || canonical.as_ref().is_some_and(|c| source.globs.matches(c))
        })
    }
}

/// A path that is not a regular file: skipped, not an error.
#[derive(Debug, thiserror::Error)]
#[error("`{}` is not a regular file ({kind}): skipped", path.display())]
pub struct NotRegular {
    /// The path.
    pub path: std::path::PathBuf,
    /// What it is.
    pub kind: &'static str,
}

/// Opens `path` for reading without blocking on a FIFO, and checks it is a regular file (a
/// directory is let through: it fails at the first read, as an error).
/// Returns the file and its size.
fn open_regular(path: &Path) -> anyhow::Result<(std::fs::File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let not_regular = |meta: &std::fs::Metadata| -> anyhow::Result<()> {
        match kind_of(meta.file_type()) {
            None => Ok(()),
            Some(kind) => Err(NotRegular {
                path: path.to_owned(),
                kind,
            }
            .into()),
        }
    };
    // Sockets cannot be opened at all: look first. Then check the descriptor itself, in case
    // the path changed in between.
    let failed = || format!("failed to open `{}`", path.display());
    not_regular(&std::fs::metadata(path).with_context(failed)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .with_context(failed)?;
    let meta = file.metadata().with_context(failed)?;
    not_regular(&meta)?;
    Ok((file, meta.len()))
}

/// What a file that is neither regular nor a directory is, for the message.
fn kind_of(file_type: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_file() || file_type.is_dir() {
        None
    } else if file_type.is_fifo() {
        Some("a FIFO")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        Some("a device")
    }
}

/// Counts hits and hands them to the aggregator.
struct Observer<'a> {
    totals: &'a mut Totals,
    aggregator: &'a mut Aggregator,
    now: Timestamp,
    file: &'a str,
    timestamp: Option<&'a TimestampSpec>,
    hours: Option<&'a mut Hours>,
}

impl Observer<'_> {
    /// Counts the `hits` of `bytes` (lines or events) and feeds them to the aggregator.
    fn observe(&mut self, bytes: &[u8], hits: &[Hit], stats: ScanStats) {
        self.totals.lines += stats.lines;
        self.totals.excluded += stats.excluded;
        // Hits of one line are adjacent.
        let mut last_line = None;
        for hit in hits {
            self.totals.counts[hit.rule.index()] += 1;
            if last_line != Some(hit.line.start) {
                last_line = Some(hit.line.start);
                self.totals.matching_lines += 1;
            }
            if let Some(hours) = self.hours.as_deref_mut() {
                let line = &bytes[hit.line.clone()];
                let at = self.timestamp.and_then(|spec| spec.parse(line, self.now));
                hours.add(at.unwrap_or(self.now), hit.rule.index());
            }
        }
        self.aggregator
            .observe_scan(self.now, bytes, hits, &stats, self.file, self.timestamp);
    }
}
