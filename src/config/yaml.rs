//! A YAML document as a tree of nodes that remember where they are.
//!
//! serde's derive stops at the first error, but `check` must report every problem. So the
//! YAML crate (`serde-saphyr`) only parses the text into this position-carrying tree
//! (duplicate keys are passed through so that all of them can be reported), and `build` walks
//! the tree with the schema in hand, collecting diagnostics as it goes.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column, plus the byte range of the node in the text when known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) bytes: Option<(usize, usize)>,
}

impl Pos {
    /// The position as `(line, column)`, or `None` when unknown (line 0).
    pub(crate) fn line_col(self) -> Option<(usize, usize)> {
        (self.line > 0).then_some((self.line, self.column.max(1)))
    }
}

/// One YAML node and its position.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) kind: Kind,
}

/// What a node holds. Scalars keep YAML's inferred type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A null node without a position (stands for an absent section).
    pub(crate) fn null() -> Node {
        Node {
            pos: Pos::default(),
            kind: Kind::Null,
        }
    }
}

impl Kind {
    /// What the value is, for "expected a string, found a list" messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// Why a text is not a YAML document we can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) position: Option<(usize, usize)>,
}

/// Deepest nesting of mappings and lists accepted (a config needs 5).
const MAX_DEPTH: usize = 24;

/// Parses one YAML document. An empty document is a `Null` node at 1:1.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
    {
        return Ok(Node {
            pos: Pos {
                line: 1,
                column: 1,
                bytes: None,
            },
            kind: Kind::Null,
        });
    }
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    // A config is 5 levels deep; each level of the span-keeping tree costs tens of KiB of stack
    // in debug builds, so deep nesting must stop early, with an error, not a stack overflow.
    budget.max_depth = MAX_DEPTH;
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    options.strict_booleans = true;
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|err| {
        let position = err
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| (l.line() as usize, l.column().max(1) as usize));
        SyntaxError {
            message: plain_message(&err),
            position,
        }
    })
}

/// The crate's message without its trailing location (we print positions our own way).
fn plain_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    if text.contains("budget breached: Depth") || text.contains("recursion limit exceeded") {
        return format!("lists and mappings are nested more than {MAX_DEPTH} levels deep");
    }
    if let Some(i) = text.find("budget breached") {
        return format!(
            "the document is too large for a config file ({})",
            &text[i..]
        );
    }
    let text = match text.rfind(" at line ") {
        Some(i) if text[i..].contains("column") => text[..i].to_owned(),
        _ => text,
    };
    let text = text.trim().trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "invalid YAML".to_owned(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        let location = spanned.referenced;
        let span = location.span();
        let bytes = match (span.byte_offset(), span.byte_len()) {
            (Some(offset), Some(len)) => Some((offset as usize, len as usize)),
            _ => None,
        };
        Ok(Node {
            pos: Pos {
                line: location.line() as usize,
                column: location.column() as usize,
                bytes,
            },
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Kind, E> {
        Ok(Kind::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(node: &Node) -> Vec<(String, (usize, usize))> {
        let Kind::Map(entries) = &node.kind else {
            panic!("not a map: {node:?}");
        };
        entries
            .iter()
            .map(|(k, v)| (format!("{:?}", k.kind), (v.pos.line, v.pos.column)))
            .collect()
    }

    #[test]
    fn keeps_positions_and_duplicate_keys() {
        let root = parse("a: 1\nb:\n  - x\na: [1, {c: ~}]\n").unwrap();
        assert_eq!(
            entries(&root),
            vec![
                ("Str(\"a\")".to_owned(), (1, 4)),
                ("Str(\"b\")".to_owned(), (3, 3)),
                ("Str(\"a\")".to_owned(), (4, 4)),
            ]
        );
    }

    #[test]
    fn yes_is_a_string_not_a_boolean() {
        let root = parse("d: yes\ne: true\n").unwrap();
        let Kind::Map(entries) = root.kind else {
            panic!()
        };
        assert_eq!(entries[0].1.kind, Kind::Str("yes".into()));
        assert_eq!(entries[1].1.kind, Kind::Bool(true));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: b: c").unwrap_err();
        assert_eq!(err.position, Some((1, 5)));
        assert_eq!(
            err.message,
            "mapping values are not allowed in this context"
        );
    }

    #[test]
    fn empty_and_comment_only_documents_are_null() {
        assert_eq!(parse("").unwrap().kind, Kind::Null);
        assert_eq!(parse("# nothing\n\n").unwrap().kind, Kind::Null);
    }
}
