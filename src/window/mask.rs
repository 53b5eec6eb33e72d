//! Masks: turn a log line into its *shape* by replacing the parts that vary between otherwise
//! identical lines (numbers, ids, addresses, times, quoted values) with placeholders, so that
//! "timeout after 3012 ms on 10.0.0.7" and "timeout after 95 ms on 10.0.0.9" count as one
//! pattern, `timeout after <n> ms on <ip>`.
//!
//! The built-in masks are a single hand-written pass over the line (no regex per hit: this runs
//! for every hit, millions per window at worst). Custom masks from the config are regexes,
//! applied first. `logding explain` shows a line's masked form.
//!
//! A token is only masked where it starts a word, so `v2`, `user_42` and `utf8` stay as they
//! are while `id=42`, `order-42` and `HTTP/1.1` are masked.

use std::borrow::Cow;

use regex::{NoExpand, Regex};

/// Names of the built-in masks accepted in `summary.masks`, in the order they are tried.
///
/// - `timestamp`: `2026-11-28 10:00:13.114`, `2026-11-28T10:00:13Z`, `2026/11/28 10:00:13`,
///   `28/Nov/2026:10:00:00 +0800`, `10:00:13.114` → `<ts>`
/// - `uuid`: `123e4567-e89b-12d3-a456-426614174000` → `<uuid>`
/// - `ip`: IPv4 (`10.0.0.1`) and IPv6 with at least three colons → `<ip>`
/// - `hex`: `0x1f`, and runs of 6 or more hex digits with at least one digit and one letter
///   (`3f2a9c`, trace ids) → `<hex>`
/// - `number`: `42`, `3.14`, `1.2.3` → `<n>`
/// - `quoted`: `"..."` and `'...'` (up to 256 bytes on one line) → `"<str>"`, except values that
///   look like an identifier (`"error"`, `"user_id"`), so JSON keys and levels stay readable.
pub const BUILTIN_MASKS: &[&str] = &["timestamp", "uuid", "ip", "hex", "number", "quoted"];

/// Only this many bytes of a line are looked at (the rest is not part of its shape).
pub const MASK_INPUT_BYTES: usize = 2048;

const QUOTED_MAX_BYTES: usize = 256;

/// Recognizes a token at a position and returns its end.
type Recognizer = fn(&[u8], usize) -> Option<usize>;

/// A configured set of masks.
#[derive(Clone, Debug)]
pub struct Masker {
    timestamp: bool,
    uuid: bool,
    ip: bool,
    hex: bool,
    number: bool,
    quoted: bool,
    custom: Vec<(String, Regex)>,
}

impl Default for Masker {
    /// All built-in masks, no custom mask.
    fn default() -> Self {
        let all: Vec<String> = BUILTIN_MASKS.iter().map(|&s| s.to_owned()).collect();
        Masker::new(&all, &[])
    }
}

impl Masker {
    /// A masker with the named built-in masks (names not in [`BUILTIN_MASKS`] are ignored:
    /// `config` rejects them) and custom `(placeholder, regex)` masks, applied first.
    pub fn new(masks: &[String], custom: &[(String, Regex)]) -> Masker {
        let has = |name: &str| masks.iter().any(|m| m == name);
        Masker {
            timestamp: has("timestamp"),
            uuid: has("uuid"),
            ip: has("ip"),
            hex: has("hex"),
            number: has("number"),
            quoted: has("quoted"),
            custom: custom.to_vec(),
        }
    }

    /// The masked shape of a line (only its first [`MASK_INPUT_BYTES`] bytes; invalid UTF-8
    /// becomes U+FFFD).
    pub fn mask(&self, line: &[u8]) -> String {
        let mut out = String::new();
        self.mask_into(line, &mut out);
        out
    }

    /// Like [`Masker::mask`], into a reused buffer (cleared first).
    pub(crate) fn mask_into(&self, line: &[u8], out: &mut String) {
        out.clear();
        let line = &line[..line.len().min(MASK_INPUT_BYTES)];
        // `from_utf8` has an ASCII fast path that the lossy decoder lacks.
        let mut text = match std::str::from_utf8(line) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line),
        };
        for (placeholder, re) in &self.custom {
            if let Cow::Owned(replaced) = re.replace_all(&text, NoExpand(placeholder)) {
                text = Cow::Owned(replaced);
            }
        }
        self.mask_builtin(&text, out);
    }

    fn mask_builtin(&self, text: &str, out: &mut String) {
        let b = text.as_bytes();
        let mut i = 0;
        let mut copied = 0;
        while i < b.len() {
            let c = b[i];
            let at_word_start = i == 0 || !is_word(b[i - 1]);
            let may_start_token = c.is_ascii_hexdigit() || c == b'"' || c == b'\'';
            if at_word_start
                && may_start_token
                && let Some((end, placeholder)) = self.token_at(b, i)
            {
                // Tokens start and end on ASCII bytes, hence on character boundaries.
                out.push_str(&text[copied..i]);
                out.push_str(placeholder);
                i = end;
                copied = end;
                continue;
            }
            i += 1;
            if is_word(c) {
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
            }
        }
        out.push_str(&text[copied..]);
    }

    /// The end and placeholder of a maskable token starting at `i`.
    fn token_at(&self, b: &[u8], i: usize) -> Option<(usize, &'static str)> {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            if !self.quoted {
                return None;
            }
            let placeholder = if c == b'"' { "\"<str>\"" } else { "'<str>'" };
            return quoted(b, i).map(|end| (end, placeholder));
        }
        let digit = c.is_ascii_digit();
        let found = |enabled: bool, recognize: Recognizer, placeholder: &'static str| {
            if enabled {
                recognize(b, i).map(|end| (end, placeholder))
            } else {
                None
            }
        };
        found(self.timestamp && digit, timestamp, "<ts>")
            .or_else(|| found(self.uuid, uuid, "<uuid>"))
            .or_else(|| found(self.ip, ip, "<ip>"))
            .or_else(|| found(self.hex, hex, "<hex>"))
            .or_else(|| found(self.number && digit, number, "<n>"))
    }
}

/// The masked shape of a line; what `logding explain` shows.
pub fn mask_line(line: &[u8], masker: &Masker) -> String {
    masker.mask(line)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Exactly `n` ASCII digits at `i`, not followed by another digit.
fn digits_exact(b: &[u8], i: usize, n: usize) -> Option<usize> {
    let end = i + n;
    (end <= b.len() && b[i..end].iter().all(u8::is_ascii_digit) && !at(b, end).is_ascii_digit())
        .then_some(end)
}

/// One or more ASCII digits at `i`.
fn digit_run(b: &[u8], i: usize) -> Option<usize> {
    let len = b[i.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    (len > 0).then_some(i + len)
}

fn hex_run(b: &[u8], i: usize) -> usize {
    b[i.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_hexdigit())
        .count()
}

fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    (at(b, i) == c).then_some(i + 1)
}

/// `hh:mm:ss` with optional fraction.
fn clock(b: &[u8], i: usize) -> Option<usize> {
    let mut j = digits_exact(b, i, 2)?;
    j = digits_exact(b, expect(b, j, b':')?, 2)?;
    j = digits_exact(b, expect(b, j, b':')?, 2)?;
    if matches!(at(b, j), b'.' | b',') && at(b, j + 1).is_ascii_digit() {
        j = digit_run(b, j + 1)?;
    }
    Some(j)
}

/// `Z`, `+08:00`, `+0800`, ` +0800`.
fn zone(b: &[u8], i: usize) -> usize {
    if at(b, i) == b'Z' && !is_word(at(b, i + 1)) {
        return i + 1;
    }
    let start = if at(b, i) == b' ' && matches!(at(b, i + 1), b'+' | b'-') {
        i + 1
    } else {
        i
    };
    if !matches!(at(b, start), b'+' | b'-') {
        return i;
    }
    if !(at(b, start + 1).is_ascii_digit() && at(b, start + 2).is_ascii_digit()) {
        return i;
    }
    let mut j = start + 3;
    if at(b, j) == b':' {
        j += 1;
    }
    digits_exact(b, j, 2).unwrap_or(i)
}

fn timestamp(b: &[u8], i: usize) -> Option<usize> {
    iso_date_time(b, i)
        .or_else(|| common_log_time(b, i))
        .or_else(|| clock(b, i))
}

/// `2026-11-28`, `2026/11/28`, optionally followed by `T` or space and a clock and a zone.
fn iso_date_time(b: &[u8], i: usize) -> Option<usize> {
    let mut j = digits_exact(b, i, 4)?;
    let sep = at(b, j);
    if sep != b'-' && sep != b'/' {
        return None;
    }
    j = digits_exact(b, j + 1, 2)?;
    j = digits_exact(b, expect(b, j, sep)?, 2)?;
    if matches!(at(b, j), b'T' | b' ')
        && let Some(end) = clock(b, j + 1)
    {
        return Some(zone(b, end));
    }
    Some(j)
}

/// `28/Nov/2026:10:00:00 +0800` (common and combined log formats).
fn common_log_time(b: &[u8], i: usize) -> Option<usize> {
    let mut j = digits_exact(b, i, 2)?;
    j = expect(b, j, b'/')?;
    if !(at(b, j).is_ascii_uppercase()
        && at(b, j + 1).is_ascii_lowercase()
        && at(b, j + 2).is_ascii_lowercase())
    {
        return None;
    }
    j = digits_exact(b, expect(b, j + 3, b'/')?, 4)?;
    j = clock(b, expect(b, j, b':')?)?;
    Some(zone(b, j))
}

fn uuid(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for (k, len) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if k > 0 {
            j = expect(b, j, b'-')?;
        }
        if hex_run(b, j) != len {
            return None;
        }
        j += len;
    }
    (!is_word(at(b, j))).then_some(j)
}

fn ip(b: &[u8], i: usize) -> Option<usize> {
    ipv4(b, i).or_else(|| ipv6(b, i))
}

fn ipv4(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for k in 0..4 {
        if k > 0 {
            j = expect(b, j, b'.')?;
        }
        let end = digit_run(b, j)?;
        if end - j > 3 {
            return None;
        }
        j = end;
    }
    let followed_by_more = at(b, j) == b'.' && at(b, j + 1).is_ascii_digit();
    (!is_word(at(b, j)) && !followed_by_more).then_some(j)
}

fn ipv6(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let mut colons = 0;
    loop {
        let run = hex_run(b, j);
        if run > 4 {
            return None;
        }
        j += run;
        if at(b, j) == b':' && (at(b, j + 1).is_ascii_hexdigit() || at(b, j + 1) == b':') {
            colons += 1;
            j += 1;
        } else {
            break;
        }
    }
    (colons >= 3 && !is_word(at(b, j))).then_some(j)
}

fn hex(b: &[u8], i: usize) -> Option<usize> {
    if at(b, i) == b'0' && matches!(at(b, i + 1), b'x' | b'X') {
        let run = hex_run(b, i + 2);
        let end = i + 2 + run;
        return (run > 0 && !is_word(at(b, end))).then_some(end);
    }
    let run = hex_run(b, i);
    let end = i + run;
    let token = &b[i..end];
    (run >= 6
        && token.iter().any(u8::is_ascii_digit)
        && token.iter().any(u8::is_ascii_alphabetic)
        && !is_word(at(b, end)))
    .then_some(end)
}

fn number(b: &[u8], i: usize) -> Option<usize> {
    let mut j = digit_run(b, i)?;
    while at(b, j) == b'.' && at(b, j + 1).is_ascii_digit() {
        j = digit_run(b, j + 1)?;
    }
    Some(j)
}

fn quoted(b: &[u8], i: usize) -> Option<usize> {
    let quote = b[i];
    let mut j = i + 1;
    let limit = (i + 1 + QUOTED_MAX_BYTES).min(b.len());
    while j < limit {
        match b[j] {
            b'\\' => j += 2,
            b'\n' => return None,
            c if c == quote => {
                let content = &b[i + 1..j];
                return (!is_identifier(content)).then_some(j + 1);
            }
            _ => j += 1,
        }
    }
    None
}

fn is_identifier(content: &[u8]) -> bool {
    match content.first() {
        None => true,
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => content
            .iter()
            .all(|&c| is_word(c) || c == b'.' || c == b'-'),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: &str) {
        assert_eq!(Masker::default().mask(line.as_bytes()), expected);
    }

    #[test]
    fn numbers_ids_and_addresses() {
        check(
            "timeout after 3012 ms on 10.0.0.7:8080 (v2, user_42)",
            "timeout after <n> ms on <ip>:<n> (v2, user_42)",
        );
        check(
            "req 123e4567-e89b-12d3-a456-426614174000 trace=3f2a9c1b addr 0x7ffd1",
            "req <uuid> trace=<hex> addr <hex>",
        );
        check("peer fe80::1:2:3 closed", "peer <ip> closed");
        check(
            "GET /api/orders/123 HTTP/1.1 took 1.5s",
            "GET /api/orders/<n> HTTP/<n> took <n>s",
        );
    }

    #[test]
    fn timestamps() {
        check(
            "2026-11-28 10:00:13.114 ERROR [main] c.a.OrderService - failed",
            "<ts> ERROR [main] c.a.OrderService - failed",
        );
        check(
            "at 2026-11-28T10:00:13+08:00 and 2026/11/28 10:00:13",
            "at <ts> and <ts>",
        );
        check(
            r#"10.0.0.1 - - [28/Nov/2026:10:00:00 +0800] "GET /api HTTP/1.1" 502 157"#,
            r#"<ip> - - [<ts>] "<str>" <n> <n>"#,
        );
    }

    #[test]
    fn quoted_values_but_not_identifiers() {
        check(
            r#"{"level":"error","msg":"user 'bob' not found","id":7}"#,
            r#"{"level":"error","msg":"<str>","id":<n>}"#,
        );
        check("can't open 'db-1'", "can't open 'db-<n>'");
    }

    #[test]
    fn configurable() {
        let masker = Masker::new(
            &["number".to_owned()],
            &[("<order>".to_owned(), Regex::new(r"ORD-[A-Z0-9]+").unwrap())],
        );
        assert_eq!(
            masker.mask(b"order ORD-9X2 failed at 10.0.0.1 in 'x y'"),
            "order <order> failed at <n> in 'x y'"
        );
    }

    #[test]
    fn arbitrary_bytes() {
        assert_eq!(
            Masker::default().mask(b"\xff\xfe 12 \xe4\xb8"),
            "\u{fffd}\u{fffd} <n> \u{fffd}"
        );
    }
}
