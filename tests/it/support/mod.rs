//! Helpers shared by the integration suites.

pub(crate) mod agent;
pub(crate) mod alertmanager;
pub(crate) mod cli;
pub(crate) mod dingtalk_server;
pub(crate) mod logs;
pub(crate) mod relay;

/// The count a rendered message shows for `rule`: its section's rule line
/// (`**ERROR · db-timeout** ×4`) or, in a message of one rule, which has no rule line, the
/// heading (`### [alert] ERROR db-timeout ×4 · host`).
pub(crate) fn count_of(text: &str, rule: &str) -> Option<u64> {
    let section = format!("· {rule}**");
    let heading = format!(" {rule} ×");
    let line = text
        .lines()
        .find(|line| line.contains(&section))
        .or_else(|| text.lines().next().filter(|line| line.contains(&heading)))?;
    let after = &line[line.find(rule)? + rule.len()..];
    let digits: String = after
        .split('×')
        .nth(1)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Sum of `rule`'s counts over every accepted message.
pub(crate) fn total(requests: &[dingtalk_server::Request], rule: &str) -> u64 {
    requests
        .iter()
        .filter_map(|r| count_of(&r.text(), rule))
        .sum()
}

/// A test that cannot run here (a tool is missing, a privilege is lacking): where `CI` is set,
/// that is a failure (`.ci/run` installs what tests need); elsewhere it prints why and the test
/// passes without checking anything.
#[track_caller]
#[allow(clippy::print_stdout)]
pub(crate) fn cannot_run(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run in CI: {why}");
    }
    println!("SKIP {test}: {why}");
}
