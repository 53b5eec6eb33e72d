//! Literal analysis of rule patterns, for the whole-chunk prefilter.
//!
//! Two transformations, both at `Matcher::new` time, never per line:
//!
//! - [`strip_newline`] removes `\n` from everything a pattern can match (classes lose it, a
//!   literal holding it can never match). A line never contains `\n`, so on a line the stripped
//!   pattern matches exactly when the original does; over a whole chunk, the stripped pattern
//!   can no longer match *across* a line end. That is what makes it safe to search a chunk of
//!   many lines with one automaton and then look only at the lines it points to (ripgrep's
//!   `grep-regex` does the same).
//! - [`required_literals`] finds a small set of literals such that every match of the pattern
//!   contains one of them (not only at its start: `^\d{4}-\d\d-\d\d .* ERROR` yields ` ERROR`).
//!   An Aho-Corasick search for these literals finds every line the pattern can match, and
//!   skips the rest at memchr speed.

use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
use regex_syntax::hir::{
    Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind,
    Repetition,
};

/// The literals of one pattern that every match contains (at least one of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Required {
    /// The literals, non-empty, without `\n`.
    pub(crate) literals: Vec<Vec<u8>>,
    /// Returns true if and only if the literals must be searched ASCII-case-insensitively
    /// (they were folded to lower case to keep a `(?i)` set small; a superset of candidates).
    pub(crate) is_folded: bool,
}

/// Sets with more literals than this are case-folded (see [`Required::is_folded`]).
const MAX_EXACT_LITERALS: usize = 8;
/// Sets with more literals than this (even after folding) are not worth a prefilter.
const MAX_LITERALS: usize = 64;

/// `hir` with `\n` removed from what it can match (see the module docs).
pub(crate) fn strip_newline(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => hir.clone(),
        HirKind::Literal(literal) => {
            if literal.0.contains(&b'\n') {
                Hir::fail()
            } else {
                hir.clone()
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            let mut class = class.clone();
            class.difference(&ClassUnicode::new([ClassUnicodeRange::new('\n', '\n')]));
            Hir::class(Class::Unicode(class))
        }
        HirKind::Class(Class::Bytes(class)) => {
            let mut class = class.clone();
            class.difference(&ClassBytes::new([ClassBytesRange::new(b'\n', b'\n')]));
            Hir::class(Class::Bytes(class))
        }
        HirKind::Repetition(repetition) => Hir::repetition(Repetition {
            sub: Box::new(strip_newline(&repetition.sub)),
            ..repetition.clone()
        }),
        HirKind::Capture(capture) => Hir::capture(Capture {
            sub: Box::new(strip_newline(&capture.sub)),
            ..capture.clone()
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(strip_newline).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(strip_newline).collect()),
    }
}

/// The best set of literals every match of `hir` contains, or `None` when there is no set
/// good enough to be worth searching for (the pattern then goes to the DFA fallback).
pub(crate) fn required_literals(hir: &Hir) -> Option<Required> {
    let literals = required(hir)?;
    let min_len = literals.iter().map(Vec::len).min()?;
    if min_len < 2 || (min_len == 2 && literals.len() > 4) {
        return None;
    }
    if literals.len() <= MAX_EXACT_LITERALS {
        return Some(Required {
            literals,
            is_folded: false,
        });
    }
    let mut folded: Vec<Vec<u8>> = literals.iter().map(|l| l.to_ascii_lowercase()).collect();
    folded.sort_unstable();
    folded.dedup();
    (folded.len() <= MAX_LITERALS).then_some(Required {
        literals: folded,
        is_folded: true,
    })
}

/// A finite set of non-empty literals such that every match of `hir` contains one.
fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Capture(capture) => required(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => {
            best([required(&repetition.sub), prefixes(hir)])
        }
        HirKind::Alternation(subs) => {
            let mut union = Vec::new();
            for sub in subs {
                union.extend(required(sub)?);
            }
            union.sort_unstable();
            union.dedup();
            Some(union)
        }
        HirKind::Concat(subs) => {
            // Every suffix of the concatenation is matched by a suffix of every match, so the
            // prefixes of any suffix are required; so are the required literals of any part.
            let suffixes = (0..subs.len()).map(|i| prefixes(&Hir::concat(subs[i..].to_vec())));
            best(suffixes.chain(subs.iter().map(required)))
        }
        _ => prefixes(hir),
    }
}

/// The literal prefixes of every match of `hir`, when finite and all non-empty.
fn prefixes(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq: Seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    let mut out: Vec<Vec<u8>> = literals.iter().map(|l| l.as_bytes().to_vec()).collect();
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The most selective set: longest shortest literal (capped: past 8 bytes a literal is rare
/// enough), then fewest literals.
fn best(sets: impl IntoIterator<Item = Option<Vec<Vec<u8>>>>) -> Option<Vec<Vec<u8>>> {
    sets.into_iter().flatten().max_by_key(|set| {
        let min_len = set.iter().map(Vec::len).min().unwrap_or(0).min(8);
        (min_len, std::cmp::Reverse(set.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pattern: &str) -> Hir {
        regex_syntax::ParserBuilder::new()
            .multi_line(true)
            .crlf(true)
            .utf8(false)
            .build()
            .parse(pattern)
            .unwrap()
    }

    #[track_caller]
    fn check(pattern: &str, expected: Option<(&[&str], bool)>) {
        let actual = required_literals(&strip_newline(&parse(pattern)));
        let expected = expected.map(|(literals, is_folded)| Required {
            literals: literals.iter().map(|l| l.as_bytes().to_vec()).collect(),
            is_folded,
        });
        assert_eq!(actual, expected, "{pattern}");
    }

    #[test]
    fn inner_literals_are_found() {
        check("ERROR", Some((&["ERROR"], false)));
        check(r"^\d{4}-\d\d-\d\d .* ERROR ", Some((&[" ERROR "], false)));
        check(r"took (?P<ms>\d{4,}) ?ms", Some((&["took "], false)));
        check("ERROR|FATAL", Some((&["ERROR", "FATAL"], false)));
        check(r"java\.lang\.\w+Error", Some((&["java.lang."], false)));
    }

    #[test]
    fn case_insensitive_sets_are_folded() {
        check("(?i)timeout", Some((&["timeout"], true)));
    }

    #[test]
    fn patterns_without_a_good_literal_fall_back() {
        check(r"\d{4,}", None);
        check(r"^\S+$", None);
        check("a|bcd", None);
        check("x*", None);
    }

    #[test]
    fn newline_cannot_be_matched_after_stripping() {
        let re = regex::bytes::Regex::new(&strip_newline(&parse(r"a\sb|c\nd|e[^x]f")).to_string())
            .unwrap();
        assert!(!re.is_match(b"a\nb c\nd e\nf"));
        assert!(re.is_match(b"a b"));
    }
}
