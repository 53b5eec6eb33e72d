//! Rule patterns: checked when the rules load, compiled the first time a line needs them.
//!
//! Why lazy: a compiled regex with a Unicode class (`\w`, `\d`) costs tens of kilobytes (its
//! forward and reverse automata) and about half a millisecond to build, and a large rule set is
//! mostly rules that never see a line: the scan's prefilter hands a line only to the rules
//! whose literals it contains. So loading a rule only checks its pattern (parse, and the forward
//! automaton within [`REGEX_SIZE_LIMIT`], then dropped) and the matcher is built on first use.
//!
//! Why not `regex::bytes::Regex`: with its defaults, `(?P<x>\w+)` also gets a one-pass DFA of
//! about 0.7 MB (used only to speed up captures), which made every such rule cost 0.75 MB. The
//! same engine (`regex-automata`'s meta regex, which `regex` wraps) is used here with the
//! one-pass DFA capped at [`ONEPASS_SIZE_LIMIT`]; matching semantics are the `regex` crate's
//! bytes API, flags from [`syntax_config`].
//!
//! A match also records what the window needs of it ([`Spans`]), found by the one search that
//! decides the match: the window shapes a hit from those spans and does not search again.

use std::ops::Range;
use std::sync::OnceLock;

use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, meta};

use super::{REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT};

/// Upper bound on the one-pass DFA of one pattern (small ASCII patterns keep theirs).
pub const ONEPASS_SIZE_LIMIT: usize = 64 << 10;

/// A pattern without captures keeps its whole match only if no match is longer than this.
pub const MAX_KEPT_MATCH_BYTES: usize = 64;

/// One rule pattern (or exclusion): its text, its capture names, and its matcher once built.
#[derive(Clone)]
pub struct Pattern {
    text: Box<str>,
    /// Capture names by group index (index 0, the whole match, has none).
    names: Box<[Option<Box<str>>]>,
    regex: OnceLock<meta::Regex>,
    spans: OnceLock<Spans>,
}

/// What a match of a pattern records besides the fact that it matched ([`Pattern::search`]):
/// what the window keeps unmasked, reads a level and `group_by` values from
/// (`window::capture`). One search finds it, so none is run again to shape the hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spans {
    /// Nothing: no groups, and matches may be longer than [`MAX_KEPT_MATCH_BYTES`] or are a
    /// literal without digits or quotes (nothing a mask would touch).
    Nothing,
    /// The whole match: no groups, and no match is longer than [`MAX_KEPT_MATCH_BYTES`].
    WholeMatch,
    /// Every group (index 0: the whole match).
    Groups,
}

/// The parser flags of every rule pattern: bytes (invalid UTF-8 never stops a match),
/// multi-line anchors (so `^` works inside multiline events), CRLF-aware.
pub fn syntax_config() -> syntax::Config {
    syntax::Config::new()
        .utf8(false)
        .multi_line(true)
        .crlf(true)
}

impl Pattern {
    /// Checks `text` as a rule pattern, without keeping a compiled matcher.
    ///
    /// # Errors
    ///
    /// The regex crate's message (a syntax error, look-around, or too big).
    pub fn new(text: &str) -> Result<Pattern, String> {
        let checked = build(text, &checking_config())?;
        let names = checked
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
            .map(|name| name.map(Box::from))
            .collect();
        Ok(Pattern {
            text: text.into(),
            names,
            regex: OnceLock::new(),
            spans: OnceLock::new(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Returns true if and only if the pattern matches somewhere in `haystack`.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.regex().is_match(haystack)
    }

    /// The span of the first match in `haystack` (cheaper than [`Pattern::captures`]).
    pub fn find(&self, haystack: &[u8]) -> Option<Range<usize>> {
        self.regex().find(haystack).map(|m| m.range())
    }

    /// What a match records (see [`Spans`]).
    pub fn spans(&self) -> Spans {
        *self.spans.get_or_init(|| {
            if self.names.len() > 1 {
                Spans::Groups
            } else if is_short_and_maskable(&self.text) {
                Spans::WholeMatch
            } else {
                Spans::Nothing
            }
        })
    }

    /// Returns true if and only if the pattern matches somewhere in `haystack`, and then puts
    /// what [`Pattern::spans`] says a match records into `spans` (empty for
    /// [`Spans::Nothing`]; group by index for [`Spans::Groups`]). `spans` is cleared first.
    pub fn search(&self, haystack: &[u8], spans: &mut Vec<Option<Range<usize>>>) -> bool {
        spans.clear();
        match self.spans() {
            Spans::Nothing => self.is_match(haystack),
            Spans::WholeMatch => self
                .find(haystack)
                .map(|found| spans.push(Some(found)))
                .is_some(),
            Spans::Groups => self.captures_into(haystack, spans),
        }
    }

    /// The capture names by group index (`None` for the whole match and unnamed groups).
    pub fn capture_names(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        self.names.iter().map(|name| name.as_deref())
    }

    /// The span of every group (by index) of the first match in `haystack`, or `None`
    /// without a match.
    pub fn captures(&self, haystack: &[u8]) -> Option<Vec<Option<Range<usize>>>> {
        let regex = self.regex();
        let mut captures = regex.create_captures();
        regex.captures(haystack, &mut captures);
        captures.is_match().then(|| {
            (0..captures.group_len())
                .map(|group| captures.get_group(group).map(|span| span.range()))
                .collect()
        })
    }

    /// Like [`Pattern::captures`], into `spans` (left empty without a match), with no
    /// allocation but the spans' own.
    fn captures_into(&self, haystack: &[u8], spans: &mut Vec<Option<Range<usize>>>) -> bool {
        spans.clear();
        let regex = self.regex();
        let len = 2 * regex
            .group_info()
            .group_len(regex_automata::PatternID::ZERO);
        let mut on_stack = [None; 16];
        let mut on_heap = Vec::new();
        let slots: &mut [Option<NonMaxUsize>] = if len <= on_stack.len() {
            &mut on_stack[..len]
        } else {
            on_heap.resize(len, None);
            &mut on_heap
        };
        if regex.search_slots(&Input::new(haystack), slots).is_none() {
            return false;
        }
        spans.extend(slots.chunks_exact(2).map(|pair| match (pair[0], pair[1]) {
            (Some(start), Some(end)) => Some(start.get()..end.get()),
            _ => None,
        }));
        true
    }

    /// Returns true if and only if the matcher has been built (the pattern was needed).
    pub fn is_compiled(&self) -> bool {
        self.regex.get().is_some()
    }

    fn regex(&self) -> &meta::Regex {
        self.regex.get_or_init(|| {
            // The checking build succeeded when the rule loaded and is deterministic; the
            // full one can only fail where the checking one does not (the reverse automaton
            // over the size limit), and then matching without lazy DFAs is still correct.
            build(&self.text, &matching_config())
                .or_else(|_| build(&self.text, &checking_config()))
                .expect("the pattern was checked when its rule loaded")
        })
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pattern").field(&self.text).finish()
    }
}

fn build(text: &str, config: &meta::Config) -> Result<meta::Regex, String> {
    meta::Builder::new()
        .configure(config.clone())
        .syntax(syntax_config())
        .build(text)
        .map_err(message)
}

/// What `regex::bytes::Regex` would build, with a smaller one-pass DFA.
fn matching_config() -> meta::Config {
    meta::Config::new()
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(false)
        .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
        .hybrid_cache_capacity(REGEX_DFA_SIZE_LIMIT)
        .onepass_size_limit(Some(ONEPASS_SIZE_LIMIT))
}

/// Only the forward automaton: enough to report every error the full build would.
fn checking_config() -> meta::Config {
    matching_config()
        .hybrid(false)
        .onepass(false)
        .backtrack(false)
        .auto_prefilter(false)
}

/// Whether every match of `pattern` is at most [`MAX_KEPT_MATCH_BYTES`] and may hold
/// something a mask would touch (a literal without digits or quotes never does).
fn is_short_and_maskable(pattern: &str) -> bool {
    let Ok(hir) = syntax::parse_with(pattern, &syntax_config()) else {
        return false;
    };
    let properties = hir.properties();
    let is_short = properties
        .maximum_len()
        .is_some_and(|max| max <= MAX_KEPT_MATCH_BYTES);
    let is_inert_literal = properties.is_literal()
        && !pattern
            .bytes()
            .any(|b| b.is_ascii_digit() || b == b'"' || b == b'\'');
    is_short && !is_inert_literal
}

/// The `regex` crate's wording of a build error.
fn message(err: meta::BuildError) -> String {
    if let Some(limit) = err.size_limit() {
        too_big(limit)
    } else if let Some(syntax) = err.syntax_error() {
        syntax.to_string()
    } else {
        err.to_string()
    }
}

/// The message of a pattern over the size limit.
pub(super) fn too_big(limit: usize) -> String {
    format!(
        "the compiled pattern is larger than the limit of {limit} bytes; \
         simplify it (large counted repetitions like `\\w{{1000}}` are the usual cause)"
    )
}

/// The last `error: ...` line of a regex crate message (its first lines repeat the pattern).
pub fn short_regex_error(message: &str) -> String {
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(message)
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_compiled_only_when_first_matched() {
        let pattern = Pattern::new(r"user=(?P<user>\w+)").unwrap();
        assert!(!pattern.is_compiled());
        assert_eq!(
            pattern.capture_names().collect::<Vec<_>>(),
            [None, Some("user")]
        );
        assert!(pattern.is_match("login user=Zoë".as_bytes()));
        assert!(pattern.is_compiled());
        let groups = pattern.captures("login user=Zoë".as_bytes()).unwrap();
        assert_eq!(groups, [Some(6..15), Some(11..15)]);
    }

    #[test]
    fn errors_are_found_when_loading() {
        assert!(Pattern::new("(").unwrap_err().contains("unclosed group"));
        assert!(
            Pattern::new(r"\w{1000}")
                .unwrap_err()
                .contains("larger than the limit")
        );
    }

    #[test]
    fn bytes_semantics_like_the_regex_crate() {
        let pattern = Pattern::new("^ERROR$").unwrap();
        assert!(pattern.is_match(b"x\r\nERROR\r\n\xff"));
        assert!(Pattern::new("ERROR").unwrap().is_match(b"\xff\xfe ERROR"));
    }
}
