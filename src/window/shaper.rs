//! A rule's shaping tools (its [`Masker`], its [`Keeper`] and its `show:` regexes), built once
//! per rule set and options and shared by every window.
//!
//! Why not per window: building them clones the rule's compiled regexes, and a cloned regex
//! starts with empty caches, so every window rebuilt the lazy automata its first hits needed
//! (and parsed each pattern again to classify it). With short windows (a busy log with a
//! `window` of seconds) that was most of the cost of counting a hit.
//!
//! Shaping a hit (reading its level, masking its line into a pattern) needs no window state, so
//! `run` does it on the threads that scan ([`Shaping::shape`]): the process task, which applies
//! results one at a time, only counts (masking was over half of its work in a backlog).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use super::MAX_PATTERN_BYTES;
use super::WindowOptions;
use super::capture::{Found, Keeper, ranges_within};
use super::event;
use super::mask::Masker;
use super::topk::IdBuild;
use crate::rules::{Rule, RuleId, RuleSet, Severity};
use crate::scan::Hit;

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

/// What shaping one hit finds: a pure function of the rule (and options) and the hit's line,
/// so the scanning threads can find it for the process task (see [`Shaping`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// The line's level, when the rule reads levels (`severity_from`).
    pub(super) level: Option<Severity>,
    /// Hash of the masked shape (with its root cause's): which pattern the hit counts under.
    pub(super) hash: u64,
    /// Hash of the masked root cause (0: none).
    pub(super) cause_key: u64,
}

/// Buffers reused from hit to hit while shaping.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    pub(super) pattern: String,
    pub(super) cause: String,
    pub(super) key: Vec<u8>,
    pub(super) keep: Vec<std::ops::Range<usize>>,
    pub(super) keep_part: Vec<std::ops::Range<usize>>,
}

/// A hit shaped ahead: its shape, and the pattern a new pattern keeps (its sample is cut from
/// the line when a pattern is new: a few times per window, not for every hit).
#[derive(Clone, Copy, Debug)]
pub(super) struct Shaped<'a> {
    pub(super) shape: Shape,
    pub(super) pattern: &'a str,
}

impl Shaper {
    /// Shapes one hit: its level, and its masked shape (left in `scratch.pattern`, its root
    /// cause's in `scratch.cause`) with their hashes. `found`: what the scan found of it.
    pub(super) fn shape(
        &self,
        line: &[u8],
        groups: &[Option<&[u8]>],
        found: Option<Found<'_>>,
        scratch: &mut Scratch,
    ) -> Shape {
        let level = self.keeper.read(line, groups, found, &mut scratch.keep);
        let event = event::split(line);
        ranges_within(&scratch.keep, line, event.first, &mut scratch.keep_part);
        self.masker
            .mask_keeping(event.first, &scratch.keep_part, &mut scratch.pattern);
        let mut hash = xxhash_rust::xxh3::xxh3_64(scratch.pattern.as_bytes());
        let mut cause_key = 0;
        if let Some(cause) = &event.cause {
            ranges_within(&scratch.keep, line, cause.line, &mut scratch.keep_part);
            self.masker
                .mask_keeping(cause.line, &scratch.keep_part, &mut scratch.cause);
            cause_key = xxhash_rust::xxh3::xxh3_64(scratch.cause.as_bytes());
            if let Some((function, file)) = cause.frame {
                cause_key ^= xxhash_rust::xxh3::xxh3_64(function)
                    ^ xxhash_rust::xxh3::xxh3_64(file).rotate_left(7);
            }
            cause_key |= 1; // never 0, which means "no cause"
            hash ^= cause_key.rotate_left(1);
        }
        Shape {
            level,
            hash,
            cause_key,
        }
    }
}

/// The shapers of a rule set and options, each built when its rule first has a hit; shared
/// (cheap to clone) with the threads that scan, which shape their hits ahead of
/// [`super::Aggregator::observe_scan`].
#[derive(Clone, Debug)]
pub struct Shaping(Arc<Shapers>);

impl Shaping {
    pub(super) fn new(rules: Arc<RuleSet>, options: WindowOptions) -> Shaping {
        let by_rule = (0..rules.len()).map(|_| OnceLock::new()).collect();
        Shaping(Arc::new(Shapers {
            rules,
            options,
            by_rule,
        }))
    }

    /// The shaper of rule `id` (`None`: not a rule of this set).
    pub(super) fn get(&self, id: RuleId) -> Option<&Arc<Shaper>> {
        let slot = self.0.by_rule.get(id.index())?;
        let rule = self.0.rules.rules().get(id.index())?;
        Some(slot.get_or_init(|| Arc::new(Shaper::new(rule, &self.0.options))))
    }

    /// Returns true if and only if both are the same shapers (one rule set and options).
    pub fn same(&self, other: &Shaping) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The shape of each hit of a scan of `data`.
    pub fn shape(&self, data: &[u8], hits: &[Hit]) -> Shapes {
        SCRATCH.with_borrow_mut(|(scratch, spans)| self.shape_with(data, hits, scratch, spans))
    }

    fn shape_with(
        &self,
        data: &[u8],
        hits: &[Hit],
        scratch: &mut Scratch,
        spans: &mut Vec<Option<std::ops::Range<usize>>>,
    ) -> Shapes {
        let mut groups: Vec<Option<&[u8]>> = Vec::new();
        let mut text = String::new();
        // Where the text of each shape found so far is in `text`: a batch's hits are mostly of
        // a few shapes, each kept once.
        let mut kept: HashMap<u64, Range<usize>, IdBuild> = HashMap::default();
        let shapes = hits
            .iter()
            .map(|hit| {
                groups_of(hit, data, &mut groups);
                let shaper = self.get(hit.rule)?;
                let line = &data[hit.line.clone()];
                // The spans relative to the line.
                spans.clear();
                spans.extend(hit.spans.iter().map(|span| {
                    let (start, end) = (span.as_ref()?.start, span.as_ref()?.end);
                    Some(start.checked_sub(hit.line.start)?..end.checked_sub(hit.line.start)?)
                }));
                let found = Found {
                    pattern: hit.pattern,
                    spans,
                };
                let shape = shaper.shape(line, &groups, Some(found), scratch);
                let pattern = cut(&scratch.pattern, MAX_PATTERN_BYTES);
                let range = match kept.get(&shape.hash) {
                    Some(range) if text[range.clone()] == *pattern => range.clone(),
                    _ => {
                        let start = text.len();
                        text.push_str(pattern);
                        kept.insert(shape.hash, start..text.len());
                        start..text.len()
                    }
                };
                Some((shape, range))
            })
            .collect();
        Shapes {
            shaping: self.clone(),
            shapes,
            text,
        }
    }
}

thread_local! {
    /// The buffers of [`Shaping::shape`], kept by each scanning thread from batch to batch.
    static SCRATCH: std::cell::RefCell<(Scratch, Vec<Option<std::ops::Range<usize>>>)> =
        std::cell::RefCell::default();
}

/// Puts `hit`'s captured groups (ranges into `data`) into `groups`, as slices of `data`.
pub(super) fn groups_of<'d>(hit: &Hit, data: &'d [u8], groups: &mut Vec<Option<&'d [u8]>>) {
    groups.clear();
    groups.extend(hit.groups.iter().map(|g| g.clone().map(|r| &data[r])));
}

/// The shapes of a scan's hits, in hit order, and the shapers that found them.
#[derive(Debug)]
pub struct Shapes {
    pub(super) shaping: Shaping,
    /// `None`: a rule not of the shapers' rule set; else the shape and where its pattern is
    /// in `text`.
    shapes: Vec<Option<(Shape, Range<usize>)>>,
    text: String,
}

impl Shapes {
    /// The number of hits shaped.
    pub(super) fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Hit `i` shaped.
    pub(super) fn get(&self, i: usize) -> Option<Shaped<'_>> {
        let (shape, range) = self.shapes.get(i)?.as_ref()?;
        Some(Shaped {
            shape: *shape,
            pattern: &self.text[range.clone()],
        })
    }
}

#[derive(Debug)]
struct Shapers {
    rules: Arc<RuleSet>,
    options: WindowOptions,
    by_rule: Vec<OnceLock<Arc<Shaper>>>,
}

/// Lossy UTF-8 of at most `max` bytes of `bytes`, cut on a character boundary.
pub(crate) fn lossy_capped(bytes: &[u8], max: usize) -> String {
    let head = &bytes[..bytes.len().min(max.saturating_add(4))];
    cut(&super::mask::lossy(head), max).to_owned()
}

/// The longest prefix of `text` of at most `max` bytes ending on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
