//! The `time_intervals:` section: named intervals as Alertmanager writes them (a list of
//! `{name, time_intervals: [{times, weekdays, days_of_month, months, years, location}]}`),
//! read into [`TimeIntervals`], and [`interval_names`], which `mute_during:`,
//! `active_during:` and absence rules' `schedule:` use to check the names they give.

use jiff::tz::TimeZone;

use super::diag::{backticked, suggest};
use super::walk::Ctx;
use super::yaml::{Kind, Node, Pos};
use crate::suppress::{IntervalSpec, TimeInterval, TimeIntervals};

const INTERVAL_KEYS: &[&str] = &["name", "time_intervals"];
const SPEC_KEYS: &[&str] = &[
    "times",
    "weekdays",
    "days_of_month",
    "months",
    "years",
    "location",
];
const TIME_KEYS: &[&str] = &["start_time", "end_time"];

const WEEKDAYS: &[&str] = &[
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Reads `time_intervals:` (absent: none).
pub(crate) fn time_intervals(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<TimeIntervals> {
    let Some(node) = node else {
        return Some(TimeIntervals::default());
    };
    let items = ctx.list(node, "time_intervals")?;
    let mut seen: Vec<(String, Pos)> = Vec::new();
    let mut out = Vec::new();
    let mut is_ok = true;
    for (index, item) in items.iter().enumerate() {
        let what = format!("time_intervals[{index}]");
        match interval(ctx, item, &what, &mut seen) {
            Some(interval) => out.push(interval),
            None => is_ok = false,
        }
    }
    is_ok.then(|| TimeIntervals::new(out))
}

/// The names under `time_intervals:` as written (also of intervals with other problems, so a
/// reference to one gets no second, confusing "unknown" error).
pub(crate) fn interval_names(node: Option<&Node>) -> Vec<String> {
    let Some(Node {
        kind: Kind::Seq(items),
        ..
    }) = node
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match &item.kind {
            Kind::Map(entries) => entries.iter().find_map(|(k, v)| match (&k.kind, &v.kind) {
                (Kind::Str(k), Kind::Str(v)) if k == "name" => Some(v.clone()),
                _ => None,
            }),
            _ => None,
        })
        .collect()
}

/// Reads a list of interval names (`mute_during: [nights]`), each of which must be in
/// `known`.
pub(crate) fn interval_refs(
    ctx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    known: &[String],
) -> Option<Vec<String>> {
    let names = ctx.strings(node, what)?;
    let mut is_ok = true;
    for (name, pos) in &names {
        is_ok &= check_interval_name(ctx, name, *pos, known);
    }
    is_ok.then(|| names.into_iter().map(|(n, _)| n).collect())
}

/// Returns true if and only if `name` is one of `known`; records an error at `pos` otherwise.
pub(crate) fn check_interval_name(
    ctx: &mut Ctx<'_>,
    name: &str,
    pos: Pos,
    known: &[String],
) -> bool {
    if known.iter().any(|k| k == name) {
        return true;
    }
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let help = match suggest(name, &known) {
        Some(best) => format!("did you mean `{best}`?"),
        None if known.is_empty() => {
            "no intervals are defined; add them under `time_intervals:`".into()
        }
        None => format!("defined intervals: {}", backticked(&known)),
    };
    ctx.error(pos, format!("unknown time interval `{name}`"), Some(help));
    false
}

fn interval(
    ctx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    seen: &mut Vec<(String, Pos)>,
) -> Option<TimeInterval> {
    let map = ctx.map(node, what, INTERVAL_KEYS)?;
    let name_node = ctx.required(&map, "name", &format!("`{what}`"))?;
    let name = ctx.non_empty_string(name_node, &format!("{what}.name"))?;
    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
        let (line, column) = first.line_col().unwrap_or((1, 1));
        ctx.error(
            name_node.pos,
            format!("duplicate time interval name `{name}`"),
            Some(format!("`{name}` is first defined at {line}:{column}")),
        );
        return None;
    }
    seen.push((name.clone(), name_node.pos));
    let specs_node = ctx.required(&map, "time_intervals", &format!("time interval `{name}`"))?;
    let items = ctx.list(specs_node, &format!("{what}.time_intervals"))?;
    let specs: Vec<Option<IntervalSpec>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| spec(ctx, item, &format!("{what}.time_intervals[{i}]")))
        .collect();
    let specs: Option<Vec<IntervalSpec>> = specs.into_iter().collect();
    Some(TimeInterval {
        name,
        specs: specs?,
    })
}

fn spec(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<IntervalSpec> {
    let map = ctx.map(node, what, SPEC_KEYS)?;
    let location = match map.get("location") {
        Some(n) => location(ctx, n, &format!("{what}.location")),
        None => Some(TimeZone::UTC),
    };
    let times = match map.get("times") {
        Some(n) => times(ctx, n, &format!("{what}.times")),
        None => Some(Vec::new()),
    };
    let ranges =
        |ctx: &mut Ctx<'_>, key: &str, parse: &dyn Fn(&str) -> Option<i64>, min, max| match map
            .get(key)
        {
            Some(n) => ranges(ctx, n, &format!("{what}.{key}"), parse, (min, max)),
            None => Some(Vec::new()),
        };
    let weekdays = ranges(ctx, "weekdays", &|t| named(t, WEEKDAYS, 0), 0, 6);
    let days = ranges(ctx, "days_of_month", &|t| t.parse().ok(), -31, 31);
    let months = ranges(ctx, "months", &|t| named(t, MONTHS, 1), 1, 12);
    let years = ranges(ctx, "years", &|t| t.parse().ok(), 1, 9999);
    if let Some(days) = &days
        && days.iter().any(|&(s, e)| s == 0 || e == 0)
    {
        ctx.error(
            map.get("days_of_month").map_or(map.pos, |n| n.pos),
            format!("`{what}.days_of_month` has a day 0"),
            Some("days are 1 to 31, or -1 (the last day of the month) to -31".into()),
        );
        return None;
    }
    let narrow = |v: Vec<(i64, i64)>| -> Vec<(i8, i8)> {
        v.into_iter()
            .filter_map(|(s, e)| Some((i8::try_from(s).ok()?, i8::try_from(e).ok()?)))
            .collect()
    };
    let unsigned = |v: Vec<(i64, i64)>| -> Vec<(u8, u8)> {
        v.into_iter()
            .filter_map(|(s, e)| Some((u8::try_from(s).ok()?, u8::try_from(e).ok()?)))
            .collect()
    };
    Some(IntervalSpec {
        times: times?,
        weekdays: unsigned(weekdays?),
        days_of_month: narrow(days?),
        months: unsigned(months?),
        years: years?
            .into_iter()
            .filter_map(|(s, e)| Some((i16::try_from(s).ok()?, i16::try_from(e).ok()?)))
            .collect(),
        location: location?,
    })
}

/// Alertmanager's `location`: `Local`, `UTC` or an IANA name; unknown zones are errors.
fn location(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<TimeZone> {
    if matches!(&node.kind, Kind::Str(s) if s == "Local") {
        return Some(TimeZone::system());
    }
    ctx.timezone(node, what)
}

fn times(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<(u16, u16)>> {
    let items = ctx.list(node, what)?;
    let mut out = Vec::new();
    let mut is_ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_what = format!("{what}[{i}]");
        let Some(map) = ctx.map(item, &item_what, TIME_KEYS) else {
            is_ok = false;
            continue;
        };
        let mut read = |key: &str| {
            let node = ctx.required(&map, key, &format!("`{item_what}`"))?;
            let text = ctx.string(node, &format!("{item_what}.{key}"))?;
            match minute_of_day(&text) {
                Some(minute) => Some(minute),
                None => {
                    ctx.error(
                        node.pos,
                        format!("`{item_what}.{key}` is not a time of day: `{text}`"),
                        Some("write `HH:MM`, from `00:00` to `24:00`".into()),
                    );
                    None
                }
            }
        };
        let (start, end) = (read("start_time"), read("end_time"));
        match (start, end) {
            (Some(start), Some(end)) if start < end => out.push((start, end)),
            (Some(_), Some(_)) => {
                ctx.error(
                    item.pos,
                    format!("`{item_what}` ends before it starts"),
                    Some(
                        "a range over midnight is two: `22:00`–`24:00` and `00:00`–`06:00`".into(),
                    ),
                );
                is_ok = false;
            }
            _ => is_ok = false,
        }
    }
    is_ok.then_some(out)
}

/// `HH:MM`, `00:00` to `24:00`, as minutes of the day.
fn minute_of_day(text: &str) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    if minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = hours.checked_mul(60)?.checked_add(minutes)?;
    (minutes < 60 && total <= 24 * 60).then_some(total)
}

/// `monday` is 1 in `names` starting at 0; numbers are taken as they are.
fn named(text: &str, names: &[&str], first: i64) -> Option<i64> {
    let lower = text.trim().to_ascii_lowercase();
    match names.iter().position(|n| *n == lower) {
        Some(index) => i64::try_from(index).ok().map(|i| i + first),
        None => lower.parse().ok(),
    }
}

/// Reads a list of `a` or `a:b` ranges within `min..=max`, `a` not after `b`.
fn ranges(
    ctx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    parse: &dyn Fn(&str) -> Option<i64>,
    (min, max): (i64, i64),
) -> Option<Vec<(i64, i64)>> {
    let items = ctx.strings(node, what)?;
    let mut out = Vec::new();
    let mut is_ok = true;
    for (text, pos) in items {
        let (first, last) = text.split_once(':').unwrap_or((&text, &text));
        let range = parse(first).zip(parse(last));
        match range {
            Some((a, b)) if (min..=max).contains(&a) && (min..=max).contains(&b) => {
                // Negative days of the month count from the end: -3:-1 is in order.
                if a <= b || (a > 0 && b < 0) {
                    out.push((a, b));
                } else {
                    ctx.error(
                        pos,
                        format!("`{what}` has a range that ends before it starts: `{text}`"),
                        Some("write a range in order, `start:end`; a range over the week's or year's end is two".into()),
                    );
                    is_ok = false;
                }
            }
            _ => {
                ctx.error(
                    pos,
                    format!("`{what}` has `{text}`, which is not a value or `start:end` range"),
                    Some(format!("values are from {min} to {max}, or names")),
                );
                is_ok = false;
            }
        }
    }
    is_ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use crate::config::load_yaml as load;

    const RULES: &str = "rules:\n  - {name: db, pattern: timeout}\n";

    #[test]
    fn alertmanager_intervals_load_and_hold_in_their_zone() {
        let text = format!(
            "time_intervals:
  - name: nights
    time_intervals:
      - times: [{{start_time: '22:00', end_time: '24:00'}}]
        weekdays: ['monday:friday']
        location: Asia/Shanghai
      - times: [{{start_time: '00:00', end_time: '06:00'}}]
        weekdays: ['tuesday:saturday']
        location: Asia/Shanghai
  - name: year_end
    time_intervals:
      - {{months: [december], days_of_month: ['-7:-1'], years: ['2026:2030']}}
{RULES}"
        );
        let config = load(&text).unwrap();
        let intervals = &config.time_intervals;
        assert_eq!(
            intervals.names().collect::<Vec<_>>(),
            ["nights", "year_end"]
        );
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert!(intervals.contains("nights", at("2026-12-01T14:00:00Z")));
        assert!(!intervals.contains("nights", at("2026-12-01T13:59:00Z")));
        assert!(intervals.contains("year_end", at("2026-12-25T10:00:00Z")));
        assert!(!intervals.contains("year_end", at("2026-12-24T10:00:00Z")));
    }

    #[test]
    fn unknown_zones_bad_times_and_ranges_are_errors_with_positions() {
        let text = format!(
            "time_intervals:
  - name: nights
    time_intervals:
      - location: Mars/Olympus
        times: [{{start_time: '22:00', end_time: '06:00'}}]
        weekdays: [friday:monday, funday]
  - name: nights
    time_intervals: []
{RULES}"
        );
        let err = load(&text).unwrap_err();
        assert!(err.contains("logding.yaml:4:19"), "{err}");
        assert!(err.contains("unknown time zone `Mars/Olympus`"), "{err}");
        assert!(err.contains("ends before it starts"), "{err}");
        assert!(err.contains("`22:00`–`24:00`"), "{err}");
        assert!(err.contains("`friday:monday`"), "{err}");
        assert!(err.contains("`funday`"), "{err}");
        assert!(err.contains("logding.yaml:7:11"), "{err}");
        assert!(
            err.contains("duplicate time interval name `nights`"),
            "{err}"
        );
    }
}
