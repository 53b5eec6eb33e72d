//! A fast answer for line-start patterns such as a multiline `start` of `^\d{4}-\d{2}-\d{2} `.
//!
//! The multiline assembler asks "does this line start an event?" of every line, and on a log
//! where most lines do, a regex call per line costs about as much as scanning the line for
//! every rule. Most `start` patterns are a line-start anchor followed by a fixed run of
//! characters from small classes (a date, a `[`, a level). For those, [`StartPrefix`] checks
//! the first bytes of the line against the ASCII part of each class, a table lookup per byte.
//! It answers *yes* (a match at the start of the line is a match) or *no* (an ASCII byte the
//! pattern cannot have at its place, or a line of ASCII too short, and no `\r` after which
//! `^` could match again); when it cannot say (a non-ASCII byte on the way), the caller asks
//! the regex, so the answer is always the regex's.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The patterns this checks, by their first bytes: at most this many.
const MAX_BYTES: usize = 64;

/// The ASCII byte sets a line's first bytes must fall in, one per byte.
#[derive(Clone, Debug)]
pub struct StartPrefix {
    /// Per byte, the ASCII bytes that may be there (no byte of 128 or more).
    sets: Vec<[bool; 256]>,
    /// The anchor is the text's start only (`\A`), not also a position after a `\r`.
    text_start_only: bool,
}

impl StartPrefix {
    /// The prefix check of `pattern` (parsed with the rule flags), if the whole pattern is a
    /// line-start anchor followed by a fixed sequence of literals and classes.
    pub fn new(pattern: &str) -> Option<StartPrefix> {
        let hir = regex_automata::util::syntax::parse_with(pattern, &crate::rules::syntax_config())
            .ok()?;
        let HirKind::Concat(items) = hir.kind() else {
            return None;
        };
        let (anchor, rest) = items.split_first()?;
        // A line has no `\n` inside: `^` after one never matches; after a `\r` it may.
        let text_start_only = match anchor.kind() {
            HirKind::Look(Look::Start | Look::StartLF) => true,
            HirKind::Look(Look::StartCRLF) => false,
            _ => return None,
        };
        let mut sets = Vec::new();
        for item in rest {
            push_sets(item, &mut sets)?;
            if sets.len() > MAX_BYTES {
                return None;
            }
        }
        (!sets.is_empty()).then_some(StartPrefix {
            sets,
            text_start_only,
        })
    }

    /// Whether the pattern matches `line` (one line, without its `\n`), when that can be told
    /// from its first bytes; `None`: ask the regex.
    pub fn matches(&self, line: &[u8]) -> Option<bool> {
        for (set, &byte) in self.sets.iter().zip(line) {
            // Every byte so far was ASCII, so each item took exactly one.
            if !set[usize::from(byte)] {
                return if byte >= 128 { None } else { self.no(line) };
            }
        }
        if line.len() < self.sets.len() {
            return self.no(line);
        }
        Some(true)
    }

    /// No match at the line's start: no match at all, unless `^` may match after a `\r`.
    fn no(&self, line: &[u8]) -> Option<bool> {
        let again = !self.text_start_only && memchr::memchr(b'\r', line).is_some();
        (!again).then_some(false)
    }
}

/// Appends the byte sets `hir` must match, one per byte, if it matches exactly that many
/// bytes (and, for classes, only its ASCII members are kept: a sure yes, never a false one).
fn push_sets(hir: &Hir, sets: &mut Vec<[bool; 256]>) -> Option<()> {
    match hir.kind() {
        HirKind::Literal(literal) => {
            for &byte in literal.0.iter() {
                if byte >= 128 {
                    return None;
                }
                let mut set = [false; 256];
                set[usize::from(byte)] = true;
                sets.push(set);
            }
        }
        HirKind::Class(class) => sets.push(ascii_set(class)),
        HirKind::Capture(capture) => push_sets(&capture.sub, sets)?,
        HirKind::Repetition(repetition) if Some(repetition.min) == repetition.max => {
            for _ in 0..repetition.min.min(MAX_BYTES as u32 + 1) {
                push_sets(&repetition.sub, sets)?;
            }
        }
        HirKind::Concat(items) => {
            for item in items {
                push_sets(item, sets)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// The ASCII bytes `class` matches as a one-byte match (a Unicode class's ASCII part).
fn ascii_set(class: &Class) -> [bool; 256] {
    let mut set = [false; 256];
    let mut add = |start: u32, end: u32| {
        for byte in start..=end.min(127) {
            set[byte as usize] = true;
        }
    };
    match class {
        Class::Unicode(class) => class
            .ranges()
            .iter()
            .for_each(|r| add(u32::from(r.start()), u32::from(r.end()))),
        Class::Bytes(class) => class
            .ranges()
            .iter()
            .for_each(|r| add(u32::from(r.start()), u32::from(r.end()))),
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_prefix_is_checked_byte_by_byte() {
        let prefix = StartPrefix::new(r"^\d{4}-\d{2}-\d{2} ").unwrap();
        assert_eq!(prefix.matches(b"2026-11-28 10:00:00 INFO"), Some(true));
        assert_eq!(prefix.matches(b"\tat a.B(B.java:1)"), Some(false));
        assert_eq!(
            prefix.matches("٢٠٢٦-11-28 x".as_bytes()),
            None,
            "left to the regex"
        );
        assert_eq!(prefix.matches(b"2026-11-28"), Some(false), "too short");
        assert_eq!(
            prefix.matches(b"x\r2026-11-28 y"),
            None,
            "`^` matches after a `\\r`"
        );
        assert_eq!(
            StartPrefix::new(r"^\[(?P<level>[A-Z])")
                .unwrap()
                .matches(b"[E] x"),
            Some(true)
        );
    }

    #[test]
    fn only_fixed_anchored_patterns_get_one() {
        for pattern in [r"\d{4}-", r"^\d+-", r"^(INFO|ERROR)", r"^a.*b", "^$"] {
            assert!(StartPrefix::new(pattern).is_none(), "{pattern}");
        }
    }

    /// Whatever the line, an answer is the regex's answer (the multiline `start` regex, on a
    /// line without its `\n`).
    mod the_answer_is_the_regexs {
        use proptest::prelude::*;

        use super::*;

        const PATTERNS: [&str; 8] = [
            r"^\d{4}-\d{2}-\d{2} ",
            r"^\[",
            r"(?i)^warn",
            r"^\w\s\S",
            r"^(?-u:\xff)a",
            r"\A\d{2}",
            r"^(?-u:[a\x80-\xff])b",
            r"(?i)^k",
        ];

        proptest! {
            #[test]
            fn on_any_line(
                pattern in 0..PATTERNS.len(),
                pieces in prop::collection::vec(
                    prop::sample::select(vec![
                        "2026", "-11", "-28", " ", "1", "[", "WaRn", "a", "b", "\r", "\t",
                        "é", "\u{2003}", "٢", "\u{212a}", "\u{ff}",
                    ]),
                    0..8,
                ),
                raw in prop::option::of(128u8..=255),
            ) {
                let mut line = pieces.concat().into_bytes();
                if let Some(byte) = raw {
                    line.insert(line.len() / 2, byte);
                }
                let pattern = PATTERNS[pattern];
                let regex = crate::rules::compile_pattern(pattern).unwrap();
                if let Some(prefix) = StartPrefix::new(pattern)
                    && let Some(answer) = prefix.matches(&line)
                {
                    prop_assert_eq!(answer, regex.is_match(&line), "{} {:?}", pattern, line);
                }
            }
        }

        #[test]
        fn most_patterns_get_a_prefix() {
            let with = PATTERNS.iter().filter(|p| StartPrefix::new(p).is_some());
            assert_eq!(with.count(), 7, "all but the literal non-ASCII byte");
        }
    }
}
