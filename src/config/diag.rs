//! Rendering of [`Diagnostic`]s the way rustc and uv do it: the message, ` --> file:line:col`,
//! the source line with a caret under the culprit, and a `help:` line when there is one.
//!
//! Also the "did you mean" helper used for unknown keys and values.

use std::fmt;

use super::{Diagnostic, LoadError, Snippet};

/// Snippet lines longer than this are cut (unless the caret is further right).
const MAX_SNIPPET_CHARS: usize = 120;
/// Characters kept after the caret's column when a line is cut.
const MAX_SNIPPET_TAIL: usize = 60;

impl fmt::Display for Diagnostic {
    /// The message, then the location, snippet and help lines. Without the `error: ` prefix,
    /// which the caller adds (as `print_error` does for every error).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let file = self.file.display();
        let gutter = match (&self.position, &self.snippet) {
            (Some((line, _)), Some(_)) => line.to_string().len(),
            _ => 1,
        };
        let pad = " ".repeat(gutter);
        match self.position {
            Some((line, column)) => write!(f, "\n{pad}--> {file}:{line}:{column}")?,
            None => write!(f, "\n{pad}--> {file}")?,
        }
        if let (Some((line, column)), Some(snippet)) = (self.position, &self.snippet) {
            // Long lines are cut a little past the caret, as compilers do.
            let keep = column
                .saturating_add(MAX_SNIPPET_TAIL)
                .max(MAX_SNIPPET_CHARS);
            let mut text: String = snippet
                .line
                .chars()
                .take(keep)
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            if snippet.line.chars().count() > keep {
                text.push_str(" ...");
            }
            let room = keep.saturating_sub(column.saturating_sub(1)).max(1);
            let carets = "^".repeat(snippet.underline.clamp(1, room));
            let indent = " ".repeat(column.saturating_sub(1));
            write!(
                f,
                "\n{pad} |\n{line} | {text}\n{pad} | {indent}{carets}",
                text = text.trim_end()
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Renders every diagnostic. The first has no `error: ` prefix (the caller prints
/// `error: {err}`); the others have it, so the whole reads like a compiler's output.
pub(super) fn render(error: &LoadError) -> String {
    let mut out = String::new();
    for (i, diagnostic) in error.diagnostics.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\nerror: ");
        }
        out.push_str(&diagnostic.to_string());
    }
    let count = error.diagnostics.len();
    if count > 1 {
        out.push_str(&format!("\n\nerror: found {count} problems"));
    }
    out
}

/// The snippet for a position in `text`: the line, and how many characters to underline
/// (`len` bytes from the position, cut at the end of the line).
pub(super) fn snippet(text: &str, line: usize, column: usize, len: usize) -> Option<Snippet> {
    let source = text.lines().nth(line.checked_sub(1)?)?;
    let start = source
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(source.len(), |(i, _)| i);
    let end = source.len().min(start.saturating_add(len));
    let underline = source
        .get(start..end)
        .map_or(1, |s| s.trim_end().chars().count().max(1));
    Some(Snippet {
        line: redact(source),
        underline,
    })
}

/// Keys whose values are credentials.
const SECRET_KEYS: &[&str] = &["webhook", "secret"];

/// Returns true if and only if line `line` (1-based) of `text` belongs to a secret field: it
/// holds a `webhook:` or `secret:` key, or sits under one (a continuation line, a block scalar,
/// a nested value), or holds a key that looks like a typo of one inside `dingtalk:`. No
/// snippet of such a line is ever shown, whatever the error and whatever the value looks like:
/// the YAML parser's own errors (duplicate key, bad indentation) come before any tree exists,
/// so this is decided on the text.
pub(super) fn belongs_to_secret(text: &str, line: usize) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    let Some(index) = line.checked_sub(1).filter(|i| *i < lines.len()) else {
        return false;
    };
    // The line and its ancestors: each earlier line indented less than the last one kept.
    let mut chain = vec![lines[index]];
    let mut indent = indentation(lines[index]);
    for earlier in lines[..index].iter().rev() {
        if indent == 0 {
            break;
        }
        let trimmed = earlier.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indentation(earlier) < indent {
            indent = indentation(earlier);
            chain.push(earlier);
        }
    }
    let is_under_dingtalk = chain.iter().any(|l| keys(l).any(|k| k == "dingtalk"));
    chain
        .iter()
        .any(|l| keys(l).any(|k| SECRET_KEYS.contains(&k)))
        || (is_under_dingtalk
            && keys(lines[index]).any(|k| {
                !k.ends_with("_file")
                    && SECRET_KEYS
                        .iter()
                        .any(|s| strsim::jaro_winkler(&k.to_ascii_lowercase(), s) > 0.8)
            }))
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t', '-']).len()
}

/// The mapping keys written on a line (`key:` at its start, or after `{`, `,` or `- `).
fn keys(line: &str) -> impl Iterator<Item = &str> {
    line.split(['{', ',']).filter_map(|part| {
        let part = part.trim_start_matches([' ', '\t', '-']);
        let (key, rest) = part.split_once(':')?;
        let key = key.trim().trim_matches(['\'', '"']);
        let is_key = rest.is_empty() || rest.starts_with([' ', '\t']);
        (is_key && !key.is_empty() && !key.contains(' ')).then_some(key)
    })
}

/// Hides what looks like a credential in a source line shown in a snippet: the value of an
/// `access_token=` parameter and DingTalk signing secrets (`SEC` and 20 or more letters and
/// digits). Errors about the secret fields show no snippet at all; this covers the others,
/// such as a typo in the key of a line holding a literal webhook URL.
pub(super) fn redact(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("access_token=") {
        let value = i + "access_token=".len();
        out.push_str(&rest[..value]);
        out.push_str("<redacted>");
        let end = rest[value..]
            .find(|c: char| c == '&' || c == '\'' || c == '"' || c.is_whitespace())
            .map_or(rest.len(), |j| value + j);
        rest = &rest[end..];
    }
    out.push_str(rest);
    redact_signing_secrets(&out)
}

fn redact_signing_secrets(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("SEC") {
        let tail = &rest[i + 3..];
        let len = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        out.push_str(&rest[..i + 3]);
        if len >= 20 {
            out.push_str("<redacted>");
        } else {
            out.push_str(&tail[..len]);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The closest candidate to `word`, when it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `did you mean `x`?` or `expected one of: `a`, `b``.
pub(crate) fn suggestion_help(word: &str, candidates: &[&str]) -> String {
    match suggest(word, candidates) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("expected one of: {}", backticked(candidates)),
    }
}

/// `` `a`, `b`, `c` ``.
pub(crate) fn backticked(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reason of a `std::io` error, lowercase (callers print the path themselves).
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn renders_like_a_compiler() {
        let text = "window: 10s\nwindw: 5s\n";
        let d = Diagnostic {
            file: PathBuf::from("logding.yaml"),
            position: Some((2, 1)),
            message: "unknown key `windw`".into(),
            help: Some("did you mean `window`?".into()),
            snippet: snippet(text, 2, 1, 5),
        };
        assert_eq!(
            d.to_string(),
            "unknown key `windw`\n --> logding.yaml:2:1\n  |\n2 | windw: 5s\n  | ^^^^^\n  = help: did you mean `window`?"
        );
    }

    #[test]
    fn snippets_hide_tokens_and_signing_secrets() {
        assert_eq!(
            redact(
                "  webhok: https://oapi.dingtalk.com/robot/send?access_token=made-up-token-1234&x=1"
            ),
            "  webhok: https://oapi.dingtalk.com/robot/send?access_token=<redacted>&x=1"
        );
        assert_eq!(
            redact("  secrt: 'SEC0123456789abcdef0123456789'  # SECURITY"),
            "  secrt: 'SEC<redacted>'  # SECURITY"
        );
    }

    #[track_caller]
    fn check_secret_lines(text: &str, expected: &[usize]) {
        let lines: Vec<usize> = (1..=text.lines().count())
            .filter(|line| belongs_to_secret(text, *line))
            .collect();
        assert_eq!(lines, expected, "{text}");
    }

    #[test]
    fn lines_of_secret_fields_are_known_whatever_their_value() {
        check_secret_lines(
            "dingtalk:\n  webhook: https://x/robot/send/tok\n  secret: abc\n  keyword: alert\n",
            &[2, 3],
        );
        // Continuations, block scalars and nested values belong to their key.
        check_secret_lines(
            "dingtalk:\n  secret: |\n    abc\n  webhook:\n    x: 1\nwindow: 1m\n",
            &[2, 3, 4, 5],
        );
        // A typo of a secret key inside `dingtalk:`, and flow mappings.
        check_secret_lines("dingtalk:\n  secrt: abc\n  keywrd: x\n", &[2]);
        check_secret_lines("dingtalk: {webhook: 'x', keyword: a}\nwindow: 1m\n", &[1]);
        // Elsewhere, nothing is hidden.
        check_secret_lines(
            "rules:\n  - name: secret-leak\n    pattern: 'secret: (.*)'\n",
            &[],
        );
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(suggest("windw", &["window", "host"]), Some("window"));
        assert_eq!(suggest("zzz", &["window", "host"]), None);
    }
}
