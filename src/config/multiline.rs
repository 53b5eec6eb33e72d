//! Multiline presets: `multiline: java | jul | python | go | postgres | dotnet` instead of a
//! hand-written `start` regex. Each preset is the `start` regex of a common log format: a line
//! matching it begins an event, every other line (stack frames, `Caused by:`, tracebacks,
//! goroutine dumps, PostgreSQL `DETAIL:`/`STATEMENT:`) continues it.
//!
//! - `java`: log4j2/logback/Spring Boot lines start with a date (`2026-11-28 10:00:13`,
//!   `[2026-11-28T…`) or logback's default `10:00:13.114 [main]`;
//! - `jul`: java.util.logging's `SimpleFormatter` header `Nov 28, 2026 4:42:13 AM class method`
//!   (its `SEVERE: message` line and the stack trace continue it);
//! - `python`: `logging` lines start with a date or `ERROR:root:` (basicConfig); the
//!   traceback, its exception lines and "The above exception…" continue it;
//! - `go`: the standard logger's `2026/11/28 10:00:13`, RFC 3339, klog's `E1128 10:00:13`,
//!   JSON (`{`) and logfmt (`time=`, `level=`) lines, and `panic:` / `fatal error:`; the
//!   goroutine dump continues it;
//! - `postgres`: a stderr line with a level (`… [5379] ERROR:  …`) or a csvlog record
//!   (`2026-11-28 10:00:13.114 UTC,…`); `DETAIL:`, `HINT:`, `CONTEXT:`, `STATEMENT:`,
//!   `QUERY:` and `LOCATION:` lines, and a statement's own lines, continue it;
//! - `dotnet`: Serilog/NLog dates and Microsoft.Extensions.Logging's `fail: ` / `crit: `
//!   prefixes; `   at …` frames and `--->` inner exceptions continue it.

use super::walk::Ctx;
use super::yaml::Pos;

/// The presets: name and `start` regex.
pub(crate) const PRESETS: &[(&str, &str)] = &[
    (
        "java",
        r"^(\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|\d{2}:\d{2}:\d{2}[.,]\d{3} )",
    ),
    (
        "jul",
        r"^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M ",
    ),
    (
        "python",
        r"^(\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}|(DEBUG|INFO|WARNING|ERROR|CRITICAL):)",
    ),
    (
        "go",
        r"^(\d{4}[/-]\d{2}[/-]\d{2}[ T]\d{2}:\d{2}:\d{2}|[IWEF]\d{4} \d{2}:\d{2}:\d{2}|\{|time=|level=|panic: |fatal error: )",
    ),
    (
        "postgres",
        r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? [A-Za-z0-9+\-]+,|\S.*?\b(LOG|ERROR|WARNING|FATAL|PANIC|INFO|NOTICE|DEBUG[1-5]?):  )",
    ),
    (
        "dotnet",
        r"^(\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|(trce|dbug|info|warn|fail|crit): )",
    ),
];

/// The compiled `start` regex of the preset `name`, or a diagnostic naming the presets.
pub(crate) fn preset(
    ctx: &mut Ctx<'_>,
    name: &str,
    pos: Pos,
    what: &str,
) -> Option<regex::bytes::Regex> {
    let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
    let Some((_, pattern)) = PRESETS.iter().find(|(n, _)| *n == name) else {
        ctx.error(
            pos,
            format!("unknown multiline preset `{name}` in `{what}`"),
            Some(format!(
                "{}; or write `{{start: REGEX}}`",
                super::diag::suggestion_help(name, &names)
            )),
        );
        return None;
    };
    Some(crate::rules::compile_pattern(pattern).expect("the presets are valid regexes"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::PRESETS;
    use crate::config::Multiline;
    use crate::tail::multiline::{Assembler, Event};
    use crate::window::event_samples::{GO_PANIC, PYTHON_CHAIN};

    /// The events the tailer's own assembler makes of `log` with the preset `name`.
    fn events(name: &str, log: &str) -> Vec<String> {
        let (_, pattern) = PRESETS.iter().find(|(n, _)| *n == name).unwrap();
        let mut assembler = Assembler::new(Multiline {
            start: crate::rules::compile_pattern(pattern).unwrap(),
            max_lines: 500,
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(1),
        });
        let mut out = Vec::new();
        let mut emit = |e: Event<'_>| out.push(String::from_utf8_lossy(e.bytes).into_owned());
        let mut offset = 0;
        for line in log.split_inclusive('\n') {
            let end = offset + line.len() as u64;
            assembler.push(line.as_bytes(), offset, end, 0, Instant::now(), &mut emit);
            offset = end;
        }
        assembler.flush(&mut emit);
        out
    }

    #[track_caller]
    fn check(name: &str, records: &[&str]) {
        let log: String = records.iter().map(|r| format!("{r}\n")).collect();
        let expected: Vec<String> = records.iter().map(|r| format!("{r}\n")).collect();
        assert_eq!(events(name, &log), expected);
    }

    #[test]
    fn a_preset_by_name_or_in_the_mapping() {
        let text = "\
sources:
  - {name: app, paths: [/var/log/app/*.log], multiline: jul}
  - {name: go, paths: [/var/log/go/*.log], multiline: {preset: go, timeout: 2s}}
rules:
  - {name: severe, pattern: 'SEVERE: '}
";
        let path = std::path::Path::new("/etc/logding/logding.yaml");
        let config = crate::config::load_text(path, text.to_owned(), true, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let jul = config.sources[0].multiline.as_ref().unwrap();
        assert!(
            jul.start
                .is_match(b"Nov 28, 2026 4:42:13 AM com.acme.A run")
        );
        assert!(!jul.start.is_match(b"SEVERE: boom"));
        let go = config.sources[1].multiline.as_ref().unwrap();
        assert_eq!(go.timeout, Duration::from_secs(2));
        assert!(go.start.is_match(b"panic: boom"));
    }

    #[test]
    fn java() {
        check(
            "java",
            &[
                "2026-11-28 10:00:13.114 ERROR [http-nio-8080-exec-3] c.a.OrderController - failed\n\
                 java.lang.IllegalStateException: order failed\n\
                 \tat com.acme.OrderService.place(OrderService.java:42)\n\
                 Caused by: java.net.SocketTimeoutException: Read timed out\n\
                 \t... 12 more",
                "2026-11-28T10:00:14.001+08:00  WARN 4242 --- [main] c.a.Pool : pool low",
                "10:00:15.002 [main] ERROR c.a.Job - job failed",
            ],
        );
    }

    #[test]
    fn jul_two_line_header() {
        check(
            "jul",
            &[
                "Nov 28, 2026 4:42:13 AM com.acme.orders.OrderService place\n\
                 SEVERE: Order 42 could not be placed\n\
                 java.lang.IllegalStateException: no stock\n\
                 \tat com.acme.orders.OrderService.place(OrderService.java:42)",
                "Nov 28, 2026 4:42:14 AM org.apache.catalina.startup.Catalina start\n\
                 INFO: Server startup in [1234] milliseconds",
            ],
        );
    }

    #[test]
    fn python_chained_traceback() {
        check(
            "python",
            &[
                PYTHON_CHAIN,
                "ERROR:root:plain basicConfig line",
                "2026-11-28 10:00:14,000 INFO [worker] next job",
            ],
        );
    }

    #[test]
    fn go_panic_and_goroutines() {
        check(
            "go",
            &[
                "2026/11/28 10:00:13 worker 7 starting",
                GO_PANIC,
                "{\"level\":\"error\",\"msg\":\"request failed\"}",
                "E1128 10:00:14.000000    1234 controller.go:42] sync failed",
            ],
        );
    }

    #[test]
    fn postgres_stderr_and_csvlog() {
        check(
            "postgres",
            &[
                "2026-11-28 10:00:13.114 UTC [5379] ERROR:  division by zero\n\
                 2026-11-28 10:00:13.114 UTC [5379] STATEMENT:  SELECT total / count\n\
                 \tFROM orders;",
                "2026-11-28 10:00:14.001 UTC [5401] ERROR:  duplicate key value violates unique constraint \"orders_pkey\"\n\
                 2026-11-28 10:00:14.001 UTC [5401] DETAIL:  Key (id)=(42) already exists.\n\
                 2026-11-28 10:00:14.001 UTC [5401] STATEMENT:  INSERT INTO orders (id) VALUES (42);",
                "2026-11-28 10:00:15.000 UTC [5402] LOG:  checkpoint starting: time",
                "2026-11-28 10:00:16.114 UTC,\"app\",\"shop\",5379,\"[local]\",6b0a58af.5379,3,\"SELECT\",2026-11-28 09:59:00 UTC,3/42,0,ERROR,22012,\"division by zero\",,,,,,\"SELECT 1/0\n\
                 ;\",,,\"psql\",\"client backend\",,0",
            ],
        );
    }

    #[test]
    fn dotnet() {
        check(
            "dotnet",
            &[
                "fail: Microsoft.AspNetCore.Server.Kestrel[13]\n\
                 \x20     Connection id \"0HN8\", Request id \"0HN8:00000001\": An unhandled exception was thrown by the application.\n\
                 \x20     System.InvalidOperationException: order failed ---> System.IO.IOException: broken pipe\n\
                 \x20        at Acme.Orders.Place() in /src/Orders.cs:line 42",
                "2026-11-28 10:00:13.114 +08:00 [ERR] Payment failed\n\
                 System.TimeoutException: The operation has timed out.\n\
                 \x20  at Acme.Pay.Charge() in /src/Pay.cs:line 7",
                "info: Microsoft.Hosting.Lifetime[0]\n\
                 \x20     Application started.",
            ],
        );
    }
}
