//! How hits of a scan are counted: the one piece of glue between [`crate::scan`] and the
//! [`Aggregator`], shared by `logding run` (the agent), `logding scan` and `logding test`, so
//! that those commands count exactly the way the agent does.

use jiff::Timestamp;

use super::shaper::Shaped;
use super::{Aggregator, HitRef, Shapes};
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
        self.observe_scan_shaped(now, data, hits, None, stats, file, timestamp);
    }

    /// Like [`observe_scan`](Aggregator::observe_scan), with the hits' `shapes` found ahead
    /// (on the thread that scanned). They count only when found with the shapers in use now
    /// ([`Aggregator::shaping`]); otherwise, or for `None`, hits are shaped here (from what
    /// their scan found, as [`Shaping::shape`](super::Shaping::shape) does).
    #[allow(clippy::too_many_arguments)]
    pub fn observe_scan_shaped(
        &mut self,
        now: Timestamp,
        data: &[u8],
        hits: &[Hit],
        shapes: Option<&Shapes>,
        stats: &ScanStats,
        file: &str,
        timestamp: Option<&TimestampSpec>,
    ) {
        let shaped_here;
        let shapes = match shapes.filter(|s| s.shaping.same(&self.shapers) && s.len() == hits.len())
        {
            Some(shapes) => shapes,
            None => {
                shaped_here = self.shapers.shape(data, hits);
                &shaped_here
            }
        };
        let mut groups: Vec<Option<&[u8]>> = Vec::new();
        for (i, hit) in hits.iter().enumerate() {
            super::shaper::groups_of(hit, data, &mut groups);
            let hit_ref = HitRef {
                rule: hit.rule,
                line: &data[hit.line.clone()],
                groups: &groups,
                file,
            };
            let shape = shapes.get(i);
            self.observe_stamped_shaped(now, timestamp, hit_ref, shape);
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
        self.observe_stamped_shaped(now, timestamp, hit, None);
    }

    fn observe_stamped_shaped(
        &mut self,
        now: Timestamp,
        timestamp: Option<&crate::event_time::TimestampSpec>,
        hit: HitRef<'_>,
        shape: Option<Shaped<'_>>,
    ) {
        use crate::event_time::Stamp;
        let stamp = timestamp.map_or(Stamp::Missing, |spec| spec.stamp(hit.line, now));
        let event = match stamp {
            Stamp::Event(at) => Some(at),
            Stamp::Skewed | Stamp::Missing => None,
        };
        self.observe_shaped(now, event, hit, shape);
        if stamp == Stamp::Skewed {
            self.observe_skewed(1);
        }
    }
}
