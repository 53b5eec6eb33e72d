//! [`RateBudget`]: at most `max` posts in any rolling minute, as DingTalk counts them.
//!
//! DingTalk throttles a robot for about ten minutes once it sees more than 20 messages in a
//! minute, so the client keeps its own, stricter budget. DingTalk counts by its own arrival
//! times, which the client never sees: a post arrives somewhere between the start of its
//! request and its answer. So a post occupies its slot from the start of the request until
//! [`WINDOW`] (61 s: a second of margin for clock rates) after its answer ([`RateBudget::complete`]);
//! then no 60 s span at the server holds more than `max` arrivals, whatever the latency.
//!
//! It is pure: time is passed in (a `tokio::time::Instant`, so paused-time tests drive it), and
//! the send times it starts from are loaded from the state directory by the caller so a restart
//! does not allow a burst.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long a post holds its slot after its answer: DingTalk's 60 s, plus a second of margin.
pub(crate) const WINDOW: Duration = Duration::from_secs(61);

/// Post times within the last minute, and how many are allowed.
#[derive(Debug, Clone)]
pub(crate) struct RateBudget {
    max: usize,
    sent: VecDeque<Instant>,
}

impl RateBudget {
    /// A budget of `max_per_minute` posts (at least 1), starting from earlier post times.
    pub(crate) fn new(max_per_minute: u32, earlier: impl IntoIterator<Item = Instant>) -> Self {
        let mut sent: Vec<Instant> = earlier.into_iter().collect();
        sent.sort();
        RateBudget {
            max: usize::try_from(max_per_minute.max(1)).unwrap_or(usize::MAX),
            sent: sent.into(),
        }
    }

    /// How many posts may go out at `now` without exceeding the budget.
    #[cfg(test)]
    pub(crate) fn free(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.max.saturating_sub(self.sent.len())
    }

    /// The earliest instant at or after `now` when one post is allowed.
    pub(crate) fn next_slot(&mut self, now: Instant) -> Instant {
        self.expire(now);
        if self.sent.len() < self.max {
            return now;
        }
        // The oldest post that must leave the window for one slot to free up.
        let index = self.sent.len() - self.max;
        self.sent[index] + WINDOW
    }

    /// Records a post whose request starts at `now`.
    pub(crate) fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    /// The latest post got its answer (or was given up) at `now`: it holds its slot until
    /// [`WINDOW`] after that, since DingTalk may have counted it as late as now.
    pub(crate) fn complete(&mut self, now: Instant) {
        if let Some(last) = self.sent.back_mut() {
            *last = (*last).max(now);
        }
    }

    /// Changes the budget (a reload); the posts already made still count.
    pub(crate) fn set_max(&mut self, max_per_minute: u32) {
        self.max = usize::try_from(max_per_minute.max(1)).unwrap_or(usize::MAX);
    }

    /// The post times still inside the window at `now`, oldest first (to persist them).
    pub(crate) fn recent(&mut self, now: Instant) -> impl Iterator<Item = Instant> + '_ {
        self.expire(now);
        self.sent.iter().copied()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&oldest) = self.sent.front() {
            if now.saturating_duration_since(oldest) >= WINDOW {
                self.sent.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_then_waits_for_the_oldest_to_leave_the_window() {
        let start = Instant::now();
        let mut budget = RateBudget::new(3, []);
        for i in 0..3 {
            let now = start + Duration::from_secs(i);
            assert_eq!(budget.next_slot(now), now);
            budget.record(now);
        }
        let now = start + Duration::from_secs(3);
        assert_eq!(budget.free(now), 0);
        assert_eq!(budget.next_slot(now), start + WINDOW);
        assert_eq!(budget.free(start + WINDOW), 1);
    }

    #[test]
    fn earlier_send_times_count() {
        let start = Instant::now() + Duration::from_secs(100);
        let earlier = (0..2).map(|i| start - Duration::from_secs(10 + i));
        let mut budget = RateBudget::new(2, earlier);
        assert_eq!(budget.free(start), 0);
        assert_eq!(
            budget.next_slot(start),
            start - Duration::from_secs(11) + WINDOW
        );
    }

    /// A request that starts at `t` arrives somewhere up to its answer: counted from the
    /// answer, no 60 s span of arrivals holds more than `max` whatever the latency.
    #[test]
    fn a_slot_is_held_until_a_minute_after_the_answer() {
        let start = Instant::now();
        let mut budget = RateBudget::new(2, []);
        budget.record(start);
        budget.complete(start + Duration::from_secs(9));
        let second = start + Duration::from_secs(10);
        budget.record(second);
        budget.complete(second);
        let third = budget.next_slot(second);
        assert!(
            third >= start + Duration::from_secs(9) + Duration::from_secs(60),
            "the first post may have arrived 9 s after its start: {:?}",
            third - start
        );
    }

    #[test]
    fn never_more_than_max_in_any_window() {
        let start = Instant::now();
        let mut budget = RateBudget::new(18, []);
        let mut posts = Vec::new();
        let mut now = start;
        while posts.len() < 100 {
            now = budget.next_slot(now);
            budget.record(now);
            posts.push(now);
            now += Duration::from_millis(100);
        }
        for (i, first) in posts.iter().enumerate() {
            let within = posts[i..].iter().filter(|t| **t - *first < WINDOW).count();
            assert!(within <= 18, "{within} posts within a minute of post {i}");
        }
    }
}
