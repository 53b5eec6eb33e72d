use std::num::NonZeroU64;

use proptest::prelude::*;

use super::*;
use crate::rules::{RuleDef, Verdict};

/// 2026-11-28 10:00:00 +08:00, plus `seconds`.
pub(crate) fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_795_831_200 + seconds).expect("a valid test time")
}

/// A rule set from `(name, pattern, severity, min_count, group_by)`.
pub(crate) fn rules(defs: &[(&str, &str, Severity, u64, &[&str])]) -> Arc<RuleSet> {
    let compiled = defs
        .iter()
        .map(|(name, pattern, severity, min_count, group_by)| {
            Rule::compile(&RuleDef {
                name: (*name).into(),
                patterns: vec![(*pattern).into()],
                exclude: vec!["/healthz".into()],
                severity: Some(*severity),
                min_count: Some(*min_count),
                group_by: group_by.iter().map(|&g| g.to_owned()).collect(),
                ..RuleDef::default()
            })
            .expect("test rules compile")
        })
        .collect();
    Arc::new(RuleSet::new(compiled))
}

/// Feeds one line (or event) the way the agent does: every rule, captures, exclusions.
pub(crate) fn feed(aggregator: &mut Aggregator, now: Timestamp, file: &str, line: &[u8]) {
    let rules = Arc::clone(&aggregator.rules);
    for (i, rule) in rules.rules().iter().enumerate() {
        match rule.verdict(line) {
            Verdict::NoMatch => {}
            Verdict::Excluded { .. } => aggregator.observe_excluded(now, 1),
            Verdict::Match { pattern } => {
                let groups: Vec<Option<&[u8]>> = rule
                    .group_ranges(pattern, line)
                    .into_iter()
                    .map(|r| r.map(|r| &line[r]))
                    .collect();
                aggregator.observe(
                    now,
                    HitRef {
                        rule: RuleId(i as u32),
                        line,
                        groups: &groups,
                        file,
                    },
                );
            }
        }
    }
}

fn aggregator(rules: Arc<RuleSet>) -> Aggregator {
    Aggregator::new(rules, WindowOptions::new(Duration::from_secs(60), "app-01"))
}

/// Total hits a summary accounts for.
fn accounted(summary: &Summary) -> u64 {
    summary.matches() + summary.below_threshold_matches()
}

#[test]
fn first_hit_opens_a_window_that_closes_a_window_later() {
    let mut agg = aggregator(rules(&[("err", "ERROR", Severity::Error, 1, &[])]));
    assert_eq!(agg.deadline(), None);
    feed(&mut agg, t(5), "/var/log/app.log", b"ERROR one");
    feed(&mut agg, t(30), "/var/log/app.log", b"ERROR two");
    assert!(agg.is_open());
    assert_eq!(agg.deadline(), Some(t(65)));
    assert_eq!(agg.poll(t(64)), None);
    let summary = agg.poll(t(65)).expect("the window closes at its deadline");
    assert_eq!((summary.start, summary.end), (t(5), t(65)));
    let rule = &summary.rules[0];
    assert_eq!((rule.count, rule.first, rule.last), (2, t(5), t(30)));
    assert_eq!(rule.files, ["/var/log/app.log"]);
    assert!(!agg.is_open());
    assert_eq!(agg.poll(t(1000)), None);
}

#[test]
fn a_late_hit_counts_in_the_open_window_until_the_caller_closes_it() {
    let mut agg = aggregator(rules(&[("err", "ERROR", Severity::Error, 1, &[])]));
    feed(&mut agg, t(0), "f", b"ERROR one");
    feed(&mut agg, t(61), "f", b"ERROR late");
    assert_eq!(agg.deadline(), Some(t(60)), "due, and past");
    let first = agg.poll(t(61)).unwrap();
    assert_eq!((first.rules[0].count, first.end), (2, t(60)));
    assert_eq!(first.rules[0].last, t(60), "clamped to the window");
    assert_eq!(agg.deadline(), None);
    feed(&mut agg, t(62), "f", b"ERROR two");
    let second = agg.flush(t(70)).unwrap();
    assert_eq!(
        (second.rules[0].count, second.start, second.end),
        (1, t(62), t(70))
    );
    assert_eq!(agg.flush(t(70)), None);
}

#[test]
fn exclusions_count_only_in_an_open_window() {
    let mut agg = aggregator(rules(&[("err", "ERROR", Severity::Error, 1, &[])]));
    feed(&mut agg, t(0), "f", b"ERROR GET /healthz");
    assert!(!agg.is_open(), "exclusions alone open no window");
    feed(&mut agg, t(1), "f", b"ERROR real");
    feed(&mut agg, t(2), "f", b"ERROR GET /healthz");
    agg.observe_excluded(t(3), 5);
    assert_eq!(agg.flush(t(4)).unwrap().excluded, 6);
}

#[test]
fn rules_below_min_count_are_only_counted() {
    let mut agg = aggregator(rules(&[
        ("noisy", "WARN", Severity::Warning, 3, &[]),
        ("err", "ERROR", Severity::Error, 1, &[]),
    ]));
    feed(&mut agg, t(0), "f", b"WARN a");
    feed(&mut agg, t(1), "f", b"WARN b");
    let summary = agg.flush(t(2)).expect("a summary even without alerts");
    assert!(summary.rules.is_empty());
    assert_eq!(summary.below_threshold, [("noisy".to_owned(), 2)]);
}

#[test]
fn min_count_applies_per_group_and_max_groups_folds_into_other() {
    let mut options = WindowOptions::new(Duration::from_secs(60), "app-01");
    options.max_groups = 2;
    let mut agg = Aggregator::new(
        rules(&[("5xx", r"(?P<status>5\d\d)", Severity::Error, 3, &["status"])]),
        options,
    );
    for (status, n) in [("502", 10), ("503", 5), ("504", 4), ("500", 2)] {
        for _ in 0..n {
            feed(&mut agg, t(0), "f", format!("GET / {status}").as_bytes());
        }
    }
    let summary = agg.flush(t(1)).unwrap();
    let rule = &summary.rules[0];
    let groups: Vec<(String, u64)> = rule
        .groups
        .iter()
        .map(|g| (g.values[0].1.clone(), g.count))
        .collect();
    assert_eq!(groups, [("502".to_owned(), 10), ("503".to_owned(), 5)]);
    assert_eq!((rule.count, rule.other_groups_count), (19, 4));
    assert_eq!(summary.below_threshold, [("5xx".to_owned(), 2)]);
}

#[test]
fn similar_lines_are_one_pattern_with_a_raw_sample() {
    let mut agg = aggregator(rules(&[("timeout", "timeout", Severity::Error, 1, &[])]));
    for i in 0..30 {
        feed(
            &mut agg,
            t(0),
            "f",
            format!("timeout after {i} ms on 10.0.0.{i}").as_bytes(),
        );
    }
    feed(&mut agg, t(0), "f", b"read timeout on 'db 1'");
    let rule = &agg.flush(t(1)).unwrap().rules[0];
    let patterns: Vec<(&str, u64, &str)> = rule
        .patterns
        .iter()
        .map(|p| (p.pattern.as_str(), p.count, p.sample.as_str()))
        .collect();
    assert_eq!(
        patterns,
        [
            (
                "timeout after <n> ms on <ip>",
                30,
                "timeout after 0 ms on 10.0.0.0"
            ),
            ("read timeout on '<str>'", 1, "read timeout on 'db 1'"),
        ]
    );
    assert_eq!((rule.other_patterns, rule.other_patterns_count), (0, 0));
}

#[test]
fn multiline_events_keep_their_cause() {
    let mut agg = aggregator(rules(&[("exc", "Exception", Severity::Error, 1, &[])]));
    let event = b"2026-11-28 10:00:13 ERROR failed to place order\n\
        java.lang.IllegalStateException: order failed\n\tat a.b(C.java:1)\n\
        Caused by: java.net.SocketTimeoutException: Read timed out\n\t... 12 more";
    feed(&mut agg, t(0), "f", event);
    let pattern = &agg.flush(t(1)).unwrap().rules[0].patterns[0];
    assert_eq!(pattern.pattern, "<ts> ERROR failed to place order");
    assert_eq!(pattern.extra_lines, 4);
    assert_eq!(
        pattern.cause.as_deref(),
        Some("Caused by: java.net.SocketTimeoutException: Read timed out")
    );
}

/// A scan of `text` with `rules`: its hits.
fn scanned(rules: &Arc<RuleSet>, text: &[u8]) -> (Vec<crate::scan::Hit>, crate::scan::ScanStats) {
    let mut hits = Vec::new();
    let stats = crate::scan::Matcher::new(Arc::clone(rules), "app").scan(text, &mut hits);
    (hits, stats)
}

#[test]
fn hits_shaped_on_the_scanning_thread_count_as_hits_shaped_here() {
    let rules = rules(&[
        (
            "timeout",
            r"timeout after (?P<ms>\d+)",
            Severity::Error,
            1,
            &["ms"],
        ),
        ("db", "db", Severity::Warning, 2, &[]),
    ]);
    let text: String = (0..300)
        .map(|i| {
            format!(
                // `user{i}` is not masked: more shapes than are tracked (evictions).
                "{i:02}:00:00 timeout after {} ms on db-{} '{}' for user{i}\n",
                i % 7,
                i % 3,
                i % 5
            )
        })
        .collect();
    let (hits, stats) = scanned(&rules, text.as_bytes());
    let observe = |shapes: Option<&Shapes>, agg: &mut Aggregator| {
        agg.observe_scan_shaped(t(0), text.as_bytes(), &hits, shapes, &stats, "f", None);
        agg.flush(t(1)).expect("a window")
    };
    let mut here = aggregator(Arc::clone(&rules));
    let expected = observe(None, &mut here);
    assert_eq!(expected.matches(), 600);
    let mut ahead = aggregator(Arc::clone(&rules));
    let shapes = ahead.shaping().shape(text.as_bytes(), &hits);
    assert_eq!(observe(Some(&shapes), &mut ahead), expected);
    // Shapes found with the shapers of before a reload are not used: shaped here again.
    let mut reloaded = aggregator(Arc::clone(&rules));
    let other = text.to_uppercase(); // other shapes, at the same places
    let stale = reloaded.shaping().shape(other.as_bytes(), &hits);
    reloaded.set_options(WindowOptions::new(Duration::from_secs(60), "app-01"));
    assert_eq!(observe(Some(&stale), &mut reloaded), expected);
}

#[test]
fn reload_keeps_the_open_window_and_maps_rules_by_name() {
    let mut agg = aggregator(rules(&[
        ("a", "AAA", Severity::Error, 1, &[]),
        ("b", "BBB", Severity::Error, 1, &[]),
    ]));
    feed(&mut agg, t(0), "f", b"AAA BBB");
    agg.set_rules(rules(&[
        ("c", "CCC", Severity::Info, 1, &[]),
        ("a", "AAA", Severity::Critical, 1, &[]),
    ]));
    feed(&mut agg, t(1), "f", b"AAA CCC");
    let summary = agg.flush(t(2)).unwrap();
    let counts: Vec<(&str, Severity, u64)> = summary
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.severity, r.count))
        .collect();
    assert_eq!(
        counts,
        [
            ("a", Severity::Critical, 2),
            ("b", Severity::Error, 1),
            ("c", Severity::Info, 1),
        ]
    );
}

#[test]
fn caps_hold_and_counts_stay_exact_under_many_distinct_lines() {
    let mut options = WindowOptions::new(Duration::from_secs(60), "app-01");
    options.masks = Vec::new();
    let mut agg = Aggregator::new(rules(&[("e", "E", Severity::Error, 1, &[])]), options);
    for i in 0..20_000u32 {
        let file = format!("/var/log/app-{}.log", i % 40);
        let line = if i % 2 == 0 {
            format!("E heavy {}", i % 8 / 2)
        } else {
            format!("E rare {i}")
        };
        feed(&mut agg, t(0), &file, line.as_bytes());
    }
    let rule = agg.flush(t(1)).unwrap().rules.remove(0);
    assert_eq!(rule.count, 20_000);
    // The four frequent shapes survive 10,000 rare ones and come first, exact; a rare shape,
    // whose count is mostly inherited from evicted ones, follows with its lower bound.
    let shown: Vec<(&str, u64)> = rule
        .patterns
        .iter()
        .map(|p| (p.sample.as_str(), p.count))
        .collect();
    assert_eq!(
        shown[..4],
        [
            ("E heavy 0", 2_500),
            ("E heavy 1", 2_500),
            ("E heavy 2", 2_500),
            ("E heavy 3", 2_500)
        ]
    );
    assert!(shown[4].0.starts_with("E rare"), "{shown:?}");
    let shown: u64 = rule.patterns.iter().map(|p| p.count).sum();
    assert_eq!(shown + rule.other_patterns_count, 20_000);
    assert!(
        (9_000..11_500).contains(&rule.other_patterns),
        "{}",
        rule.other_patterns
    );
    assert_eq!((rule.files.len(), rule.other_files), (MAX_FILES, 35));
}

/// Issue 12: "+317 more patterns, 299 matches". The distinct-shape estimate may exceed the
/// hits it describes; what is shown never does.
#[test]
fn never_more_further_patterns_than_their_matches() {
    for lines in (260..=900).step_by(20) {
        let mut options = WindowOptions::new(Duration::from_secs(60), "app-01");
        options.masks = Vec::new();
        let mut agg = Aggregator::new(rules(&[("e", "E", Severity::Error, 1, &[])]), options);
        for i in 0..lines {
            feed(
                &mut agg,
                t(0),
                "/var/log/app.log",
                format!("E rare {i}").as_bytes(),
            );
        }
        let rule = agg.flush(t(1)).unwrap().rules.remove(0);
        assert!(
            rule.other_patterns <= rule.other_patterns_count,
            "{lines} lines: +{} more patterns, {} matches",
            rule.other_patterns,
            rule.other_patterns_count
        );
    }
}

#[test]
fn unknown_rule_ids_are_still_counted() {
    let mut agg = aggregator(rules(&[("a", "A", Severity::Error, 1, &[])]));
    let hit = HitRef {
        rule: RuleId(7),
        line: b"x",
        groups: &[],
        file: "f",
    };
    agg.observe(t(0), hit);
    agg.observe(t(0), hit);
    let summary = agg.flush(t(1)).unwrap();
    assert_eq!(
        (summary.rules[0].name.as_str(), summary.rules[0].count),
        ("rule-7", 2)
    );
}

#[test]
fn unknown_rule_has_defaults() {
    let state = RuleState::unknown("x".into(), &WindowOptions::new(Duration::ZERO, "h"));
    assert_eq!(state.min_count, NonZeroU64::MIN.get());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every hit is in exactly one summary; each summary's times cover its hits.
    #[test]
    fn hits_in_equal_counts_out(
        steps in prop::collection::vec(
            (0i64..40, 0usize..4, prop::collection::vec(any::<u8>(), 0..40), any::<bool>()),
            1..200,
        ),
        min_count in 1u64..4,
        max_groups in 0usize..3,
    ) {
        let set = rules(&[
            ("a", "(?s).", Severity::Error, 1, &[]),
            ("b", r"(?P<k>\d)", Severity::Critical, min_count, &["k"]),
            ("c", "[a-f]", Severity::Warning, min_count, &[]),
        ]);
        let mut options = WindowOptions::new(Duration::from_secs(60), "h");
        options.max_groups = max_groups;
        let mut agg = Aggregator::new(set, options);
        let mut now = t(0);
        let mut fed = 0u64;
        let mut summaries = Vec::new();
        for (advance, file, mut line, poll) in steps {
            now = now.checked_add(SignedDuration::from_secs(advance)).unwrap();
            line.push(b'7');
            fed += 1 + u64::from(line.iter().any(|c| (b'a'..=b'f').contains(c))) + 1;
            feed(&mut agg, now, &format!("f{file}"), &line);
            if poll {
                summaries.extend(agg.poll(now));
            }
        }
        while let Some(summary) = agg.flush(now) {
            summaries.push(summary);
        }
        let total: u64 = summaries.iter().map(accounted).sum();
        prop_assert_eq!(total, fed);
        for pair in summaries.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start);
        }
        for summary in &summaries {
            prop_assert!(summary.start <= summary.end);
            for rule in &summary.rules {
                prop_assert!(summary.start <= rule.first && rule.last <= summary.end);
                let groups: u64 = rule.groups.iter().map(|g| g.count).sum();
                if !rule.groups.is_empty() || rule.other_groups_count > 0 {
                    prop_assert_eq!(groups + rule.other_groups_count, rule.count);
                }
                prop_assert!(rule.groups.len() <= max_groups);
                let patterns: u64 = rule.patterns.iter().map(|p| p.count).sum();
                if rule.name != "b" {
                    prop_assert_eq!(patterns + rule.other_patterns_count, rule.count);
                }
                prop_assert!(rule.patterns.len() <= crate::config::SummaryOptions::default().max_patterns);
            }
        }
    }
}

#[test]
fn high_cardinality_groups_are_reported_as_other_not_dropped() {
    let mut options = WindowOptions::new(Duration::from_secs(60), "app-01");
    options.max_groups = 3;
    let mut agg = Aggregator::new(
        rules(&[("user", r"user=(?P<u>\d+)", Severity::Error, 2, &["u"])]),
        options,
    );
    // Two frequent users, and 10,000 users seen three times each: far more than tracked.
    for round in 0..3 {
        for u in 0..10_000 {
            feed(
                &mut agg,
                t(0),
                "f",
                format!("E user={}", 100 + u).as_bytes(),
            );
            if u % 10 == round {
                feed(&mut agg, t(0), "f", b"E user=1");
                feed(&mut agg, t(0), "f", b"E user=2");
            }
        }
    }
    let summary = agg.flush(t(1)).unwrap();
    let rule = &summary.rules[0];
    assert_eq!(accounted(&summary), 36_000);
    let groups: Vec<(&str, u64)> = rule
        .groups
        .iter()
        .map(|g| (g.values[0].1.as_str(), g.count))
        .collect();
    assert_eq!(groups, [("1", 3_000), ("2", 3_000)]);
    assert_eq!(rule.other_groups_count, rule.count - 6_000);
}

mod found {
    //! Shaping a hit from what its scan found equals shaping it by running its rule's
    //! patterns on the line again (the way a hit handed to `Aggregator::observe` is shaped).
    use super::*;
    use crate::rules::{RuleMessage, SeverityFrom};
    use crate::scan::Matcher;

    /// Patterns of every kind of [`crate::rules::Spans`]: groups (named, unnamed, nested,
    /// optional), short bounded matches, long ones, literals with and without digits.
    const PATTERNS: &[&str] = &[
        r"status=(?P<status>5\d\d) ",
        r"(?P<level>ERROR|WARN|fatal) (\d+)",
        r"(?P<outer>id=(?P<inner>\d+))",
        r"took (?P<ms>\d+)?ms",
        r#"" [45]\d\d "#,
        r"ERROR",
        r"code=42",
        r"timeout after \d+ ms",
        r"(?i)warn",
        r"(\w+)@(\w+)",
        r"(?-u:\xff)(.)",
        r"^\d{2}:\d{2}",
    ];
    const WORDS: &[&str] = &[
        "ERROR",
        "WARN",
        "fatal",
        "status=503 ",
        "status=200 ",
        "id=42",
        "took 900ms",
        "tookms",
        "took ms",
        "\" 404 ",
        "code=42",
        "timeout after 12 ms",
        "a@b",
        "10:00",
        "é",
        " ",
        "x",
        "0x1f",
        "10.0.0.1",
        "'quoted'",
    ];

    fn rule_def(i: usize, picks: &[usize], group_by: bool, level: bool, masks: bool) -> RuleDef {
        let patterns: Vec<String> = picks.iter().map(|&p| PATTERNS[p].to_owned()).collect();
        let names: Vec<String> = ["status", "level", "outer", "inner", "ms"]
            .iter()
            .filter(|name| patterns.iter().any(|p| p.contains(&format!("<{name}>"))))
            .map(|name| (*name).to_owned())
            .collect();
        let severity_from = (level && names.contains(&"level".to_owned())).then(|| SeverityFrom {
            capture: "level".into(),
            map: vec![("fatal".into(), Severity::Critical)],
        });
        RuleDef {
            name: format!("r{i}"),
            patterns,
            group_by: if group_by { names } else { Vec::new() },
            message: RuleMessage {
                masks: (!masks).then(Vec::new),
                severity_from,
                ..RuleMessage::default()
            },
            ..RuleDef::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn shaping_from_the_scan_equals_searching_again(
            defs in prop::collection::vec(
                (prop::collection::vec(0..PATTERNS.len(), 1..3), any::<bool>(), any::<bool>(),
                 any::<bool>()),
                1..4,
            ),
            lines in prop::collection::vec(
                prop::collection::vec(prop::sample::select(WORDS), 0..8), 1..8),
        ) {
            let rules: Vec<Rule> = defs
                .iter()
                .enumerate()
                .map(|(i, (picks, group_by, level, masks))| {
                    Rule::compile(&rule_def(i, picks, *group_by, *level, *masks)).unwrap()
                })
                .collect();
            let rules = Arc::new(RuleSet::new(rules));
            let text: String = lines.iter().map(|words| words.concat() + "\n").collect();
            let data = text.as_bytes();
            let matcher = Matcher::new(Arc::clone(&rules), "app");
            let (mut fast, mut reference) = (Vec::new(), Vec::new());
            matcher.scan(data, &mut fast);
            matcher.scan_reference(data, &mut reference);
            prop_assert_eq!(&fast, &reference);
            let options = WindowOptions::new(Duration::from_secs(60), "h");
            let shaping = Shaping::new(Arc::clone(&rules), options);
            let shapes = shaping.shape(data, &fast);
            let mut scratch = Scratch::default();
            let mut groups = Vec::new();
            for (i, hit) in fast.iter().enumerate() {
                shaper::groups_of(hit, data, &mut groups);
                let line = &data[hit.line.clone()];
                let shaper = shaping.get(hit.rule).unwrap();
                let again = shaper.shape(line, &groups, None, &mut scratch);
                let ahead = shapes.get(i).unwrap();
                prop_assert_eq!(ahead.shape, again);
                prop_assert_eq!(ahead.pattern, cut(&scratch.pattern, MAX_PATTERN_BYTES));
            }
        }
    }
}
