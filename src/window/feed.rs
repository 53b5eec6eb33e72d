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
        stats: ScanStats,
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
}
