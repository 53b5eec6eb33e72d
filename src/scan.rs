//! Scan: run a rule set over a chunk of bytes holding many lines, and return the hits.
//!
//! This is the hot path. It is chunk-shaped on purpose: the caller hands over as many complete
//! lines as it has (typically 64 KiB or more), and the matcher is free to search the whole
//! buffer at once, the way ripgrep does, instead of paying per-line overhead. Hits carry byte
//! ranges into the chunk, not copies, so nothing is allocated per line.
//!
//! Pure: no IO, no clock.

mod anchored;
mod events;
mod hit;
mod literals;
mod parallel;
mod prefilter;

pub use anchored::StartPrefix;
pub use parallel::SPLIT_FROM_BYTES;

use std::ops::Range;
use std::sync::Arc;

use regex_syntax::hir::Hir;

use crate::rules::{REGEX_SIZE_LIMIT, Rule, RuleId, RuleSet, Verdict};
use hit::{hit, spans_by_captures};
use prefilter::{Cursors, Marks, Prefilter};

/// One rule matching one line (or one multiline event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The rule that matched.
    pub rule: RuleId,
    /// The line's bytes in the chunk, without its `\n` (or `\r\n`).
    pub line: Range<usize>,
    /// The rule's `group_by` captures, in order, as ranges into the chunk.
    pub groups: Vec<Option<Range<usize>>>,
    /// The index (in the rule) of the pattern that matched: the rule's first that does.
    pub pattern: usize,
    /// What the match of that pattern recorded ([`crate::rules::Spans`]), as ranges into the
    /// chunk: the window shapes the hit from them without searching the line again.
    pub spans: Vec<Option<Range<usize>>>,
}

/// Counters of a scan, beside the hits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Lines (or events) looked at.
    pub lines: u64,
    /// Lines a rule matched but one of its `exclude` patterns removed (per rule: a line can
    /// count for two rules).
    pub excluded: u64,
    /// `excluded` per rule, sorted by rule (empty, unallocated, until an exclude fires).
    pub excluded_by: Vec<(RuleId, u64)>,
}

impl ScanStats {
    /// Counts `rule`'s exclude removing `n` lines.
    fn exclude(&mut self, rule: RuleId, n: u64) {
        self.excluded += n;
        match self.excluded_by.binary_search_by_key(&rule, |(r, _)| *r) {
            Ok(i) => self.excluded_by[i].1 += n,
            Err(i) => self.excluded_by.insert(i, (rule, n)),
        }
    }

    /// Adds the counters of another scan (a part or an event of the same chunk).
    pub fn add(&mut self, other: &ScanStats) {
        self.lines += other.lines;
        for &(rule, n) in &other.excluded_by {
            self.exclude(rule, n);
        }
    }
}

/// The rules that apply to one source, ready to scan its chunks.
///
/// Built once per source (compiling the combined automata takes milliseconds); cheap to clone
/// and to share between threads.
#[derive(Clone, Debug)]
pub struct Matcher {
    rules: Arc<RuleSet>,
    ids: Vec<RuleId>,
    /// `None` when the combined automata could not be built (a huge rule set): every line then
    /// goes through [`Matcher::scan_reference`]'s rule-by-rule path.
    fast: Option<Arc<Fast>>,
}

/// The combined automata of a matcher's patterns.
#[derive(Debug)]
struct Fast {
    /// Finds candidate lines in a whole chunk, and the patterns to try on each.
    prefilter: Prefilter,
    /// The patterns to try on a multiline event (literals of the patterns as written: an
    /// event holds `\n`, so the newline-stripped analysis of `prefilter` does not apply).
    records: Prefilter,
    /// For each pattern, the position in `ids` of its rule and its index in the rule.
    owners: Vec<(usize, usize)>,
}

impl Matcher {
    /// A matcher for the rules that apply to `source`.
    pub fn new(rules: Arc<RuleSet>, source: &str) -> Matcher {
        let ids = rules.ids_for_source(source);
        let fast = Fast::new(&rules, &ids).map(Arc::new);
        if fast.is_none() && !ids.is_empty() {
            tracing::debug!(
                source,
                "combined matcher unavailable, scanning rule by rule"
            );
        }
        Matcher { rules, ids, fast }
    }

    /// A matcher for every rule, whatever its `sources:` (for files that belong to no source).
    pub fn with_all_rules(rules: Arc<RuleSet>) -> Matcher {
        let ids = (0..rules.len())
            .map(|i| RuleId(i as u32))
            .collect::<Vec<_>>();
        let fast = Fast::new(&rules, &ids).map(Arc::new);
        Matcher { rules, ids, fast }
    }

    /// The rule set this matcher runs.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Scans `chunk`, a run of `\n`-terminated lines (a last line without `\n` is scanned as a
    /// line too), appending hits to `out` in line order.
    ///
    /// The whole chunk is searched for candidate lines at once (see the `prefilter` module); only those
    /// lines are matched against the rules, all patterns in one pass.
    pub fn scan(&self, chunk: &[u8], out: &mut Vec<Hit>) -> ScanStats {
        let Some(fast) = &self.fast else {
            return self.scan_reference(chunk, out);
        };
        let mut stats = ScanStats {
            lines: count_lines(chunk),
            ..ScanStats::default()
        };
        let mut cursors = Cursors::default();
        let mut marks = fast.prefilter.marks();
        let mut at = 0;
        while let Some(pos) = fast.prefilter.next_candidate(chunk, at, &mut cursors) {
            if pos >= chunk.len() && chunk.last().is_none_or(|&b| b == b'\n') {
                break; // an empty match after the last line end: there is no line there
            }
            let start = memchr::memrchr(b'\n', &chunk[at..pos]).map_or(at, |i| at + i + 1);
            let end = memchr::memchr(b'\n', &chunk[pos..]).map_or(chunk.len(), |i| pos + i);
            let line = start..trim_cr(chunk, start, end);
            let prefilter = &fast.prefilter;
            self.match_candidate(fast, prefilter, chunk, line, &mut marks, out, &mut stats);
            if end >= chunk.len() {
                break;
            }
            at = end + 1;
        }
        stats
    }

    /// Scans `record` as one unit (a multiline event: it may contain `\n`).
    pub fn scan_record(&self, record: &[u8], out: &mut Vec<Hit>) -> ScanStats {
        let mut stats = ScanStats::default();
        let end = record.strip_suffix(b"\n").map_or(record.len(), <[u8]>::len);
        let line = 0..trim_cr(record, 0, end);
        match &self.fast {
            Some(fast) => {
                stats.lines = 1;
                let mut marks = fast.records.marks();
                let prefilter = &fast.records;
                self.match_candidate(fast, prefilter, record, line, &mut marks, out, &mut stats);
            }
            None => self.scan_line_reference(record, line, out, &mut stats),
        }
        stats
    }

    /// The simple implementation: every line, every rule, one regex at a time. It defines the
    /// semantics [`Matcher::scan`] must keep, and is the oracle of its tests and benchmarks.
    pub fn scan_reference(&self, chunk: &[u8], out: &mut Vec<Hit>) -> ScanStats {
        let mut stats = ScanStats::default();
        let mut start = 0;
        while start < chunk.len() {
            let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
            self.scan_line_reference(chunk, start..trim_cr(chunk, start, end), out, &mut stats);
            start = end + 1;
        }
        stats
    }

    fn scan_line_reference(
        &self,
        chunk: &[u8],
        line: Range<usize>,
        out: &mut Vec<Hit>,
        stats: &mut ScanStats,
    ) {
        stats.lines += 1;
        let bytes = &chunk[line.clone()];
        for &id in &self.ids {
            let rule = self.rules.get(id);
            match rule.verdict(bytes) {
                Verdict::NoMatch => {}
                Verdict::Excluded { .. } => stats.exclude(id, 1),
                Verdict::Match { pattern } => {
                    let spans = spans_by_captures(&rule.patterns[pattern], bytes);
                    out.push(hit(rule, id, pattern, line.clone(), spans));
                }
            }
        }
    }

    /// Matches one candidate line of a chunk (or one event, with `records`): only the
    /// patterns [`Prefilter::mark`] leaves possible are run, each with its own regex, in rule
    /// order then pattern order, so the first one that matches is the one `Rule::verdict`
    /// would report.
    #[allow(clippy::too_many_arguments)]
    fn match_candidate(
        &self,
        fast: &Fast,
        prefilter: &Prefilter,
        chunk: &[u8],
        line: Range<usize>,
        marks: &mut Marks,
        out: &mut Vec<Hit>,
        stats: &mut ScanStats,
    ) {
        let bytes = &chunk[line.clone()];
        prefilter.mark(bytes, marks);
        let mut decided = None;
        for global in marks.iter() {
            let (position, pattern) = fast.owners[global];
            if decided == Some(position) {
                continue;
            }
            let id = self.ids[position];
            let rule = self.rules.get(id);
            // Unallocated until a match records something; then it is the hit's own.
            let mut spans = Vec::new();
            if rule.patterns[pattern].search(bytes, &mut spans) {
                decided = Some(position);
                self.decide(rule, id, pattern, chunk, line.clone(), spans, out, stats);
            }
        }
    }

    /// A rule's pattern matched: a hit, unless an exclude matches too.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        rule: &Rule,
        id: RuleId,
        pattern: usize,
        chunk: &[u8],
        line: Range<usize>,
        spans: Vec<Option<Range<usize>>>,
        out: &mut Vec<Hit>,
        stats: &mut ScanStats,
    ) {
        if rule
            .excludes
            .iter()
            .any(|re| re.is_match(&chunk[line.clone()]))
        {
            stats.exclude(id, 1);
        } else {
            out.push(hit(rule, id, pattern, line, spans));
        }
    }
}

impl Fast {
    /// Parses every pattern again (with the flags of [`crate::rules::syntax_config`]) and
    /// builds the combined automata; `None` if any step fails.
    fn new(rules: &RuleSet, ids: &[RuleId]) -> Option<Fast> {
        let mut hirs: Vec<Hir> = Vec::new();
        let mut owners = Vec::new();
        for (position, &id) in ids.iter().enumerate() {
            for (pattern, re) in rules.get(id).patterns.iter().enumerate() {
                hirs.push(parse(re.as_str())?);
                owners.push((position, pattern));
            }
        }
        if hirs.is_empty() {
            return None;
        }
        let nfa_size_limit = REGEX_SIZE_LIMIT.saturating_mul(hirs.len());
        Some(Fast {
            prefilter: Prefilter::for_lines(&hirs, nfa_size_limit).ok()?,
            records: Prefilter::for_records(&hirs, nfa_size_limit).ok()?,
            owners,
        })
    }
}

/// Parses a pattern the way rule patterns are compiled ([`crate::rules::syntax_config`]).
fn parse(pattern: &str) -> Option<Hir> {
    regex_automata::util::syntax::parse_with(pattern, &crate::rules::syntax_config()).ok()
}

fn count_lines(chunk: &[u8]) -> u64 {
    let ends = memchr::memchr_iter(b'\n', chunk).count();
    let unterminated = chunk.last().is_some_and(|&b| b != b'\n');
    (ends + usize::from(unterminated)) as u64
}

fn trim_cr(chunk: &[u8], start: usize, end: usize) -> usize {
    if end > start && chunk[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Rule, RuleDef};

    fn rule(name: &str, patterns: &[&str], exclude: &[&str], group_by: &[&str]) -> Rule {
        Rule::compile(&RuleDef {
            name: name.into(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            exclude: exclude.iter().map(|p| (*p).to_owned()).collect(),
            group_by: group_by.iter().map(|p| (*p).to_owned()).collect(),
            ..RuleDef::default()
        })
        .unwrap()
    }

    fn matcher(rules: &[(&str, &str)]) -> Matcher {
        let rules = rules
            .iter()
            .map(|(name, pattern)| rule(name, &[pattern], &[], &[]))
            .collect();
        let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
        assert!(matcher.fast.is_some());
        matcher
    }

    #[track_caller]
    fn check(rules: &[(&str, &str)], chunk: &[u8], expected: &[(u32, &str)]) {
        let mut hits = Vec::new();
        matcher(rules).scan(chunk, &mut hits);
        let actual: Vec<(u32, String)> = hits
            .iter()
            .map(|h| {
                (
                    h.rule.0,
                    String::from_utf8_lossy(&chunk[h.line.clone()]).into_owned(),
                )
            })
            .collect();
        let expected: Vec<(u32, String)> = expected
            .iter()
            .map(|(r, l)| (*r, (*l).to_owned()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn hits_in_line_order_with_crlf_stripped() {
        check(
            &[("err", "ERROR"), ("oom", "OutOfMemory")],
            b"INFO ok\r\nERROR one\r\nERROR OutOfMemory\nlast ERROR",
            &[
                (0, "ERROR one"),
                (0, "ERROR OutOfMemory"),
                (1, "ERROR OutOfMemory"),
                (0, "last ERROR"),
            ],
        );
    }

    #[test]
    fn anchors_are_per_line() {
        check(
            &[("start", "^ERROR$")],
            b"x ERROR\nERROR\nERROR x\n",
            &[(0, "ERROR")],
        );
    }

    #[test]
    fn excluded_lines_are_counted_not_hit() {
        let rules = vec![rule("5xx", &[r#"" 5\d\d "#], &["/healthz"], &[])];
        let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
        let mut hits = Vec::new();
        let stats = matcher.scan(b"\"GET /healthz\" 503 \n\"GET /api\" 502 \nok\n", &mut hits);
        assert_eq!(
            stats,
            ScanStats {
                lines: 3,
                excluded: 1,
                excluded_by: vec![(RuleId(0), 1)],
            }
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, 20..35);
    }

    #[test]
    fn group_captures_point_into_the_chunk() {
        let rules = vec![rule("slow", &[r"took (?P<ms>\d{4,})ms"], &[], &["ms"])];
        let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
        let chunk = b"took 12ms\nx took 12345ms\n";
        let mut hits = Vec::new();
        matcher.scan(chunk, &mut hits);
        assert_eq!(hits.len(), 1);
        let group = hits[0].groups[0].clone().unwrap();
        assert_eq!(&chunk[group], b"12345");
    }

    #[test]
    fn empty_matches_do_not_invent_a_line_after_the_last_newline() {
        check(&[("blank", "^$")], b"a\n\nb\n", &[(0, "")]);
        check(&[("any", "x*")], b"a\nb\n", &[(0, "a"), (0, "b")]);
    }

    #[test]
    fn a_match_never_spans_two_lines() {
        check(&[("ab", r"a\s*b")], b"xa\nby\nab\n", &[(0, "ab")]);
    }

    #[test]
    fn records_keep_their_newlines() {
        let rules = vec![rule("trace", &[r"Exception\n\s+at "], &[], &[])];
        let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
        let mut hits = Vec::new();
        matcher.scan_record(
            b"ERROR boom java.lang.IllegalStateException\n\tat a.B(B.java:1)\n",
            &mut hits,
        );
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn a_large_rule_set_is_searched_through_a_cover_of_its_literals() {
        let rules = (0..100)
            .map(|i| {
                let pattern = format!(r"Svc{i}Exception: (?P<x>\w+)");
                rule(&format!("r{i}"), &[&pattern], &[], &["x"])
            })
            .collect();
        let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
        assert!(matcher.fast.as_ref().unwrap().prefilter.has_cover());
        let chunk = "ok\nSvc7Exception: boom\nOtherException: x\nSvc70Exception: \u{e9}t\u{e9}\n\
                     Svc99Exception: - Svc1Exception: y\nSvc3Exception \n"
            .as_bytes();
        let (mut fast, mut reference) = (Vec::new(), Vec::new());
        let stats = matcher.scan(chunk, &mut fast);
        assert_eq!(stats, matcher.scan_reference(chunk, &mut reference));
        assert_eq!(fast, reference);
        let groups: Vec<&[u8]> = fast
            .iter()
            .map(|hit| &chunk[hit.groups[0].clone().unwrap()])
            .collect();
        assert_eq!(groups, [&b"boom"[..], "\u{e9}t\u{e9}".as_bytes(), b"y"]);
    }

    mod equivalence {
        use super::*;
        use proptest::prelude::*;

        const ATOMS: &[&str] = &[
            "ERROR",
            "(?i)error",
            "^ERROR",
            "ERROR$",
            "^$",
            "^",
            "x*",
            "WARN|ERROR",
            r"\d{4,}",
            r"took (?P<ms>\d+)ms",
            r"^\S+$",
            r"(?i)time ?out",
            r"a\sb",
            r"\bERR\b",
            "[^a]b",
            "é",
            r"(?-u:\xff)",
            r"\r",
            "a$",
            "^ *$",
            "(?s).",
            ".",
            r"b\nc",
            r"(?i)k",
            "b+",
            r"[0-9]{2}:",
            "(?-u:.)",
            r"\w+ \w+$",
            "ab|cd|ef",
            r"took\n?12",
            r"ERROR\s+WARN",
            r"\AERROR",
            r"ERROR\z",
            r"(?i)connection",
        ];
        const WORDS: &[&[u8]] = &[
            b"ERROR",
            b"error",
            b"Error",
            b"WARN",
            b"ERR",
            b"timeout",
            b"time out",
            b"took 12ms",
            b"took 12345ms",
            b"took",
            b"12",
            b"a",
            b"b",
            b"ab",
            b"a b",
            b"cd",
            b"x",
            b" ",
            b"\r",
            b"\xff",
            b"\xe9",
            "é".as_bytes(),
            b"\xe2\x84\xaa",
            b"1234",
            b"12:",
            b"\t",
            b"",
        ];

        const ENDINGS: &[&[u8]] = &[b"\n", b"\r\n", b"\n"];

        fn pattern() -> impl Strategy<Value = String> {
            let atom = prop::sample::select(ATOMS).prop_map(str::to_owned);
            prop_oneof![
                3 => atom.clone(),
                1 => (atom.clone(), atom.clone()).prop_map(|(a, b)| format!("(?:{a}).*(?:{b})")),
                1 => (atom.clone(), atom).prop_map(|(a, b)| format!("(?:{a})|(?:{b})")),
            ]
        }

        fn rules() -> impl Strategy<Value = Vec<Rule>> {
            let one = (
                prop::collection::vec(pattern(), 1..3),
                prop::collection::vec(pattern(), 0..2),
            );
            prop::collection::vec(one, 1..5).prop_map(|defs| {
                defs.iter()
                    .enumerate()
                    .filter_map(|(i, (patterns, exclude))| {
                        Rule::compile(&RuleDef {
                            name: format!("r{i}"),
                            patterns: patterns.clone(),
                            exclude: exclude.clone(),
                            ..RuleDef::default()
                        })
                        .ok()
                    })
                    .collect()
            })
        }

        fn chunk() -> impl Strategy<Value = Vec<u8>> {
            let line =
                prop::collection::vec(prop::sample::select(WORDS), 0..6).prop_map(|w| w.concat());
            let ending = prop::sample::select(ENDINGS);
            (prop::collection::vec((line, ending), 0..12), any::<bool>()).prop_map(
                |(lines, last)| {
                    let mut out = Vec::new();
                    for (line, ending) in &lines {
                        out.extend_from_slice(line);
                        out.extend_from_slice(ending);
                    }
                    if last && !lines.is_empty() {
                        out.truncate(out.len() - 1); // an unterminated last line
                    }
                    out
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn fast_scan_equals_reference(rules in rules(), chunk in chunk()) {
                prop_assume!(!rules.is_empty());
                let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
                prop_assert!(matcher.fast.is_some());
                let (mut fast, mut reference) = (Vec::new(), Vec::new());
                let fast_stats = matcher.scan(&chunk, &mut fast);
                let reference_stats = matcher.scan_reference(&chunk, &mut reference);
                prop_assert_eq!(fast, reference);
                prop_assert_eq!(fast_stats, reference_stats);
            }

            #[test]
            fn parallel_scan_equals_reference(
                rules in rules(),
                chunk in chunk(),
                parts in 1usize..5,
            ) {
                prop_assume!(!rules.is_empty());
                let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
                let parts = parallel::split_at_lines(&chunk, parts, 1);
                let (mut parallel, mut reference) = (Vec::new(), Vec::new());
                let parallel_stats = matcher.scan_parts(&chunk, &parts, &mut parallel);
                let reference_stats = matcher.scan_reference(&chunk, &mut reference);
                prop_assert_eq!(parallel, reference);
                prop_assert_eq!(parallel_stats, reference_stats);
            }

            #[test]
            fn events_equal_records(
                rules in rules(),
                chunk in chunk(),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            ) {
                prop_assume!(!rules.is_empty());
                let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
                // Events: the chunk cut at some line ends.
                let line_ends: Vec<usize> =
                    memchr::memchr_iter(b'\n', &chunk).map(|i| i + 1).collect();
                let mut picked: Vec<usize> = cuts
                    .iter()
                    .filter(|_| !line_ends.is_empty())
                    .map(|cut| line_ends[cut.index(line_ends.len())])
                    .collect();
                picked.push(chunk.len());
                picked.sort_unstable();
                picked.dedup();
                let mut events = Vec::new();
                let mut start = 0;
                for end in picked.into_iter().filter(|&end| end > 0) {
                    events.push(start..end);
                    start = end;
                }
                let (mut batch, mut each) = (Vec::new(), Vec::new());
                let batch_stats = matcher.scan_events(&chunk, &events, &mut batch);
                let mut each_stats = ScanStats::default();
                for event in &events {
                    let first = each.len();
                    let stats = matcher.scan_record(&chunk[event.clone()], &mut each);
                    for hit in &mut each[first..] {
                        hit.shift(event.start);
                    }
                    each_stats.add(&stats);
                }
                prop_assert_eq!(batch, each);
                prop_assert_eq!(batch_stats, each_stats);
            }

            #[test]
            fn fast_record_equals_reference(rules in rules(), record in chunk()) {
                prop_assume!(!rules.is_empty());
                let matcher = Matcher::new(Arc::new(RuleSet::new(rules)), "app");
                let slow = Matcher { fast: None, ..matcher.clone() };
                let (mut fast, mut reference) = (Vec::new(), Vec::new());
                let fast_stats = matcher.scan_record(&record, &mut fast);
                let reference_stats = slow.scan_record(&record, &mut reference);
                prop_assert_eq!(fast, reference);
                prop_assert_eq!(fast_stats, reference_stats);
            }
        }
    }
}
