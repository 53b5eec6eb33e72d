//! A fast yes for line-start patterns such as a multiline `start` of `^\d{4}-\d{2}-\d{2} `.
//!
//! The multiline assembler asks "does this line start an event?" of every line, and on a log
//! where most lines do, a regex call per line costs about as much as scanning the line for
//! every rule. Most `start` patterns are a line-start anchor followed by a fixed run of
//! characters from small classes (a date, a `[`, a level). For those, [`StartPrefix`] checks
//! the first bytes of the line against the ASCII part of each class, a table lookup per byte.
//! It only ever answers *yes, this line matches* (a match at the start of the line is a match);
//! when it cannot say (a non-ASCII digit, a shorter line), the caller asks the regex, so the
//! answer is always the regex's.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The patterns this checks, by their first bytes: at most this many.
const MAX_BYTES: usize = 64;

/// The ASCII byte sets a line's first bytes must fall in, one per byte.
#[derive(Clone, Debug)]
pub struct StartPrefix {
    sets: Vec<[bool; 128]>,
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
        if !matches!(
            anchor.kind(),
            HirKind::Look(Look::Start | Look::StartLF | Look::StartCRLF)
        ) {
            return None;
        }
        let mut sets = Vec::new();
        for item in rest {
            push_sets(item, &mut sets)?;
            if sets.len() > MAX_BYTES {
                return None;
            }
        }
        (!sets.is_empty()).then_some(StartPrefix { sets })
    }

    /// Returns true if the pattern surely matches `line` (at its start); false means "ask
    /// the regex".
    pub fn accepts(&self, line: &[u8]) -> bool {
        line.len() >= self.sets.len()
            && self
                .sets
                .iter()
                .zip(line)
                .all(|(set, &byte)| byte < 128 && set[usize::from(byte)])
    }
}

/// Appends the byte sets `hir` must match, one per byte, if it matches exactly that many
/// bytes (and, for classes, only its ASCII members are kept: a sure yes, never a false one).
fn push_sets(hir: &Hir, sets: &mut Vec<[bool; 128]>) -> Option<()> {
    match hir.kind() {
        HirKind::Literal(literal) => {
            for &byte in literal.0.iter() {
                let mut set = [false; 128];
                *set.get_mut(usize::from(byte))? = true;
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
fn ascii_set(class: &Class) -> [bool; 128] {
    let mut set = [false; 128];
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
        assert!(prefix.accepts(b"2026-11-28 10:00:00 INFO"));
        assert!(!prefix.accepts(b"\tat a.B(B.java:1)"));
        assert!(
            !prefix.accepts("٢٠٢٦-11-28 x".as_bytes()),
            "left to the regex"
        );
        assert!(!prefix.accepts(b"2026-11-28"), "too short");
        assert!(
            StartPrefix::new(r"^\[(?P<level>[A-Z])")
                .unwrap()
                .accepts(b"[E] x")
        );
    }

    #[test]
    fn only_fixed_anchored_patterns_get_one() {
        for pattern in [r"\d{4}-", r"^\d+-", r"^(INFO|ERROR)", r"^a.*b", "^$"] {
            assert!(StartPrefix::new(pattern).is_none(), "{pattern}");
        }
    }

    /// Whatever the line, a yes is the regex's yes.
    #[test]
    fn a_yes_is_always_the_regexs() {
        let patterns = [
            r"^\d{4}-\d{2}",
            r"^\[",
            r"(?i)^warn",
            r"^\w\s\S",
            r"^(?-u:\xff)a",
        ];
        let lines: [&[u8]; 7] = [
            b"2026-11",
            b"[x",
            b"WaRn",
            b"a b",
            b"\xffa",
            "é\u{2003}x".as_bytes(),
            b"",
        ];
        for pattern in patterns {
            let regex = crate::rules::Pattern::new(pattern).unwrap();
            let Some(prefix) = StartPrefix::new(pattern) else {
                continue;
            };
            for line in lines {
                if prefix.accepts(line) {
                    assert!(regex.is_match(line), "{pattern} {line:?}");
                }
            }
        }
    }
}
