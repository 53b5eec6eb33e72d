//! Scan: run a rule set over a chunk of bytes holding many lines, and return the hits.
//!
//! This is the hot path. It is chunk-shaped on purpose: the caller hands over as many complete
//! lines as it has (typically 64 KiB or more), and the matcher is free to search the whole
//! buffer at once, the way ripgrep does, instead of paying per-line overhead. Hits carry byte
//! ranges into the chunk, not copies, so nothing is allocated per line.
//!
//! Pure: no IO, no clock.

use std::ops::Range;
use std::sync::Arc;

use crate::rules::{RuleId, RuleSet, Verdict};

/// One rule matching one line (or one multiline event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The rule that matched.
    pub rule: RuleId,
    /// The line's bytes in the chunk, without its `\n` (or `\r\n`).
    pub line: Range<usize>,
    /// The rule's `group_by` captures, in order, as ranges into the chunk.
    pub groups: Vec<Option<Range<usize>>>,
}

/// Counters of a scan, beside the hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Lines (or events) looked at.
    pub lines: u64,
    /// Lines a rule matched but one of its `exclude` patterns removed.
    pub excluded: u64,
}

/// The rules that apply to one source, ready to scan its chunks.
#[derive(Clone, Debug)]
pub struct Matcher {
    rules: Arc<RuleSet>,
    ids: Vec<RuleId>,
}

impl Matcher {
    /// A matcher for the rules that apply to `source`.
    pub fn new(rules: Arc<RuleSet>, source: &str) -> Matcher {
        let ids = rules.ids_for_source(source);
        Matcher { rules, ids }
    }

    /// The rule set this matcher runs.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Scans `chunk`, a run of `\n`-terminated lines (a last line without `\n` is scanned as a
    /// line too), appending hits to `out` in line order.
    pub fn scan(&self, chunk: &[u8], out: &mut Vec<Hit>) -> ScanStats {
        let mut stats = ScanStats::default();
        let mut start = 0;
        while start < chunk.len() {
            let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
            self.scan_line(chunk, start..trim_cr(chunk, start, end), out, &mut stats);
            start = end + 1;
        }
        stats
    }

    /// Scans `record` as one unit (a multiline event: it may contain `\n`).
    pub fn scan_record(&self, record: &[u8], out: &mut Vec<Hit>) -> ScanStats {
        let mut stats = ScanStats::default();
        let end = record.strip_suffix(b"\n").map_or(record.len(), <[u8]>::len);
        self.scan_line(record, 0..trim_cr(record, 0, end), out, &mut stats);
        stats
    }

    fn scan_line(
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
                Verdict::Excluded { .. } => stats.excluded += 1,
                Verdict::Match { pattern } => {
                    let groups = rule
                        .group_ranges(pattern, bytes)
                        .into_iter()
                        .map(|r| r.map(|r| r.start + line.start..r.end + line.start))
                        .collect();
                    out.push(Hit {
                        rule: id,
                        line: line.clone(),
                        groups,
                    });
                }
            }
        }
    }
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

    fn matcher(rules: &[(&str, &str)]) -> Matcher {
        let rules = rules
            .iter()
            .map(|(name, pattern)| {
                Rule::compile(&RuleDef {
                    name: (*name).into(),
                    patterns: vec![(*pattern).into()],
                    ..RuleDef::default()
                })
                .unwrap()
            })
            .collect();
        Matcher::new(Arc::new(RuleSet::new(rules)), "app")
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
}
