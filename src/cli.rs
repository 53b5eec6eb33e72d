//! Command-line interface (clap derive). Flags cover runtime behaviour only; what the pipeline
//! does lives in the YAML config.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Tails application logs, matches regex rules, and posts one summary per window to a DingTalk
/// group robot.
#[derive(Debug, Parser)]
#[command(name = "logding", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// More logging (`-v` debug, `-vv` trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less logging (errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Format of logding's own logs on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Format of logding's own logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output format of summaries on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// The rendered message, as a person would read it.
    #[default]
    Text,
    /// One JSON object per summary, one per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: follow the logs and post summaries to DingTalk.
    Run(RunArgs),
    /// Validate the config, the included rule files and every rule's examples.
    Check(ConfigArg),
    /// Show, for each rule, whether a line matches, is excluded, and its captures.
    Explain(ExplainArgs),
    /// Scan existing files once, from their beginning, and print what would be sent.
    Scan(ScanArgs),
    /// Run rule test files (input lines with times, expected summaries).
    Test(TestArgs),
    /// Post a short test message to the configured robot and explain its answer.
    SendTest(ConfigArg),
    /// Write a commented starter config and rules for your stacks.
    Init(InitArgs),
    /// Print the JSON Schema of the config file or of a rule file (for editors).
    Schema(SchemaArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page, or write every page to a directory.
    Man(ManArgs),
    /// Receive Alertmanager's webhook and post each alert group to a DingTalk robot.
    Relay(RelayArgs),
    /// Add, list or expire silences; the running agent picks them up at its next window.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Tail files and print every line with its offset (for tests of the tailer).
    #[command(hide = true)]
    TailProbe(TailProbeArgs),
}

/// `logding silence`.
#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the incidents that match, from now (or `--starts`) for `--for`.
    Add(SilenceAddArgs),
    /// List the silences: added ones and those in config files, active first.
    List(SilenceListArgs),
    /// End a silence now.
    Expire(SilenceExpireArgs),
}

/// `logding silence add`.
#[derive(Debug, Args)]
pub struct SilenceAddArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The rule to silence (`rule=NAME`; a regex with `~`: `--rule '~db-.*'`).
    #[arg(long, value_name = "NAME")]
    pub rule: Option<String>,
    /// A `group_by` value: `peer=10.0.0.5`, or a regex `peer=~10\.0\..*`. Repeatable.
    #[arg(long = "match", value_name = "LABEL=VALUE")]
    pub matchers: Vec<String>,
    /// How long: `2h`, `30m`, `1d` (at most the config's `max_silence`, default 7d).
    #[arg(long = "for", value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub duration: std::time::Duration,
    /// When it starts (RFC 3339 with an offset); default now.
    #[arg(long, value_name = "TIME")]
    pub starts: Option<jiff::Timestamp>,
    /// Who sets it; default `$USER`.
    #[arg(long, env = "USER", value_name = "NAME")]
    pub author: Option<String>,
    /// Why.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
}

/// `logding silence list`.
#[derive(Debug, Args)]
pub struct SilenceListArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also list expired silences.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `logding silence expire`.
#[derive(Debug, Args)]
pub struct SilenceExpireArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The silence's id (`SIL-3`).
    pub id: String,
}

/// The config file argument shared by most commands.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/logding/logding.yaml"
    )]
    pub config: PathBuf,
}

/// `logding run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// Print summaries to stdout instead of posting them (no network).
    #[arg(long)]
    pub dry_run: bool,
    /// Format of summaries printed by `--dry-run` (only with `--dry-run`: the agent prints
    /// nothing else on stdout).
    #[arg(long, value_enum, default_value_t = Output::Text, requires = "dry_run")]
    pub output: Output,
}

/// `logding relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The relay config file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/logding/relay.yaml"
    )]
    pub config: PathBuf,
    /// Print each notification on stdout instead of posting it (no outbox, no network).
    #[arg(long)]
    pub dry_run: bool,
}

/// `logding explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// The log line to explain; read from stdin (one or more lines) when absent.
    pub line: Option<String>,
}

/// `logding scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// Files to scan.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Threads that scan a large file's chunks in parallel (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Also count hits per hour of the lines' own times (a histogram; JSON with `--output json`).
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub by: Option<ScanBy>,
}

/// What `scan --by` splits the counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanBy {
    /// Hours of the lines' own times (`timestamp:` of their source).
    Hour,
}

/// `logding test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test files, or directories whose `*.yaml` / `*.yml` files are test files.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
}

/// `logding tail-probe` (hidden, for tests).
#[derive(Debug, Args)]
pub struct TailProbeArgs {
    /// Absolute glob of files to follow (repeatable).
    #[arg(long, required = true)]
    pub path: Vec<String>,
    /// Where the checkpoint is kept; none: nothing persisted.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Where files seen on the first run start: `beginning` or `end`.
    #[arg(long, default_value = "end", value_parser = ["beginning", "end"])]
    pub start_at: String,
    /// Regex of the first line of a multiline event.
    #[arg(long)]
    pub multiline_start: Option<String>,
    /// How long a rotated file stays open once idle at EOF.
    #[arg(long, default_value = "1s", value_parser = crate::config::parse_duration)]
    pub rotate_wait: std::time::Duration,
    /// Stat reconcile and rescan interval.
    #[arg(long, default_value = "250ms", value_parser = crate::config::parse_duration)]
    pub poll_interval: std::time::Duration,
    /// How often committed offsets are persisted.
    #[arg(long, default_value = "200ms", value_parser = crate::config::parse_duration)]
    pub checkpoint_interval: std::time::Duration,
    /// Never use file notifications.
    #[arg(long)]
    pub poll_only: bool,
    /// Lines longer than this are cut.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_line_bytes: usize,
}

/// `logding init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Rules for Java services (Spring Boot, logback, log4j).
    #[arg(long)]
    pub java: bool,
    /// Rules for nginx access and error logs.
    #[arg(long)]
    pub nginx: bool,
    /// Rules for Python services (logging, tracebacks, gunicorn).
    #[arg(long)]
    pub python: bool,
    /// Rules for Go services (panics, logfmt, JSON logs).
    #[arg(long)]
    pub go: bool,
    /// Rules for the PostgreSQL server log.
    #[arg(long)]
    pub postgres: bool,
    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Where the stacks are guessed from when no stack is chosen.
    #[arg(long, value_name = "DIR", default_value = "/var/log", hide = true)]
    pub log_root: PathBuf,
    /// Where `logding.yaml` and `rules/` are written.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

/// `logding schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file the schema describes.
    #[arg(value_enum, default_value_t = SchemaKind::Config)]
    pub kind: SchemaKind,
}

/// The files that have a JSON Schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The main config file (`logding.yaml`).
    Config,
    /// An included rule file (`rules/*.yaml`).
    Rules,
    /// The relay's config file (`logding relay -c relay.yaml`).
    Relay,
}

/// `logding completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `logding man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `logding.1` and one page per subcommand into this directory instead of printing
    /// `logding.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
