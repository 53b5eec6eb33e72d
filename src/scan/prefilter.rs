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
//! Each of these is a [`Finder`]: "the next position at or after `at` where a candidate line
//! is". [`Prefilter::next_candidate`] merges them. A candidate is only a candidate: the caller
//! runs the exact rules on the line.

use aho_corasick::{AhoCorasick, MatchKind as AcMatchKind, packed};
use regex_automata::{Input, MatchKind, meta};
use regex_syntax::hir::Hir;

use super::literals::{required_literals, strip_newline};

/// Everything that finds candidate lines in a chunk.
#[derive(Clone, Debug)]
pub(crate) struct Prefilter {
    finders: Vec<Finder>,
}

/// One way of finding candidate positions.
#[derive(Clone, Debug)]
enum Finder {
    /// Required literals of all patterns, few enough for the SIMD searcher (Teddy).
    Packed(packed::Searcher),
    /// Required literals of all patterns, when there are too many for `Packed` or no SIMD.
    Literals(AhoCorasick),
    /// Patterns without usable literals: one combined DFA.
    Dfa(meta::Regex),
}

/// The caller's scratch state for one chunk: the next candidate each finder reported.
#[derive(Debug)]
pub(crate) struct Cursors {
    /// Per finder: `None` when not yet searched from the current position, `Some(None)` when it
    /// has no more candidates in this chunk, `Some(Some(pos))` otherwise.
    next: Vec<Option<Option<usize>>>,
}

impl Prefilter {
    /// Builds the prefilter for these patterns (already parsed with the rule flags).
    ///
    /// # Errors
    ///
    /// When the combined DFA of literal-less patterns cannot be built (too big).
    pub(crate) fn new(hirs: &[Hir], nfa_size_limit: usize) -> Result<Prefilter, String> {
        let mut literals = Vec::new();
        let mut fallback = Vec::new();
        for hir in hirs {
            let stripped = strip_newline(hir);
            match required_literals(&stripped) {
                Some(required) => literals.extend(required),
                None => fallback.push(stripped),
            }
        }
        literals.sort_unstable();
        literals.dedup();
        tracing::debug!(
            literals = literals.len(),
            dfa_patterns = fallback.len(),
            "scan prefilter built"
        );
        let mut finders = Vec::new();
        if !literals.is_empty() {
            let packed = packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostFirst)
                .builder()
                .extend(&literals)
                .build();
            finders.push(match packed {
                Some(searcher) => Finder::Packed(searcher),
                None => Finder::Literals(
                    AhoCorasick::builder()
                        .match_kind(AcMatchKind::Standard)
                        .build(&literals)
                        .map_err(|e| e.to_string())?,
                ),
            });
        }
        if !fallback.is_empty() {
            let dfa = meta::Regex::builder()
                .configure(
                    meta::Config::new()
                        .match_kind(MatchKind::LeftmostFirst)
                        .utf8_empty(false)
                        .which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit)
                        .nfa_size_limit(Some(nfa_size_limit)),
                )
                .build_many_from_hir(&fallback)
                .map_err(|e| e.to_string())?;
            finders.push(Finder::Dfa(dfa));
        }
        Ok(Prefilter { finders })
    }

    /// Fresh cursors for a new chunk.
    pub(crate) fn cursors(&self) -> Cursors {
        Cursors {
            next: vec![None; self.finders.len()],
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
        let mut best = None;
        for (finder, next) in self.finders.iter().zip(&mut cursors.next) {
            let pos = match *next {
                Some(Some(pos)) if pos >= at => Some(pos),
                Some(None) => None,
                _ => finder.find(chunk, at),
            };
            *next = Some(pos);
            best = match (best, pos) {
                (Some(b), Some(p)) => Some(std::cmp::min(b, p)),
                (b, p) => b.or(p),
            };
        }
        best
    }
}

impl Finder {
    fn find(&self, chunk: &[u8], at: usize) -> Option<usize> {
        match self {
            Finder::Packed(searcher) => searcher
                .find_in(chunk, aho_corasick::Span::from(at..chunk.len()))
                .map(|m| m.start()),
            Finder::Literals(automaton) => automaton
                .find(aho_corasick::Input::new(chunk).span(at..chunk.len()))
                .map(|m| m.start()),
            Finder::Dfa(dfa) => {
                let input = Input::new(chunk).span(at..chunk.len()).earliest(true);
                let end = dfa.search_half(&input)?.offset();
                // The match (stripped of `\n`) lies within one line. If the byte before its
                // end is not `\n`, that byte is in the match's line (or the match is empty and
                // sits in the same line); otherwise the match is empty and sits at `end`.
                Some(if end > at && chunk[end - 1] != b'\n' {
                    end - 1
                } else {
                    end
                })
            }
        }
    }
}
