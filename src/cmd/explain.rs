//! `logding explain`: for rule authors. For each rule, says whether a line is a hit (and by
//! which pattern), is excluded (and by which `exclude` pattern), or does not match, and shows
//! the named captures the matching pattern extracts. It also shows the line's masked shape: what
//! a summary would show as its pattern, and what similar lines are folded into.

use std::io::Read as _;

use anyhow::Context as _;

use crate::cli::ExplainArgs;
use crate::cmd::Exit;
use crate::config;
use crate::rules::{Rule, RuleSet, Verdict};
use crate::window::Masker;

/// Runs the command.
///
/// # Errors
///
/// A config that does not load (exit code 2), or stdin that cannot be read.
#[allow(clippy::print_stdout)]
pub fn run(args: ExplainArgs) -> anyhow::Result<Exit> {
    let config = config::load(&args.config.config).map_err(anyhow::Error::new)?;
    let lines: Vec<Vec<u8>> = match args.line {
        Some(line) => vec![line.into_bytes()],
        None => {
            let mut input = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut input)
                .context("failed to read log lines from stdin")?;
            input
                .split(|b| *b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                .filter(|l| !l.is_empty())
                .collect()
        }
    };
    let masker = Masker::new(&config.summary.masks, &config.summary.custom_masks);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", explain(&config.rules, &masker, line));
    }
    Ok(Exit::Success)
}

/// The explanation of one line against every rule, aligned, ending with a newline.
pub fn explain(rules: &RuleSet, masker: &Masker, line: &[u8]) -> String {
    let mut out = format!(
        "line:   {}\nmasked: {}\n",
        printable(&String::from_utf8_lossy(line)),
        printable(&masker.mask(line))
    );
    let width = rules
        .rules()
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let indent = " ".repeat(width + 4);
    for rule in rules.rules() {
        let verdict = rule.verdict(line);
        out.push_str(&format!(
            "  {:<width$}  {}\n",
            rule.name,
            describe(rule, &verdict)
        ));
        let pattern = match verdict {
            Verdict::Match { pattern } => Some(pattern),
            Verdict::Excluded { .. } => rule.patterns.iter().position(|re| re.is_match(line)),
            Verdict::NoMatch => None,
        };
        if let Some(pattern) = pattern {
            for (name, value) in captures(rule, pattern, line) {
                out.push_str(&format!("{indent}{name} = {}\n", printable(&value)));
            }
        }
    }
    out
}

/// `text` safe to print on a terminal: control characters (ESC, BEL, ...) and bidirectional
/// overrides, which could rewrite or reorder what the reader sees, are shown as `\u{1b}`.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let is_bidi = matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\t') || is_bidi {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn describe(rule: &Rule, verdict: &Verdict) -> String {
    match verdict {
        Verdict::NoMatch => "no match".to_owned(),
        Verdict::Match { pattern } => {
            format!(
                "match `{}` ({})",
                rule.patterns[*pattern].as_str(),
                rule.severity
            )
        }
        Verdict::Excluded { exclude } => {
            format!("excluded by `{}`", rule.excludes[*exclude].as_str())
        }
    }
}

/// The named captures of `pattern` on `line`, in pattern order; absent groups are skipped.
fn captures(rule: &Rule, pattern: usize, line: &[u8]) -> Vec<(String, String)> {
    let re = &rule.patterns[pattern];
    let Some(groups) = re.captures(line) else {
        return Vec::new();
    };
    re.capture_names()
        .zip(groups)
        .filter_map(|(name, range)| {
            Some((
                name?.to_owned(),
                String::from_utf8_lossy(&line[range?]).into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_not_printed() {
        assert_eq!(
            printable("a\u{1b}[2Jb\u{7}c\u{202e}d\te é"),
            "a\\u{1b}[2Jb\\u{7}c\\u{202e}d\te é"
        );
    }
}
