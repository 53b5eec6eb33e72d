//! A case's `silences:`: silences as in config files, whose `starts` and `expires` may also be
//! written as times after the file's `start` (`expires: 10m`), so that a case says "silenced
//! for the first ten minutes" without absolute times.

use std::time::Duration;

use jiff::Timestamp;

use crate::config::walk::Ctx;
use crate::config::yaml::Node;
use crate::suppress::{Matcher, Silence};

const SILENCE_KEYS: &[&str] = &["id", "matchers", "starts", "expires"];

/// A silence of a case.
#[derive(Clone, Debug)]
pub struct CaseSilence {
    /// Shown in the footer; `SIL-N` (N its place in the list) when not given.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// From (default: the file's `start`).
    pub starts: When,
    /// Until (exclusive).
    pub expires: When,
}

/// A time in a test file: after the file's `start`, or absolute.
#[derive(Clone, Copy, Debug)]
pub enum When {
    /// This long after `start`.
    After(Duration),
    /// This instant.
    At(Timestamp),
}

impl CaseSilence {
    /// The silence, its times resolved against the file's `start`.
    pub fn at(&self, start: Timestamp) -> Silence {
        Silence {
            id: self.id.clone(),
            matchers: self.matchers.clone(),
            starts: self.starts.resolve(start),
            expires: self.expires.resolve(start),
            author: None,
            comment: None,
        }
    }
}

impl When {
    /// The instant, `start` being the file's.
    pub fn resolve(self, start: Timestamp) -> Timestamp {
        match self {
            When::After(after) => start.checked_add(after).unwrap_or(Timestamp::MAX),
            When::At(at) => at,
        }
    }
}

/// Reads a case's `silences:` list.
pub(super) fn silences(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<CaseSilence>> {
    let items = ctx.list(node, what)?;
    let read: Vec<Option<CaseSilence>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| silence(ctx, item, &format!("{what}[{i}]"), i + 1))
        .collect();
    read.into_iter().collect()
}

fn silence(ctx: &mut Ctx<'_>, node: &Node, what: &str, number: usize) -> Option<CaseSilence> {
    let map = ctx.map(node, what, SILENCE_KEYS)?;
    let id = match map.get("id") {
        Some(n) => ctx.non_empty_string(n, &format!("{what}.id")),
        None => Some(format!("SIL-{number}")),
    };
    let matchers = ctx
        .required(&map, "matchers", &format!("`{what}`"))
        .and_then(|n| crate::config::read_matchers(ctx, n, &format!("{what}.matchers")));
    let starts = match map.get("starts") {
        Some(n) => when(ctx, n, &format!("{what}.starts")),
        None => Some(When::After(Duration::ZERO)),
    };
    let expires = ctx
        .required(
            &map,
            "expires",
            &format!("`{what}` (a silence without an end is an error)"),
        )
        .and_then(|n| when(ctx, n, &format!("{what}.expires")));
    Some(CaseSilence {
        id: id?,
        matchers: matchers?,
        starts: starts?,
        expires: expires?,
    })
}

fn when(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<When> {
    let text = ctx.string(node, what)?;
    if let Ok(at) = text.trim().parse::<Timestamp>() {
        return Some(When::At(at));
    }
    match crate::config::parse_duration(&text) {
        Ok(after) => Some(When::After(after)),
        Err(why) => {
            ctx.error(
                node.pos,
                format!("`{what}` is neither a time after `start` nor a time: {why}"),
                Some(
                    "write `10m` (after the file's `start`) or `2026-11-28T10:10:00+08:00`".into(),
                ),
            );
            None
        }
    }
}
