//! Which line shapes of a rule get a sample in its summary (at most `summary.max_patterns`).
//!
//! Top-N by count buries what matters: a deadlock among 200 timeouts, a new exception among old
//! ones. So shapes are chosen for diversity, then rank:
//! 1. rank: the line's level (`severity_from`) first, then novelty (a shape not seen in the
//!    windows before, see [`History`]), then count; shapes whose count is mostly inherited from
//!    evicted ones (see `topk`) last;
//! 2. first, in rank order, one shape per `group_by` value and one per distinct root cause
//!    (the masked `Caused by:` / `panic:` line; "none" is one cause too);
//! 3. then the remaining slots in rank order.
//!
//! The shapes shown keep rank order; what is not shown is counted in `other_patterns*`.

use std::collections::HashSet;

use super::PatternValue;
use super::topk::Slot;
use crate::summary::PatternCount;

/// Shape keys remembered per generation; two generations are kept.
const HISTORY_KEYS: usize = 8192;

/// The shapes (rule and pattern hash) seen in earlier windows, bounded: two generations of at
/// most [`HISTORY_KEYS`] keys, the older dropped when the newer fills up.
#[derive(Debug, Default)]
pub(super) struct History {
    older: HashSet<u64>,
    recent: HashSet<u64>,
}

/// The history seen from one rule.
pub(super) struct RuleHistory<'a> {
    salt: u64,
    history: &'a mut History,
}

impl History {
    /// The history of the rule named `name`.
    pub(super) fn for_rule(&mut self, name: &str) -> RuleHistory<'_> {
        RuleHistory {
            salt: xxhash_rust::xxh3::xxh3_64(name.as_bytes()),
            history: self,
        }
    }

    /// Called when a window closed: starts a new generation when the current one is full.
    pub(super) fn next_window(&mut self) {
        if self.recent.len() > HISTORY_KEYS {
            self.older = std::mem::take(&mut self.recent);
        }
    }
}

impl RuleHistory<'_> {
    fn is_new(&self, hash: u64) -> bool {
        let key = hash ^ self.salt;
        !self.history.recent.contains(&key) && !self.history.older.contains(&key)
    }

    fn remember(&mut self, hash: u64) {
        self.history.recent.insert(hash ^ self.salt);
    }
}

/// The shapes to show, in rank order (see the module docs).
pub(super) fn choose(
    slots: Vec<Slot<PatternValue>>,
    max: usize,
    has_groups: bool,
    mut history: RuleHistory<'_>,
) -> Vec<PatternCount> {
    let mut ranked: Vec<(Slot<PatternValue>, bool)> = slots
        .into_iter()
        .map(|slot| {
            let is_new = history.is_new(slot.hash);
            history.remember(slot.hash);
            (slot, is_new)
        })
        .collect();
    // Stable: ties keep `into_ranked`'s order (count, then first tracked).
    ranked.sort_by(|(a, a_new), (b, b_new)| {
        let uncertain = |s: &Slot<PatternValue>| s.guaranteed() <= s.error;
        uncertain(a)
            .cmp(&uncertain(b))
            .then_with(|| b.value.level.cmp(&a.value.level))
            .then_with(|| b_new.cmp(a_new))
            .then_with(|| b.guaranteed().cmp(&a.guaranteed()))
    });
    let mut chosen = vec![false; ranked.len()];
    let mut picked = 0;
    let (mut groups, mut causes) = (HashSet::new(), HashSet::new());
    for (i, (slot, _)) in ranked.iter().enumerate() {
        if picked == max {
            break;
        }
        let is_new_group = has_groups && !groups.contains(&slot.value.group_key);
        if is_new_group || !causes.contains(&slot.value.cause_key) {
            groups.insert(slot.value.group_key);
            causes.insert(slot.value.cause_key);
            chosen[i] = true;
            picked += 1;
        }
    }
    for is_chosen in &mut chosen {
        if picked == max {
            break;
        }
        if !*is_chosen {
            *is_chosen = true;
            picked += 1;
        }
    }
    ranked
        .into_iter()
        .zip(chosen)
        .filter(|(_, is_chosen)| *is_chosen)
        .map(|((slot, is_new), _)| PatternCount {
            count: slot.guaranteed(),
            pattern: slot.value.pattern,
            sample: slot.value.sample,
            extra_lines: slot.value.extra_lines,
            cause: slot.value.cause,
            context: slot.value.context,
            severity: slot.value.level,
            is_new,
        })
        .collect()
}
