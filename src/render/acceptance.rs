//! The messages of issue 13, on real-shaped logs: what an on-call engineer must read in 5
//! seconds on a phone (both statuses, the STATEMENT, the JUL message line, the chain ends, the
//! rare root cause, the title naming the top rule), and properties over any hits.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::Value;

use super::tests::{aggregator, mixed, options, snapshot};
use super::*;
use crate::rules::{Rule, RuleDef, RuleSet};
use crate::rules::{RuleMessage, SeverityFrom};
use crate::window::tests::{feed, t};

fn rule(name: &str, pattern: &str, severity: Severity, message: RuleMessage) -> Rule {
    Rule::compile(&RuleDef {
        name: name.into(),
        patterns: vec![pattern.into()],
        severity: Some(severity),
        message,
        ..RuleDef::default()
    })
    .expect("test rules compile")
}

fn text_of(body: &str) -> String {
    let value: Value = serde_json::from_str(body).expect("valid JSON");
    value["markdown"]["text"]
        .as_str()
        .or(value["text"]["content"].as_str())
        .expect("a text")
        .to_owned()
}

fn title_of(body: &str) -> String {
    let value: Value = serde_json::from_str(body).expect("valid JSON");
    value["markdown"]["title"].as_str().unwrap_or("").to_owned()
}

fn summarize(rules: Vec<Rule>, events: &[(&str, String)]) -> Summary {
    let mut agg = aggregator(Arc::new(RuleSet::new(rules)));
    for (i, (file, event)) in events.iter().enumerate() {
        feed(&mut agg, t(i as i64 % 60), file, event.as_bytes());
    }
    agg.poll(t(100)).expect("a window")
}

#[test]
fn nginx_404s_and_502s_are_both_shown_with_their_counts() {
    let access = "/var/log/nginx/access.log";
    let mut events = Vec::new();
    for i in 0..98 {
        let line = if i % 3 == 0 && i < 90 {
            format!(
                r#"10.0.0.{i} - - [28/Nov/2026:10:00:{:02} +0800] "POST /api/orders HTTP/1.1" 502 157"#,
                i % 60
            )
        } else {
            format!(
                r#"10.0.0.{i} - - [28/Nov/2026:10:00:{:02} +0800] "GET /static/img/{i}.png HTTP/1.1" 404 153"#,
                i % 60
            )
        };
        events.push((access, line));
    }
    let rules = vec![rule(
        "nginx-4xx-5xx",
        r#"" [45]\d\d "#,
        Severity::Error,
        RuleMessage::default(),
    )];
    let summary = summarize(rules, &events);
    let text = text_of(&render(&summary, &options())[0]);
    assert!(
        text.contains("×68") && text.contains("\" 404 153"),
        "{text}"
    );
    assert!(
        text.contains("×30") && text.contains("\" 502 157"),
        "{text}"
    );
    snapshot("nginx_404_502", &summary, &options());
}

fn postgres_rule() -> Rule {
    let show = ["STATEMENT:", "DETAIL:"].map(|p| crate::rules::compile_pattern(p).unwrap());
    rule(
        "postgres-error",
        r"\] (?P<level>ERROR|FATAL|PANIC):  ",
        Severity::Error,
        RuleMessage {
            show: show.to_vec(),
            severity_from: Some(SeverityFrom {
                capture: "level".into(),
                map: vec![
                    ("FATAL".into(), Severity::Critical),
                    ("PANIC".into(), Severity::Critical),
                ],
            }),
            ..RuleMessage::default()
        },
    )
}

#[test]
fn a_postgres_error_shows_its_statement_line() {
    let log = "/var/lib/postgresql/16/main/log/postgresql.log";
    let mut events = Vec::new();
    for i in 0..3 {
        events.push((
            log,
            format!(
                "2026-11-28 10:00:1{i}.114 UTC [5379] ERROR:  division by zero\n\
                 2026-11-28 10:00:1{i}.114 UTC [5379] STATEMENT:  SELECT total / count FROM orders WHERE day = '2026-11-2{i}';"
            ),
        ));
    }
    events.push((
        log,
        "2026-11-28 10:00:20.001 UTC [5401] ERROR:  duplicate key value violates unique constraint \"orders_pkey\"\n\
         2026-11-28 10:00:20.001 UTC [5401] DETAIL:  Key (id)=(42) already exists.\n\
         2026-11-28 10:00:20.001 UTC [5401] STATEMENT:  INSERT INTO orders (id) VALUES (42);"
            .to_owned(),
    ));
    events.push((
        log,
        "2026-11-28 10:00:21.000 UTC [5402] FATAL:  password authentication failed for user \"app\""
            .to_owned(),
    ));
    let summary = summarize(vec![postgres_rule()], &events);
    assert_eq!(
        summary.rules[0].severity,
        Severity::Critical,
        "FATAL maps to critical"
    );
    let text = text_of(&render(&summary, &options())[0]);
    assert!(text.contains("STATEMENT:  SELECT total / count"), "{text}");
    assert!(
        text.contains("DETAIL:  Key (id)=(42) already exists."),
        "{text}"
    );
    snapshot("postgres_statement", &summary, &options());
}

#[test]
fn a_jul_severe_record_shows_its_message_line() {
    let event = "Nov 28, 2026 4:42:13 AM com.acme.orders.OrderService place\n\
                 SEVERE: Order 42 could not be placed\n\
                 java.lang.IllegalStateException: no stock for item 7\n\
                 \tat com.acme.orders.OrderService.place(OrderService.java:42)\n\
                 \tat com.acme.orders.OrderController.post(OrderController.java:17)";
    let rules = vec![rule(
        "jul-severe",
        "(?m)^SEVERE: ",
        Severity::Error,
        RuleMessage::default(),
    )];
    let summary = summarize(
        rules,
        &[("/opt/tomcat/logs/catalina.out", event.to_owned())],
    );
    let text = text_of(&render(&summary, &options())[0]);
    assert!(
        text.contains("> SEVERE: Order 42 could not be placed"),
        "{text}"
    );
    assert!(
        !text.contains("4:42:13 AM"),
        "the header is not the sample: {text}"
    );
    snapshot("jul_severe", &summary, &options());
}

#[test]
fn a_java_chain_shows_its_innermost_cause() {
    let event = "2026-11-28 10:00:13.114 ERROR [http-nio-8080-exec-3] c.a.OrderController - failed to place order\n\
                 java.lang.IllegalStateException: order failed\n\
                 \tat com.acme.OrderService.place(OrderService.java:42)\n\
                 Caused by: org.springframework.dao.DataAccessResourceFailureException: could not get connection\n\
                 \tat org.springframework.jdbc.DataSourceUtils.getConnection(DataSourceUtils.java:84)\n\
                 Caused by: java.net.SocketTimeoutException: Connect timed out\n\
                 \t... 42 more";
    let rules = vec![rule(
        "java-exception",
        "ERROR",
        Severity::Error,
        RuleMessage::default(),
    )];
    let summary = summarize(rules, &[("/var/log/app/app.log", event.to_owned())]);
    let text = text_of(&render(&summary, &options())[0]);
    assert!(text.contains("Caused by: java.net.SocketTimeoutException: Connect timed out"));
    assert!(text.contains("java.lang.IllegalStateException: order failed"));
    snapshot("java_chain", &summary, &options());
}

#[test]
fn a_python_chain_shows_both_ends() {
    let event = crate::window::event_samples::PYTHON_CHAIN;
    let rules = vec![rule(
        "python-error",
        " ERROR ",
        Severity::Error,
        RuleMessage::default(),
    )];
    let summary = summarize(rules, &[("/var/log/worker/worker.log", event.to_owned())]);
    let text = text_of(&render(&summary, &options())[0]);
    assert!(text.contains("↳ JobError: database unavailable"), "{text}");
    assert!(
        text.contains("↳ Caused by: ConnectionRefusedError: [Errno 111] Connection refused"),
        "{text}"
    );
    snapshot("python_chain", &summary, &options());
}

#[test]
fn a_rare_exception_among_two_hundred_common_ones_is_in_the_message() {
    let kinds = [
        "inventory",
        "pricing",
        "shipping",
        "billing",
        "search",
        "profile",
        "coupon",
        "review",
        "cart",
        "points",
    ];
    let mut events: Vec<(&str, String)> = (0..200)
        .map(|i| {
            (
                "/var/log/app/app.log",
                format!(
                    "2026-11-28 10:00:{:02}.{i:03} ERROR [pool-{}] c.a.Gateway - call to {} failed: java.util.concurrent.TimeoutException",
                    i % 60,
                    i % 8,
                    kinds[i % kinds.len()],
                ),
            )
        })
        .collect();
    events.insert(
        117,
        (
            "/var/log/app/app.log",
            "2026-11-28 10:00:31.412 ERROR [ledger-1] c.a.Ledger - transfer 9912 failed\n\
             org.springframework.dao.DeadlockLoserDataAccessException: could not commit\n\
             \tat org.springframework.jdbc.support.SQLErrorCodeSQLExceptionTranslator.doTranslate(X.java:267)\n\
             Caused by: org.postgresql.util.PSQLException: ERROR: deadlock detected"
                .to_owned(),
        ),
    );
    let rules = vec![rule(
        "java-error",
        " ERROR ",
        Severity::Error,
        RuleMessage::default(),
    )];
    let summary = summarize(rules, &events);
    assert_eq!(summary.rules[0].count, 201);
    let text = text_of(&render(&summary, &options())[0]);
    assert!(text.contains("deadlock detected"), "{text}");
    snapshot("rare_exception", &summary, &options());
}

#[test]
fn the_title_names_the_top_severity_rule_and_count() {
    let one = summarize(
        vec![rule(
            "java-oom",
            "OutOfMemoryError",
            Severity::Critical,
            RuleMessage::default(),
        )],
        &[(
            "/var/log/app/app.log",
            "java.lang.OutOfMemoryError: Java heap space".into(),
        )],
    );
    let split = RenderOptions {
        max_body_bytes: 520,
        ..options()
    };
    let titles: Vec<String> = [
        render(&one, &options()),
        render(&mixed(), &options()),
        render(&mixed(), &split),
    ]
    .iter()
    .flatten()
    .map(|body| title_of(body))
    .collect();
    for title in &titles {
        assert!(title.starts_with("[alert] "), "{title}");
    }
    insta::assert_snapshot!(titles.join("\n"), @r"
    [alert] CRITICAL java-oom ×1 · app-01
    [alert] CRITICAL java-oom ×1 · app-01 (+4 rules)
    [alert] CRITICAL java-oom ×1 · app-01 (+4 rules) (1/2)
    [alert] CRITICAL java-oom ×1 · app-01 (+4 rules) (2/2)
    ");
}

#[test]
fn a_window_of_one_line_takes_at_most_six_markdown_lines() {
    let summary = summarize(
        vec![rule("java-oom", "OutOfMemoryError", Severity::Critical, RuleMessage::default())],
        &[(
            "/var/log/app/app.log",
            "2026-11-28 10:00:13.114 ERROR [main] c.a.OrderService - java.lang.OutOfMemoryError: Java heap space".into(),
        )],
    );
    let text = text_of(&render(&summary, &options())[0]);
    assert!(text.lines().count() <= 6, "{text}");
}

fn property_rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::new(vec![
        rule(
            "http-status",
            r#"" (?P<status>[1-5]\d\d) (\d+)$"#,
            Severity::Error,
            RuleMessage::default(),
        ),
        Rule::compile(&RuleDef {
            name: "by-user".into(),
            patterns: vec![r"user=(?P<user>\w+) took \d+ms".into()],
            group_by: vec!["user".into()],
            severity: Some(Severity::Warning),
            ..RuleDef::default()
        })
        .unwrap(),
        rule(
            "timeout",
            r"timeout after \d+",
            Severity::Critical,
            RuleMessage::default(),
        ),
    ]))
}

prop_compose! {
    fn hit_line()(kind in 0..3u8, status in 100..600u32, bytes in 0..100_000u32,
                   user in "[a-f]{1,3}", ms in 0..5000u32) -> String {
        match kind {
            0 => format!(r#"10.0.0.1 - - [28/Nov/2026:10:00:00 +0800] "GET /x/{ms} HTTP/1.1" {status} {bytes}"#),
            1 => format!("WARN user={user} took {ms}ms"),
            _ => format!("ERROR timeout after {ms} ms on order {bytes}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every rule that fired and every group value is in the message, or in a "+N" line
    /// whose figure is exact; a pattern's captured text is never masked.
    #[test]
    fn every_rule_and_group_is_shown_or_counted_exactly(
        lines in prop::collection::vec(hit_line(), 1..120),
    ) {
        let rules = property_rules();
        let mut agg = aggregator(Arc::clone(&rules));
        for line in &lines {
            feed(&mut agg, t(1), "/var/log/app.log", line.as_bytes());
        }
        let summary = agg.poll(t(100)).unwrap();
        let options = RenderOptions { max_body_bytes: 1_000_000, ..options() };
        let text = text_of(&render(&summary, &options)[0]);
        for (id, rule) in rules.rules().iter().enumerate() {
            let hits = lines.iter().filter(|l| rule.verdict(l.as_bytes()) != crate::rules::Verdict::NoMatch).count() as u64;
            if hits == 0 {
                continue;
            }
            let reported = summary.rules.iter().find(|r| r.name == rule.name);
            prop_assert!(reported.is_some(), "rule {} fired but is not reported", id);
            let reported = reported.unwrap();
            prop_assert_eq!(reported.count, hits);
            prop_assert!(text.contains(&rule.name), "{} missing:\n{}", rule.name, text);
            // Groups: each shown with its exact count, the rest in "+N of other values".
            let mut truth: std::collections::BTreeMap<String, u64> = Default::default();
            let user = rule.patterns[0].capture_names().position(|n| n == Some("user"));
            for line in &lines {
                if let Some(spans) = rule.patterns[0].captures(line.as_bytes())
                    && let Some(range) = user.and_then(|i| spans[i].clone())
                {
                    *truth.entry(line[range].to_owned()).or_default() += 1;
                }
            }
            let mut shown = 0;
            for group in &reported.groups {
                let value = &group.values[0].1;
                prop_assert_eq!(Some(&group.count), truth.get(value));
                prop_assert!(text.contains(&format!("user={value} ×{}", group.count)) || text.contains(&format!("{value} ×{}", group.count)), "{}", text);
                shown += group.count;
            }
            let other = truth.values().sum::<u64>() - shown;
            prop_assert_eq!(other, reported.other_groups_count);
            if other > 0 {
                prop_assert!(text.contains(&format!("+{} of other values", plural(other, "match"))), "{}", text);
            }
            // Patterns: shown counts plus "+N more ..., M matches" add up to the rule's count.
            let patterns: u64 = reported.patterns.iter().map(|p| p.count).sum();
            let rest = reported.count - patterns;
            if rest > 0 {
                let more = if rest == 1 { "match" } else { "matches" };
                prop_assert!(text.contains(&format!(", {}", plural(rest, "match"))) || text.contains(&format!("+{rest} more {more}")), "{}", text);
            }
            // No captured text is masked in a shape.
            for pattern in &reported.patterns {
                let spans = rule.patterns[0].captures(pattern.sample.as_bytes()).unwrap();
                for span in spans.iter().skip(1).flatten() {
                    let captured = &pattern.sample[span.clone()];
                    prop_assert!(pattern.pattern.contains(captured), "{:?} masked in {:?}", captured, pattern.pattern);
                }
            }
        }
    }
}
