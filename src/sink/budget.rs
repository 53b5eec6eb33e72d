//! [`RateBudget`]: at most `max` posts in any rolling 60 seconds.
//!
//! DingTalk throttles a robot for about ten minutes once it sees more than 20 messages in a
//! minute, so the client keeps its own, stricter budget. It is pure: time is passed in (a
//! `tokio::time::Instant`, so paused-time tests drive it), and the send times it starts from
//! are loaded from the state directory by the caller so a restart does not allow a burst.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The rolling window DingTalk counts messages in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

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

    /// Records a post at `now`.
    pub(crate) fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
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
