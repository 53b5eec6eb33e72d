//! Micro-benchmarks of the scan hot path: `cargo bench --bench scan`.
//!
//! A tiny hand-rolled harness (no criterion: CI compiles benches with clippy, and compile time
//! matters more there than confidence intervals). It scans a corpus with the 20 rules of
//! `bench/rules.txt` (one rule per pattern), in 4 MiB chunks, and prints MiB/s for the fast
//! path ([`Matcher::scan`]), for scan plus every hit observed into one window (the agent's hot
//! path), and for the rule-by-rule reference ([`Matcher::scan_reference`]).
//!
//! The corpus is `$LOGDING_BENCH_LOG` when set (e.g. a file from `bench/gen.py`), otherwise a
//! deterministic synthetic Spring-style log of 64 MiB. Without `--bench` on the command line
//! (e.g. `cargo test --benches`) it runs one small iteration as a smoke test;
//! `LOGDING_BENCH_FAST_ONLY=1` skips the (slow) reference, e.g. under a profiler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logding::rules::{Rule, RuleDef, RuleSet};
use logding::scan::{Hit, Matcher};
use logding::window::{Aggregator, HitRef, WindowOptions};

const CHUNK_BYTES: usize = 4 << 20;

fn main() {
    let is_bench = std::env::args().any(|a| a == "--bench");
    let corpus = match std::env::var_os("LOGDING_BENCH_LOG") {
        Some(path) => std::fs::read(&path).expect("LOGDING_BENCH_LOG is readable"),
        None => synthetic(if is_bench { 64 << 20 } else { 1 << 20 }),
    };
    let matcher = Matcher::new(Arc::new(rules()), "app");
    let chunks = split(&corpus);
    let mib = corpus.len() as f64 / f64::from(1 << 20);
    let rounds = if is_bench { 5 } else { 1 };

    let (fast_time, fast_hits) = best_of(rounds, || run(&chunks, |c, o| matcher.scan(c, o)));
    report("scan (fast)", mib, fast_time, fast_hits);
    let (window_time, observed) = best_of(rounds, || observe_all(&matcher, &chunks));
    report("scan + window", mib, window_time, observed);
    if std::env::var_os("LOGDING_BENCH_FAST_ONLY").is_none() {
        let reference_rounds = if is_bench { 2 } else { 1 };
        let (reference_time, reference_hits) = best_of(reference_rounds, || {
            run(&chunks, |c, o| matcher.scan_reference(c, o))
        });
        assert_eq!(
            fast_hits, reference_hits,
            "fast and reference scans disagree"
        );
        report("scan_reference", mib, reference_time, reference_hits);
    }
}

/// One rule per line of `bench/rules.txt`.
fn rules() -> RuleSet {
    let text = include_str!("../bench/rules.txt");
    let rules = text
        .lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, pattern)| {
            Rule::compile(&RuleDef {
                name: format!("rule-{i}"),
                patterns: vec![pattern.to_owned()],
                ..RuleDef::default()
            })
            .expect("bench/rules.txt compiles")
        })
        .collect();
    RuleSet::new(rules)
}

/// The corpus cut into chunks ending at a newline, as the readers hand them over.
fn split(corpus: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = corpus;
    while rest.len() > CHUNK_BYTES {
        let end = memchr::memrchr(b'\n', &rest[..CHUNK_BYTES]).map_or(CHUNK_BYTES, |i| i + 1);
        chunks.push(&rest[..end]);
        rest = &rest[end..];
    }
    chunks.push(rest);
    chunks
}

fn run(chunks: &[&[u8]], scan: impl Fn(&[u8], &mut Vec<Hit>) -> logding::scan::ScanStats) -> usize {
    let mut hits = Vec::new();
    let mut total = 0;
    for chunk in chunks {
        hits.clear();
        scan(chunk, &mut hits);
        total += hits.len();
    }
    total
}

/// The whole hot path of the agent: scan, then every hit into one window (masking included).
fn observe_all(matcher: &Matcher, chunks: &[&[u8]]) -> usize {
    let now = jiff::Timestamp::now();
    let options = WindowOptions::new(std::time::Duration::from_secs(60), "bench");
    let mut aggregator = Aggregator::new(matcher.rules().clone(), options);
    let mut hits = Vec::new();
    let mut total = 0;
    for chunk in chunks {
        hits.clear();
        matcher.scan(chunk, &mut hits);
        for hit in &hits {
            let groups: Vec<Option<&[u8]>> = hit
                .groups
                .iter()
                .map(|g| g.clone().map(|r| &chunk[r]))
                .collect();
            aggregator.observe(
                now,
                HitRef {
                    rule: hit.rule,
                    line: &chunk[hit.line.clone()],
                    groups: &groups,
                    file: "app.log",
                },
            );
        }
        total += hits.len();
    }
    std::hint::black_box(aggregator.flush(now));
    total
}

fn best_of(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut result = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        result = std::hint::black_box(f());
        best = best.min(start.elapsed());
    }
    (best, result)
}

#[allow(clippy::print_stdout)]
fn report(name: &str, mib: f64, time: Duration, hits: usize) {
    let rate = mib / time.as_secs_f64();
    println!(
        "{name:16} {mib:8.1} MiB  {:8.1} ms  {rate:8.1} MiB/s  {hits} hits",
        time.as_secs_f64() * 1e3
    );
}

/// A deterministic Spring Boot-style log: mostly INFO/DEBUG, 0.5% ERROR with a stack trace.
fn synthetic(size: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut out = Vec::with_capacity(size + 4096);
    let infos = [
        "GET /api/orders status=200 bytes=5123 in 12ms client=10.1.2.3",
        "Order 4411 placed by user 1234 from 10.2.3.4, 3 items",
        "GET /api/pay status=503 bytes=0 in 30001ms client=10.9.8.7",
        "Fetched 120 rows from orders in 8ms",
    ];
    let errors = [
        "Request failed - java.lang.NullPointerException: x is null",
        "Payment failed - java.net.SocketTimeoutException: Connection timed out",
        "Export failed - java.io.IOException: No space left on device",
    ];
    let mut n = 0u64;
    while out.len() < size {
        n += 1;
        let roll = rng.u32(0..1000);
        let (level, message) = match roll {
            0..5 => ("ERROR", errors[rng.usize(0..errors.len())]),
            5..35 => ("WARN", "Slow request /api/cart took 2345ms"),
            35..735 => ("INFO", infos[rng.usize(0..infos.len())]),
            _ => ("DEBUG", "Cache hit for key order:12345"),
        };
        let line = format!(
            "2026-11-28 10:{:02}:{:02}.{:03} {level:>5} 4242 --- [nio-8080-exec-{}] c.e.shop.order.OrderService : {message} trace={:016x}\n",
            (n / 60_000) % 60,
            (n / 1000) % 60,
            n % 1000,
            rng.u8(1..40),
            rng.u64(..),
        );
        out.extend_from_slice(line.as_bytes());
        if level == "ERROR" {
            for _ in 0..rng.usize(4..20) {
                out.extend_from_slice(
                    b"\tat c.e.shop.order.OrderService.place(OrderService.java:42)\n",
                );
            }
        }
    }
    out
}
