//! A [`Hit`] from what the search of its pattern recorded (see [`crate::rules::Spans`]): the
//! fast scan and the reference build hits the same way, from spans found two ways.

use std::ops::Range;

use super::Hit;
use crate::rules::{Pattern, Rule, RuleId, Spans};

/// A hit of `rule`'s `pattern` on `line`, whose match recorded `spans` (relative to the line).
pub(super) fn hit(
    rule: &Rule,
    id: RuleId,
    pattern: usize,
    line: Range<usize>,
    mut spans: Vec<Option<Range<usize>>>,
) -> Hit {
    for span in spans.iter_mut().flatten() {
        *span = span.start + line.start..span.end + line.start;
    }
    let groups = rule.group_slots[pattern]
        .iter()
        .map(|slot| slot.and_then(|i| spans.get(i).cloned().flatten()))
        .collect();
    Hit {
        rule: id,
        line,
        groups,
        pattern,
        spans,
    }
}

/// What a match of `pattern` on `line` records ([`Pattern::search`]), found through the
/// regex's `Captures` API: the reference scan's way, which the fast scan's must equal.
pub(super) fn spans_by_captures(pattern: &Pattern, line: &[u8]) -> Vec<Option<Range<usize>>> {
    let mut spans = pattern.captures(line).unwrap_or_default();
    match pattern.spans() {
        Spans::Nothing => spans.clear(),
        Spans::WholeMatch => spans.truncate(1),
        Spans::Groups => {}
    }
    spans
}
