//! Suppression: what is *not* said, and why. Silences (planned maintenance, a known noisy
//! key), mute hours (`time_intervals:` with `mute_during:` / `active_during:`) and inhibition
//! (a "database down" incident folds the app-level timeouts it causes).
//!
//! Nothing suppressed is lost: suppressed hits are counted and told in the footer of the next
//! message that goes out (or, deferred, reported in full when their mute interval ends). Pure:
//! the instant is passed in; the silence store and the state file are the agent's business.

pub mod interval;

pub use interval::{IntervalSpec, TimeInterval, TimeIntervals};
