//! The scalar readers of [`Ctx`]: booleans, integers, sizes, durations, lists and choices.
//! Each records a diagnostic (with the value's position) and returns `None` on a bad value.

use std::time::Duration;

use super::super::diag::{self, backticked};
use super::super::units;
use super::super::yaml::{Kind, Node};
use super::{Ctx, Map, origin_note};
use crate::rules::Severity;

impl Ctx<'_> {
    /// Reads a boolean (`true` or `false`).
    pub(crate) fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            Kind::Bool(b) => Some(*b),
            other => {
                self.error(
                    node.pos,
                    format!(
                        "`{what}` must be `true` or `false`, found {}",
                        other.describe()
                    ),
                    None,
                );
                None
            }
        }
    }

    /// Reads an integer in `min..=max`.
    pub(crate) fn integer(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
        let value = match &node.kind {
            Kind::Int(i) => *i,
            Kind::Str(raw) if raw.contains("${") && self.env.is_some() => {
                let text = self.expand(node.pos, raw, what, false)?;
                match text.trim().parse::<i128>() {
                    Ok(i) => i,
                    Err(_) => {
                        self.error(
                            node.pos,
                            format!("`{what}` must be an integer, found `{text}` (from `{raw}`)"),
                            None,
                        );
                        return None;
                    }
                }
            }
            other => {
                self.error(
                    node.pos,
                    format!("`{what}` must be an integer, found {}", other.describe()),
                    None,
                );
                return None;
            }
        };
        match u64::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.error(
                    node.pos,
                    format!("`{what}` must be between {min} and {max}, found {value}"),
                    None,
                );
                None
            }
        }
    }

    /// Reads a count in `min..=max` (an integer that sizes something).
    pub(crate) fn count(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<usize> {
        usize::try_from(self.integer(node, what, min, max)?).ok()
    }

    /// Reads a byte size: an integer, or a string with a unit (`64KiB`, `1MiB`, `19000`).
    pub(crate) fn byte_size(
        &mut self,
        node: &Node,
        what: &str,
        min: u64,
        max: u64,
    ) -> Option<usize> {
        let value = match &node.kind {
            Kind::Int(_) => self.integer(node, what, min, max)?,
            Kind::Float(_) => {
                let written = self.source_text(node);
                self.error(
                    node.pos,
                    format!("`{what}` must be a whole number of bytes, found `{written}`"),
                    Some(format!(
                        "write a size from {min} to {max} bytes, like `65536` or `64KiB`"
                    )),
                );
                return None;
            }
            Kind::Str(raw) => {
                match units::parse_byte_size(&self.expand(node.pos, raw, what, false)?) {
                    Some(v) if (min..=max).contains(&v) => v,
                    Some(v) => {
                        self.error(
                            node.pos,
                            format!("`{what}` must be between {min} and {max} bytes, found {v}"),
                            None,
                        );
                        return None;
                    }
                    None => {
                        let text = self.expand(node.pos, raw, what, false)?;
                        let from = origin_note(raw, &text);
                        self.error(
                            node.pos,
                            format!("`{what}` is not a byte size: `{text}`{from}"),
                            Some(
                                "write a number of bytes, or use a unit: `64KiB`, `1MiB`, `500KB`"
                                    .into(),
                            ),
                        );
                        return None;
                    }
                }
            }
            other => {
                self.error(
                    node.pos,
                    format!(
                        "`{what}` must be a byte size like `64KiB`, found {}",
                        other.describe()
                    ),
                    None,
                );
                return None;
            }
        };
        usize::try_from(value).ok()
    }

    /// Reads a human duration (`500ms`, `30s`, `5m`) that is greater than zero.
    pub(crate) fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let d = self.duration_or_zero(node, what)?;
        if d.is_zero() {
            self.error(
                node.pos,
                format!("`{what}` must be greater than zero"),
                None,
            );
            return None;
        }
        Some(d)
    }

    /// Reads a human duration (`0s`, `500ms`, `1h30m`); zero is allowed.
    pub(crate) fn duration_or_zero(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let raw = match &node.kind {
            Kind::Str(s) => s.clone(),
            Kind::Int(i) => {
                self.error(
                    node.pos,
                    format!("`{what}` needs a unit: `{i}` is ambiguous"),
                    Some(format!(
                        "write `{i}s` for seconds, `{i}ms` for milliseconds, `{i}m` for minutes"
                    )),
                );
                return None;
            }
            other => {
                self.error(
                    node.pos,
                    format!(
                        "`{what}` must be a duration like `30s`, found {}",
                        other.describe()
                    ),
                    None,
                );
                return None;
            }
        };
        let text = self.expand(node.pos, &raw, what, false)?;
        match units::parse_duration(text.trim()) {
            Ok(d) => Some(d),
            Err(err) => {
                let from = origin_note(&raw, &text);
                let value = if from.is_empty() {
                    String::new()
                } else {
                    format!("`{}`{from}: ", text.trim())
                };
                self.error(
                    node.pos,
                    format!("`{what}` is not a valid duration: {value}{err}"),
                    Some("write a number and a unit, like `500ms`, `30s`, `5m` or `1h`".into()),
                );
                None
            }
        }
    }

    /// The items of a list; nothing (null) is an empty list.
    pub(crate) fn list<'a>(&mut self, node: &'a Node, what: &str) -> Option<&'a [Node]> {
        match &node.kind {
            Kind::Seq(items) => Some(items),
            Kind::Null => Some(&[]),
            other => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a list, found {}", other.describe()),
                    None,
                );
                None
            }
        }
    }

    /// Reads one of `choices` (a lowercase word), suggesting the closest on a typo.
    pub(crate) fn choice<'c>(
        &mut self,
        node: &Node,
        what: &str,
        choices: &[&'c str],
    ) -> Option<&'c str> {
        let value = self.string(node, what)?;
        if let Some(found) = choices.iter().find(|c| **c == value) {
            return Some(found);
        }
        self.error(
            node.pos,
            format!(
                "`{what}` must be one of {}, found `{value}`",
                backticked(choices)
            ),
            diag::suggest(&value, choices).map(|best| format!("did you mean `{best}`?")),
        );
        None
    }

    /// Reads one of the names of `choices` and gives the value paired with it, suggesting the
    /// closest name on a typo: `ctx.choice_of(node, "mode", &[("drop", Drop), ("defer", Defer)])`.
    pub(crate) fn choice_of<T: Copy>(
        &mut self,
        node: &Node,
        what: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let name = self.choice(node, what, &names)?;
        choices
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| *value)
    }

    /// Reads a time zone: `local`, an IANA name, `UTC` or a fixed offset.
    pub(crate) fn timezone(&mut self, node: &Node, what: &str) -> Option<jiff::tz::TimeZone> {
        let name = self.non_empty_string(node, what)?;
        if name == "local" {
            return Some(jiff::tz::TimeZone::system());
        }
        if let Some(offset) = units::fixed_offset(&name) {
            return Some(jiff::tz::TimeZone::fixed(offset));
        }
        match jiff::tz::TimeZone::get(&name) {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    node.pos,
                    format!("unknown time zone `{name}` in `{what}`"),
                    Some("use `local`, an IANA name like `Asia/Shanghai`, `UTC`, or an offset like `+08:00`".into()),
                );
                None
            }
        }
    }
}

/// Reads `key` with `read`, or returns `default` when absent.
pub(crate) fn opt<'e, T>(
    ctx: &mut Ctx<'e>,
    map: &Map<'_>,
    key: &str,
    default: T,
    read: impl FnOnce(&mut Ctx<'e>, &Node, &str) -> Option<T>,
) -> Option<T> {
    match map.get(key) {
        Some(node) => read(ctx, node, key),
        None => Some(default),
    }
}

/// Reads a severity name.
pub(crate) fn severity(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Severity> {
    ctx.choice_of(node, what, &Severity::ALL.map(|s| (s.as_str(), s)))
}

/// The `name:` of every mapping in a list node, without validation.
pub(crate) fn names_in(node: &Node) -> Vec<String> {
    let Kind::Seq(items) = &node.kind else {
        return Vec::new();
    };
    let name_of = |item: &Node| match &item.kind {
        Kind::Map(entries) => entries.iter().find_map(|(k, v)| match (&k.kind, &v.kind) {
            (Kind::Str(k), Kind::Str(v)) if k == "name" => Some(v.clone()),
            _ => None,
        }),
        _ => None,
    };
    items.iter().filter_map(name_of).collect()
}
