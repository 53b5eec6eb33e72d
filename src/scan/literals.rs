//! Literal analysis of rule patterns, for the whole-chunk prefilter.
//!
//! Two transformations, both at `Matcher::new` time, never per line:
//!
//! - [`for_buffer`] removes `\n` from everything a pattern can match (classes lose it, a
//!   literal holding it can never match). A line never contains `\n`, so on a line the stripped
//!   pattern matches exactly when the original does; over a whole chunk, the stripped pattern
//!   can no longer match *across* a line end. That is what makes it safe to search a chunk of
//!   many lines with one automaton and then look only at the lines it points to (ripgrep's
//!   `grep-regex` does the same).
//! - [`required_literals`] finds a small set of literals such that every match of the pattern
//!   contains one of them (not only at its start: `^\d{4}-\d\d-\d\d .* ERROR` yields ` ERROR`).
//!   An Aho-Corasick search for these literals finds every line the pattern can match, and
//!   skips the rest at memchr speed.

use std::collections::{BinaryHeap, HashMap, HashSet};

use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq, rank};
use regex_syntax::hir::{
    Capture, Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind,
    Look, Repetition,
};

/// Sets with more literals than this are cut to shorter prefixes (see [`cut`]).
const MAX_LITERALS: usize = 16;
/// The lengths of the substrings [`cover`] considers (a few, to keep it quick: any shared run of
/// 16 bytes or more holds shared substrings of each of them).
const COVER_LENGTHS: [usize; 5] = [4, 6, 8, 12, 16];
/// Literal sets whose most common literal is less rare than this are not searched for (see
/// [`is_searchable`]).
const MIN_RARITY: i64 = 80;

/// `hir` as searched over a whole buffer of many lines or events rather than over one: the
/// haystack anchors `\A` and `\z` become line anchors (a superset of the matches: a line or
/// event starts at a line start and ends at a line end; the exact regex then decides), and
/// with `strip`, `\n` is removed from what it can match (see the module docs).
pub(crate) fn for_buffer(hir: &Hir, strip: bool) -> Hir {
    let recurse = |sub: &Hir| for_buffer(sub, strip);
    let newline = || ClassUnicode::new([ClassUnicodeRange::new('\n', '\n')]);
    match hir.kind() {
        HirKind::Look(Look::Start) => Hir::look(Look::StartCRLF),
        HirKind::Look(Look::End) => Hir::look(Look::EndCRLF),
        HirKind::Literal(literal) if strip && literal.0.contains(&b'\n') => Hir::fail(),
        HirKind::Class(Class::Unicode(class)) if strip => {
            let mut class = class.clone();
            class.difference(&newline());
            Hir::class(Class::Unicode(class))
        }
        HirKind::Class(Class::Bytes(class)) if strip => {
            let mut class = class.clone();
            class.difference(&ClassBytes::new([ClassBytesRange::new(b'\n', b'\n')]));
            Hir::class(Class::Bytes(class))
        }
        HirKind::Repetition(repetition) => Hir::repetition(Repetition {
            sub: Box::new(recurse(&repetition.sub)),
            ..repetition.clone()
        }),
        HirKind::Capture(capture) => Hir::capture(Capture {
            sub: Box::new(recurse(&capture.sub)),
            ..capture.clone()
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(recurse).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(recurse).collect()),
        HirKind::Empty | HirKind::Look(_) | HirKind::Literal(_) | HirKind::Class(_) => hir.clone(),
    }
}

/// The best set of literals every match of `hir` contains, or `None` when there is no set
/// good enough to be worth searching for (the pattern then goes to the DFA fallback).
///
pub(crate) fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    required(hir).filter(|set| is_searchable(set))
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
            if union.len() > MAX_LITERALS {
                cut(union)
            } else {
                Some(union)
            }
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

/// The literal prefixes of every match of `hir`, when finite and all non-empty, cut short when
/// there are too many (see [`cut`]).
fn prefixes(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq: Seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    let mut out: Vec<Vec<u8>> = literals.iter().map(|l| l.as_bytes().to_vec()).collect();
    out.sort_unstable();
    out.dedup();
    cut(out)
}

/// The best way to shorten a set (the case variants of a `(?i)` word, `status=5\d\d`): the
/// cut of all literals to one length that scores best (see [`score`]) with at most
/// [`MAX_LITERALS`] distinct literals. Prefixes of required literals are required too.
fn cut(literals: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let max_len = literals.iter().map(Vec::len).max()?;
    let cuts: Vec<_> = (2..max_len)
        .map(|len| {
            let mut cut: Vec<Vec<u8>> = literals
                .iter()
                .map(|l| l[..len.min(l.len())].to_vec())
                .collect();
            cut.sort_unstable();
            cut.dedup();
            Some(cut)
        })
        .collect();
    best(std::iter::once(Some(literals)).chain(cuts))
}

/// The most selective set (see [`score`]) among those worth searching for.
fn best(sets: impl IntoIterator<Item = Option<Vec<Vec<u8>>>>) -> Option<Vec<Vec<u8>>> {
    sets.into_iter()
        .flatten()
        .filter(|set| is_searchable(set))
        .max_by_key(|set| score(set))
}

/// Returns true if and only if `set` is small and its literals rare enough to be worth a
/// search: short or common literals (`co`, `tion `, `error`) would make many lines
/// candidates and slow the SIMD searcher down; such patterns do better in the combined DFA,
/// whose own prefilter is chosen per regex.
fn is_searchable(set: &[Vec<u8>]) -> bool {
    let min_len = set.iter().map(Vec::len).min().unwrap_or(0);
    let weakest = set.iter().map(|l| rarity(l)).min().unwrap_or(0);
    set.len() <= MAX_LITERALS && min_len >= 3 && weakest >= MIN_RARITY
}

/// How rare a literal is in typical text: the sum over its bytes of how rare each byte is, by
/// `regex-syntax`'s byte frequency ranks (` ERROR ` ~400, `status=5` ~200, `tion ` ~40).
fn rarity(literal: &[u8]) -> i64 {
    literal.iter().map(|&b| 256 - i64::from(rank(b))).sum()
}

/// How selective searching for `set` is expected to be: the rarity of its most common literal
/// (the sum over its bytes of how rare each byte is in typical text, by `regex-syntax`'s byte
/// frequency ranks: ` ERROR ` scores far above `tion `), minus a cost per doubling of the
/// number of literals (each one can also cause a candidate, and the SIMD searcher slows down
/// with more literals).
fn score(set: &[Vec<u8>]) -> i64 {
    let rarity =
        |literal: &Vec<u8>| -> i64 { literal.iter().map(|&b| 256 - i64::from(rank(b))).sum() };
    let weakest = set.iter().map(rarity).min().unwrap_or(0);
    weakest - 16 * i64::from(usize::BITS - set.len().leading_zeros())
}

/// At most `max` literals such that every literal of `literals` contains one of them, chosen
/// to be shared by as many literals as possible (`Exception: ` for a thousand
/// `FooException: (?P<x>\w+)` patterns), each rare enough to be worth a search; `None` when
/// there is no such set. A line holding some literal of `literals` holds one of the cover, so
/// the cover finds a superset of the candidate lines with a searcher small enough for SIMD.
///
/// Greedy set cover (lazy: a substring's count of uncovered literals only ever goes down),
/// longer and rarer substrings first among equal counts.
pub(crate) fn cover(literals: &[Vec<u8>], max: usize) -> Option<Vec<Vec<u8>>> {
    let mut holders: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (index, literal) in literals.iter().enumerate() {
        let mut seen = HashSet::new();
        for len in COVER_LENGTHS {
            for substring in literal.windows(len) {
                if seen.insert(substring) && rarity(substring) >= MIN_RARITY {
                    holders.entry(substring).or_default().push(index);
                }
            }
        }
        // The literal itself is searchable (it passed `is_searchable`), whatever its length.
        if seen.insert(literal) {
            holders.entry(literal).or_default().push(index);
        }
    }
    let key = |substring: &[u8], count: usize| (count, rarity(substring), substring.len());
    let mut heap: BinaryHeap<_> = holders
        .iter()
        .map(|(&substring, held)| (key(substring, held.len()), substring))
        .collect();
    let mut covered = vec![false; literals.len()];
    let mut left = literals.len();
    let mut chosen = Vec::new();
    while left > 0 {
        let (stale, substring) = heap.pop()?;
        let count = holders[substring].iter().filter(|&&i| !covered[i]).count();
        if count == 0 {
            continue;
        }
        if key(substring, count) < stale {
            heap.push((key(substring, count), substring));
            continue;
        }
        if chosen.len() == max {
            return None;
        }
        for &i in &holders[substring] {
            left -= usize::from(!covered[i]);
            covered[i] = true;
        }
        chosen.push(substring.to_vec());
    }
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pattern: &str) -> Hir {
        regex_automata::util::syntax::parse_with(pattern, &crate::rules::syntax_config()).unwrap()
    }

    #[track_caller]
    fn check(pattern: &str, expected: Option<&[&str]>) {
        let actual = required_literals(&for_buffer(&parse(pattern), true));
        let expected =
            expected.map(|literals| literals.iter().map(|l| l.as_bytes().to_vec()).collect());
        assert_eq!(actual, expected, "{pattern}");
    }

    #[test]
    fn inner_literals_are_found() {
        check("ERROR", Some(&["ERROR"]));
        check(r"^\d{4}-\d\d-\d\d .* ERROR ", Some(&[" ERROR "]));
        check(r"took (?P<ms>\d{4,}) ?ms", Some(&["took "]));
        check("ERROR|FATAL", Some(&["ERROR", "FATAL"]));
        check(r"java\.lang\.\w+Error", Some(&["java.lang."]));
    }

    #[test]
    fn large_sets_are_cut_to_prefixes() {
        check(r"status=5\d\d", Some(&["status=5"]));
    }

    #[test]
    fn common_literals_are_left_to_the_dfa() {
        check("(?i)connection", None);
        check("tion ", None);
    }

    #[test]
    fn patterns_without_a_good_literal_fall_back() {
        check(r"\d{4,}", None);
        check(r"^\S+$", None);
        check("ab|bcd", None);
        check("x*", None);
    }

    #[test]
    fn a_cover_is_shared_by_many_literals() {
        let literals: Vec<Vec<u8>> = ["Order", "Payment", "Stock"]
            .iter()
            .flat_map(|service| {
                [
                    format!("{service}LookupException: "),
                    format!("{service}UpdateException: "),
                ]
            })
            .map(String::into_bytes)
            .collect();
        let cover = cover(&literals, 2).unwrap();
        assert_eq!(cover.len(), 1, "{cover:?}");
        assert!(
            literals
                .iter()
                .all(|l| l.windows(cover[0].len()).any(|w| w == cover[0]))
        );
        assert_eq!(
            super::cover(&[b"ERROR".to_vec(), b"FATAL".to_vec()], 1),
            None
        );
    }

    #[test]
    fn newline_cannot_be_matched_after_stripping() {
        let re =
            regex::bytes::Regex::new(&for_buffer(&parse(r"a\sb|c\nd|e[^x]f"), true).to_string())
                .unwrap();
        assert!(!re.is_match(b"a\nb c\nd e\nf"));
        assert!(re.is_match(b"a b"));
    }
}
