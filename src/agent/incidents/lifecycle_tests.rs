//! The incident lifecycle through the real process task on tokio's paused clock: what the
//! outbox receives for an hour of steady errors, a second incident, a restart, a backlog.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::process::{Process, Store, matchers_for};
use super::super::tests::{Record, batch};
use crate::config::Config;
use crate::incident::Reason;
use crate::summary::Summary;
use crate::tail::Batch;

/// An outbox that keeps every message.
#[derive(Clone, Default)]
pub(super) struct Messages(Arc<Mutex<Vec<Summary>>>);

impl Store for Messages {
    async fn store(&mut self, summary: &Summary) -> anyhow::Result<()> {
        self.0.lock().expect("not poisoned").push(summary.clone());
        Ok(())
    }
}

impl Messages {
    pub(super) fn all(&self) -> Vec<Summary> {
        self.0.lock().expect("not poisoned").clone()
    }
}

fn config(state_dir: &std::path::Path, timestamp: &str) -> Config {
    load_config(
        state_dir,
        &format!(
            "sources: [{{name: app, paths: [/var/log/app/*.log]{timestamp}}}]
rules:
  - {{name: oom, pattern: OutOfMemoryError, severity: critical}}
  - {{name: db, pattern: 'db timeout'}}
"
        ),
    )
}

/// Loads `state_dir/logding.yaml` written with `window: 1m`, `state_dir` and `rest`.
pub(super) fn load_config(state_dir: &std::path::Path, rest: &str) -> Config {
    let path = state_dir.join("logding.yaml");
    let text = format!("window: 1m\nstate_dir: {}\n{rest}", state_dir.display());
    std::fs::write(&path, text).expect("write config");
    crate::config::load_with(&path, false, &|_| None).expect("valid config")
}

pub(super) fn process(config: Config, messages: &Messages) -> Process<Messages, Record> {
    let matchers = matchers_for(&config);
    let state = super::load(&config.state_dir);
    let dir = config.state_dir.clone();
    let config_dir = dir.clone();
    let mut process = Process::new(config, matchers, Record::default(), messages.clone());
    process.resume_incidents(state, Some(dir));
    process.resume_suppression(super::super::suppress::load(&config_dir));
    process
}

/// Hits a message carries: full entries plus ongoing and resolved lines.
pub(super) fn hits(message: &Summary) -> u64 {
    message.matches() + message.incidents.line_matches()
}

/// Runs `process`, sending `(second, line)` writes at their times, then waiting `idle`.
pub(super) async fn drive(
    process: &mut Process<Messages, Record>,
    writes: Vec<(u64, String)>,
    idle: u64,
) {
    let (batches, batch_rx) = mpsc::channel(4);
    let (_reload, reload_rx) = mpsc::channel(1);
    let sender = async move {
        let (mut offset, mut clock) = (0, 0);
        for (at, line) in writes {
            tokio::time::sleep(Duration::from_secs(at - clock)).await;
            clock = at;
            let next: Batch = batch(offset, &line);
            offset = next.end;
            batches.send(next).await.expect("send");
        }
        tokio::time::sleep(Duration::from_secs(idle)).await;
    };
    tokio::join!(
        process.run(batch_rx, reload_rx, CancellationToken::new()),
        sender
    );
}

/// One line every 6 seconds (10 a minute) for `minutes`, starting at `from` seconds.
pub(super) fn steady(line: &str, from: u64, minutes: u64) -> Vec<(u64, String)> {
    (0..minutes * 10)
        .map(|i| (from + i * 6 + 1, format!("{line}\n")))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_hour_of_steady_errors_is_one_new_one_repeat_one_resolved_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let mut process = process(config(dir.path(), ""), &messages);
    let writes = steady("ERROR db timeout to 10.0.0.5", 0, 60);
    let written = writes.len() as u64;
    drive(&mut process, writes, 10 * 60).await;

    let sent = messages.all();
    let shape: Vec<(Vec<Reason>, usize)> = sent
        .iter()
        .map(|m| {
            let reasons = m.incidents.notes.iter().map(|n| n.reason).collect();
            (reasons, m.incidents.resolved.len())
        })
        .collect();
    assert_eq!(
        shape,
        [
            (vec![Reason::New], 0),
            (vec![Reason::Repeat], 0),
            (vec![], 1)
        ],
        "{sent:#?}"
    );
    assert_eq!(
        sent.iter().map(hits).sum::<u64>(),
        written,
        "every line in one message"
    );
    assert!(dir.path().join(super::FILE_NAME).exists());
}

#[tokio::test(start_paused = true)]
async fn a_second_incident_is_sent_at_once_with_the_first_as_one_ongoing_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let mut process = process(config(dir.path(), ""), &messages);
    let mut writes = steady("ERROR db timeout to 10.0.0.5", 0, 25);
    writes.push((
        20 * 60 + 3,
        "java.lang.OutOfMemoryError: Java heap space\n".into(),
    ));
    writes.sort_by_key(|(at, _)| *at);
    drive(&mut process, writes, 0).await;

    let sent = messages.all();
    assert!(sent.len() >= 2, "{sent:#?}");
    let second = &sent[1];
    let names: Vec<&str> = second.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["oom"], "only the new incident in full");
    assert_eq!(second.incidents.notes[0].reason, Reason::New);
    let ongoing: Vec<&str> = second
        .incidents
        .ongoing
        .iter()
        .map(|l| l.rule.as_str())
        .collect();
    assert_eq!(ongoing, ["db"]);
    assert!(
        second.incidents.ongoing[0].count >= 190,
        "{:?}",
        second.incidents.ongoing
    );
    assert_eq!(second.incidents.ongoing[0].since, sent[0].rules[0].first);
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_incident_sends_no_second_new_and_keeps_since() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let mut first_run = process(config(dir.path(), ""), &messages);
    drive(
        &mut first_run,
        steady("ERROR db timeout to 10.0.0.5", 0, 10),
        0,
    )
    .await;
    let before = messages.all();
    let since = before[0].rules[0].first;
    assert_eq!(before.len(), 1, "new, then held: {before:#?}");

    let mut second_run = process(config(dir.path(), ""), &messages);
    drive(
        &mut second_run,
        steady("ERROR db timeout to 10.0.0.5", 0, 5),
        10 * 60,
    )
    .await;
    let after = &messages.all()[1..];
    assert!(
        after
            .iter()
            .all(|m| m.incidents.notes.iter().all(|n| n.reason != Reason::New)),
        "no second new: {after:#?}"
    );
    let resolved = &after.last().expect("a resolution").incidents.resolved[0];
    assert_eq!((resolved.rule.as_str(), resolved.since), ("db", since));
    assert_eq!(resolved.total, 150, "both runs' lines");
}

#[tokio::test(start_paused = true)]
async fn a_backlog_of_two_day_old_lines_is_reported_with_its_own_range() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messages = Messages::default();
    let mut process = process(config(dir.path(), ", timestamp: iso8601"), &messages);
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    let stamp = |minutes: i64| old + jiff::SignedDuration::from_mins(minutes);
    let writes = vec![(
        1,
        format!(
            "{} ERROR db timeout\n{} ERROR db timeout\n",
            stamp(0),
            stamp(90)
        ),
    )];
    drive(&mut process, writes, 0).await;
    let sent = messages.all();
    let rule = &sent[0].rules[0];
    assert_eq!((rule.first, rule.last), (stamp(0), stamp(90)));
    assert!(
        sent[0].end > stamp(60 * 24),
        "the window itself is on the clock"
    );
    let text = crate::render::render_text(
        &sent[0],
        &crate::render::RenderOptions::from_config(&config(dir.path(), "")),
    );
    assert!(text.contains(" · seen "), "{text}");
}
