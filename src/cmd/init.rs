//! `logding init [--java|--nginx|--python|--go|--postgres] [DIR]`: writes a commented starter
//! `logding.yaml` and the bundled rule files of the chosen stacks into DIR, then checks them as
//! `logding check` would, so that what it writes is known to load.
//!
//! Without a flag the stacks are guessed from the names under `/var/log` (`nginx/`,
//! `postgresql/`, `tomcat9/`, ...), and a guessed directory becomes the source's path. The rule
//! files are the ones in `config/rules/` (the project's own, tested by `config/tests/`), so
//! `init` never drifts from them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::InitArgs;
use crate::cmd::Exit;
use crate::cmd::check::summary_line;
use crate::config;

/// Where the Debian package installs the JSON Schemas; the written files point editors there.
const SCHEMA_DIR: &str = "/usr/share/logding/schema";

/// A stack `init` has rules for.
struct Stack {
    /// The flag and the rule file's name.
    name: &'static str,
    /// The bundled rule file.
    rules: &'static str,
    /// The source its rules name.
    source_name: &'static str,
    /// The comment above its `sources:` entry.
    comment: &'static str,
    /// The `sources:` entry, with `{name}` for the source's name and `{dir}` for the log
    /// directory.
    source: &'static str,
    /// The log directory when none was found.
    default_dir: &'static str,
    /// Names under `/var/log` that reveal the stack.
    markers: &'static [&'static str],
}

/// Files whose events start with a line that starts with a date (Java, Python).
const DATED_EVENTS: &str = r#"  - name: {name}
    paths: [{dir}/*.log]
    exclude: ["*.gz"]
    multiline:
      start: '^\d{4}-\d{2}-\d{2}'
"#;

const STACKS: [Stack; 5] = [
    Stack {
        name: "java",
        rules: include_str!("../../config/rules/java.yaml"),
        source_name: "app",
        comment: "Java services (Spring Boot, logback, log4j): a line starting with a date starts an\n  # event, the lines of a stack trace continue it.",
        source: DATED_EVENTS,
        default_dir: "/var/log/app",
        markers: &["tomcat", "java", "spring", "jetty", "edas"],
    },
    Stack {
        name: "nginx",
        rules: include_str!("../../config/rules/nginx.yaml"),
        source_name: "nginx",
        comment: "nginx: the access log (combined format) and the error log.",
        source: "  - name: {name}\n    paths: [{dir}/access.log, {dir}/error.log]\n",
        default_dir: "/var/log/nginx",
        markers: &["nginx", "openresty", "tengine"],
    },
    Stack {
        name: "python",
        rules: include_str!("../../config/rules/python.yaml"),
        source_name: "python",
        comment: "Python services: a traceback's lines belong to the event that starts with a date.",
        source: DATED_EVENTS,
        default_dir: "/var/log/python",
        markers: &["python", "gunicorn", "uwsgi", "celery", "django"],
    },
    Stack {
        name: "go",
        rules: include_str!("../../config/rules/go.yaml"),
        source_name: "go",
        comment: "Go services: a date, a logfmt `time=`, a JSON `{` or a panic begins an event; a\n  # goroutine dump continues it.",
        source: r#"  - name: {name}
    paths: [{dir}/*.log]
    exclude: ["*.gz"]
    multiline:
      start: '^(\d{4}[-/]\d{2}[-/]\d{2}|time=|\{|panic: |fatal error: )'
"#,
        default_dir: "/var/log/go",
        markers: &["golang"],
    },
    Stack {
        name: "postgres",
        rules: include_str!("../../config/rules/postgres.yaml"),
        source_name: "postgres",
        comment: "The PostgreSQL server log.",
        source: "  - name: {name}\n    paths: [{dir}/*.log]\n",
        default_dir: "/var/log/postgresql",
        markers: &["postgresql", "postgres"],
    },
];

/// Runs the command.
///
/// # Errors
///
/// A file exists (without `--force`), a file cannot be written, or what was written does not
/// pass `check` (a bug).
#[allow(clippy::print_stdout)]
pub fn run(args: InitArgs) -> anyhow::Result<Exit> {
    let chosen = [args.java, args.nginx, args.python, args.go, args.postgres];
    let mut picks: Vec<(&Stack, String)> = STACKS
        .iter()
        .zip(chosen)
        .filter(|(_, is_chosen)| *is_chosen)
        .map(|(stack, _)| (stack, stack.default_dir.to_owned()))
        .collect();
    if picks.is_empty() {
        picks = guess(&args.log_root);
        let names: Vec<&str> = picks.iter().map(|(s, _)| s.name).collect();
        if picks.is_empty() {
            println!(
                "no known stack under `{}`; writing the Java starter (choose with --java, --nginx, --python, --go, --postgres)",
                args.log_root.display()
            );
            picks.push((&STACKS[0], STACKS[0].default_dir.to_owned()));
        } else {
            println!(
                "found under `{}`: {}",
                args.log_root.display(),
                names.join(", ")
            );
        }
    }

    let files = files_for(&picks, &args.dir);
    let existing: Vec<String> = files
        .iter()
        .filter(|(path, _)| path.exists())
        .map(|(path, _)| format!("`{}`", path.display()))
        .collect();
    if !existing.is_empty() && !args.force {
        bail!(
            "not overwriting {} (use --force to replace)",
            existing.join(", ")
        );
    }
    let rules = args.dir.join("rules");
    std::fs::create_dir_all(&rules)
        .with_context(|| format!("failed to create `{}`", rules.display()))?;
    for (path, text) in &files {
        std::fs::write(path, text)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        println!("wrote {}", path.display());
    }

    let main = args.dir.join("logding.yaml");
    let config = config::check(&main)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("the written `{}` does not pass check", main.display()))?;
    println!("{}", summary_line(&config));
    println!(
        "next: point the sources' paths at your logs, then `logding check -c {}` and `logding run -c {} --dry-run`",
        main.display(),
        main.display()
    );
    Ok(Exit::Success)
}

/// The stacks whose markers name an entry of `log_root`, each with the directory found.
fn guess(log_root: &Path) -> Vec<(&'static Stack, String)> {
    let mut names: Vec<String> = std::fs::read_dir(log_root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    STACKS
        .iter()
        .filter_map(|stack| {
            let found = names.iter().find(|name| {
                let name = name.to_ascii_lowercase();
                stack.markers.iter().any(|m| name.contains(m))
            })?;
            Some((stack, log_root.join(found).display().to_string()))
        })
        .collect()
}

/// The files to write: the main config, then one rule file per stack.
fn files_for(picks: &[(&Stack, String)], dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = vec![(dir.join("logding.yaml"), main_config(picks))];
    for (stack, _) in picks {
        let path = dir.join("rules").join(format!("{}.yaml", stack.name));
        files.push((path, with_modeline(stack.rules, "rules.schema.json")));
    }
    files
}

fn main_config(picks: &[(&Stack, String)]) -> String {
    let names: Vec<&str> = picks.iter().map(|(s, _)| s.name).collect();
    let sources: String = picks
        .iter()
        .map(|(stack, dir)| {
            let entry = stack
                .source
                .replace("{name}", stack.source_name)
                .replace("{dir}", dir);
            format!("  # {}\n{entry}", stack.comment)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        r#"# logding configuration for: {names}. Written by `logding init`.
#
# Check it:  logding check -c logding.yaml
# Try it:    logding run -c logding.yaml --dry-run   (prints summaries instead of posting)
#
# Every key is in `man logding` and the README's configuration reference; unknown keys are
# errors, durations are human (`30s`, `5m`), relative paths are relative to this file.

# Shown in every message; `auto` is the hostname.
host: auto

# Checkpoints and the outbox (under systemd, the unit's StateDirectory=).
state_dir: /var/lib/logding

# Matches within a window become ONE DingTalk message.
window: 1m

# The rule files next to this file; each holds a `rules:` list. Add your own there.
include: [rules/*.yaml]

dingtalk:
  # From the environment, never written here (`${{VAR:-}}`: empty means not configured,
  # which is fine for check, scan, test and run --dry-run).
  webhook: ${{DINGTALK_WEBHOOK:-}}
  secret: ${{DINGTALK_SECRET:-}}
  # The robot's custom keyword: every message carries it.
  keyword: alert
  # Under DingTalk's 20 messages per minute per robot.
  max_per_minute: 18

# Files to follow; the rules name these sources. A glob matching nothing yet is fine: files
# are picked up when they appear. `start_at: end` (the default) ignores what a file already
# holds the first time it is seen.
sources:
{sources}"#,
        names = names.join(", "),
    );
    with_modeline(&text, "logding.schema.json")
}

/// `text` whose first line points editors at the installed schema `file`.
fn with_modeline(text: &str, file: &str) -> String {
    let body = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("# yaml-language-server:") => rest,
        _ => text,
    };
    format!("# yaml-language-server: $schema={SCHEMA_DIR}/{file}\n{body}")
}
