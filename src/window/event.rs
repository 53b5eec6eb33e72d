//! Multiline events: what to show of a Java/Python/Go stack trace.
//!
//! A multiline event (assembled by `scan` from a source's `multiline:` settings) is shown as its
//! first line, "(+N lines)", and the line that names the failure when the first line does not:
//! the last `Caused by:` (Java's root cause), Go's `panic:`, Python's last line after a
//! `Traceback`, or else the last line that looks like `...Exception: ...` / `...Error: ...`.

/// The parts of an event worth showing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event<'a> {
    /// The first line.
    pub(crate) first: &'a [u8],
    /// How many lines follow the first.
    pub(crate) extra_lines: u32,
    /// The exception line, when there is one other than the first.
    pub(crate) cause: Option<&'a [u8]>,
}

/// Splits a line or multiline event (lines separated by `\n`, maybe `\r\n`).
pub(crate) fn split(event: &[u8]) -> Event<'_> {
    let Some(newline) = memchr::memchr(b'\n', event) else {
        return Event {
            first: event,
            extra_lines: 0,
            cause: None,
        };
    };
    let rest = &event[newline + 1..];
    let lines = || {
        rest.split(|&c| c == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
    };
    let extra_lines = u32::try_from(lines().count()).unwrap_or(u32::MAX);
    Event {
        first: trim_cr(&event[..newline]),
        extra_lines,
        cause: find_cause(lines),
    }
}

fn find_cause<'a, I>(lines: impl Fn() -> I) -> Option<&'a [u8]>
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    if let Some(line) = lines()
        .rev()
        .find(|l| trim_start(l).starts_with(b"Caused by:"))
    {
        return Some(trim_start(line));
    }
    if let Some(line) = lines().find(|l| trim_start(l).starts_with(b"panic:")) {
        return Some(trim_start(line));
    }
    if lines().any(|l| contains(l, b"Traceback (most recent call last):")) {
        // Python prints the exception last, unindented.
        return lines()
            .rev()
            .find(|l| !l.is_empty() && !l[0].is_ascii_whitespace())
            .map(trim_start);
    }
    lines()
        .rev()
        .map(trim_start)
        .find(|l| !l.starts_with(b"at ") && looks_like_exception(l))
}

fn looks_like_exception(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii_end();
    contains(line, b"Exception:")
        || contains(line, b"Error:")
        || trimmed.ends_with(b"Exception")
        || trimmed.ends_with(b"Error")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn trim_start(line: &[u8]) -> &[u8] {
    line.trim_ascii_start()
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(event: &str, first: &str, extra: u32, cause: Option<&str>) {
        let split = split(event.as_bytes());
        assert_eq!(
            (
                String::from_utf8_lossy(split.first).into_owned(),
                split.extra_lines,
                split.cause.map(|c| String::from_utf8_lossy(c).into_owned())
            ),
            (first.to_owned(), extra, cause.map(str::to_owned))
        );
    }

    #[test]
    fn java_root_cause() {
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
            Some("Caused by: java.net.SocketTimeoutException: Read timed out"),
        );
    }

    #[test]
    fn exception_without_cause() {
        check(
            "ERROR boom\r\njava.lang.NullPointerException\r\n\tat a.b(C.java:1)",
            "ERROR boom",
            2,
            Some("java.lang.NullPointerException"),
        );
    }

    #[test]
    fn python_and_go() {
        check(
            "ERROR job failed\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    raise ValueError(\"bad\")\nValueError: bad",
            "ERROR job failed",
            4,
            Some("ValueError: bad"),
        );
        check(
            "2026/11/28 10:00:00 worker stopped\npanic: runtime error: index out of range\n\ngoroutine 1 [running]:",
            "2026/11/28 10:00:00 worker stopped",
            3,
            Some("panic: runtime error: index out of range"),
        );
    }

    #[test]
    fn single_line_and_plain_continuations() {
        check("just one line", "just one line", 0, None);
        check("first\nsecond\nthird", "first", 2, None);
    }
}
