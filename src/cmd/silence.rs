//! `logding silence add | list | expire`: silences at run time, kept in
//! `state_dir/silences.json` (written atomically under a lock, see `agent::suppress`). The
//! running agent re-reads the file when it changes, at its next window: no restart, and the
//! silences survive restarts. Silences written in config files are listed too (they change
//! with the config, not with this command).

use anyhow::{Context as _, bail};
use jiff::{SignedDuration, Timestamp};

use crate::agent::suppress::{read_silences, update_silences};
use crate::cli::{Output, SilenceAddArgs, SilenceCommand, SilenceExpireArgs, SilenceListArgs};
use crate::cmd::Exit;
use crate::config::{self, Config};
use crate::suppress::{Matcher, Silence, StoredSilence};

/// Expired silences are kept this long (for `list --all`), then forgotten.
const KEEP_EXPIRED: SignedDuration = SignedDuration::from_hours(24);

/// Runs the command.
///
/// # Errors
///
/// A bad config, an unknown rule, a bad matcher or duration, a silence file that cannot be
/// read or written.
pub fn run(command: SilenceCommand) -> anyhow::Result<Exit> {
    match command {
        SilenceCommand::Add(args) => add(args),
        SilenceCommand::List(args) => list(args),
        SilenceCommand::Expire(args) => expire(args),
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn add(args: SilenceAddArgs) -> anyhow::Result<Exit> {
    let config = config::load(&args.config.config).map_err(anyhow::Error::new)?;
    let mut matchers = Vec::new();
    if let Some(rule) = &args.rule {
        if !rule.starts_with('~') && config.rules.find(rule).is_none() {
            let names: Vec<&str> = config
                .rules
                .rules()
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            let help = config::suggest(rule, &names)
                .map_or_else(String::new, |best| format!(" (did you mean `{best}`?)"));
            eprintln!("error: unknown rule `{rule}`{help}");
            return Ok(Exit::Usage);
        }
        matchers.push(format!("rule={rule}"));
    }
    matchers.extend(args.matchers.iter().cloned());
    if matchers.is_empty() {
        eprintln!("error: a silence needs `--rule NAME` or `--match LABEL=VALUE`");
        return Ok(Exit::Usage);
    }
    for matcher in &matchers {
        if let Err(err) = Matcher::parse(matcher) {
            eprintln!("error: {err}");
            return Ok(Exit::Usage);
        }
    }
    let max = config.suppression.max_silence;
    if args.duration > max {
        eprintln!(
            "error: `--for {}` is longer than `max_silence` ({})\n  help: a silence is for a known, bounded event; raise `max_silence` in the config if this one is meant",
            crate::config::format_duration(args.duration),
            crate::config::format_duration(max)
        );
        return Ok(Exit::Usage);
    }
    let now = Timestamp::now();
    let starts = args.starts.unwrap_or(now);
    let length = SignedDuration::try_from(args.duration).context("the duration is too long")?;
    let expires = starts
        .checked_add(length)
        .context("the silence ends too late")?;
    let stored = StoredSilence {
        id: String::new(),
        matchers: matchers.clone(),
        starts,
        expires,
        author: args.author.filter(|a| !a.is_empty()),
        comment: args.comment,
    };
    let id = update_silences(&config.state_dir, |file| {
        file.prune(now, KEEP_EXPIRED);
        file.add(stored)
    })?;
    println!(
        "added {id}: {} until {} (the running agent applies it from its next window)",
        matchers.join(" "),
        local(&config, expires)
    );
    Ok(Exit::Success)
}

#[allow(clippy::print_stdout)]
fn list(args: SilenceListArgs) -> anyhow::Result<Exit> {
    let config = config::load(&args.config.config).map_err(anyhow::Error::new)?;
    let file = read_silences(&config.state_dir)?;
    let (added, _) = file.parsed();
    let now = Timestamp::now();
    let mut rows: Vec<(&Silence, &str)> = added
        .iter()
        .map(|s| (s, "added"))
        .chain(config.suppression.silences.iter().map(|s| (s, "config")))
        .filter(|(s, _)| args.all || s.expires > now)
        .collect();
    rows.sort_by_key(|(s, _)| (state(s, now) != "active", s.expires));
    if args.output == Output::Json {
        for (silence, origin) in &rows {
            let mut json = serde_json::to_value(silence.to_stored())?;
            json["state"] = state(silence, now).into();
            json["origin"] = (*origin).into();
            println!("{json}");
        }
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        println!("no silences");
        return Ok(Exit::Success);
    }
    println!("ID\tSTATE\tUNTIL\tMATCHERS\tAUTHOR\tCOMMENT");
    for (silence, origin) in rows {
        let matchers: Vec<String> = silence.matchers.iter().map(ToString::to_string).collect();
        let id = if origin == "config" {
            format!("{} (config)", silence.id)
        } else {
            silence.id.clone()
        };
        println!(
            "{id}\t{}\t{}\t{}\t{}\t{}",
            state(silence, now),
            local(&config, silence.expires),
            matchers.join(" "),
            silence.author.as_deref().unwrap_or("-"),
            silence
                .comment
                .as_deref()
                .unwrap_or("-")
                .replace(['\t', '\n'], " "),
        );
    }
    Ok(Exit::Success)
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn expire(args: SilenceExpireArgs) -> anyhow::Result<Exit> {
    let config = config::load(&args.config.config).map_err(anyhow::Error::new)?;
    if config.suppression.silences.iter().any(|s| s.id == args.id) {
        eprintln!(
            "error: silence `{}` is written in a config file; remove it there and reload",
            args.id
        );
        return Ok(Exit::Usage);
    }
    let now = Timestamp::now();
    let found = update_silences(&config.state_dir, |file| file.expire(&args.id, now))?;
    if !found {
        bail!(
            "no silence `{}` (see `logding silence list --all`)",
            args.id
        );
    }
    println!(
        "expired {} (the running agent stops applying it at its next window)",
        args.id
    );
    Ok(Exit::Success)
}

fn state(silence: &Silence, now: Timestamp) -> &'static str {
    if silence.expires <= now {
        "expired"
    } else if silence.starts > now {
        "pending"
    } else {
        "active"
    }
}

/// `2026-12-02 01:15:00 +08:00` in the config's `summary.timezone`.
fn local(config: &Config, at: Timestamp) -> String {
    at.to_zoned_datetime(config.summary.timezone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}
