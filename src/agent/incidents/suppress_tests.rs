//! Silences, mute hours and inhibition through the real process task on tokio's paused clock,
//! the wall clock starting at a known instant: what the outbox receives, and that nothing
//! suppressed is lost from the counts.

use jiff::{SignedDuration, Timestamp};

use super::super::process::Process;
use super::super::tests::Record;
use super::lifecycle_tests::{Messages, drive, hits, process, steady};
use crate::config::Config;
use crate::render::{RenderOptions, render_text};
use crate::summary::Summary;
use crate::suppress::{SilenceFile, StoredSilence, Why};

/// 2026-12-01T10:00:00Z: where the wall clock starts.
fn start() -> Timestamp {
    "2026-12-01T10:00:00Z".parse().expect("a valid time")
}

fn after(seconds: i64) -> Timestamp {
    start() + SignedDuration::from_secs(seconds)
}

/// A config in `dir` with rules `db` and `db-down` (and `oom`), plus `extra` YAML.
fn config(dir: &std::path::Path, extra: &str) -> Config {
    let path = dir.join("logding.yaml");
    let text = format!(
        "window: 1m\nstate_dir: {}\nsources: [{{name: app, paths: [/var/log/app/*.log]}}]\n{extra}\nrules:\n  - {{name: oom, pattern: OutOfMemoryError, severity: critical}}\n  - {{name: db, pattern: 'db timeout'}}\n  - {{name: db-down, pattern: 'database down', severity: critical}}\n",
        dir.display()
    );
    std::fs::write(&path, text).expect("write config");
    crate::config::load_with(&path, false, &|_| None).expect("valid config")
}

/// A process whose wall clock starts at `wall`.
fn process_at(config: Config, messages: &Messages, wall: Timestamp) -> Process<Messages, Record> {
    process(config, messages).with_clock_at(wall)
}

/// Writes `state_dir/silences.json` as `logding silence add` does.
pub(super) fn add_silence(dir: &std::path::Path, matchers: &[&str], expires: Timestamp) -> String {
    let mut file = SilenceFile::default();
    let id = file.add(StoredSilence {
        id: String::new(),
        matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
        starts: Timestamp::MIN,
        expires,
        author: None,
        comment: Some("failover drill".into()),
    });
    crate::state::write_atomic(&dir.join("silences.json"), &file.to_json()).expect("write");
    id
}

fn text(message: &Summary, config: &Config) -> String {
    render_text(message, &RenderOptions::from_config(config))
}

fn suppressed(message: &Summary, why: impl Fn(&Why) -> bool) -> u64 {
    let lines = &message.incidents.suppressed.lines;
    lines.iter().filter(|l| why(&l.why)).map(|l| l.count).sum()
}

#[tokio::test(start_paused = true)]
async fn a_silenced_incident_posts_nothing_and_is_in_the_next_messages_footer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = add_silence(dir.path(), &["rule=db"], after(3600));
    let config = config(dir.path(), "");
    let messages = Messages::default();
    let mut process = process_at(config.clone(), &messages, start());
    let mut writes = steady("ERROR db timeout to 10.0.0.5", 0, 5);
    writes.push((
        6 * 60,
        "java.lang.OutOfMemoryError: Java heap space\n".into(),
    ));
    drive(&mut process, writes, 0).await;

    let sent = messages.all();
    assert_eq!(sent.len(), 1, "only the oom message: {sent:#?}");
    let message = &sent[0];
    assert_eq!(message.rules[0].name, "oom");
    assert_eq!(
        suppressed(message, |w| matches!(w, Why::Silenced { .. })),
        50
    );
    assert_eq!(hits(message) + message.incidents.suppressed.matches(), 51);
    let text = text(message, &config);
    assert!(
        text.contains(&format!("silenced: db ×50 ({id}, until 11:00)")),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_silence_stops_applying_at_its_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = SilenceFile::default();
    for (rule, expires) in [("db", after(122)), ("oom", after(123))] {
        file.add(StoredSilence {
            id: String::new(),
            matchers: vec![format!("rule={rule}")],
            starts: start(),
            expires,
            author: None,
            comment: None,
        });
    }
    crate::state::write_atomic(&dir.path().join("silences.json"), &file.to_json()).expect("write");
    let config = config(dir.path(), "");
    let messages = Messages::default();
    let mut process = process_at(config, &messages, start());
    // Windows close at 61 (both silences apply) and at 122: `db`'s has expired at that very
    // second, `oom`'s a second later.
    let writes = vec![
        (1, "ERROR db timeout\n".to_owned()),
        (62, "ERROR db timeout\nERROR db timeout\n".to_owned()),
        (63, "java.lang.OutOfMemoryError\n".to_owned()),
    ];
    drive(&mut process, writes, 120).await;

    let sent = messages.all();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].end, after(122));
    let names: Vec<(&str, u64)> = sent[0]
        .rules
        .iter()
        .map(|r| (r.name.as_str(), r.count))
        .collect();
    assert_eq!(
        names,
        [("db", 2)],
        "shown from the second its silence expires"
    );
    let silenced: Vec<(&str, u64)> = sent[0]
        .incidents
        .suppressed
        .lines
        .iter()
        .map(|l| (l.rule.as_str(), l.count))
        .collect();
    assert_eq!(silenced, [("db", 1), ("oom", 1)]);
}

#[tokio::test(start_paused = true)]
async fn mute_defer_holds_across_a_restart_and_reports_at_the_intervals_end_with_exact_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = "time_intervals:
  - name: quiet
    time_intervals: [{times: [{start_time: '10:00', end_time: '10:30'}]}]
mute: {mute_during: [quiet], mode: defer, except_severity: critical}";
    let config = config(dir.path(), extra);
    let messages = Messages::default();
    let mut first = process_at(config.clone(), &messages, start());
    drive(&mut first, steady("ERROR db timeout", 0, 10), 0).await;
    assert!(messages.all().is_empty(), "held: {:#?}", messages.all());
    let commits = first.follow.commits();
    assert!(
        !commits.is_empty(),
        "the deferred lines' offsets are committed"
    );
    let state = super::super::suppress::load(dir.path());
    assert_eq!(
        state.deferred[0].rule.count, 100,
        "persisted before the commit"
    );

    // Restarted at 10:12, more lines, then quiet until past 10:30.
    let mut second = process_at(config.clone(), &messages, after(12 * 60));
    let mut writes = steady("ERROR db timeout", 0, 5);
    writes.push((
        5 * 60 + 5,
        "java.lang.OutOfMemoryError: Java heap space\n".into(),
    ));
    drive(&mut second, writes, 30 * 60).await;

    let sent = messages.all();
    let oom = &sent[0];
    assert_eq!(
        oom.rules[0].name, "oom",
        "critical is never muted: {sent:#?}"
    );
    let released = sent
        .iter()
        .find(|m| m.rules.iter().any(|r| r.name == "db"))
        .expect("the deferred hits are reported");
    assert_eq!(
        released.end,
        after(30 * 60),
        "at the interval's end, to the second"
    );
    assert_eq!(released.rules[0].name, "db");
    assert_eq!(released.rules[0].count, 150, "every held line");
    assert_eq!(
        suppressed(released, |w| matches!(w, Why::Deferred { .. })),
        150
    );
    assert!(text(released, &config).contains("deferred: db ×150 (quiet)"));
}

#[tokio::test(start_paused = true)]
async fn a_source_in_the_same_window_inhibits_its_targets_folded_under_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = "inhibit:\n  - {source: {rule: db-down}, target: {rules: [db]}}";
    let config = config(dir.path(), extra);
    let messages = Messages::default();
    let mut process = process_at(config.clone(), &messages, start());
    // The targets come first in the window; the source 30 s later.
    let mut writes = steady("ERROR db timeout", 0, 1);
    writes.push((31, "FATAL database down\n".into()));
    writes.sort_by_key(|(at, _)| *at);
    drive(&mut process, writes, 0).await;

    let sent = messages.all();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let names: Vec<&str> = sent[0].rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["db-down"]);
    assert_eq!(
        suppressed(
            &sent[0],
            |w| matches!(w, Why::Inhibited { source } if source == "db-down")
        ),
        10
    );
    let text = text(&sent[0], &config);
    assert!(text.contains("↳ also: db, 10 matches, inhibited"), "{text}");
}
