//! Compares what a case expected with what its windows produced, and words the differences as
//! a readable diff: for each window, `- expected` / `+ actual` lines per rule and message.
//!
//! Only what the case names is checked: a rule not in `fires` or `not_firing` may do anything.

use jiff::Timestamp;

use crate::ruletest::format::{Case, Fire, WindowExpect};
use crate::ruletest::window::ClosedWindow;
use crate::summary::RuleSummary;

/// One difference between expected and actual.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Which window (or `windows` for the count of windows).
    pub place: String,
    /// What was expected, one line.
    pub expected: String,
    /// What happened, one or more lines.
    pub actual: Vec<String>,
    /// Context shown under the pair, verbatim (the message, quoted).
    pub context: Vec<String>,
}

/// Every difference between a case's expectations and its windows, in expectation order.
pub fn compare(case: &Case, windows: &[ClosedWindow], start: Timestamp) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if let Some(expected) = case.windows
        && expected as usize != windows.len()
    {
        out.push(Mismatch {
            place: "windows".into(),
            expected: match expected {
                1 => "1 window closes".into(),
                n => format!("{n} windows close"),
            },
            actual: vec![format!(
                "{} {} closed",
                windows.len(),
                plural(windows.len(), "window")
            )],
            context: overview(windows, start),
        });
    }
    if case.expect_no_alerts {
        for (i, window) in windows.iter().enumerate() {
            if !window.summary.rules.is_empty() {
                out.push(Mismatch {
                    place: place(i + 1, window, start),
                    expected: "no rule fires".into(),
                    actual: window.summary.rules.iter().map(describe).collect(),
                    context: Vec::new(),
                });
            }
        }
    }
    for expect in &case.expect {
        compare_window(expect, windows, start, &mut out);
    }
    out
}

/// Renders mismatches as indented diff lines (no trailing newline), grouped by place.
pub fn render_diff(mismatches: &[Mismatch], indent: &str) -> String {
    let mut lines = Vec::new();
    let mut last_place = None;
    for mismatch in mismatches {
        if last_place != Some(&mismatch.place) {
            lines.push(format!("{indent}{}:", mismatch.place));
            last_place = Some(&mismatch.place);
        }
        lines.push(format!("{indent}- {}", mismatch.expected));
        for actual in &mismatch.actual {
            lines.push(format!("{indent}+ {actual}"));
        }
        for context in &mismatch.context {
            lines.push(format!("{indent}  {context}"));
        }
    }
    lines.join("\n")
}

fn compare_window(
    expect: &WindowExpect,
    windows: &[ClosedWindow],
    start: Timestamp,
    out: &mut Vec<Mismatch>,
) {
    let number = expect.window as usize;
    let Some(window) = number.checked_sub(1).and_then(|i| windows.get(i)) else {
        out.push(Mismatch {
            place: format!("window {number}"),
            expected: format!("window {number} closes"),
            actual: vec![format!(
                "only {} {} closed",
                windows.len(),
                plural(windows.len(), "window")
            )],
            context: overview(windows, start),
        });
        return;
    };
    let place = place(number, window, start);
    let mut push = |expected: String, actual: Vec<String>, context: Vec<String>| {
        out.push(Mismatch {
            place: place.clone(),
            expected,
            actual,
            context,
        });
    };
    for fire in &expect.fires {
        if let Some((expected, actual)) = compare_fire(fire, window) {
            push(expected, actual, Vec::new());
        }
    }
    for rule in &expect.not_firing {
        if let Some(reported) = find(window, &rule.name) {
            push(
                format!("{} not firing", rule.name),
                vec![describe(reported)],
                Vec::new(),
            );
        }
    }
    for (what, expected, actual) in [
        ("new", &expect.incidents.new, &window.incidents.new),
        (
            "ongoing",
            &expect.incidents.ongoing,
            &window.incidents.ongoing,
        ),
        (
            "resolved",
            &expect.incidents.resolved,
            &window.incidents.resolved,
        ),
    ] {
        let Some(expected) = expected else {
            continue;
        };
        let mut expected: Vec<&str> = expected.iter().map(|n| n.name.as_str()).collect();
        expected.sort_unstable();
        expected.dedup();
        if expected != *actual {
            push(
                format!("{what}: [{}]", expected.join(", ")),
                vec![format!("{what}: [{}]", actual.join(", "))],
                Vec::new(),
            );
        }
    }
    if let Some(expected) = expect.incidents.sent
        && expected != window.incidents.sent.is_some()
    {
        let word = |sent: bool| {
            if sent {
                "a message is sent"
            } else {
                "no message is sent (held)"
            }
        };
        push(
            word(expected).into(),
            vec![word(!expected).into()],
            Vec::new(),
        );
    }
    let message = window.message.as_deref();
    for needle in &expect.contains {
        match message {
            None => push(
                format!("message contains {needle:?}"),
                vec!["no message: no rule reached its threshold".into()],
                Vec::new(),
            ),
            Some(message) if !window.haystack.contains(needle.as_str()) => push(
                format!("message contains {needle:?}"),
                vec!["message does not contain it:".into()],
                quote(message),
            ),
            Some(_) => {}
        }
    }
    for needle in &expect.not_contains {
        if let Some(message) = message
            && window.haystack.contains(needle.as_str())
        {
            push(
                format!("message does not contain {needle:?}"),
                vec!["message contains it:".into()],
                quote(message),
            );
        }
    }
    let title = window.title.as_deref();
    for needle in &expect.title_contains {
        if !title.is_some_and(|t| t.contains(needle.as_str())) {
            push(
                format!("title contains {needle:?}"),
                vec![match title {
                    Some(title) => format!("title is {title:?}"),
                    None => "no message: no rule reached its threshold".into(),
                }],
                Vec::new(),
            );
        }
    }
    for needle in &expect.shows {
        let is_shown =
            message.is_some_and(|m| displayed_lines(m).any(|l| l.contains(needle.as_str())));
        if !is_shown {
            push(
                format!("message shows {needle:?} on a line"),
                vec!["no displayed line holds it:".into()],
                message.map(quote).unwrap_or_default(),
            );
        }
    }
}

/// The lines a person reads in a message: markdown quote and heading markers and bold stars
/// removed.
fn displayed_lines(message: &str) -> impl Iterator<Item = String> + '_ {
    message.lines().map(|line| {
        line.trim_start_matches("### ")
            .trim_start_matches("> ")
            .trim_end()
            .replace("**", "")
    })
}

/// Returns the (expected, actual) lines when a `fires` entry does not hold.
fn compare_fire(fire: &Fire, window: &ClosedWindow) -> Option<(String, Vec<String>)> {
    let name = &fire.rule.name;
    let expected = expected_fire(fire);
    let Some(reported) = find(window, name) else {
        let actual = match below_threshold(window, name) {
            Some((_, hits)) => format!("{name} not reported: ×{hits}, below its min_count"),
            None => format!("{name} not reported"),
        };
        return Some((expected, vec![actual]));
    };
    if fire.severity.is_some_and(|s| s != reported.severity) {
        return Some((expected, vec![describe(reported)]));
    }
    if fire.group.is_empty() {
        return (reported.count != fire.count).then(|| (expected, vec![describe(reported)]));
    }
    let count: u64 = reported
        .groups
        .iter()
        .filter(|g| {
            fire.group
                .iter()
                .all(|(key, value)| g.values.iter().any(|(k, v)| k == key && v == value))
        })
        .map(|g| g.count)
        .sum();
    if count == fire.count {
        return None;
    }
    let mut actual: Vec<String> = reported
        .groups
        .iter()
        .map(|g| format!("{name} {} ×{}", pairs(&g.values), g.count))
        .collect();
    if reported.other_groups_count > 0 {
        actual.push(format!(
            "{name} (other groups) ×{}",
            reported.other_groups_count
        ));
    }
    if let Some((_, hits)) = below_threshold(window, name) {
        actual.push(format!("{name} (groups below its min_count) ×{hits}"));
    }
    if actual.is_empty() {
        actual.push(format!("{name} ×{} without groups", reported.count));
    }
    Some((expected, actual))
}

fn expected_fire(fire: &Fire) -> String {
    let mut out = fire.rule.name.clone();
    if !fire.group.is_empty() {
        out.push(' ');
        out.push_str(&pairs(&fire.group));
    }
    out.push_str(&format!(" ×{}", fire.count));
    if let Some(severity) = fire.severity {
        out.push_str(&format!(" ({severity})"));
    }
    out
}

/// One line for a reported rule: `name ×count (severity)`.
fn describe(rule: &RuleSummary) -> String {
    format!("{} ×{} ({})", rule.name, rule.count, rule.severity)
}

/// The rule's hits in groups (or windows) that stayed below its `min_count`.
fn below_threshold<'w>(window: &'w ClosedWindow, name: &str) -> Option<&'w (String, u64)> {
    window
        .summary
        .below_threshold
        .iter()
        .find(|(rule, _)| rule == name)
}

fn find<'w>(window: &'w ClosedWindow, name: &str) -> Option<&'w RuleSummary> {
    window.summary.rules.iter().find(|r| r.name == name)
}

fn pairs(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `window N (0s to 1m)`, times relative to the test's start.
fn place(number: usize, window: &ClosedWindow, start: Timestamp) -> String {
    format!(
        "window {number} ({} to {})",
        relative(window.summary.start, start),
        relative(window.summary.end, start)
    )
}

/// What each closed window reported, for mismatches about windows that are not there.
fn overview(windows: &[ClosedWindow], start: Timestamp) -> Vec<String> {
    windows
        .iter()
        .enumerate()
        .map(|(i, window)| {
            let rules: Vec<String> = window.summary.rules.iter().map(describe).collect();
            let rules = if rules.is_empty() {
                "no rule fired".to_owned()
            } else {
                rules.join(", ")
            };
            format!("{}: {rules}", place(i + 1, window, start))
        })
        .collect()
}

fn relative(time: Timestamp, start: Timestamp) -> String {
    let offset = time.duration_since(start);
    let sign = if offset.is_negative() { "-" } else { "" };
    let offset = std::time::Duration::try_from(offset.abs()).unwrap_or_default();
    let millis = std::time::Duration::from_millis(offset.as_millis() as u64);
    format!("{sign}{}", crate::config::format_duration(millis))
}

fn quote(message: &str) -> Vec<String> {
    message
        .lines()
        .map(|line| format!("| {line}").trim_end().to_owned())
        .collect()
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}
