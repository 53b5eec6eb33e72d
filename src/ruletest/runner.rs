//! Runs one case: its input lines, in time order, through the same scan, window and render code
//! as `logding run`, on a virtual clock (nothing sleeps; time is whatever the next event says).
//!
//! Time moves from event to event. Before a line written at `t` is scanned, everything due at
//! or before `t` happens first, earliest first: windows whose deadline has come close (window
//! deadlines before multiline timeouts at the same instant), and open multiline events whose
//! timeout has passed are scanned. After the last line the clock runs on until every open
//! event is flushed and every window has closed, so each window ends at its natural deadline.
//!
//! Multiline events are assembled by the tailer's own `tail::multiline::Assembler`, so a test
//! sees exactly the events the agent would. It keeps time as `Instant`s: virtual time maps onto
//! one `Instant` read at the start of the run, an anchor only (nothing waits on it, and the
//! outcome does not depend on it).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::config::{Config, Source};
use crate::incident::{Incidents, Reason, State};
use crate::render::{self, RenderOptions};
use crate::ruletest::absence::{self, AbsenceSeen};
use crate::ruletest::format::Case;
use crate::ruletest::window::{ClosedWindow, WindowIncidents};
use crate::scan::{Hit, Matcher};
use crate::summary::Summary;
use crate::suppress::Suppression;
use crate::tail::multiline::{Assembler, Event};
use crate::window::Aggregator;

/// Runs a case against a configuration, the virtual clock starting at `start`.
///
/// Assumes the case was checked with [`crate::ruletest::format::resolve`] against `config`.
pub fn run_case(case: &Case, config: &Config, start: Timestamp) -> Vec<ClosedWindow> {
    run_case_with_absences(case, config, start).0
}

/// Like [`run_case`], also returning the absences the incident stage fired (absence rules and
/// stalled sources), which may happen when no window closes.
pub fn run_case_with_absences(
    case: &Case,
    config: &Config,
    start: Timestamp,
) -> (Vec<ClosedWindow>, Vec<AbsenceSeen>) {
    let default_files: Vec<String> = config.sources.iter().map(default_file).collect();
    let mut run = Run::new(config, start);
    let silences = case.silences.iter().map(|s| s.at(start)).collect();
    run.suppression.set_runtime_silences(silences);
    let writes = writes(case, config, &default_files, start);
    run.horizon = horizon(config, writes.last().map_or(start, |w| w.at));
    for write in writes {
        run.advance(write.at);
        run.write(&write);
    }
    run.finish();
    (run.closed, run.absences)
}

/// How long the clock runs on after the last write: long enough for every absence and
/// resolution to be due (twice the longest of them, plus two windows), not forever (an absence
/// rule outside its schedule keeps asking to be evaluated again).
fn horizon(config: &Config, last_write: Timestamp) -> Timestamp {
    let policies = &config.incidents;
    let longest = policies
        .rules
        .values()
        .chain([&policies.defaults])
        .map(|p| p.resolve_after.saturating_add(p.keep_firing_for))
        .chain(policies.absence.rules.iter().map(|r| r.window))
        .chain(policies.absence.stalls.iter().map(|s| s.after))
        .max()
        .unwrap_or_default();
    let run_on = longest
        .saturating_mul(2)
        .saturating_add(config.window.saturating_mul(2));
    jiff::SignedDuration::try_from(run_on)
        .ok()
        .and_then(|d| last_write.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// One line written at one instant.
struct Write<'a> {
    at: Timestamp,
    source: usize,
    file: &'a str,
    line: &'a str,
}

/// Expands a case's input into single writes, sorted by time (file order among equal times).
fn writes<'a>(
    case: &'a Case,
    config: &Config,
    default_files: &'a [String],
    start: Timestamp,
) -> Vec<Write<'a>> {
    let mut out = Vec::new();
    for input in &case.input {
        let source = match &input.source {
            Some(named) => config.sources.iter().position(|s| s.name == named.name),
            None => (config.sources.len() == 1).then_some(0),
        }
        .expect("resolve checked the source");
        let file = input.file.as_deref().unwrap_or(&default_files[source]);
        for n in 0..input.repeat {
            let offset = input.at.saturating_add(input.every.saturating_mul(n));
            let at = start.checked_add(offset).unwrap_or(Timestamp::MAX);
            for line in &input.lines {
                out.push(Write {
                    at,
                    source,
                    file,
                    line,
                });
            }
        }
    }
    out.sort_by_key(|w| w.at);
    out
}

/// The file name hits of a source are attributed to when the input does not say: the source's
/// first path, or for a glob, `<source>.log` in the glob's directory (`/var/log/app/*.log`
/// gives `/var/log/app/app.log`), with `.` and `..` resolved lexically.
fn default_file(source: &Source) -> String {
    let Some(first) = source.paths.first() else {
        return format!("{}.log", source.name);
    };
    let mut path = PathBuf::new();
    for component in Path::new(first).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(path.components().next_back(), Some(Component::Normal(_))) =>
            {
                path.pop();
            }
            other => path.push(other),
        }
    }
    let is_glob = |text: &str| text.contains(['*', '?', '[', '{']);
    if path
        .file_name()
        .is_some_and(|name| is_glob(&name.to_string_lossy()))
    {
        path.set_file_name(format!("{}.log", source.name));
    }
    if is_glob(&path.to_string_lossy()) {
        return format!("{}.log", source.name);
    }
    path.to_string_lossy().into_owned()
}

struct Run<'a> {
    config: &'a Config,
    matchers: Vec<Matcher>,
    aggregator: Aggregator,
    render: RenderOptions,
    /// Multiline assemblers by (source, file), as the tailer has one per file.
    assemblers: BTreeMap<(usize, &'a str), Assembler>,
    /// Virtual time `start` as an `Instant`, for the assemblers.
    anchor: (Timestamp, Instant),
    hits: Vec<Hit>,
    closed: Vec<ClosedWindow>,
    /// The incident stage, fed every closed window, ticked at its deadlines.
    incidents: Incidents,
    /// Silences (the config's and the case's), mute hours, inhibition, before the incidents.
    suppression: Suppression,
    /// The absences it fired.
    absences: Vec<AbsenceSeen>,
    /// The clock stops after this once only the incident stage has something due.
    horizon: Timestamp,
}

impl<'a> Run<'a> {
    fn new(config: &'a Config, start: Timestamp) -> Run<'a> {
        let rules = Arc::clone(&config.rules);
        Run {
            config,
            matchers: config
                .sources
                .iter()
                .map(|s| Matcher::new(Arc::clone(&rules), &s.name))
                .collect(),
            aggregator: Aggregator::new(rules, config.window_options()),
            render: RenderOptions::from_config(config),
            assemblers: BTreeMap::new(),
            anchor: (start, Instant::now()),
            hits: Vec::new(),
            closed: Vec::new(),
            incidents: incidents(config, start),
            suppression: Suppression::new(config.suppression.clone(), Default::default()),
            absences: Vec::new(),
            horizon: Timestamp::MAX,
        }
    }

    /// Makes everything due at or before `now` happen, earliest first.
    fn advance(&mut self, now: Timestamp) {
        while self.step(now) {}
    }

    /// Runs the clock on until nothing is pending.
    fn finish(&mut self) {
        while let Some(next) = [
            self.aggregator.deadline(),
            self.next_timeout().map(|(t, _)| t),
            self.tick_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        {
            let only_incidents =
                self.aggregator.deadline().is_none() && self.next_timeout().is_none();
            // Deferred hits are released when their interval ends, however late.
            let is_release = self.suppression.deadline() == Some(next);
            if only_incidents && next > self.horizon && !is_release {
                return;
            }
            if !self.step(next) {
                return;
            }
        }
    }

    /// Does the earliest thing due at or before `now`. Returns true if and only if something
    /// happened (a window that does not close at its deadline counts as nothing, so a broken
    /// window cannot hang the run).
    fn step(&mut self, now: Timestamp) -> bool {
        let window = self.aggregator.deadline().filter(|d| *d <= now);
        let event = self.next_timeout().filter(|(t, _)| *t <= now);
        let tick = self.tick_deadline().filter(|d| *d <= now);
        if let Some(tick) = tick
            && [window, event.map(|(t, _)| t)]
                .into_iter()
                .flatten()
                .all(|t| tick < t)
        {
            self.tick_incidents(tick);
            return true;
        }
        match (window, event) {
            (Some(deadline), Some((timeout, _))) if deadline <= timeout => {
                self.close_window(deadline)
            }
            (_, Some((timeout, key))) => {
                self.flush_event(key, timeout);
                true
            }
            (Some(deadline), None) => self.close_window(deadline),
            (None, None) => false,
        }
    }

    fn close_window(&mut self, deadline: Timestamp) -> bool {
        let Some(summary) = self.aggregator.poll(deadline) else {
            return false;
        };
        let said = self
            .suppression
            .close_window(&mut self.incidents, summary, deadline);
        let mut shown = said.window;
        shown.incidents.suppressed = said.suppressed;
        self.push_closed(shown, said.sent, deadline);
        true
    }

    /// When the incident stage or suppression (deferred hits) next has something due.
    fn tick_deadline(&self) -> Option<Timestamp> {
        [self.incidents.deadline(), self.suppression.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Records a closed window (or deferred hits released at `at`) and what was sent.
    fn push_closed(&mut self, shown: Summary, sent: Option<Summary>, at: Timestamp) {
        absence::note(&mut self.absences, sent.as_ref(), at);
        let mut closed = close(shown, &self.render);
        let new: Vec<String> = sent
            .iter()
            .flat_map(|message| &message.incidents.notes)
            .filter(|note| note.reason == Reason::New)
            .map(|note| note.rule.clone())
            .collect();
        closed.incidents = WindowIncidents {
            ongoing: names(
                closed
                    .summary
                    .rules
                    .iter()
                    .map(|r| &r.name)
                    .filter(|n| !new.contains(n)),
            ),
            new: names(new.iter()),
            resolved: self.resolved_at(at),
            sent,
        };
        self.closed.push(closed);
    }

    /// Resolves what is due at `now`; the resolved rules count after the last closed window.
    fn tick_incidents(&mut self, now: Timestamp) {
        let (released, sent) = self
            .suppression
            .tick(&mut self.incidents, &self.config.host, now);
        if let Some(window) = released {
            // Deferred hits released when their mute interval ended: a window of their own.
            self.push_closed(window, sent, now);
            return;
        }
        absence::note(&mut self.absences, sent.as_ref(), now);
        let resolved = self.resolved_at(now);
        if let Some(last) = self.closed.last_mut() {
            last.incidents.resolved.extend(resolved);
            last.incidents.resolved.sort();
            last.incidents.resolved.dedup();
        }
    }

    /// Rules with an incident resolved at `now`.
    fn resolved_at(&self, now: Timestamp) -> Vec<String> {
        let state = self.incidents.state();
        names(
            state
                .incidents
                .iter()
                .filter(|i| i.resolved == Some(now))
                .map(|i| &i.rule),
        )
    }

    fn next_timeout(&self) -> Option<(Timestamp, (usize, &'a str))> {
        self.assemblers
            .iter()
            .filter_map(|(key, assembler)| Some((self.virtual_time(assembler.deadline()?), *key)))
            .min()
    }

    fn write(&mut self, write: &Write<'a>) {
        let source = &self.config.sources[write.source].name;
        self.incidents.grew(source, write.file, write.at);
        let Some(multiline) = self.config.sources[write.source].multiline.as_ref() else {
            let line = write.line.as_bytes();
            self.scan(write.source, write.file, line, false, write.at);
            return;
        };
        let now = self.instant(write.at);
        let key = (write.source, write.file);
        let assembler = self
            .assemblers
            .entry(key)
            .or_insert_with(|| Assembler::new(multiline.clone()));
        let mut line = Vec::with_capacity(write.line.len() + 1);
        line.extend_from_slice(write.line.as_bytes());
        line.push(b'\n');
        let mut closed = Vec::new();
        let end = line.len() as u64;
        assembler.push(&line, 0, end, 0, now, &mut |event: Event<'_>| {
            closed.push(event.bytes.to_vec());
        });
        for event in closed {
            self.scan(write.source, write.file, &event, true, write.at);
        }
    }

    fn flush_event(&mut self, key: (usize, &'a str), now: Timestamp) {
        let Some(assembler) = self.assemblers.get_mut(&key) else {
            return;
        };
        let mut closed = Vec::new();
        assembler.flush(&mut |event: Event<'_>| closed.push(event.bytes.to_vec()));
        for event in closed {
            self.scan(key.0, key.1, &event, true, now);
        }
    }

    fn instant(&self, time: Timestamp) -> Instant {
        let (start, anchor) = self.anchor;
        let offset = Duration::try_from(time.duration_since(start)).unwrap_or_default();
        anchor + offset
    }

    fn virtual_time(&self, instant: Instant) -> Timestamp {
        let (start, anchor) = self.anchor;
        let offset = instant.saturating_duration_since(anchor);
        start.checked_add(offset).unwrap_or(Timestamp::MAX)
    }

    fn scan(&mut self, source: usize, file: &str, record: &[u8], is_event: bool, now: Timestamp) {
        self.hits.clear();
        let matcher = &self.matchers[source];
        let stats = if is_event {
            matcher.scan_record(record, &mut self.hits)
        } else {
            matcher.scan(record, &mut self.hits)
        };
        let timestamp = self.config.sources[source].timestamp.as_ref();
        self.aggregator
            .observe_scan(now, record, &self.hits, &stats, file, timestamp);
    }
}

/// The incident stage of a run starting at `start`, with the config's schedules.
fn incidents(config: &Config, start: Timestamp) -> Incidents {
    let mut incidents = Incidents::new(config.incidents.clone(), config.window, State::default());
    let intervals = config.time_intervals.clone();
    incidents.set_schedules(crate::absence::Schedules::new(move |name, at| {
        intervals.contains(name, at)
    }));
    incidents.start(start);
    incidents
}

/// Rule names, sorted, each once.
fn names<'n>(names: impl Iterator<Item = &'n String>) -> Vec<String> {
    let mut out: Vec<String> = names.cloned().collect();
    out.sort();
    out.dedup();
    out
}

/// Renders a closed window the way it would be sent.
fn close(summary: Summary, options: &RenderOptions) -> ClosedWindow {
    if summary.rules.is_empty() {
        return ClosedWindow {
            summary,
            message: None,
            haystack: String::new(),
            title: None,
            incidents: WindowIncidents::default(),
        };
    }
    let text = render::render_text(&summary, options);
    let bodies: Vec<(String, String)> = render::render(&summary, options)
        .iter()
        .map(|body| body_text(body))
        .collect();
    let message = bodies
        .first()
        .map_or_else(|| text.clone(), |(_, shown)| shown.clone());
    let title = bodies.first().map(|(title, shown)| {
        if title.is_empty() {
            shown.lines().next().unwrap_or_default().to_owned()
        } else {
            title.clone()
        }
    });
    let mut haystack = text;
    for (title, shown) in &bodies {
        haystack.push('\n');
        haystack.push_str(title);
        haystack.push('\n');
        haystack.push_str(shown);
    }
    ClosedWindow {
        summary,
        message: Some(message),
        haystack,
        title,
        incidents: WindowIncidents::default(),
    }
}

/// The human-visible parts of a DingTalk JSON body: (markdown title, markdown text) or
/// (empty, text content). A body that is not such JSON is taken as text.
fn body_text(body: &str) -> (String, String) {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return (String::new(), body.to_owned());
    };
    let get = |pointer: &str| {
        json.pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    match (get("/markdown/text"), get("/text/content")) {
        (Some(text), _) => (get("/markdown/title").unwrap_or_default(), text),
        (None, Some(text)) => (String::new(), text),
        (None, None) => (String::new(), body.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(name: &str, path: &str, expected: &str) {
        let source = Source {
            name: name.into(),
            paths: vec![path.into()],
            exclude: Vec::new(),
            start_at: crate::config::StartAt::End,
            multiline: None,
            max_line_bytes: 1024,
            timestamp: None,
        };
        assert_eq!(default_file(&source), expected);
    }

    #[test]
    fn default_file_names_read_like_files() {
        check("app", "/var/log/app/app.log", "/var/log/app/app.log");
        check("app", "/var/log/app/*.log", "/var/log/app/app.log");
        check(
            "nginx",
            "config/tests/../../logs/nginx-*.log",
            "logs/nginx.log",
        );
        check("app", "/var/log/*/app.log", "app.log");
    }
}
