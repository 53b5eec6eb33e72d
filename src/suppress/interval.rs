//! Named time intervals (`time_intervals:`), as Alertmanager defines them: times of day,
//! weekdays, days of the month, months and years, read in a `location` time zone. An interval
//! holds at an instant when one of its specs holds; a spec holds when every field it sets
//! holds (a field left out holds always).
//!
//! Used by mute hours (`mute_during:`, `active_during:`) and by absence rules' `schedule:`.
//! [`TimeInterval::next_change`] says when an interval next starts or ends, so that deferred
//! hits are released, and schedules re-evaluated, at the right second. Pure: the instant is
//! passed in.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// How far [`TimeInterval::next_change`] looks ahead, in days (a little over four years, so a
/// spec limited to February 29th or to one year still finds its start).
pub const HORIZON_DAYS: i32 = 4 * 366 + 1;

/// Every named interval of a configuration.
#[derive(Clone, Debug, Default)]
pub struct TimeIntervals {
    by_name: BTreeMap<String, TimeInterval>,
}

/// One named interval: holds when any of its specs holds.
#[derive(Clone, Debug)]
pub struct TimeInterval {
    /// Its name, as written under `time_intervals:`.
    pub name: String,
    /// Its specs (`time_intervals:` entries under the name); none: never holds.
    pub specs: Vec<IntervalSpec>,
}

/// One spec: every field it sets must hold. Ranges are inclusive, except times of day, whose
/// end is exclusive (as in Alertmanager).
#[derive(Clone, Debug)]
pub struct IntervalSpec {
    /// Minutes of the day, `[start, end)`, `end` at most 1440 (`24:00`).
    pub times: Vec<(u16, u16)>,
    /// Weekdays, Sunday 0 to Saturday 6.
    pub weekdays: Vec<(u8, u8)>,
    /// Days of the month, 1 to 31, or -1 (the last day) to -31.
    pub days_of_month: Vec<(i8, i8)>,
    /// Months, 1 to 12.
    pub months: Vec<(u8, u8)>,
    /// Years.
    pub years: Vec<(i16, i16)>,
    /// The time zone the fields are read in.
    pub location: TimeZone,
}

impl TimeIntervals {
    /// A set of intervals (names are unique: the config reader checks it).
    pub fn new(intervals: impl IntoIterator<Item = TimeInterval>) -> TimeIntervals {
        TimeIntervals {
            by_name: intervals.into_iter().map(|i| (i.name.clone(), i)).collect(),
        }
    }

    /// The interval named `name`.
    pub fn get(&self, name: &str) -> Option<&TimeInterval> {
        self.by_name.get(name)
    }

    /// Returns true if and only if the interval named `name` holds at `at` (an unknown name,
    /// which the config reader refuses, never holds).
    pub fn contains(&self, name: &str, at: Timestamp) -> bool {
        self.get(name).is_some_and(|i| i.contains(at))
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Returns true if and only if no interval is defined.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl TimeInterval {
    /// Returns true if and only if the interval holds at `at`.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.specs.iter().any(|spec| spec.contains(at))
    }

    /// The first instant after `at` at which [`contains`](Self::contains) gives another answer
    /// than at `at`; `None` when that does not happen within [`HORIZON_DAYS`].
    ///
    /// Answers change only at the specs' times of day and at midnights, in their locations, so
    /// those instants are tried in order, day by day.
    pub fn next_change(&self, at: Timestamp) -> Option<Timestamp> {
        let now = self.contains(at);
        let days: Vec<Date> = self
            .specs
            .iter()
            .map(|spec| at.to_zoned_datetime(spec.location.clone()).date())
            .collect();
        for day in 0..HORIZON_DAYS {
            let mut candidates: Vec<Timestamp> = self
                .specs
                .iter()
                .zip(&days)
                .filter_map(|(spec, first)| {
                    Some((spec, first.checked_add(jiff::Span::new().days(day)).ok()?))
                })
                .flat_map(|(spec, date)| spec.boundaries(date))
                .filter(|t| *t > at)
                .collect();
            candidates.sort_unstable();
            candidates.dedup();
            if let Some(change) = candidates.into_iter().find(|t| self.contains(*t) != now) {
                return Some(change);
            }
        }
        None
    }
}

impl IntervalSpec {
    /// A spec that always holds, read in `location` (fields are then narrowed by the reader).
    pub fn always(location: TimeZone) -> IntervalSpec {
        IntervalSpec {
            times: Vec::new(),
            weekdays: Vec::new(),
            days_of_month: Vec::new(),
            months: Vec::new(),
            years: Vec::new(),
            location,
        }
    }

    /// Returns true if and only if every field set holds at `at`.
    pub fn contains(&self, at: Timestamp) -> bool {
        let zoned = at.to_zoned_datetime(self.location.clone());
        let minute =
            u16::try_from(i32::from(zoned.hour()) * 60 + i32::from(zoned.minute())).unwrap_or(0);
        let weekday = u8::try_from(zoned.weekday().to_sunday_zero_offset()).unwrap_or(0);
        let month = u8::try_from(zoned.month()).unwrap_or(1);
        let day = zoned.day();
        let days_in_month = zoned.days_in_month();
        let holds = |empty: bool, any: bool| empty || any;
        holds(
            self.times.is_empty(),
            self.times.iter().any(|&(s, e)| s <= minute && minute < e),
        ) && holds(
            self.weekdays.is_empty(),
            self.weekdays
                .iter()
                .any(|&(s, e)| s <= weekday && weekday <= e),
        ) && holds(
            self.days_of_month.is_empty(),
            self.days_of_month
                .iter()
                .any(|&(s, e)| in_days(s, e, day, days_in_month)),
        ) && holds(
            self.months.is_empty(),
            self.months.iter().any(|&(s, e)| s <= month && month <= e),
        ) && holds(
            self.years.is_empty(),
            self.years
                .iter()
                .any(|&(s, e)| s <= zoned.year() && zoned.year() <= e),
        )
    }

    /// The instants of `date` (in the location) at which this spec's answer may change: its
    /// midnight and its times of day.
    fn boundaries(&self, date: Date) -> Vec<Timestamp> {
        let mut minutes: Vec<u16> = vec![0];
        for &(start, end) in &self.times {
            minutes.push(start);
            minutes.push(end);
        }
        minutes
            .into_iter()
            .filter_map(|minute| {
                let (date, minute) = if minute >= 24 * 60 {
                    (date.tomorrow().ok()?, 0)
                } else {
                    (date, minute)
                };
                let hour = i8::try_from(minute / 60).ok()?;
                let minute = i8::try_from(minute % 60).ok()?;
                let zoned = date
                    .at(hour, minute, 0, 0)
                    .to_zoned_datetime(self.location.clone());
                zoned.ok().map(|z| z.timestamp())
            })
            .collect()
    }
}

/// Returns true if and only if `day` is in the range `start..=end` of days of the month,
/// negative days counting from the month's end (-1 is its last day), as Alertmanager reads
/// them; a range reaching past the month's end stops at it.
fn in_days(start: i8, end: i8, day: i8, days_in_month: i8) -> bool {
    let resolve = |d: i8| if d < 0 { days_in_month + d + 1 } else { d };
    let (start, end) = (resolve(start).max(1), resolve(end).min(days_in_month));
    start <= day && day <= end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    /// Weeknights 22:00–06:00 in Shanghai, the usual way: two time ranges.
    fn nights() -> TimeInterval {
        let mut evening = IntervalSpec::always(shanghai());
        evening.times = vec![(22 * 60, 24 * 60)];
        evening.weekdays = vec![(1, 5)];
        let mut morning = IntervalSpec::always(shanghai());
        morning.times = vec![(0, 6 * 60)];
        morning.weekdays = vec![(2, 6)];
        TimeInterval {
            name: "nights".into(),
            specs: vec![evening, morning],
        }
    }

    #[test]
    fn times_and_weekdays_are_read_in_the_location() {
        let nights = nights();
        // 2026-12-01 is a Tuesday; 14:00Z is 22:00 in Shanghai.
        assert!(!nights.contains(ts("2026-12-01T13:59:59Z")));
        assert!(nights.contains(ts("2026-12-01T14:00:00Z")));
        assert!(nights.contains(ts("2026-12-01T21:59:59Z")));
        assert!(
            !nights.contains(ts("2026-12-01T22:00:00Z")),
            "06:00 is the end, exclusive"
        );
        // Saturday 23:00 Shanghai (Friday 22:00 + 25h): not a weeknight.
        assert!(!nights.contains(ts("2026-12-05T15:00:00Z")));
    }

    #[test]
    fn next_change_finds_the_exact_second_across_days_and_weekends() {
        let nights = nights();
        assert_eq!(
            nights.next_change(ts("2026-12-01T10:00:00Z")),
            Some(ts("2026-12-01T14:00:00Z"))
        );
        // Inside the evening spec, the night goes on into the morning spec: ends at 06:00.
        assert_eq!(
            nights.next_change(ts("2026-12-01T15:00:00Z")),
            Some(ts("2026-12-01T22:00:00Z"))
        );
        // Saturday 06:00 Shanghai ends Friday's night; the next starts Monday 22:00.
        assert_eq!(
            nights.next_change(ts("2026-12-05T00:00:00Z")),
            Some(ts("2026-12-07T14:00:00Z"))
        );
    }

    #[test]
    fn days_of_month_count_from_the_end_and_months_and_years_narrow() {
        let mut last_days = IntervalSpec::always(TimeZone::UTC);
        last_days.days_of_month = vec![(-2, -1)];
        assert!(last_days.contains(ts("2027-02-27T12:00:00Z")));
        assert!(!last_days.contains(ts("2027-02-26T12:00:00Z")));
        assert!(last_days.contains(ts("2026-12-30T00:00:00Z")));
        let mut spec = IntervalSpec::always(TimeZone::UTC);
        spec.months = vec![(12, 12)];
        spec.years = vec![(2026, 2026)];
        let december = TimeInterval {
            name: "december".into(),
            specs: vec![spec],
        };
        assert!(december.contains(ts("2026-12-31T23:59:59Z")));
        assert_eq!(
            december.next_change(ts("2026-12-15T00:00:00Z")),
            Some(ts("2027-01-01T00:00:00Z"))
        );
        assert_eq!(december.next_change(ts("2027-01-01T00:00:00Z")), None);
    }

    #[test]
    fn an_interval_without_specs_never_holds_and_an_empty_spec_always_does() {
        let never = TimeInterval {
            name: "never".into(),
            specs: Vec::new(),
        };
        assert!(!never.contains(ts("2026-12-01T00:00:00Z")));
        let always = TimeInterval {
            name: "always".into(),
            specs: vec![IntervalSpec::always(TimeZone::UTC)],
        };
        assert!(always.contains(ts("2026-12-01T00:00:00Z")));
        assert_eq!(always.next_change(ts("2026-12-01T00:00:00Z")), None);
        let set = TimeIntervals::new([never, always]);
        assert!(set.contains("always", ts("2026-12-01T00:00:00Z")));
        assert!(!set.contains("unknown", ts("2026-12-01T00:00:00Z")));
    }
}
