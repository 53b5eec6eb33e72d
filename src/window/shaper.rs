//! A rule's shaping tools (its [`Masker`], its [`Keeper`] and its `show:` regexes), built once
//! per rule set and options and shared by every window.
//!
//! Why not per window: building them clones the rule's compiled regexes, and a cloned regex
//! starts with empty caches, so every window rebuilt the lazy automata its first hits needed
//! (and parsed each pattern again to classify it). With short windows (a busy log with a
//! `window` of seconds) that was most of the cost of counting a hit.

use std::sync::Arc;

use super::WindowOptions;
use super::capture::Keeper;
use super::mask::Masker;
use crate::rules::{Rule, RuleId};

/// What shapes one rule's hits into patterns and samples.
#[derive(Debug)]
pub(super) struct Shaper {
    pub(super) masker: Masker,
    pub(super) keeper: Keeper,
    pub(super) show: Vec<regex::bytes::Regex>,
}

impl Shaper {
    pub(super) fn new(rule: &Rule, options: &WindowOptions) -> Shaper {
        let masker = options.masker_for(rule);
        Shaper {
            keeper: Keeper::new(rule, !masker.is_empty()),
            masker,
            show: rule.message.show.clone(),
        }
    }
}

/// The shapers of a rule set, by rule id, each built when its rule first has a hit.
#[derive(Debug, Default)]
pub(super) struct Shapers {
    by_rule: Vec<Option<Arc<Shaper>>>,
}

impl Shapers {
    /// The shaper of `rule` (whose id is `id`).
    pub(super) fn get(&mut self, id: RuleId, rule: &Rule, options: &WindowOptions) -> Arc<Shaper> {
        let index = id.index();
        if self.by_rule.len() <= index {
            self.by_rule.resize(index + 1, None);
        }
        self.by_rule[index]
            .get_or_insert_with(|| Arc::new(Shaper::new(rule, options)))
            .clone()
    }

    /// Forgets every shaper (the rules or the options changed).
    pub(super) fn clear(&mut self) {
        self.by_rule.clear();
    }
}
