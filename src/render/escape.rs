//! Escaping of untrusted log text (and anything else not written by us) for DingTalk.
//!
//! Log lines are attacker-controlled: a request path or a user name ends up in them. In a
//! message they must stay inert text. DingTalk's markdown renderer is not documented well enough
//! to trust backslash escapes or HTML entities, so the characters that could build markdown
//! structure are replaced with look-alikes that render the same to a reader and mean nothing to
//! the renderer:
//! - `@` → `＠` (full-width): no `@all`, `@13800000000` mention, in markdown and text alike;
//! - `]` before `(` or `[` → `］`: no link, no image (`![](...)`), while `[main]` stays;
//! - `<` `>` → `＜` `＞`: no HTML tag, no autolink, no nested quote (and `<n>` stays symmetric); `&` of an entity → `＆`: no smuggling `&#64;all`;
//! - `*` → `＊`, `` ` `` → `ˋ`: no emphasis or code span leaking into our layout;
//! - a text starting with `#`, `-`, `+`, `=`, `|`, `~`, `_` or `1.` gets a zero-width space
//!   first, so it cannot open a heading, list or rule where we place it at a line start;
//! - control characters are dropped (tab, CR, LF and Unicode line separators become spaces),
//!   as are bidirectional overrides and zero-width characters, so no line can be broken or
//!   visually reordered.
//!
//! Bare URLs are left as they are: they show their real target.

/// Zero-width space, used to defuse a markdown marker at a line start.
const ZWSP: char = '\u{200B}';

/// Which escaping applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// DingTalk markdown.
    Markdown,
    /// Plain text (DingTalk `text`, or a terminal).
    Text,
}

/// Untrusted text made inert for `flavor`, at most `max_chars` characters (an ellipsis marks a
/// cut), on one line, without leading or trailing spaces.
pub(crate) fn escape(text: &str, max_chars: usize, flavor: Flavor) -> String {
    let cleaned = clean(text);
    let cleaned = cleaned.trim();
    let mut out = String::with_capacity(cleaned.len().min(max_chars * 4) + 8);
    if flavor == Flavor::Markdown && starts_like_markup(cleaned) {
        out.push(ZWSP);
    }
    for (n, (i, c)) in cleaned.char_indices().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c, &cleaned[i + c.len_utf8()..], flavor);
    }
    out
}

fn push_escaped(out: &mut String, c: char, rest: &str, flavor: Flavor) {
    let replacement = match (c, flavor) {
        ('@', _) => '＠',
        (_, Flavor::Text) => c,
        (']', _) if closes_link(rest) => '］',
        ('<', _) => '＜',
        ('>', _) => '＞',
        ('&', _) if is_entity(rest) => '＆',
        ('*', _) => '＊',
        ('`', _) => 'ˋ',
        _ => c,
    };
    out.push(replacement);
}

/// `](`, `][` or `] (`: what turns a bracket into a link or an image. A lone `[main]` (Java's
/// thread names) is not a link, and stays as it is.
fn closes_link(rest: &str) -> bool {
    matches!(rest.trim_start().as_bytes().first(), Some(b'(' | b'['))
}

/// `&#64;`, `&#x40;`, `&commat;`: an HTML entity that could smuggle a character past escaping.
fn is_entity(rest: &str) -> bool {
    let name = rest.strip_prefix('#').unwrap_or(rest);
    let len = name
        .bytes()
        .take(32)
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    len > 0 && name.as_bytes().get(len) == Some(&b';')
}

/// Control characters dropped, whitespace controls and line separators turned into spaces.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                out.push(' ');
            }
            c if c.is_control() => {}
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn starts_like_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'#' | b'-' | b'+' | b'=' | b'|' | b'~' | b'_' | b'>' | b'*') => true,
        Some(c) if c.is_ascii_digit() => {
            let digits = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
            matches!(bytes.get(digits), Some(b'.' | b')'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, flavor: Flavor, expected: &str) {
        assert_eq!(escape(text, 80, flavor), expected);
    }

    #[test]
    fn markdown_structure_is_defused() {
        check(
            "# heading @all [x](http://evil) ![](http://img) <b>&#64;</b> [main] a&b",
            Flavor::Markdown,
            "\u{200B}# heading ＠all [x］(http://evil) ![］(http://img) ＜b＞＆#64;＜/b＞ [main] a&b",
        );
        check("1. item", Flavor::Markdown, "\u{200B}1. item");
        check("2026-11-28 ok", Flavor::Markdown, "2026-11-28 ok");
        check("> quote", Flavor::Markdown, "\u{200B}＞ quote");
        check(
            "[x] (y) [r][1] &commat;",
            Flavor::Markdown,
            "[x］ (y) [r］[1] ＆commat;",
        );
    }

    #[test]
    fn text_only_defuses_mentions() {
        check(
            "@13800000000 [x](y) *b*",
            Flavor::Text,
            "＠13800000000 [x](y) *b*",
        );
    }

    #[test]
    fn controls_and_newlines_never_break_the_line() {
        check(
            "a\nb\r\nc\td\u{1b}[31me\u{202E}f\u{2028}g\0",
            Flavor::Text,
            "a b  c d[31mef g",
        );
    }

    #[test]
    fn cut_on_characters_with_an_ellipsis() {
        assert_eq!(escape("日本語のテキスト", 3, Flavor::Text), "日本語…");
        assert_eq!(escape("abc", 3, Flavor::Text), "abc");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the input, escaped text is one line without control characters, mentions
        /// or link/HTML openers, within its length.
        #[test]
        fn escaped_text_is_inert(text in any::<String>(), max_chars in 1usize..50) {
            for flavor in [Flavor::Markdown, Flavor::Text] {
                let escaped = escape(&text, max_chars, flavor);
                prop_assert!(!escaped.chars().any(|c| c.is_control()), "{:?}", escaped);
                prop_assert!(!escaped.contains('@'));
                prop_assert!(escaped.chars().filter(|&c| c != ZWSP).count() <= max_chars + 1);
                if flavor == Flavor::Markdown {
                    prop_assert!(!escaped.contains("](") && !escaped.contains('<'));
                }
            }
        }

        /// Masking arbitrary bytes never panics and never grows a line much.
        #[test]
        fn masking_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let masked = crate::window::Masker::default().mask(&bytes);
            prop_assert!(masked.len() <= bytes.len() * 3 + 8);
        }
    }
}
