//! How hits of a scan are counted: the one piece of glue between [`crate::scan`] and the
//! [`Aggregator`], shared by `logding run` (the agent), `logding scan` and `logding test`, so
//! that those commands count exactly the way the agent does.

use jiff::Timestamp;

use super::{Aggregator, HitRef};
use crate::event_time::TimestampSpec;
use crate::scan::{Hit, ScanStats};

impl Aggregator {
    /// Counts what one scan of `data` found at `now`: every hit (ranges into `data`), with its
    /// own time when the source has a `timestamp:` spec, then the lines it excluded, so that
    /// excluded lines count in the window the hits opened.
    pub fn observe_scan(
        &mut self,
        now: Timestamp,
        data: &[u8],
        hits: &[Hit],
        stats: &ScanStats,
        file: &str,
        timestamp: Option<&TimestampSpec>,
    ) {
        let mut groups: Vec<Option<&[u8]>> = Vec::new();
        for hit in hits {
            groups.clear();
            groups.extend(hit.groups.iter().map(|g| g.clone().map(|r| &data[r])));
            self.observe_stamped(
                now,
                timestamp,
                HitRef {
                    rule: hit.rule,
                    line: &data[hit.line.clone()],
                    groups: &groups,
                    file,
                },
            );
        }
        if stats.excluded > 0 {
            self.observe_excluded(now, stats.excluded);
        }
    }

    /// Like [`observe`](Aggregator::observe), reading the hit's own time with the source's
    /// `timestamp:` spec when it has one: a line stamped too far ahead of the clock counts as
    /// skewed and keeps its read time; a line without a readable time keeps its read time.
    pub fn observe_stamped(
        &mut self,
        now: Timestamp,
        timestamp: Option<&crate::event_time::TimestampSpec>,
        hit: HitRef<'_>,
    ) {
        use crate::event_time::Stamp;
        let stamp = timestamp.map_or(Stamp::Missing, |spec| spec.stamp(hit.line, now));
        let event = match stamp {
            Stamp::Event(at) => Some(at),
            Stamp::Skewed | Stamp::Missing => None,
        };
        self.observe_at(now, event, hit);
        if stamp == Stamp::Skewed {
            self.observe_skewed(1);
        }
    }
}
