//! Multiline events: what to show of a Java/Python/Go/.NET stack trace.
//!
//! A multiline event (assembled by `tail` from a source's `multiline:` settings) is shown as its
//! first line, "(+N lines)", and the ends of its exception chain, one line each, when the first
//! line does not already say it:
//! - Java: the outermost exception (the first exception line) and the innermost `Caused by:`
//!   (the root cause);
//! - Python: with "The above exception was the direct cause of the following exception" (or
//!   "During handling of the above exception, another exception occurred"), the last
//!   exception (outermost) and the first one (the root cause, shown as `Caused by: ...`);
//!   a single traceback shows its exception line;
//! - Go: the `panic:` line with the first goroutine frame that is not the runtime's
//!   (`panic: ... · at main.(*Worker).run() /app/worker.go:42`);
//! - .NET: `Outer: msg ---> Inner: msg` shows the outer exception and the innermost one;
//! - otherwise the last line that looks like `...Exception: ...` / `...Error: ...`.
//!
//! java.util.logging writes a two-line header (`Nov 28, 2026 4:42:13 AM class method`, then
//! `SEVERE: message`): the message line is the one shown, not the header.
//!
//! An event is split for every hit on it, so the fixed strings looked for in each of its
//! lines are searchers built once ([`Needle`]), not per call.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// A fixed string looked for in many lines: its searcher is built on first use.
type Needle = LazyLock<Finder<'static>>;

static TRACEBACK: Needle = LazyLock::new(|| Finder::new("Traceback (most recent call last):"));
static DOTNET_ARROW: Needle = LazyLock::new(|| Finder::new(" ---> "));
static EXCEPTION: Needle = LazyLock::new(|| Finder::new("Exception:"));
static ERROR: Needle = LazyLock::new(|| Finder::new("Error:"));

/// The parts of an event worth showing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event<'a> {
    /// The line shown as the sample: the first line (JUL: the message line after the header).
    pub(crate) first: &'a [u8],
    /// How many lines follow `first`.
    pub(crate) extra_lines: u32,
    /// The outermost exception, when it differs from the root cause and from `first`.
    pub(crate) outer: Option<&'a [u8]>,
    /// The root cause, when there is one other than the first line.
    pub(crate) cause: Option<Cause<'a>>,
}

/// The root cause of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cause<'a> {
    /// The line naming it.
    pub(crate) line: &'a [u8],
    /// Said before the line when the line does not say it is a cause (`Caused by: `).
    pub(crate) prefix: &'static str,
    /// Go: the first goroutine frame (function, then file), said after the line.
    pub(crate) frame: Option<(&'a [u8], &'a [u8])>,
}

impl Cause<'_> {
    /// The cause as shown: `Caused by: ValueError: bad`, `panic: x · at main.main() /a.go:3`.
    pub(crate) fn text(&self) -> Vec<u8> {
        let mut text = self.prefix.as_bytes().to_vec();
        text.extend_from_slice(self.line);
        if let Some((function, file)) = self.frame {
            if !self.line.is_empty() {
                text.extend_from_slice(" \u{b7} ".as_bytes());
            }
            text.extend_from_slice(b"at ");
            text.extend_from_slice(function);
            text.push(b' ');
            text.extend_from_slice(file);
        }
        text
    }
}

/// Splits a line or multiline event (lines separated by `\n`, maybe `\r\n`).
pub(crate) fn split(event: &[u8]) -> Event<'_> {
    let Some(newline) = memchr::memchr(b'\n', event) else {
        return Event {
            first: event,
            extra_lines: 0,
            outer: None,
            cause: None,
        };
    };
    let mut first = trim_cr(&event[..newline]);
    let mut rest = &event[newline + 1..];
    if is_jul_header(first)
        && let Some(message) = jul_message(rest)
    {
        first = trim_cr(message.0);
        rest = message.1;
    }
    let lines: Vec<&[u8]> = if rest.is_empty() {
        Vec::new()
    } else {
        lines_of(rest).map(trim_cr).collect()
    };
    let extra_lines = u32::try_from(lines.len()).unwrap_or(u32::MAX);
    let (outer, cause) = chain_ends(first, rest, &lines);
    Event {
        first,
        extra_lines,
        outer,
        cause,
    }
}

/// Iterates over the lines of an event after the line shown as its sample.
pub(crate) fn rest_lines<'a>(event: &'a [u8], shown: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    // `shown` is a subslice of `event`: its end is where the rest begins.
    let end = (shown.as_ptr() as usize + shown.len()).saturating_sub(event.as_ptr() as usize);
    let rest = event.get(end..).unwrap_or_default();
    let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
    let rest = rest.strip_prefix(b"\n").unwrap_or_default();
    lines_of(rest).map(trim_cr).filter(|line| !line.is_empty())
}

/// The lines of `text` split at each `\n` (as `text.split(..)` does, found with `memchr`).
fn lines_of(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        Some(match memchr::memchr(b'\n', text) {
            Some(end) => {
                rest = Some(&text[end + 1..]);
                &text[..end]
            }
            None => {
                rest = None;
                text
            }
        })
    })
}

/// The lines shown under a sample besides its root cause: the outermost exception of its chain,
/// then the lines the rule's `show:` selects, at most [`super::MAX_CONTEXT_LINES`].
pub(crate) fn context_lines(
    line: &[u8],
    event: &Event<'_>,
    show: &[regex::bytes::Regex],
) -> Vec<String> {
    let mut lines: Vec<String> = event
        .outer
        .iter()
        .map(|outer| super::lossy_capped(outer, super::MAX_SAMPLE_BYTES))
        .collect();
    if show.is_empty() || event.extra_lines == 0 {
        return lines;
    }
    let cause = event.cause.map(|c| c.line);
    for shown in rest_lines(line, event.first) {
        if lines.len() >= super::MAX_CONTEXT_LINES {
            break;
        }
        let is_chain_end = Some(shown.trim_ascii_start()) == cause
            || Some(shown.trim_ascii_start()) == event.outer;
        if !is_chain_end && show.iter().any(|re| re.is_match(shown)) {
            lines.push(super::lossy_capped(shown, super::MAX_SAMPLE_BYTES));
        }
    }
    lines
}

/// The ends of the exception chain in `lines` (those of `rest`, `\r` trimmed), by format.
/// Fixed strings without `\r` or `\n` are looked for in `rest` at once, not line by line.
fn chain_ends<'a>(
    first: &[u8],
    rest: &[u8],
    lines: &[&'a [u8]],
) -> (Option<&'a [u8]>, Option<Cause<'a>>) {
    let plain = |line: &'a [u8]| Cause {
        line,
        prefix: "",
        frame: None,
    };
    if let Some(root) = lines
        .iter()
        .rev()
        .map(|l| trim_start(l))
        .find(|l| l.starts_with(b"Caused by:"))
    {
        let outer = lines
            .iter()
            .map(|l| trim_start(l))
            .find(|l| !l.starts_with(b"at ") && looks_like_exception(l))
            .filter(|l| !l.starts_with(b"Caused by:") && !contains(first, l));
        return (outer, Some(plain(root)));
    }
    let panic = lines
        .iter()
        .position(|l| trim_start(l).starts_with(b"panic:"));
    if panic.is_some() || first.starts_with(b"panic:") {
        let at = panic.unwrap_or(0);
        let cause = Cause {
            frame: go_frame(&lines[at..]),
            // A first line that is the panic itself is shown already: only its frame is new.
            ..plain(panic.map_or(&[][..], |i| trim_start(lines[i])))
        };
        return (
            None,
            (cause.frame.is_some() || panic.is_some()).then_some(cause),
        );
    }
    if TRACEBACK.find(rest).is_some() {
        return python_chain(lines);
    }
    if DOTNET_ARROW.find(rest).is_some()
        && let Some(line) = lines.iter().find(|l| DOTNET_ARROW.find(l).is_some())
    {
        return dotnet_chain(trim_start(line));
    }
    let last = lines
        .iter()
        .rev()
        .map(|l| trim_start(l))
        .find(|l| !l.starts_with(b"at ") && looks_like_exception(l));
    (None, last.map(plain))
}

/// Python prints each exception of a chain after its traceback, unindented; the root cause
/// comes first, the exception finally raised last.
fn python_chain<'a>(lines: &[&'a [u8]]) -> (Option<&'a [u8]>, Option<Cause<'a>>) {
    let exceptions: Vec<&'a [u8]> = lines
        .iter()
        .copied()
        .filter(|l| {
            !l.is_empty()
                && !l[0].is_ascii_whitespace()
                && !l.starts_with(b"Traceback ")
                && !l.starts_with(b"The above exception")
                && !l.starts_with(b"During handling of the above exception")
        })
        .collect();
    let chained = lines.iter().any(|l| {
        l.starts_with(b"The above exception") || l.starts_with(b"During handling of the above")
    });
    match (exceptions.first(), exceptions.last()) {
        (Some(root), Some(outer)) if chained && exceptions.len() > 1 => (
            Some(*outer),
            Some(Cause {
                line: root,
                prefix: "Caused by: ",
                frame: None,
            }),
        ),
        (_, Some(last)) => (
            None,
            Some(Cause {
                line: last,
                prefix: "",
                frame: None,
            }),
        ),
        _ => (None, None),
    }
}

/// `System.InvalidOperationException: failed ---> System.IO.IOException: broken pipe`.
fn dotnet_chain(line: &[u8]) -> (Option<&[u8]>, Option<Cause<'_>>) {
    let arrow = DOTNET_ARROW.needle();
    let first = DOTNET_ARROW.find(line).unwrap_or(line.len());
    let last = memchr::memmem::rfind(line, arrow).map_or(0, |i| i + arrow.len());
    let cause = Cause {
        line: &line[last..],
        prefix: "Caused by: ",
        frame: None,
    };
    (Some(&line[..first]), Some(cause))
}

/// The first frame of the first goroutine that is not in the runtime: (function, file:line),
/// without the `+0x1d` offset.
fn go_frame<'a>(lines: &[&'a [u8]]) -> Option<(&'a [u8], &'a [u8])> {
    let start = lines
        .iter()
        .position(|l| l.starts_with(b"goroutine ") && l.ends_with(b"]:"))?;
    let frames = &lines[start + 1..];
    let mut i = 0;
    while i + 1 < frames.len() && !frames[i].is_empty() {
        let function = frames[i];
        let file = trim_start(frames[i + 1]);
        let is_runtime = function.starts_with(b"panic(") || function.starts_with(b"runtime.");
        if !is_runtime {
            let file = memchr::memmem::find(file, b" +0x").map_or(file, |end| &file[..end]);
            return Some((function, file));
        }
        i += 2;
    }
    None
}

/// `Nov 28, 2026 4:42:13 AM com.acme.OrderService place` (java.util.logging's SimpleFormatter).
fn is_jul_header(line: &[u8]) -> bool {
    super::mask::month_time(line, 0).is_some_and(|end| line.get(end) == Some(&b' '))
        && line.get(6) == Some(&b',')
}

/// The `LEVEL: message` line that follows a JUL header, and what follows it.
fn jul_message(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    const LEVELS: [&[u8]; 7] = [
        b"SEVERE: ",
        b"WARNING: ",
        b"INFO: ",
        b"CONFIG: ",
        b"FINE: ",
        b"FINER: ",
        b"FINEST: ",
    ];
    if !LEVELS.iter().any(|level| rest.starts_with(level)) {
        return None;
    }
    Some(match memchr::memchr(b'\n', rest) {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[]),
    })
}

fn looks_like_exception(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii_end();
    EXCEPTION.find(line).is_some()
        || ERROR.find(line).is_some()
        || trimmed.ends_with(b"Exception")
        || trimmed.ends_with(b"Error")
}

/// Whether `needle`, looked for once, is in `haystack` (Rabin-Karp: nothing to build).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let finder = memchr::arch::all::rabinkarp::Finder::new(needle);
    finder.find(haystack, needle).is_some()
}

fn trim_start(line: &[u8]) -> &[u8] {
    line.trim_ascii_start()
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Go panic as the runtime prints it (shared with the multiline preset tests).
    pub(crate) const GO_PANIC: &str = "panic: runtime error: index out of range [5] with length 3\n\
                                      \n\
                                      goroutine 7 [running]:\n\
                                      main.(*Worker).run(0xc000012345)\n\
                                      \t/app/worker.go:42 +0x1d\n\
                                      created by main.main in goroutine 1\n\
                                      \t/app/main.go:12 +0x5a";

    /// A Python chain: "The above exception was the direct cause…" (shared with the preset
    /// and message tests).
    pub(crate) const PYTHON_CHAIN: &str = "2026-11-28 10:00:13,114 ERROR [worker] job 42 failed\n\
        Traceback (most recent call last):\n\
        \x20 File \"/app/db.py\", line 7, in connect\n\
        \x20   sock.connect((host, 5432))\n\
        ConnectionRefusedError: [Errno 111] Connection refused\n\
        \n\
        The above exception was the direct cause of the following exception:\n\
        \n\
        Traceback (most recent call last):\n\
        \x20 File \"/app/job.py\", line 3, in run\n\
        \x20   raise JobError(\"database unavailable\") from e\n\
        JobError: database unavailable";

    #[track_caller]
    fn check(event: &str, first: &str, extra: u32, outer: Option<&str>, cause: Option<&str>) {
        let split = split(event.as_bytes());
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(
            (
                text(split.first),
                split.extra_lines,
                split.outer.map(text),
                split.cause.map(|c| text(&c.text()))
            ),
            (
                first.to_owned(),
                extra,
                outer.map(str::to_owned),
                cause.map(str::to_owned)
            )
        );
    }

    #[test]
    fn java_chain_shows_outermost_and_innermost() {
        check(
            "2026-11-28 10:00:13 ERROR failed to place order\n\
             java.lang.IllegalStateException: order failed\n\
             \tat com.acme.OrderService.place(OrderService.java:42)\n\
             Caused by: java.io.IOException: broken pipe\n\
             \tat x.y(Z.java:1)\n\
             Caused by: java.net.SocketTimeoutException: Read timed out\n\
             \t... 12 more",
            "2026-11-28 10:00:13 ERROR failed to place order",
            6,
            Some("java.lang.IllegalStateException: order failed"),
            Some("Caused by: java.net.SocketTimeoutException: Read timed out"),
        );
    }

    #[test]
    fn exception_without_cause() {
        check(
            "ERROR boom\r\njava.lang.NullPointerException\r\n\tat a.b(C.java:1)",
            "ERROR boom",
            2,
            None,
            Some("java.lang.NullPointerException"),
        );
    }

    #[test]
    fn python_chain_shows_both_ends() {
        check(
            "2026-11-28 10:00:13,114 ERROR job failed\n\
             Traceback (most recent call last):\n  File \"db.py\", line 7, in connect\n    raise ConnectionRefusedError(111)\n\
             ConnectionRefusedError: [Errno 111] Connection refused\n\
             \n\
             The above exception was the direct cause of the following exception:\n\
             \n\
             Traceback (most recent call last):\n  File \"job.py\", line 3, in run\n    raise JobError(\"db down\") from e\n\
             JobError: db down",
            "2026-11-28 10:00:13,114 ERROR job failed",
            11,
            Some("JobError: db down"),
            Some("Caused by: ConnectionRefusedError: [Errno 111] Connection refused"),
        );
        check(
            "ERROR job failed\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    raise ValueError(\"bad\")\nValueError: bad",
            "ERROR job failed",
            4,
            None,
            Some("ValueError: bad"),
        );
    }

    #[test]
    fn go_panic_with_its_first_goroutine_frame() {
        check(
            &format!("2026/11/28 10:00:00 worker stopped\n{GO_PANIC}"),
            "2026/11/28 10:00:00 worker stopped",
            7,
            None,
            Some(
                "panic: runtime error: index out of range [5] with length 3 · at main.(*Worker).run(0xc000012345) /app/worker.go:42",
            ),
        );
        check(
            "panic: boom [recovered]\n\tpanic: boom\n\ngoroutine 1 [running]:\npanic({0x4a0f00, 0x4e2b10})\n\t/usr/local/go/src/runtime/panic.go:884 +0x213\nmain.main()\n\t/app/main.go:9 +0x27",
            "panic: boom [recovered]",
            7,
            None,
            Some("panic: boom · at main.main() /app/main.go:9"),
        );
        check(
            "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:9 +0x27",
            "panic: boom",
            4,
            None,
            Some("at main.main() /app/main.go:9"),
        );
    }

    #[test]
    fn dotnet_inner_exceptions() {
        check(
            "2026-11-28 10:00:13.114 +08:00 [ERR] order failed\n\
             System.InvalidOperationException: order failed ---> System.IO.IOException: broken pipe ---> System.Net.Sockets.SocketException: reset\n\
             \x20  at Acme.Orders.Place() in /src/Orders.cs:line 42",
            "2026-11-28 10:00:13.114 +08:00 [ERR] order failed",
            2,
            Some("System.InvalidOperationException: order failed"),
            Some("Caused by: System.Net.Sockets.SocketException: reset"),
        );
    }

    #[test]
    fn jul_shows_the_message_line_not_the_header() {
        check(
            "Nov 28, 2026 4:42:13 AM com.acme.OrderService place\n\
             SEVERE: Order 42 failed\n\
             java.lang.IllegalStateException: no stock\n\
             \tat com.acme.OrderService.place(OrderService.java:42)",
            "SEVERE: Order 42 failed",
            2,
            None,
            Some("java.lang.IllegalStateException: no stock"),
        );
        check(
            "Nov 28, 2026 4:42:13 AM com.acme.Pool borrow\nWARNING: pool exhausted",
            "WARNING: pool exhausted",
            0,
            None,
            None,
        );
    }

    #[test]
    fn single_line_and_plain_continuations() {
        check("just one line", "just one line", 0, None, None);
        check("first\nsecond\nthird", "first", 2, None, None);
        let event = b"head\n  STATEMENT: x\n\nDETAIL: y";
        let rest: Vec<&[u8]> = rest_lines(event, &event[..4]).collect();
        assert_eq!(rest, [&b"  STATEMENT: x"[..], b"DETAIL: y"]);
    }

    proptest::proptest! {
        #[test]
        fn lines_are_split_at_each_newline(text in "[a\n\r]{0,12}") {
            let text = text.as_bytes();
            let expected: Vec<&[u8]> = text.split(|&c| c == b'\n').collect();
            proptest::prop_assert_eq!(lines_of(text).collect::<Vec<_>>(), expected);
        }
    }
}
