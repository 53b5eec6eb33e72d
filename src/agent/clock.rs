//! The agent's clock: wall-clock time derived from the monotonic clock.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

/// Wall-clock time derived from the monotonic clock, so that paused tokio time drives windows
/// in tests and a wall-clock jump does not stretch or cut a window.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    wall: Timestamp,
    mono: Instant,
}

impl Clock {
    pub(super) fn start() -> Clock {
        Clock {
            wall: Timestamp::now(),
            mono: Instant::now(),
        }
    }

    /// A clock whose `now` is `wall` (tests: a restart continues the paused clock).
    #[cfg(test)]
    pub(super) fn at(wall: Timestamp) -> Clock {
        Clock {
            wall,
            mono: Instant::now(),
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        let elapsed = Instant::now().saturating_duration_since(self.mono);
        self.wall.checked_add(elapsed).unwrap_or(self.wall)
    }

    pub(super) fn instant_of(&self, at: Timestamp) -> Instant {
        let offset = at.duration_since(self.wall);
        match Duration::try_from(offset) {
            Ok(d) => self.mono + d,
            Err(_) => self.mono,
        }
    }
}
