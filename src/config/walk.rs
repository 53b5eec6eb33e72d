//! Typed reading of a [`Node`] tree, collecting every problem instead of stopping at the first.
//!
//! [`Ctx`] is the one place diagnostics are made: it knows the file being read (for the
//! `file:line:column` and the snippet) and how to look environment variables up. Each reader
//! returns `Option<T>`: `None` means "a diagnostic was recorded, keep going".

use std::path::{Path, PathBuf};

use super::Diagnostic;
use super::diag::{self, backticked, suggestion_help};
use super::expand::{ExpandError, expand};
use super::yaml::{Kind, Node, Pos};

mod values;

pub(crate) use values::{names_in, opt, severity};

/// Looks an environment variable up.
pub(crate) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

/// The reading context: the current file and the problems found so far.
pub(crate) struct Ctx<'e> {
    /// Every problem found, in the order found.
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// What loads but should be changed (a secret written in the file), in the order found.
    pub(crate) warnings: Vec<Diagnostic>,
    file: PathBuf,
    text: String,
    /// `None`: `${VAR}` is text, not a reference (rule test files, whose lines are log text).
    env: Option<Env<'e>>,
    prefix: Option<String>,
}

/// A YAML mapping whose keys were checked against the schema.
pub(crate) struct Map<'a> {
    /// Where the mapping starts.
    pub(crate) pos: Pos,
    entries: Vec<(&'a str, &'a Node, &'a Node)>,
}

impl<'a> Map<'a> {
    /// The value of `key` (its first occurrence).
    pub(crate) fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// The position of `key` itself.
    pub(crate) fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, _)| k.pos)
    }
}

impl<'e> Ctx<'e> {
    /// A context reading `file` (its display path) whose text is `text`.
    /// `env: None` reads `${VAR}` as it is written.
    pub(crate) fn new(file: PathBuf, text: String, env: Option<Env<'e>>) -> Ctx<'e> {
        Ctx {
            diagnostics: Vec::new(),
            warnings: Vec::new(),
            file,
            text,
            env,
            prefix: None,
        }
    }

    /// Switches to another file (an included one), returning the previous one.
    pub(crate) fn enter(&mut self, file: PathBuf, text: String) -> (PathBuf, String) {
        let file = std::mem::replace(&mut self.file, file);
        let text = std::mem::replace(&mut self.text, text);
        (file, text)
    }

    /// The text of the current file.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The display path of the current file.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Sets what every message starts with (`rule `x`: ...`), or clears it.
    pub(crate) fn set_prefix(&mut self, prefix: Option<String>) {
        self.prefix = prefix;
    }

    /// What every message starts with now.
    pub(crate) fn prefix(&self) -> Option<String> {
        self.prefix.clone()
    }

    fn message(&self, message: impl Into<String>) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}: {}", message.into()),
            None => message.into(),
        }
    }

    /// The source text of the node at `pos`, when known.
    pub(crate) fn text_at(&self, pos: Pos) -> Option<&str> {
        let (start, len) = pos.bytes?;
        self.text.get(start..start.checked_add(len)?)
    }

    /// Records a problem at `pos` with a snippet of the source.
    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>, help: Option<String>) {
        let len = pos.bytes.map_or(1, |(_, len)| len);
        self.error_at(pos.line_col(), len, message, help);
    }

    /// Records a problem at a `(line, column)`, with a snippet underlining `len` bytes there.
    pub(crate) fn error_at(
        &mut self,
        position: Option<(usize, usize)>,
        len: usize,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let message = self.message(message);
        let snippet = position
            .filter(|(line, _)| !diag::belongs_to_secret(&self.text, *line))
            .and_then(|(line, col)| diag::snippet(&self.text, line, col, len));
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            position,
            message,
            help,
            snippet,
        });
    }

    /// Records a warning (the config loads anyway): position only, no snippet.
    pub(crate) fn warn(&mut self, pos: Pos, message: impl Into<String>, help: Option<String>) {
        let message = self.message(message);
        self.warnings.push(Diagnostic {
            file: self.file.clone(),
            position: pos.line_col(),
            message,
            help,
            snippet: None,
        });
    }

    /// Records a problem about a secret: position only, never the source line.
    pub(crate) fn error_secret(
        &mut self,
        pos: Pos,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let message = self.message(message);
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            position: pos.line_col(),
            message,
            help,
            snippet: None,
        });
    }

    /// Records a problem about the file as a whole.
    pub(crate) fn error_file(
        &mut self,
        file: &Path,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            file: file.to_owned(),
            position: None,
            message: message.into(),
            help,
            snippet: None,
        });
    }

    /// Reads a mapping whose keys must be among `known`. Unknown and duplicate keys are
    /// reported (and ignored); a null value reads as an empty mapping. `what` names the
    /// mapping in messages (`""` for the top level).
    pub(crate) fn map<'a>(
        &mut self,
        node: &'a Node,
        what: &str,
        known: &[&str],
    ) -> Option<Map<'a>> {
        #[cfg(test)]
        recording::record(what, known);
        let entries = match &node.kind {
            Kind::Null => {
                return Some(Map {
                    pos: node.pos,
                    entries: Vec::new(),
                });
            }
            Kind::Map(entries) => entries,
            other => {
                let name = if what.is_empty() {
                    "the config file".to_owned()
                } else {
                    format!("`{what}`")
                };
                self.error(
                    node.pos,
                    format!(
                        "{name} must be a mapping of keys to values, found {}",
                        other.describe()
                    ),
                    Some(format!("valid keys: {}", backticked(known))),
                );
                return None;
            }
        };
        let within = if what.is_empty() {
            String::new()
        } else {
            format!(" in `{what}`")
        };
        let mut map = Map {
            pos: node.pos,
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let Kind::Str(name) = &key.kind else {
                self.error(
                    key.pos,
                    format!(
                        "keys must be strings{within}, found {}",
                        key.kind.describe()
                    ),
                    None,
                );
                continue;
            };
            if let Some(first) = map.key_pos(name) {
                self.error(
                    key.pos,
                    format!("duplicate key `{name}`{within}"),
                    Some(format!(
                        "`{name}` is first set at line {}; keep one of them",
                        first.line
                    )),
                );
            } else if known.contains(&name.as_str()) {
                map.entries.push((name.as_str(), key, value));
            } else {
                self.error(
                    key.pos,
                    format!("unknown key `{name}`{within}"),
                    Some(suggestion_help(name, known)),
                );
            }
        }
        Some(map)
    }

    /// Reads a required mapping entry, reporting its absence.
    pub(crate) fn required<'a>(
        &mut self,
        map: &Map<'a>,
        key: &str,
        what: &str,
    ) -> Option<&'a Node> {
        let value = map.get(key);
        if value.is_none() {
            self.error(
                map.pos,
                format!("{what} is missing the required key `{key}`"),
                None,
            );
        }
        value
    }

    /// Reads a string, with `${VAR}` expanded. Numbers and booleans are taken as written.
    pub(crate) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        let raw = self.scalar_text(node, what, false)?;
        self.expand(node.pos, &raw, what, false)
    }

    /// Reads a secret string: like [`Ctx::string`] but no diagnostic ever shows its text.
    /// A value written literally (no `${VAR}`) is read, with a warning: it belongs in the
    /// environment or a `*_file`, not in a file kept in git.
    pub(crate) fn secret(&mut self, node: &Node, what: &str) -> Option<String> {
        let raw = self.scalar_text(node, what, true)?;
        if !raw.trim().is_empty() && !raw.contains("${") {
            let key = what.rsplit('.').next().unwrap_or(what);
            self.warn(
                node.pos,
                format!("`{what}` is written in the config file"),
                Some(format!(
                    "use `${{ENV_VAR}}` or `{key}_file`, so the credential stays out of files \
                     that are copied and committed"
                )),
            );
        }
        self.expand(node.pos, &raw, what, true)
    }

    fn scalar_text(&mut self, node: &Node, what: &str, secret: bool) -> Option<String> {
        let text = match &node.kind {
            Kind::Str(s) => s.clone(),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => self.source_text(node),
            other => {
                let message = format!("`{what}` must be a string, found {}", other.describe());
                if secret {
                    self.error_secret(node.pos, message, None);
                } else {
                    self.error(node.pos, message, None);
                }
                return None;
            }
        };
        Some(text)
    }

    /// The text of a plain scalar as written (so `1.10` stays `1.10`).
    fn source_text(&self, node: &Node) -> String {
        let written = self.text_at(node.pos);
        match (written, &node.kind) {
            (Some(text), _) if !text.is_empty() => text.to_owned(),
            (_, Kind::Int(i)) => i.to_string(),
            (_, Kind::Float(x)) => x.to_string(),
            (_, Kind::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    }

    fn expand(&mut self, pos: Pos, raw: &str, what: &str, secret: bool) -> Option<String> {
        let Some(env) = self.env else {
            return Some(raw.to_owned());
        };
        match expand(raw, env) {
            Ok(value) => Some(value),
            Err(err) => {
                let (message, help) = match err {
                    ExpandError::Unset(name) => (
                        format!("environment variable `{name}` is not set (used in `{what}`)"),
                        format!("set it, or give a default: `${{{name}:-default}}`"),
                    ),
                    // In a secret, the text around `${` may be part of the credential.
                    ExpandError::Malformed(_) if secret => (
                        format!("invalid variable reference in `{what}`"),
                        "write `${NAME}` or `${NAME:-default}`; `$${` is a literal `${`".to_owned(),
                    ),
                    ExpandError::Malformed(reference) => (
                        format!("invalid variable reference `{reference}` in `{what}`"),
                        "write `${NAME}` or `${NAME:-default}`; `$${` is a literal `${`".to_owned(),
                    ),
                };
                if secret {
                    self.error_secret(pos, message, Some(help));
                } else {
                    self.error(pos, message, Some(help));
                }
                None
            }
        }
    }

    /// Reads a non-empty string.
    pub(crate) fn non_empty_string(&mut self, node: &Node, what: &str) -> Option<String> {
        let value = self.string(node, what)?;
        if value.trim().is_empty() {
            self.error(node.pos, format!("`{what}` must not be empty"), None);
            return None;
        }
        Some(value)
    }

    /// Reads a list of strings; a single string is a list of one.
    pub(crate) fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Pos)>> {
        match &node.kind {
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.string(item, &format!("{what}[{i}]")) {
                        Some(s) => out.push((s, item.pos)),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            Kind::Null => Some(Vec::new()),
            Kind::Map(_) => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a list of strings, found a mapping"),
                    None,
                );
                None
            }
            _ => self.string(node, what).map(|s| vec![(s, node.pos)]),
        }
    }
}

/// ` (from `${W}`)` when the value came through a variable, so the message names it.
fn origin_note(raw: &str, expanded: &str) -> String {
    if raw.contains("${") && raw != expanded {
        format!(" (from `{}`)", raw.trim())
    } else {
        String::new()
    }
}

/// The key lists the loader reads mappings with, recorded per mapping path (`rules[].examples`
/// is recorded as `examples`, its `what`), so that `schema::tests` can compare them with the
/// JSON Schema without a second list to keep in step.
#[cfg(test)]
pub(crate) mod recording {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    /// A mapping path (`[N]` written `[]`) and the keys the loader accepts there.
    pub(crate) type KeySets = BTreeSet<(String, Vec<String>)>;

    thread_local! {
        static KEY_SETS: RefCell<Option<KeySets>> = const { RefCell::new(None) };
    }

    /// Runs `f`, returning what it returned and the key lists of every mapping it read.
    pub(crate) fn record_key_sets<R>(f: impl FnOnce() -> R) -> (R, KeySets) {
        KEY_SETS.with(|sets| *sets.borrow_mut() = Some(KeySets::new()));
        let result = f();
        let sets = KEY_SETS.with(|sets| sets.borrow_mut().take().unwrap_or_default());
        (result, sets)
    }

    pub(super) fn record(what: &str, known: &[&str]) {
        KEY_SETS.with(|sets| {
            if let Some(sets) = sets.borrow_mut().as_mut() {
                let mut keys: Vec<String> = known.iter().map(|k| (*k).to_owned()).collect();
                keys.sort();
                sets.insert((without_indexes(what), keys));
            }
        });
    }

    /// `sources[3].multiline` -> `sources[].multiline`.
    fn without_indexes(what: &str) -> String {
        let mut out = String::with_capacity(what.len());
        let mut in_index = false;
        for c in what.chars() {
            match c {
                '[' => {
                    in_index = true;
                    out.push(c);
                }
                ']' => {
                    in_index = false;
                    out.push(c);
                }
                _ if in_index => {}
                _ => out.push(c),
            }
        }
        out
    }
}
