use std::fmt::Write as _;
use std::sync::Arc;

use jiff::tz::{TimeZone, offset};
use proptest::prelude::*;

use super::*;
use crate::rules::{RuleId, RuleSet};
use crate::window::tests::{feed, rules, t};
use crate::window::{Aggregator, HitRef, WindowOptions};

pub(super) fn options() -> RenderOptions {
    RenderOptions {
        keyword: "alert".into(),
        msgtype: MsgType::Markdown,
        mention: Mention {
            mobiles: vec!["13800000000".into()],
            user_ids: vec!["ops-lead".into()],
            all: false,
            min_severity: Severity::Critical,
        },
        max_body_bytes: crate::config::DingTalk::default().max_body_bytes,
        timezone: TimeZone::fixed(offset(8)),
        window: Duration::from_secs(60),
    }
}

pub(super) fn aggregator(rules: Arc<RuleSet>) -> Aggregator {
    Aggregator::new(rules, WindowOptions::new(Duration::from_secs(60), "app-01"))
}

/// Every body, exactly, then its text for a human to review; checks the invariants on the way.
fn show(bodies: &[String], options: &RenderOptions) -> String {
    let mut out = String::new();
    for (i, body) in bodies.iter().enumerate() {
        assert!(body.len() <= options.max_body_bytes, "{} bytes", body.len());
        let value: Value = serde_json::from_str(body).expect("valid JSON");
        let text = value["markdown"]["text"]
            .as_str()
            .or(value["text"]["content"].as_str())
            .expect("a text");
        let first_line = text.lines().next().unwrap_or_default();
        assert!(first_line.contains(&format!("[{}]", options.keyword)));
        if let Some(title) = value["markdown"]["title"].as_str() {
            assert!(title.contains(&format!("[{}]", options.keyword)));
        }
        writeln!(out, "=== body {}/{}", i + 1, bodies.len()).unwrap();
        writeln!(out, "{body}").unwrap();
        writeln!(out, "--- text").unwrap();
        writeln!(out, "{text}").unwrap();
    }
    out
}

#[track_caller]
pub(super) fn snapshot(name: &str, summary: &Summary, options: &RenderOptions) {
    let bodies = render(summary, options);
    for body in &bodies {
        assert_lines_survive_commonmark(body);
    }
    let shown = show(&bodies, options);
    insta::with_settings!({
        snapshot_path => "snapshots",
        prepend_module_to_snapshot => false,
        filters => vec![(r"logding \d+\.\d+\.\d+[^ ]*", "logding [version]")],
    }, {
        insta::assert_snapshot!(name, shown);
    });
}

/// The lines a CommonMark renderer shows for `markdown`, a soft break joined with a space (as
/// DingTalk does).
fn commonmark_lines(markdown: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, TagEnd};
    let mut out = String::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(text) | Event::Code(text) => out.push_str(&text),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak
            | Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item) => out.push('\n'),
            _ => {}
        }
    }
    out.lines().map(|l| l.trim().to_owned()).collect()
}

/// In a markdown body, every line we wrote (heading, rule, group, sample, the lines under a
/// sample, "+N more", footer) renders as a line of its own.
#[track_caller]
pub(super) fn assert_lines_survive_commonmark(body: &str) {
    let value: Value = serde_json::from_str(body).expect("valid JSON");
    let Some(markdown) = value["markdown"]["text"].as_str() else {
        return;
    };
    let rendered = commonmark_lines(markdown);
    for line in markdown.lines().filter(|l| !l.trim().is_empty()) {
        let expected = line
            .trim_start_matches("### ")
            .trim_start_matches("> ")
            .replace("**", "");
        assert!(
            rendered.contains(&expected.trim().to_owned()),
            "{expected:?} is not a line of its own once rendered:\n{rendered:#?}"
        );
    }
}

#[test]
fn one_rule() {
    let mut agg = aggregator(rules(&[(
        "java-oom",
        r"java\.lang\.OutOfMemoryError",
        Severity::Critical,
        1,
        &[],
    )]));
    let line = b"2026-11-28 10:00:13.114 ERROR [main] c.a.OrderService - java.lang.OutOfMemoryError: Java heap space";
    feed(&mut agg, t(13), "/var/log/app/app.log", line);
    feed(&mut agg, t(20), "/var/log/app/app.log", line);
    let summary = agg.poll(t(80)).unwrap();
    snapshot("one_rule", &summary, &options());
}

pub(super) fn mixed() -> Summary {
    let mut agg = aggregator(rules(&[
        ("slow-query", "slow query", Severity::Warning, 1, &[]),
        ("java-oom", r"OutOfMemoryError", Severity::Critical, 1, &[]),
        ("db-timeout", "db timeout", Severity::Warning, 1, &[]),
        ("deprecated", "deprecated", Severity::Info, 1, &[]),
        ("npe", "NullPointerException", Severity::Error, 1, &[]),
        ("retry", "retrying", Severity::Info, 50, &[]),
    ]));
    for i in 0..7 {
        let line = format!("2026-11-28 10:00:{i:02} WARN slow query took {}ms", 900 + i);
        feed(&mut agg, t(i), "/var/log/app/db.log", line.as_bytes());
    }
    feed(
        &mut agg,
        t(3),
        "/var/log/app/app.log",
        b"ERROR java.lang.OutOfMemoryError: Metaspace",
    );
    feed(
        &mut agg,
        t(4),
        "/var/log/app/app.log",
        b"WARN db timeout after 30s",
    );
    feed(
        &mut agg,
        t(4),
        "/var/log/app/app.log",
        b"WARN db timeout after 31s",
    );
    feed(
        &mut agg,
        t(5),
        "/var/log/app/app.log",
        b"INFO call to deprecated API /v1/x",
    );
    for i in 0..12 {
        let line = format!(
            "ERROR NullPointerException at OrderService.java:{}",
            40 + i % 3
        );
        feed(&mut agg, t(6), "/var/log/app/app.log", line.as_bytes());
    }
    feed(
        &mut agg,
        t(7),
        "/var/log/app/app.log",
        b"INFO retrying /healthz",
    );
    for _ in 0..3 {
        feed(
            &mut agg,
            t(7),
            "/var/log/app/app.log",
            b"INFO retrying order 7",
        );
    }
    agg.poll(t(60)).unwrap()
}

#[test]
fn many_rules_of_mixed_severity() {
    snapshot("mixed_markdown", &mixed(), &options());
    let text = RenderOptions {
        msgtype: MsgType::Text,
        ..options()
    };
    snapshot("mixed_text", &mixed(), &text);
}

#[test]
fn mentions_only_at_or_above_min_severity() {
    let mut summary = mixed();
    let has_at = |summary: &Summary, options: &RenderOptions| {
        let body = render(summary, options).remove(0);
        (body.contains("\"at\""), body.contains("@13800000000"))
    };
    assert_eq!(has_at(&summary, &options()), (true, true));
    summary.rules.retain(|r| r.severity < Severity::Critical);
    assert_eq!(has_at(&summary, &options()), (false, false));
    let mut low = options();
    low.mention.min_severity = Severity::Error;
    assert_eq!(has_at(&summary, &low), (true, true));
}

#[test]
fn group_by() {
    // Access logs: without the `quoted` mask, so that request paths tell patterns apart.
    let mut window = WindowOptions::new(Duration::from_secs(60), "app-01");
    window.masks.retain(|mask| mask != "quoted");
    let mut agg = Aggregator::new(
        rules(&[(
            "upstream-5xx",
            r#"" (?P<status>5\d\d) "#,
            Severity::Error,
            5,
            &["status"],
        )]),
        window,
    );
    for (status, path, n) in [
        ("502", "/api/orders/1234", 40),
        ("502", "/api/pay", 17),
        ("504", "/api/orders/77", 9),
        ("503", "/api/cart", 2),
    ] {
        for i in 0..n {
            let line = format!(
                r#"10.0.0.{i} - - [28/Nov/2026:10:00:{:02} +0800] "GET {path} HTTP/1.1" {status} {}"#,
                i % 60,
                100 + i
            );
            feed(&mut agg, t(i), "/var/log/nginx/access.log", line.as_bytes());
        }
    }
    snapshot("group_by", &agg.poll(t(100)).unwrap(), &options());
}

#[test]
fn de_duplicated_patterns() {
    let mut agg = aggregator(rules(&[("timeout", "timeout", Severity::Error, 1, &[])]));
    for i in 0..60 {
        let line = match i % 6 {
            0..=3 => format!(
                "WARN upstream timeout after {}ms to 10.0.3.{}:8080",
                1000 + i,
                i
            ),
            4 => {
                format!("ERROR payment timeout for order 123e4567-e89b-12d3-a456-4266141740{i:02}")
            }
            _ => format!("ERROR lock timeout on key \"user:{i}\" (0x7f{i:02}a3)"),
        };
        feed(&mut agg, t(i), "/var/log/app/app.log", line.as_bytes());
    }
    for i in 0..4 {
        let line = format!(
            "ERROR timeout #{i} with a shape of its own, variant {}",
            ["a", "b", "c", "d"][i]
        );
        feed(&mut agg, t(50), "/var/log/app/other.log", line.as_bytes());
    }
    snapshot("patterns", &agg.poll(t(100)).unwrap(), &options());
}

const STACK_TRACE: &str = "2026-11-28 10:00:13.114 ERROR [http-nio-8080-exec-3] c.a.OrderController - failed to place order
org.springframework.web.util.NestedServletException: Request processing failed; nested exception is java.lang.IllegalStateException: order failed
\tat org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)
\tat javax.servlet.http.HttpServlet.service(HttpServlet.java:681)
Caused by: java.lang.IllegalStateException: order failed
\tat com.acme.order.OrderService.place(OrderService.java:42)
Caused by: java.net.SocketTimeoutException: Read timed out
\tat java.base/java.net.SocketInputStream.socketRead0(Native Method)
\t... 48 more";

#[test]
fn java_stack_trace() {
    let mut agg = aggregator(rules(&[(
        "java-exception",
        r"^\S+ \S+ ERROR .*\n\S+Exception",
        Severity::Error,
        1,
        &[],
    )]));
    feed(
        &mut agg,
        t(13),
        "/var/log/app/app.log",
        STACK_TRACE.as_bytes(),
    );
    snapshot("java_stack_trace", &agg.poll(t(100)).unwrap(), &options());
}

#[test]
fn cjk_text_near_the_byte_limit() {
    let mut agg = aggregator(rules(&[
        ("order-failed", "下单失败", Severity::Critical, 1, &[]),
        ("stock-warning", "库存不足 商品", Severity::Warning, 1, &[]),
    ]));
    let phrases = [
        "用户",
        "订单",
        "支付",
        "库存",
        "仓库",
        "物流",
        "优惠券",
        "积分",
    ];
    for i in 0..40 {
        let mut line = format!("2026-11-28 10:00:{:02} 错误 下单失败：", i % 60);
        for k in 0..40 {
            line.push_str(phrases[(i * 7 + k * 3) % phrases.len()]);
            line.push_str(["服务超时", "连接被拒绝", "余额不足"][(i + k) % 3]);
        }
        feed(
            &mut agg,
            t(i as i64),
            "/var/log/app/订单.log",
            line.as_bytes(),
        );
        let stock = format!(
            "库存不足 商品 {} 仓库 {}",
            i,
            ["上海", "杭州", "北京"][i % 3]
        );
        feed(
            &mut agg,
            t(i as i64),
            "/var/log/app/stock.log",
            stock.as_bytes(),
        );
    }
    let summary = agg.poll(t(100)).unwrap();
    let options = RenderOptions {
        max_body_bytes: 4_000,
        ..options()
    };
    snapshot("cjk_near_limit", &summary, &options);
}

#[test]
fn hostile_line() {
    let mut agg = aggregator(rules(&[("any-error", "ERROR", Severity::Error, 1, &[])]));
    let hostile = "ERROR @all @13800000000 [x](http://evil) ![](http://evil/img.png) <font color=red>x</font>\n# heading\n> quote\n- list\n1. item\n**bold** `code` &#64;all\u{202E}reversed\u{1b}[31m\r\x00end";
    feed(
        &mut agg,
        t(0),
        "/var/log/app/[x](http://evil).log",
        hostile.as_bytes(),
    );
    feed(
        &mut agg,
        t(1),
        "/var/log/app/app.log",
        b"# ERROR heading at start, retry 42",
    );
    let summary = agg.poll(t(100)).unwrap();
    snapshot("hostile_markdown", &summary, &options());
    let text = RenderOptions {
        msgtype: MsgType::Text,
        ..options()
    };
    snapshot("hostile_text", &summary, &text);
    for body in render(&summary, &options()) {
        for forbidden in [
            "@all", "](", "<font", "\u{202E}", "\\u001b", "\\r", "\\u0000",
        ] {
            assert!(!body.contains(forbidden), "{forbidden} in {body}");
        }
        let value: Value = serde_json::from_str(&body).unwrap();
        let text = value["markdown"]["text"].as_str().unwrap();
        for line in text.lines().skip(1) {
            let untrusted = line.strip_prefix("> ").unwrap_or(line);
            let starts_markup = untrusted.starts_with(['#', '>', '-', '+', '*', '1']);
            let ours = line.starts_with("- ") || line.starts_with("**");
            assert!(ours || !starts_markup, "{line}");
        }
    }
}

#[test]
fn a_million_hits_over_five_thousand_messages() {
    let mut window = WindowOptions::new(Duration::from_secs(60), "app-01");
    window.max_patterns = 5;
    let mut agg = Aggregator::new(
        rules(&[
            ("job-failed", "job .* failed", Severity::Error, 1, &[]),
            ("disk", "disk", Severity::Critical, 1, &[]),
        ]),
        window,
    );
    let words: Vec<String> = (0..5_000)
        .map(|i| {
            let mut word = String::new();
            let mut n = i;
            for _ in 0..4 {
                word.push((b'a' + (n % 26) as u8) as char);
                n /= 26;
            }
            word
        })
        .collect();
    let mut line = String::new();
    let mut light = 0;
    for i in 0..1_000_000usize {
        // Five heavy hitters take 60%; the other 4,995 messages share the rest evenly.
        let which = if i % 5 < 3 {
            i / 5 % 5
        } else {
            light += 1;
            5 + light % 4_995
        };
        line.clear();
        write!(line, "job {} failed after {} retries", words[which], i % 7).unwrap();
        let hit = HitRef {
            rule: RuleId(0),
            line: line.as_bytes(),
            groups: &[],
            file: "/var/log/app/jobs.log",
        };
        agg.observe(t((i / 20_000) as i64), hit);
    }
    feed(
        &mut agg,
        t(59),
        "/var/log/app/app.log",
        b"disk /data is full",
    );
    let summary = agg.poll(t(60)).unwrap();
    assert_eq!(summary.matches(), 1_000_001);
    snapshot("million_hits", &summary, &options());
}

fn arbitrary_summary_rules() -> Arc<RuleSet> {
    rules(&[
        ("critical-any", "(?s-u).", Severity::Critical, 1, &[]),
        ("error-digit", r"(?-u)(?P<d>\d)", Severity::Error, 1, &["d"]),
        ("warning-a", "(?-u)a", Severity::Warning, 2, &[]),
        ("info-b", "(?-u)b", Severity::Info, 1, &[]),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the log bytes, rendering never panics, and every body is valid JSON within
    /// budget that carries the keyword in its first line (and title).
    #[test]
    fn bodies_are_valid_within_budget_and_carry_the_keyword(
        lines in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..400), "[a-z/.\u{4e00}-\u{4e10}\\[\\]()@#]{0,40}"),
            1..60,
        ),
        budget in 1_000usize..20_000,
        is_text in any::<bool>(),
        keyword in prop::sample::select(vec!["alert", "告警", "ALERT-x"]),
    ) {
        let mut agg = aggregator(arbitrary_summary_rules());
        for (i, (line, file)) in lines.iter().enumerate() {
            feed(&mut agg, t(i as i64 % 50), file, line);
        }
        while let Some(summary) = agg.flush(t(60)) {
            let options = RenderOptions {
                keyword: keyword.to_owned(),
                msgtype: if is_text { MsgType::Text } else { MsgType::Markdown },
                max_body_bytes: budget,
                ..options()
            };
            show(&render(&summary, &options), &options);
            let _ = render_text(&summary, &options);
        }
    }

    /// Many rules with long names: shrinking, then splitting into numbered parts.
    #[test]
    fn huge_summaries_split_into_parts_within_budget(
        names in prop::collection::vec("[a-z\u{4e00}-\u{4e10}@\\[\\]]{1,120}", 1..400),
        budget in 1_000usize..6_000,
        is_text in any::<bool>(),
    ) {
        let mut summary = mixed();
        for (i, name) in names.iter().enumerate() {
            let mut rule = summary.rules[i % summary.rules.len()].clone();
            rule.name = format!("{name}-{i}");
            rule.severity = Severity::ALL[i % 4];
            summary.rules.push(rule);
        }
        crate::summary::sort_rules(&mut summary.rules);
        let options = RenderOptions {
            msgtype: if is_text { MsgType::Text } else { MsgType::Markdown },
            max_body_bytes: budget,
            ..options()
        };
        let bodies = render(&summary, &options);
        show(&bodies, &options);
        if bodies.len() > 1 {
            for (k, body) in bodies.iter().enumerate() {
                let label = format!("({}/{})", k + 1, bodies.len());
                prop_assert!(body.contains(&label), "{} lacks {}", body, label);
            }
        }
        // Every rule's count is still somewhere (collapsed lines keep counts).
        let all = bodies.concat();
        for rule in summary.rules.iter().take(50) {
            let count = format!(" ×{}", rule.count);
            prop_assert!(all.contains(&count), "{} lacks {}", all, count);
        }
    }
}

#[test]
fn shrinking_keeps_counts_and_drops_samples_of_lower_ranks_first() {
    let summary = mixed();
    let full = render(&summary, &options()).remove(0);
    let options = RenderOptions {
        max_body_bytes: full.len() - 1,
        ..options()
    };
    let bodies = render(&summary, &options);
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert!(body.len() < full.len());
    assert!(body.contains("Metaspace"), "the top entry keeps its sample");
    assert!(
        !body.contains("call to deprecated API /v1/x"),
        "the last entry loses it"
    );
    for rule in &summary.rules {
        assert!(body.contains(&format!("{}** ×{}", rule.name, rule.count)));
    }
}

#[test]
fn collapsed_and_split_forms() {
    let mut summary = mixed();
    for i in 0..40 {
        let mut rule = summary.rules[i % 5].clone();
        rule.name = format!("rule-with-a-rather-long-name-{i:02}");
        summary.rules.push(rule);
    }
    crate::summary::sort_rules(&mut summary.rules);
    let options = RenderOptions {
        max_body_bytes: 1_500,
        ..options()
    };
    snapshot("split", &summary, &options);
}

#[test]
fn cjk_at_the_default_budget_fills_it_without_passing_it() {
    let mut agg = aggregator(rules(&[
        ("order-failed", "下单失败", Severity::Critical, 1, &[]),
        ("payment-failed", "支付失败", Severity::Error, 1, &[]),
        ("stock-low", "库存不足", Severity::Warning, 1, &[]),
        ("refund-failed", "退款失败", Severity::Error, 1, &[]),
        ("login-failed", "登录失败", Severity::Warning, 1, &[]),
        ("sms-failed", "短信失败", Severity::Info, 1, &[]),
        ("ship-failed", "发货失败", Severity::Error, 1, &[]),
        ("audit-failed", "对账失败", Severity::Warning, 1, &[]),
        ("sync-failed", "同步失败", Severity::Error, 1, &[]),
    ]));
    for i in 0..900 {
        let reason = ["服务超时", "连接被拒绝", "余额不足", "签名错误"][i % 4];
        let line = format!(
            "{} 订单 {} {}处理异常：{}{}，用户编号{}，渠道{}",
            [
                "下单失败",
                "支付失败",
                "库存不足",
                "退款失败",
                "登录失败",
                "短信失败",
                "发货失败",
                "对账失败",
                "同步失败"
            ][i % 9],
            900_000 + i,
            "号".repeat(i % 17),
            reason.repeat(60 + i % 29),
            "明细".repeat(i % 11),
            i,
            ["微信", "支付宝", "银联"][i % 3]
        );
        feed(
            &mut agg,
            t(i as i64 % 60),
            "/var/log/app/订单.log",
            line.as_bytes(),
        );
    }
    let summary = agg.poll(t(100)).unwrap();
    let options = options();
    let bodies = render(&summary, &options);
    show(&bodies, &options);
    assert_eq!(bodies.len(), 1);
    let full = render(
        &summary,
        &RenderOptions {
            max_body_bytes: usize::MAX,
            ..options.clone()
        },
    );
    assert!(
        full[0].len() > options.max_body_bytes,
        "the test needs shrinking: {} bytes",
        full[0].len()
    );
    assert!(
        bodies[0].len() > options.max_body_bytes / 2,
        "{}",
        bodies[0].len()
    );
    for rule in &summary.rules {
        assert!(bodies[0].contains(&format!("{}** ×{}", rule.name, rule.count)));
    }
}
