//! Masks: turn a log line into its *shape* by replacing the parts that vary between otherwise
//! identical lines (numbers, ids, addresses, times, quoted values) with placeholders, so that
//! "timeout after 3012 ms on 10.0.0.7" and "timeout after 95 ms on 10.0.0.9" count as one
//! pattern, `timeout after <n> ms on <ip>`.
//!
//! The built-in masks are a single hand-written pass over the line (no regex per hit: this runs
//! for every hit, millions per window at worst). Custom masks from the config are regexes,
//! applied first. `logding explain` shows a line's masked form.
//!
//! A token is only masked where it is a whole word: `v2`, `user_42`, `utf8` and the SQLSTATE
//! `28P01` stay as they are while `id=42`, `order-42` and `HTTP/1.1` are masked. A number may
//! carry a short lowercase unit (`30s`, `900ms`, `12kb`), and an id made of hex runs joined by
//! dots (`6b0a58af.5379`, a PostgreSQL session id) is one `<hex>`.
//!
//! Text a rule singles out is never masked: [`Masker::mask_keeping`] copies the given ranges
//! (the rule's captures, see `window::capture`) as they are and masks only what lies between.

use std::borrow::Cow;
use std::ops::Range;

use regex::{NoExpand, Regex};

/// Names of the built-in masks accepted in `summary.masks`, in the order they are tried.
///
/// - `timestamp`: `2026-11-28 10:00:13.114`, `2026-11-28T10:00:13Z`, `2026/11/28 10:00:13`,
///   `28/Nov/2026:10:00:00 +0800`, `10:00:13.114`, java.util.logging's `Nov 28, 2026 4:42:13 AM`
///   and syslog's `Nov 28 04:42:13` → `<ts>`
/// - `uuid`: `123e4567-e89b-12d3-a456-426614174000` → `<uuid>`
/// - `ip`: IPv4 (`10.0.0.1`) and IPv6 with at least three colons → `<ip>`
/// - `hex`: `0x1f`, and runs of 6 or more hex digits with at least one digit and one letter
///   (`3f2a9c`, trace ids), with any `.`-joined hex runs after them (`6b0a58af.5379`) → `<hex>`
/// - `number`: whole-word `42`, `3.14`, `1.2.3`, or with a lowercase unit of up to 3 letters
///   (`30s` → `<n>s`) → `<n>`; `28P01` is not a number
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
        self.mask_keeping(line, &[], out);
    }

    /// Like [`Masker::mask_into`], copying the byte ranges in `keep` (sorted by start; they may
    /// overlap or pass the line's end) unmasked: only the text between them is masked, each
    /// piece on its own.
    pub(crate) fn mask_keeping(&self, line: &[u8], keep: &[Range<usize>], out: &mut String) {
        out.clear();
        let line = &line[..line.len().min(MASK_INPUT_BYTES)];
        let mut at = 0;
        for range in keep {
            let (start, end) = (range.start.min(line.len()), range.end.min(line.len()));
            if end <= at {
                continue;
            }
            if start > at {
                self.mask_piece(&line[at..start], out);
            }
            out.push_str(&lossy(&line[start.max(at)..end]));
            at = end;
        }
        if at < line.len() || line.is_empty() {
            self.mask_piece(&line[at..], out);
        }
    }

    /// Whether this masker masks nothing at all (`masks: none`).
    pub(crate) fn is_empty(&self) -> bool {
        !(self.timestamp || self.uuid || self.ip || self.hex || self.number || self.quoted)
            && self.custom.is_empty()
    }

    /// Masks `piece` onto the end of `out`.
    fn mask_piece(&self, piece: &[u8], out: &mut String) {
        let mut text = lossy(piece);
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
        let may_start = if self.timestamp {
            HEX | QUOTE | MONTH_INITIAL
        } else {
            HEX | QUOTE
        };
        while i < b.len() {
            let c = b[i];
            let at_word_start = i == 0 || !is_word(b[i - 1]);
            let may_start_token = class(c) & may_start != 0;
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
        // What each recognizer needs to find first, looked at once: most words that start
        // with a hex letter or a month's initial are none of these tokens, and are passed
        // over without trying every recognizer on them.
        let hex_len = hex_run(b, i);
        let after_hex = at(b, i + hex_len);
        let digits = if digit {
            digit_run(b, i).map_or(0, |end| end - i)
        } else {
            0
        };
        let after_digits = at(b, i + digits);
        // `yyyy-`, `yyyy/` (a date), `dd/` (a common log time), `hh:` (a clock).
        let may_be_timestamp =
            matches!((digits, after_digits), (4, b'-' | b'/') | (2, b'/' | b':'));
        // `Nov 28`: a month's three letters, then a space.
        let may_be_month = !digit && at(b, i + 3) == b' ';
        let may_be_uuid = hex_len == 8 && after_hex == b'-';
        // `10.` (IPv4), `fe80:` (IPv6).
        let may_be_ip =
            (1..=3).contains(&digits) && after_digits == b'.' || hex_len <= 4 && after_hex == b':';
        let may_be_hex = hex_len >= 6 || c == b'0' && matches!(at(b, i + 1), b'x' | b'X');
        found(self.timestamp && may_be_timestamp, timestamp, "<ts>")
            .or_else(|| found(self.timestamp && may_be_month, month_time, "<ts>"))
            .or_else(|| found(self.uuid && may_be_uuid, uuid, "<uuid>"))
            .or_else(|| found(self.ip && may_be_ip, ip, "<ip>"))
            .or_else(|| found(self.hex && may_be_hex, hex, "<hex>"))
            .or_else(|| found(self.number && digit, number, "<n>"))
    }
}

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD (`String::from_utf8_lossy`, through
/// `from_utf8` first: it has an ASCII fast path that the lossy decoder lacks).
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The masked shape of a line; what `logding explain` shows.
pub fn mask_line(line: &[u8], masker: &Masker) -> String {
    masker.mask(line)
}

/// Byte classes of [`CLASSES`].
const WORD: u8 = 1;
const HEX: u8 = 2;
const QUOTE: u8 = 4;
const MONTH_INITIAL: u8 = 8;

/// The class bits of every byte value: one lookup per byte of a masked line.
static CLASSES: [u8; 256] = {
    let mut classes = [0; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' {
            classes[c] |= WORD;
        }
        if b.is_ascii_hexdigit() {
            classes[c] |= HEX;
        }
        if b == b'"' || b == b'\'' {
            classes[c] |= QUOTE;
        }
        let mut m = 0;
        while m < MONTH_INITIALS.len() {
            if MONTH_INITIALS[m] == b {
                classes[c] |= MONTH_INITIAL;
            }
            m += 1;
        }
        c += 1;
    }
    classes
};

fn class(c: u8) -> u8 {
    CLASSES[usize::from(c)]
}

fn is_word(c: u8) -> bool {
    class(c) & WORD != 0
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

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// First letters of [`MONTHS`]: where [`month_time`] may start.
const MONTH_INITIALS: &[u8] = b"JFMASOND";

/// java.util.logging's `Nov 28, 2026 4:42:13 AM` and syslog's `Nov 28 04:42:13` (or `Nov  2`).
pub(super) fn month_time(b: &[u8], i: usize) -> Option<usize> {
    let month = b.get(i..i + 3)?;
    if !MONTHS.iter().any(|m| m.as_slice() == month) || at(b, i + 3) != b' ' {
        return None;
    }
    let mut j = i + 4;
    if at(b, j) == b' ' {
        j += 1; // syslog pads one-digit days with a space
    }
    j = digit_run(b, j).filter(|end| end - j <= 2)?;
    if at(b, j) == b',' {
        // JUL: `, 2026 4:42:13 AM`
        j = digits_exact(b, expect(b, j + 1, b' ')?, 4)?;
        j = expect(b, j, b' ')?;
        let hour_end = digit_run(b, j).filter(|end| end - j <= 2)?;
        j = digits_exact(b, expect(b, hour_end, b':')?, 2)?;
        j = digits_exact(b, expect(b, j, b':')?, 2)?;
        let meridiem = b.get(j..j + 3);
        return Some(if matches!(meridiem, Some(b" AM" | b" PM")) {
            j + 3
        } else {
            j
        });
    }
    clock(b, expect(b, j, b' ')?)
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
    let mut end = i + run;
    let token = &b[i..end];
    if !(run >= 6
        && token.iter().any(u8::is_ascii_digit)
        && token.iter().any(u8::is_ascii_alphabetic)
        && !is_word(at(b, end)))
    {
        return None;
    }
    // `6b0a58af.5379`: hex runs joined by dots are one id.
    while at(b, end) == b'.' {
        let next = hex_run(b, end + 1);
        if next == 0 || is_word(at(b, end + 1 + next)) {
            break;
        }
        end += 1 + next;
    }
    Some(end)
}

/// A whole-word number, maybe with a short lowercase unit (`30s`, `900ms`).
fn number(b: &[u8], i: usize) -> Option<usize> {
    let mut j = digit_run(b, i)?;
    while at(b, j) == b'.' && at(b, j + 1).is_ascii_digit() {
        j = digit_run(b, j + 1)?;
    }
    let unit = b[j..]
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_lowercase())
        .count();
    let end = if unit <= 3 { j + unit } else { j };
    (!is_word(at(b, end))).then_some(j)
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
    fn whole_tokens_only() {
        check(
            "FATAL: password authentication failed (SQLSTATE 28P01) session 6b0a58af.5379",
            "FATAL: password authentication failed (SQLSTATE 28P01) session <hex>",
        );
        check(
            "took 900ms, 30s, 12kb; 1a2b and 12abxy stay",
            "took <n>ms, <n>s, <n>kb; 1a2b and 12abxy stay",
        );
    }

    #[test]
    fn jul_and_syslog_timestamps() {
        check(
            "Nov 28, 2026 4:42:13 AM com.acme.OrderService place",
            "<ts> com.acme.OrderService place",
        );
        check("Nov 02, 2026 11:42:13 PM x", "<ts> x");
        check(
            "Nov 28 04:42:13 web-01 sshd[4242]: Failed password",
            "<ts> web-<n> sshd[<n>]: Failed password",
        );
        check("Dec  2 04:42:13 host", "<ts> host");
        check("Nov is a month, Decimal 12", "Nov is a month, Decimal <n>");
    }

    #[test]
    fn kept_ranges_are_copied_as_they_are() {
        let masker = Masker::default();
        let line = br#"10.0.0.1 - - [28/Nov/2026:10:00:00 +0800] "GET /a HTTP/1.1" 502 157"#;
        let status = 60..63;
        assert_eq!(&line[status.clone()], b"502");
        let mut out = String::new();
        masker.mask_keeping(line, &[status], &mut out);
        assert_eq!(out, r#"<ip> - - [<ts>] "<str>" 502 <n>"#);
        masker.mask_keeping(b"id 42 and 43", &[3..5, 4..6, 100..200], &mut out);
        assert_eq!(out, "id 42 and <n>");
    }

    #[test]
    fn arbitrary_bytes() {
        assert_eq!(
            Masker::default().mask(b"\xff\xfe 12 \xe4\xb8"),
            "\u{fffd}\u{fffd} <n> \u{fffd}"
        );
    }

    /// The recognizers tried in turn at `i`, without the look-ahead of `token_at`: what it
    /// must find.
    fn token_at_trying_each(b: &[u8], i: usize) -> Option<(usize, &'static str)> {
        let digit = b[i].is_ascii_digit();
        let found = |enabled: bool, recognize: Recognizer, placeholder: &'static str| {
            enabled
                .then(|| recognize(b, i))
                .flatten()
                .map(|end| (end, placeholder))
        };
        found(digit, timestamp, "<ts>")
            .or_else(|| found(!digit, month_time, "<ts>"))
            .or_else(|| found(true, uuid, "<uuid>"))
            .or_else(|| found(true, ip, "<ip>"))
            .or_else(|| found(true, hex, "<hex>"))
            .or_else(|| found(digit, number, "<n>"))
    }

    proptest::proptest! {
        #[test]
        fn looking_ahead_finds_every_token_trying_each_recognizer_finds(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                // Tokens of every mask, and near misses.
                "2026-11-28", "2026/11/28", "2026-11-28T10:00:13Z", "2026-11-28 10:00:13.114",
                "10:00:13", "10:00:13,5", "28/Nov/2026:10:00:00 +0800", "Nov 28, 2026 4:42:13 AM",
                "Nov 28 04:42:13", "Dec  2 04:42:13", "123e4567-e89b-12d3-a456-426614174000",
                "10.0.0.7", "255.255.255.0", "10.0.0", "1.2.3.4.5", "fe80::1:2:3", "fe80:",
                "::1", "0x1f", "0X", "3f2a9c1b", "6b0a58af.5379", "abcdef", "123456", "28P01",
                "4242", "3.14", "1.2.3", "30s", "900ms", "12kb", "12abxy", "2026", "28", "10",
                // Glue.
                "-", "/", ":", ".", " ", "  ", ",", "x", "_", "T", "Z", "+0800", "AM", "Nov",
                "Decimal", "feed", "a",
            ]), 1..16),
        ) {
            let line = pieces.concat();
            let b = line.as_bytes();
            let masker = Masker::default();
            for i in 0..b.len() {
                if class(b[i]) & (HEX | MONTH_INITIAL) != 0 {
                    proptest::prop_assert_eq!(
                        masker.token_at(b, i),
                        token_at_trying_each(b, i),
                        "at {} of {:?}", i, line
                    );
                }
            }
        }
    }
}
