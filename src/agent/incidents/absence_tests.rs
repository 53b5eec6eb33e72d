//! Absence through the real process task on tokio's paused clock: a heartbeat that stops, a
//! log file that stops growing, a glob that matches nothing, a restart while absent.

use jiff::SignedDuration;

use super::super::process::{Process, matchers_for};
use super::super::tests::Record;
use super::lifecycle_tests::{Messages, drive, load_config, process};
use super::suppress_tests::add_silence;
use crate::absence::{AbsentKind, AbsentLine, AbsentState};
use crate::config::Config;
use crate::summary::Summary;

fn config(state_dir: &std::path::Path, paths: &str, extra: &str) -> Config {
    load_config(
        state_dir,
        &format!(
            "sources: [{{name: app, paths: ['{paths}']{extra}}}]
rules:
  - {{name: oom, pattern: OutOfMemoryError, severity: critical}}
  - {{name: nightly-sync, kind: absence, pattern: 'sync finished', window: 5m, severity: critical}}
"
        ),
    )
}

/// The `New` lines about the source in every message.
fn source_news(sent: &[Summary]) -> Vec<&AbsentLine> {
    absent(sent)
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.is_source() && l.state == AbsentState::New)
        .collect()
}

/// Every absent line of every message, with the message.
fn absent(sent: &[Summary]) -> Vec<(&Summary, &AbsentLine)> {
    sent.iter()
        .flat_map(|m| m.incidents.absent.iter().map(move |l| (m, l)))
        .collect()
}

/// The process of a restart at `wall` on the same state directory.
fn restart(
    config: Config,
    messages: &Messages,
    wall: jiff::Timestamp,
) -> Process<Messages, Record> {
    let matchers = matchers_for(&config);
    let state = super::load(&config.state_dir);
    let dir = config.state_dir.clone();
    let mut process =
        Process::new(config, matchers, Record::default(), messages.clone()).with_clock_at(wall);
    process.resume_incidents(state, Some(dir));
    process
}

/// `line` every `step` seconds from `from` to `to`.
fn every(from: u64, to: u64, step: usize, line: &str) -> Vec<(u64, String)> {
    (from..to)
        .step_by(step)
        .map(|at| (at, format!("{line}\n")))
        .collect()
}

fn beats(from: u64, to: u64) -> Vec<(u64, String)> {
    every(from, to, 30, "INFO sync finished")
}

/// A `logs/app.log` (empty) under `dir`; returns the glob matching it.
fn app_log(dir: &std::path::Path) -> String {
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).expect("logs dir");
    std::fs::write(logs.join("app.log"), "").expect("log file");
    format!("{}/*.log", logs.display())
}

#[tokio::test(start_paused = true)]
async fn a_stopped_heartbeat_fires_once_within_its_window_and_one_more_then_resolves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let mut agent = process(config(dir.path(), "/nonexistent/*.log", ""), &messages);
    // Beats every 30 s for 10 min, silence for 20 min, beats again for 5 min.
    let mut writes = beats(0, 600);
    writes.extend(beats(1800, 2100));
    drive(&mut agent, writes, 240).await;

    let sent = messages.all();
    let lines = absent(&sent);
    let states: Vec<AbsentState> = lines.iter().map(|(_, l)| l.state).collect();
    assert_eq!(states, [AbsentState::New, AbsentState::Back], "{sent:#?}");
    let (message, fired) = lines[0];
    let last_beat = fired.last_seen.expect("seen before");
    let late = fired.since.duration_since(last_beat);
    assert!(
        late >= SignedDuration::from_mins(5) && late <= SignedDuration::from_mins(6),
        "fired {late:#} after the last beat"
    );
    assert_eq!(
        message.rules.len(),
        0,
        "heartbeats are never shown as alerts"
    );
    let (_, back) = lines[1];
    assert!(back.back.expect("back at") > fired.since);
}

#[tokio::test(start_paused = true)]
async fn a_restart_while_absent_neither_fires_again_nor_forgets_to_resolve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let config = || config(dir.path(), "/nonexistent/*.log", "");
    let mut first = process(config(), &messages);
    drive(&mut first, beats(0, 120), 600).await;
    // The same state directory, the clock going on: the open absence is remembered.
    let mut second = restart(config(), &messages, first.now());
    drive(&mut second, Vec::new(), 600).await;
    let mut third = restart(config(), &messages, second.now());
    drive(&mut third, beats(0, 60), 120).await;

    assert_told(&messages, &[AbsentState::New, AbsentState::Back]);
}

/// Asserts the `New` and `Back` lines of every message sent, in order.
fn assert_told(messages: &Messages, states: &[AbsentState]) {
    let sent = messages.all();
    let told: Vec<AbsentState> = absent(&sent)
        .iter()
        .filter(|(_, l)| l.state != AbsentState::Ongoing)
        .map(|(_, l)| l.state)
        .collect();
    assert_eq!(told, states, "{sent:#?}");
}

#[tokio::test(start_paused = true)]
async fn an_absence_told_missing_is_told_back_though_silenced_since_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let heartbeat = |dir: &std::path::Path| config(dir, "/nonexistent/*.log", "");
    let mut first = process(heartbeat(dir.path()), &messages);
    drive(&mut first, beats(0, 120), 600).await;
    assert_told(&messages, &[AbsentState::New]);
    // Silenced while absent, restarted (the open absence, told, is in `incidents.json`).
    let expires = "2100-01-01T00:00:00Z".parse().expect("a valid time");
    add_silence(dir.path(), &["rule=nightly-sync"], expires);
    let mut second = restart(heartbeat(dir.path()), &messages, first.now());
    drive(&mut second, beats(0, 60), 120).await;
    assert_told(&messages, &[AbsentState::New, AbsentState::Back]);

    // Silenced from the start: never told missing, so never told back either.
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    add_silence(dir.path(), &["rule=nightly-sync"], expires);
    let mut agent = process(heartbeat(dir.path()), &messages);
    drive(&mut agent, beats(0, 120), 600).await;
    drive(&mut agent, beats(0, 60), 120).await;
    assert_told(&messages, &[]);
}

/// Lines that match no rule: the file grows, nothing is a hit.
fn growth(from: u64, to: u64) -> Vec<(u64, String)> {
    every(from, to, 10, "INFO request served")
}

#[tokio::test(start_paused = true)]
async fn a_stalled_file_that_grows_again_is_told_back_within_a_window_though_nothing_matches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let glob = app_log(dir.path());
    let messages = Messages::default();
    // No absence rule: nothing else is evaluated on a schedule.
    let config = load_config(
        dir.path(),
        &format!(
            "sources: [{{name: app, paths: ['{glob}'], source_stalled: 3m}}]
rules: [{{name: oom, pattern: OutOfMemoryError, severity: critical}}]
"
        ),
    );
    let mut agent = process(config, &messages);
    // Grows for 2 minutes, nothing for 5 (stalled), then one line that no rule matches.
    let mut writes = growth(0, 120);
    writes.extend(growth(420, 421));
    drive(&mut agent, writes, 65).await;
    let sent = messages.all();
    assert_eq!(source_news(&sent).len(), 1, "{sent:#?}");
    // The source is back within a window (1m) of that line, though no window of hits opened.
    let back: Vec<_> = absent(&sent)
        .into_iter()
        .filter(|(_, l)| l.is_source() && l.state == AbsentState::Back)
        .collect();
    assert_eq!(back.len(), 1, "{sent:#?}");
    let (message, line) = back[0];
    let growth_at = line.last_seen.expect("grew");
    assert_eq!(
        message.end.duration_since(growth_at),
        SignedDuration::from_secs(60)
    );
}

#[tokio::test(start_paused = true)]
async fn a_file_that_stops_growing_and_a_glob_with_no_file_are_told_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let glob = app_log(dir.path());
    let messages = Messages::default();
    let stalled = ", source_stalled: 3m";
    let mut agent = process(config(dir.path(), &glob, stalled), &messages);
    // The file grows for 2 minutes (the heartbeat keeps the absence rule quiet).
    drive(&mut agent, beats(0, 120), 0).await;
    drive(&mut agent, beats(0, 300), 0).await;
    let sent = messages.all();
    let stalls = source_news(&sent);
    assert!(stalls.is_empty(), "{stalls:#?}");

    // Nothing grows: the source stalls; then the file is removed: still one incident.
    drive(&mut agent, Vec::new(), 300).await;
    std::fs::remove_file(dir.path().join("logs/app.log")).expect("remove");
    drive(&mut agent, Vec::new(), 600).await;
    let sent = messages.all();
    let news = source_news(&sent);
    assert_eq!(news.len(), 1, "{news:#?}");
    assert!(
        matches!(news[0].kind, AbsentKind::Stalled { .. }),
        "{news:#?}"
    );

    // A source whose glob never matched anything says so.
    let empty = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let mut agent = process(config(empty.path(), &glob, stalled), &messages);
    drive(&mut agent, Vec::new(), 300).await;
    let sent = messages.all();
    let news = source_news(&sent);
    assert!(
        matches!(news.as_slice(), [l] if matches!(l.kind, AbsentKind::NoFile { .. })),
        "{news:#?}"
    );
}
