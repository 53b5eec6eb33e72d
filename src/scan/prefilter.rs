//! The whole-chunk prefilter: finds the lines some pattern may match, without looking at the
//! others twice.
//!
//! Patterns are split by what [`super::literals`] finds in them:
//!
//! - patterns with a good required-literal set go into one Aho-Corasick automaton (SIMD
//!   "Teddy" for a few dozen literals);
//! - the rest are compiled into one combined lazy DFA (newline-stripped, so a match never
//!   spans two lines) searched over the whole chunk.
//!
//! [`Prefilter::next_candidate`] merges the two: "the next position at or after `at` where a
//! candidate line is". With more literals than the SIMD searcher takes (a large rule set), the
//! chunk is searched for a small *cover* of them instead (substrings shared by many literals,
//! see [`super::literals::cover`]), and the full set is only searched on the lines it finds. A candidate is only a candidate: on its line, [`Prefilter::mark`] finds
//! the patterns that may match (those whose literals occur in it, and the DFA's), and the
//! caller runs just those, each with its own exact regex.

use aho_corasick::{AhoCorasick, MatchKind as AcMatchKind, packed};
use regex_automata::{Input, MatchKind, meta};
use regex_syntax::hir::Hir;

use super::literals::{cover, for_buffer, required_literals};

/// The most literals the SIMD searcher (Teddy) takes.
const PACKED_LITERALS: usize = 64;

/// Everything that finds candidate lines in a chunk, and the patterns to try on each.
#[derive(Clone, Debug)]
pub(crate) struct Prefilter {
    /// The required literals of all patterns that have some, longest first.
    literals: Option<Literals>,
    /// What the chunk is searched for when `literals` is too large for SIMD: a cover of them.
    cover: Option<Literals>,
    /// For each literal, the patterns that require it or a prefix of it (see [`Prefilter::mark`]).
    owners: Vec<Vec<usize>>,
    /// Patterns without usable literals, combined.
    dfa: Option<meta::Regex>,
    /// The patterns of `dfa`: tried on every candidate line.
    always: Vec<usize>,
    /// Number of patterns.
    patterns: usize,
}

/// A multi-literal searcher, leftmost-first (the longest literal wins at a position).
#[derive(Clone, Debug)]
enum Literals {
    /// Few enough literals for the SIMD searcher (Teddy).
    Packed(packed::Searcher),
    /// Too many for `Packed`, or no SIMD.
    Automaton(AhoCorasick),
}

/// The caller's scratch state for one chunk: the next candidate each finder reported.
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    /// `None` when not yet searched from the current position, `Some(None)` when there is no
    /// more candidate in this chunk, `Some(Some(pos))` otherwise.
    literal: Option<Option<usize>>,
    dfa: Option<Option<usize>>,
}

/// A set of pattern indices, reused from line to line (no allocation per line).
#[derive(Debug)]
pub(crate) struct Marks {
    bits: Vec<u64>,
}

impl Prefilter {
    /// The prefilter of chunks of lines, for these patterns (already parsed with the rule
    /// flags), indexed as given: literals of the newline-stripped patterns, and a combined DFA
    /// of those without.
    ///
    /// # Errors
    ///
    /// When the combined DFA of literal-less patterns cannot be built (too big).
    pub(crate) fn for_lines(hirs: &[Hir], nfa_size_limit: usize) -> Result<Prefilter, String> {
        Prefilter::new(hirs, true, nfa_size_limit)
    }

    /// The prefilter of multiline events, searched over a buffer of events: literals of the
    /// patterns as written (a match may span the lines of an event) and a combined DFA of
    /// those without. A match it finds may span two events: a candidate, never a miss.
    ///
    /// # Errors
    ///
    /// When the literal searcher or the combined DFA cannot be built.
    pub(crate) fn for_records(hirs: &[Hir], nfa_size_limit: usize) -> Result<Prefilter, String> {
        Prefilter::new(hirs, false, nfa_size_limit)
    }

    fn new(hirs: &[Hir], is_lines: bool, nfa_size_limit: usize) -> Result<Prefilter, String> {
        let mut required = Vec::new();
        let mut fallback = Vec::new();
        let mut always = Vec::new();
        for (pattern, hir) in hirs.iter().enumerate() {
            let analysed = for_buffer(hir, is_lines);
            match required_literals(&analysed) {
                Some(literals) => required.extend(literals.into_iter().map(|l| (l, pattern))),
                None => {
                    fallback.push(analysed);
                    always.push(pattern);
                }
            }
        }
        let (literals, owners) = owned_literals(required);
        tracing::debug!(
            literals = literals.len(),
            dfa_patterns = fallback.len(),
            "scan prefilter built"
        );
        let dfa = combined_dfa(&fallback, nfa_size_limit)?;
        let cover = if literals.len() > PACKED_LITERALS {
            cover(&literals, PACKED_LITERALS)
        } else {
            None
        };
        tracing::debug!(cover = cover.as_ref().map(Vec::len), "scan prefilter cover");
        Ok(Prefilter {
            cover: cover.as_deref().map(Literals::new).transpose()?.flatten(),
            literals: Literals::new(&literals)?,
            owners,
            dfa,
            always,
            patterns: hirs.len(),
        })
    }

    /// Returns true if and only if chunks are searched for a cover of the literals.
    #[cfg(test)]
    pub(crate) fn has_cover(&self) -> bool {
        self.cover.is_some()
    }

    /// The start of the first occurrence at or after `at` of a literal (or, with a large set,
    /// of its cover): no line or event without one can match a pattern that has literals.
    fn find_literal(&self, haystack: &[u8], at: usize) -> Option<usize> {
        let searcher = self.cover.as_ref().or(self.literals.as_ref())?;
        searcher.find(haystack, at).map(|(start, _)| start)
    }

    /// An empty set of patterns, sized for this prefilter.
    pub(crate) fn marks(&self) -> Marks {
        Marks {
            bits: vec![0; self.patterns.div_ceil(64)],
        }
    }

    /// The smallest position at or after `at` (always a line start) that lies in a line some
    /// pattern may match, or `None` when no line from `at` on can match.
    ///
    /// A position is reported in the line it belongs to: a position equal to a `\n` index
    /// belongs to the line that `\n` ends.
    pub(crate) fn next_candidate(
        &self,
        chunk: &[u8],
        at: usize,
        cursors: &mut Cursors,
    ) -> Option<usize> {
        let literal = cached(&mut cursors.literal, at, || self.find_literal(chunk, at));
        let dfa = self
            .dfa
            .as_ref()
            .and_then(|dfa| cached(&mut cursors.dfa, at, || find_with_dfa(dfa, chunk, at)));
        match (literal, dfa) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Marks the patterns that may match `line` (one line without `\n`, or one event for a
    /// [`Prefilter::for_records`]): those whose required literals occur in it, and those
    /// without literals. Every other pattern cannot match.
    ///
    /// Literals are searched leftmost-first, longest first, restarting one byte after each
    /// occurrence; at a position where several literals occur, the shorter ones are prefixes
    /// of the longest one, whose owners include theirs.
    pub(crate) fn mark(&self, line: &[u8], marks: &mut Marks) {
        marks.bits.fill(0);
        for &pattern in &self.always {
            marks.insert(pattern);
        }
        let Some(literals) = &self.literals else {
            return;
        };
        let mut at = 0;
        while let Some((start, literal)) = literals.find(line, at) {
            for &pattern in &self.owners[literal] {
                marks.insert(pattern);
            }
            at = start + 1;
        }
    }
}

impl Marks {
    fn insert(&mut self, pattern: usize) {
        self.bits[pattern / 64] |= 1 << (pattern % 64);
    }

    /// The marked patterns, in increasing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits
            .iter()
            .enumerate()
            .flat_map(|(word_index, &word)| {
                let mut word = word;
                std::iter::from_fn(move || {
                    (word != 0).then(|| {
                        let bit = word.trailing_zeros() as usize;
                        word &= word - 1;
                        word_index * 64 + bit
                    })
                })
            })
    }
}

impl Literals {
    fn new(literals: &[Vec<u8>]) -> Result<Option<Literals>, String> {
        if literals.is_empty() {
            return Ok(None);
        }
        let packed = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(literals)
            .build();
        Ok(Some(match packed {
            Some(searcher) => Literals::Packed(searcher),
            None => Literals::Automaton(
                AhoCorasick::builder()
                    .match_kind(AcMatchKind::LeftmostFirst)
                    .build(literals)
                    .map_err(|e| e.to_string())?,
            ),
        }))
    }

    /// The leftmost occurrence at or after `at`: its start and the literal's index.
    fn find(&self, haystack: &[u8], at: usize) -> Option<(usize, usize)> {
        let span = aho_corasick::Span::from(at..haystack.len());
        let found = match self {
            Literals::Packed(searcher) => searcher.find_in(haystack, span),
            Literals::Automaton(automaton) => {
                automaton.find(aho_corasick::Input::new(haystack).span(span))
            }
        };
        found.map(|m| (m.start(), m.pattern().as_usize()))
    }
}

/// The literals, longest first, deduplicated, and for each the patterns that require it or a
/// literal that is a prefix of it.
fn owned_literals(required: Vec<(Vec<u8>, usize)>) -> (Vec<Vec<u8>>, Vec<Vec<usize>>) {
    let mut literals: Vec<Vec<u8>> = required.iter().map(|(l, _)| l.clone()).collect();
    literals.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    literals.dedup();
    let owners = literals
        .iter()
        .map(|literal| {
            let mut owners: Vec<usize> = required
                .iter()
                .filter(|(other, _)| literal.starts_with(other))
                .map(|&(_, pattern)| pattern)
                .collect();
            owners.sort_unstable();
            owners.dedup();
            owners
        })
        .collect();
    (literals, owners)
}

fn combined_dfa(patterns: &[Hir], nfa_size_limit: usize) -> Result<Option<meta::Regex>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    meta::Regex::builder()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .utf8_empty(false)
                .which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit)
                .nfa_size_limit(Some(nfa_size_limit)),
        )
        .build_many_from_hir(patterns)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The cached next position if it is still ahead of `at`, else a fresh search.
fn cached(
    slot: &mut Option<Option<usize>>,
    at: usize,
    search: impl FnOnce() -> Option<usize>,
) -> Option<usize> {
    let next = match *slot {
        Some(Some(pos)) if pos >= at => Some(pos),
        Some(None) => None,
        _ => search(),
    };
    *slot = Some(next);
    next
}

fn find_with_dfa(dfa: &meta::Regex, chunk: &[u8], at: usize) -> Option<usize> {
    let input = Input::new(chunk).span(at..chunk.len()).earliest(true);
    let end = dfa.search_half(&input)?.offset();
    // The match (stripped of `\n`) lies within one line. If the byte before its end is not
    // `\n`, that byte is in the match's line (or the match is empty and sits in the same
    // line); otherwise the match is empty and sits at `end`.
    Some(if end > at && chunk[end - 1] != b'\n' {
        end - 1
    } else {
        end
    })
}
