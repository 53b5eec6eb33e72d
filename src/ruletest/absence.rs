//! `logding test` for absence rules and stalled sources: a case's `absent:` entries (which
//! absences fire, when, and when they are back) against what the runner saw the incident stage
//! say. When a case has `absent:`, it lists every absence that fires in it.

use jiff::Timestamp;

use super::compare::Mismatch;
use super::format::AbsentExpect;
use crate::absence::AbsentState;
use crate::summary::Summary;

/// An absence the incident stage fired while a case ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbsenceSeen {
    /// The absence rule, or the source of a stall.
    pub name: String,
    /// Whether it is a source (`source_stalled`).
    pub is_source: bool,
    /// The key's `group_by` values.
    pub group: Vec<(String, String)>,
    /// When it fired (virtual time).
    pub at: Timestamp,
    /// When it came back, if it did.
    pub back: Option<Timestamp>,
}

/// Records the absences a message of the incident stage tells at `now`.
pub(super) fn note(seen: &mut Vec<AbsenceSeen>, message: Option<&Summary>, now: Timestamp) {
    for line in message.into_iter().flat_map(|m| &m.incidents.absent) {
        let same = |s: &AbsenceSeen| {
            s.name == line.rule && s.is_source == line.is_source() && s.group == line.group
        };
        match line.state {
            AbsentState::New => seen.push(AbsenceSeen {
                name: line.rule.clone(),
                is_source: line.is_source(),
                group: line.group.clone(),
                at: now,
                back: None,
            }),
            AbsentState::Back => {
                if let Some(open) = seen.iter_mut().rev().find(|s| same(s) && s.back.is_none()) {
                    open.back = Some(now);
                }
            }
            AbsentState::Ongoing => {}
        }
    }
}

/// The differences between a case's `absent:` and the absences seen, in expectation order,
/// then the absences nobody expected.
pub fn compare(expected: &[AbsentExpect], seen: &[AbsenceSeen], start: Timestamp) -> Vec<Mismatch> {
    let mut unmatched: Vec<&AbsenceSeen> = seen.iter().collect();
    let mut out = Vec::new();
    for expect in expected {
        let wanted = describe_expected(expect);
        let found = unmatched.iter().position(|s| {
            s.name == expect.name.name && s.is_source == expect.is_source && s.group == expect.group
        });
        let Some(index) = found else {
            out.push(mismatch(wanted, vec!["not absent".into()], seen, start));
            continue;
        };
        let actual = unmatched.remove(index);
        let offset = |at: Timestamp| at.duration_since(start).unsigned_abs();
        let at_differs = expect.at.is_some_and(|at| at != offset(actual.at));
        let back_differs = expect
            .back
            .is_some_and(|back| actual.back.map(offset) != Some(back));
        if at_differs || back_differs {
            out.push(mismatch(
                wanted,
                vec![describe_seen(actual, start)],
                seen,
                start,
            ));
        }
    }
    if !unmatched.is_empty() {
        out.push(mismatch(
            "no other absence".into(),
            unmatched.iter().map(|s| describe_seen(s, start)).collect(),
            seen,
            start,
        ));
    }
    out
}

fn mismatch(
    expected: String,
    actual: Vec<String>,
    seen: &[AbsenceSeen],
    start: Timestamp,
) -> Mismatch {
    let mut context: Vec<String> = seen.iter().map(|s| describe_seen(s, start)).collect();
    if context.is_empty() {
        context.push("no absence fired".into());
    }
    Mismatch {
        place: "absences".into(),
        expected,
        actual,
        context,
    }
}

fn subject(name: &str, is_source: bool, group: &[(String, String)]) -> String {
    let mut text = if is_source {
        format!("source `{name}`")
    } else {
        format!("`{name}`")
    };
    for (key, value) in group {
        text.push_str(&format!(" {key}={value}"));
    }
    text
}

fn span(duration: std::time::Duration) -> String {
    crate::config::format_duration(duration)
}

fn describe_expected(expect: &AbsentExpect) -> String {
    let mut text = format!(
        "{} absent",
        subject(&expect.name.name, expect.is_source, &expect.group)
    );
    if let Some(at) = expect.at {
        text.push_str(&format!(" at {}", span(at)));
    }
    if let Some(back) = expect.back {
        text.push_str(&format!(", back at {}", span(back)));
    }
    text
}

fn describe_seen(seen: &AbsenceSeen, start: Timestamp) -> String {
    let offset = |at: Timestamp| span(at.duration_since(start).unsigned_abs());
    let mut text = format!(
        "{} absent at {}",
        subject(&seen.name, seen.is_source, &seen.group),
        offset(seen.at)
    );
    match seen.back {
        Some(back) => text.push_str(&format!(", back at {}", offset(back))),
        None => text.push_str(", not back"),
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::ruletest::{format, run_file};

    const CONFIG: &str = "window: 1m
sources: [{name: app, paths: [/var/log/app/*.log], source_stalled: 10m}]
time_intervals:
  - name: nights
    time_intervals: [{times: [{start_time: '02:00', end_time: '04:00'}]}]
rules:
  - name: heartbeat
    kind: absence
    pattern: 'beat from (?P<host>\\S+)'
    group_by: [host]
    window: 5m
    keys: {static: [db-1, db-2, db-3]}
  - {name: nightly, kind: absence, pattern: 'sync finished', window: 1h, schedule: nights}
";

    /// Runs the test file `cases` (its `cases:` list) against [`CONFIG`]: the diff lines of
    /// each case, or the problems of the file.
    fn run(cases: &str) -> Result<Vec<Vec<String>>, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("logding.yaml");
        std::fs::write(&config_path, CONFIG).expect("write config");
        let config =
            crate::config::load_with(&config_path, false, &|_| None).map_err(|e| e.to_string())?;
        let text = format!("config: logding.yaml\ncases:\n{cases}");
        let file =
            format::parse(&dir.path().join("t.yaml"), &text).map_err(|d| format!("{d:?}"))?;
        let results = run_file(&file, &config).map_err(|e| e.to_string())?;
        Ok(results
            .into_iter()
            .map(|r| {
                r.mismatches
                    .iter()
                    .flat_map(|m| {
                        let mut lines = vec![format!("- {}", m.expected)];
                        lines.extend(m.actual.iter().map(|a| format!("+ {a}")));
                        lines
                    })
                    .collect()
            })
            .collect())
    }

    #[test]
    fn absences_fire_at_their_due_time_static_keys_stalls_and_schedules_included() {
        let outcome = run(
            "  - name: db-2 stops beating at 9m, db-1 at 29m, db-3 never did
    input:
      - {at: 0s, every: 1m, repeat: 30, line: beat from db-1}
      - {at: 0s, every: 1m, repeat: 10, line: beat from db-2}
      - {at: 40m, line: beat from db-2}
    absent:
      - {rule: heartbeat, group: {host: db-3}, at: 5m}
      - {rule: heartbeat, group: {host: db-2}, at: 14m, back: 41m}
      - {rule: heartbeat, group: {host: db-1}, at: 34m}
      - {source: app, at: 39m, back: 41m}
      - {rule: heartbeat, group: {host: db-2}, at: 45m}
      - {source: app, at: 50m}
      - {rule: nightly, at: 2h}
",
        );
        assert_eq!(outcome, Ok(vec![Vec::<String>::new()]));
    }

    #[test]
    fn a_silenced_absence_does_not_fire() {
        let outcome = run("  - name: db-3 is silenced, the others are not
    silences: [{matchers: {rule: heartbeat, host: db-3}, expires: 1h}]
    input:
      - {at: 0s, every: 1m, repeat: 20, line: beat from db-1}
      - {at: 0s, every: 1m, repeat: 20, line: beat from db-2}
    absent:
      - {rule: heartbeat, group: {host: db-1}, at: 24m}
      - {rule: heartbeat, group: {host: db-2}, at: 24m}
      - {source: app, at: 29m}
      - {rule: nightly, at: 2h}
");
        assert_eq!(outcome, Ok(vec![Vec::<String>::new()]));
    }

    #[test]
    fn an_absence_told_missing_is_told_back_though_silenced_since() {
        // db-2 stops at 9m and beats again from 40m to 49m; db-1 and db-3 stop at 49m.
        let case = |name: &str, starts: &str, db2: &str| {
            format!(
                "  - name: {name}
    silences: [{{matchers: {{rule: heartbeat, host: db-2}}, starts: {starts}, expires: 2h}}]
    input:
      - {{at: 0s, every: 1m, repeat: 50, line: beat from db-1}}
      - {{at: 0s, every: 1m, repeat: 50, line: beat from db-3}}
      - {{at: 0s, every: 1m, repeat: 10, line: beat from db-2}}
      - {{at: 40m, every: 1m, repeat: 10, line: beat from db-2}}
    absent:
{db2}      - {{rule: heartbeat, group: {{host: db-1}}, at: 54m}}
      - {{rule: heartbeat, group: {{host: db-3}}, at: 54m}}
      - {{source: app, at: 59m}}
      - {{rule: nightly, at: 2h}}
"
            )
        };
        // Told at 14m, silenced from 20m: told back at 41m (absent again at 54m, silenced).
        let told = case(
            "told, then silenced",
            "20m",
            "      - {rule: heartbeat, group: {host: db-2}, at: 14m, back: 41m}\n",
        );
        // Silenced from the start: neither absent nor back.
        let silenced = case("silenced from the start", "0s", "");
        let outcome = run(&format!("{told}{silenced}"));
        assert_eq!(outcome, Ok(vec![Vec::<String>::new(), Vec::new()]));
    }

    #[test]
    fn a_wrong_time_a_missing_and_an_unexpected_absence_read_as_a_diff() {
        let outcome = run("  - name: wrong
    input: [{at: 0s, every: 1m, repeat: 10, line: beat from db-1}]
    absent:
      - {rule: heartbeat, group: {host: db-1}, at: 13m}
      - {rule: heartbeat, group: {host: db-9}}
");
        let diff = outcome.expect("runs").remove(0);
        assert_eq!(
            diff[..4],
            [
                "- `heartbeat` host=db-1 absent at 13m",
                "+ `heartbeat` host=db-1 absent at 14m, not back",
                "- `heartbeat` host=db-9 absent",
                "+ not absent",
            ],
            "{diff:#?}"
        );
        assert_eq!(diff[4], "- no other absence", "{diff:#?}");
    }

    #[test]
    fn an_absent_entry_names_an_absence_rule_or_a_stalled_source() {
        let err = run("  - name: x
    absent: [{rule: nope}, {source: app, rule: heartbeat}]
")
        .expect_err("rejected");
        assert!(err.contains("names either a `rule` or a `source`"), "{err}");
        let err = run("  - name: x
    absent: [{rule: heartbeet}]
")
        .expect_err("rejected");
        assert!(err.contains("no absence rule `heartbeet`"), "{err}");
        assert!(err.contains("did you mean `heartbeat`?"), "{err}");
    }
}
