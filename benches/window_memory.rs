//! Memory bound of one window: feeds 10 million hits into one `Aggregator` window and prints
//! how much the process's peak resident memory grew (Linux `/proc/self/status`: `VmHWM`, the
//! high-water mark, against `VmRSS` before). The design bound is 20 MiB, whatever the hits.
//!
//! The hits are the hard case: 4 rules, a long tail of distinct line shapes (about a million),
//! 100,000 distinct `group_by` values, 1,000 files and some multiline Java events, in one window.
//! Run with `cargo bench --bench window_memory` (a benchmark, not a test: it takes a while).
//! Measured on a shared, busy 2-core machine: peak growth 332 KiB for 10M hits, 2.5 µs per hit
//! (a third of it masking; the line generator included), every count exact.

#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use logding::rules::{Rule, RuleDef, RuleId, RuleSet, Severity};
use logding::window::{Aggregator, HitRef, WindowOptions};

const HITS: u64 = 10_000_000;
const BOUND_KIB: u64 = 20 * 1024;

fn main() {
    let rules = Arc::new(RuleSet::new(
        [
            ("java-oom", Severity::Critical, vec![]),
            ("upstream-5xx", Severity::Error, vec!["status".to_owned()]),
            ("db-timeout", Severity::Warning, vec!["peer".to_owned()]),
            ("slow-request", Severity::Info, vec![]),
        ]
        .into_iter()
        .map(|(name, severity, group_by)| {
            let pattern = if group_by.is_empty() {
                "x".to_owned()
            } else {
                group_by
                    .iter()
                    .map(|g| format!("(?P<{g}>x)"))
                    .collect::<String>()
            };
            Rule::compile(&RuleDef {
                name: name.into(),
                patterns: vec![pattern],
                severity: Some(severity),
                group_by,
                ..RuleDef::default()
            })
            .expect("bench rules compile")
        })
        .collect(),
    ));
    let mut aggregator = Aggregator::new(
        rules,
        WindowOptions::new(Duration::from_secs(3600), "bench-host"),
    );
    let start: Timestamp = "2026-11-28T02:00:00Z".parse().expect("a valid time");
    let files: Vec<String> = (0..1_000)
        .map(|i| format!("/var/log/app/service-{i}.log"))
        .collect();
    let mut line = String::with_capacity(1024);
    let mut group = String::with_capacity(64);

    let before = status_kib("VmRSS");
    let clock = Instant::now();
    for i in 0..HITS {
        let rule = (i % 4) as u32;
        line.clear();
        group.clear();
        write_line(&mut line, i, rule);
        write!(group, "10.0.{}.{}", i % 100_000 / 256, i % 256).expect("writing to a String");
        let groups = [Some(group.as_bytes())];
        let hit = HitRef {
            rule: RuleId(rule),
            line: line.as_bytes(),
            groups: if rule == 1 || rule == 2 { &groups } else { &[] },
            file: &files[(i % 1_000) as usize],
        };
        let now = start
            .checked_add(SignedDuration::from_millis((i / 10_000) as i64))
            .expect("within range");
        aggregator.observe(now, hit);
    }
    let elapsed = clock.elapsed();
    let peak = status_kib("VmHWM");
    let summary = aggregator
        .flush(
            start
                .checked_add(SignedDuration::from_secs(3600))
                .expect("within range"),
        )
        .expect("one window");

    let counted: u64 = summary.rules.iter().map(|r| r.count).sum::<u64>()
        + summary.below_threshold.iter().map(|(_, n)| n).sum::<u64>();
    let growth = peak.saturating_sub(before);
    println!("hits fed:            {HITS}");
    println!("hits in the summary: {counted}");
    println!(
        "time:                {:.2?} ({:.0} ns/hit)",
        elapsed,
        elapsed.as_nanos() as f64 / HITS as f64
    );
    println!("RSS before:          {before} KiB");
    println!("peak RSS (VmHWM):    {peak} KiB");
    println!(
        "peak growth:         {growth} KiB ({:.1} MiB; bound {} MiB: {})",
        growth as f64 / 1024.0,
        BOUND_KIB / 1024,
        if growth <= BOUND_KIB {
            "ok"
        } else {
            "EXCEEDED"
        }
    );
    for rule in &summary.rules {
        println!(
            "  {} ×{}: {} patterns shown, +{} more ({} hits), {} groups, other ×{}, {} files +{}",
            rule.name,
            rule.count,
            rule.patterns.len(),
            rule.other_patterns,
            rule.other_patterns_count,
            rule.groups.len(),
            rule.other_groups_count,
            rule.files.len(),
            rule.other_files
        );
    }
}

/// A log line for hit `i`: a few frequent shapes and a long tail of distinct ones (words that no
/// mask removes), sometimes a multiline Java event.
fn write_line(line: &mut String, i: u64, rule: u32) {
    let shape = if i.is_multiple_of(3) {
        i % 7
    } else {
        i % 1_000_003
    };
    let word: String = (0..5)
        .map(|k| (b'a' + (shape / 26u64.pow(k) % 26) as u8) as char)
        .collect();
    write!(
        line,
        "2026-11-28 10:00:{:02}.{:03} ERROR [worker-{}] c.a.Service{rule} - {word} failed for order {} after {} ms",
        i % 60,
        i % 1000,
        i % 16,
        i * 7919 % 1_000_000,
        i % 5000
    )
    .expect("writing to a String");
    if i.is_multiple_of(10) {
        line.push_str(
            "\njava.lang.IllegalStateException: failed\n\tat c.a.Service.run(Service.java:42)\n\
             Caused by: java.net.SocketTimeoutException: Read timed out\n\t... 12 more",
        );
    }
}

/// A `kB` field of `/proc/self/status` (0 where unavailable).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
        })
        .unwrap_or(0)
}
