//! Model-based test: random appends, partial appends, rename rotations, copytruncates,
//! delete + re-create and restarts against a real directory, compared with an in-memory model
//! of what was written (in the spirit of Vector's file-source QuickCheck tests).
//!
//! The model knows, for every complete line written, its text and offset; and which lines
//! *may* be lost by design (files deleted or rotated out of reach before the tailer ever saw
//! them, files deleted while the tailer was stopped, a copytruncate copy deleted before the
//! tailer got to it). Copy and truncate are atomic here, so copytruncate itself loses nothing:
//! the unread end is read from the copy. The tailer must
//! deliver every other line exactly once, at its exact offset, and nothing else.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use logding::config::StartAt;
use proptest::prelude::*;

use super::harness::Harness;

#[derive(Clone, Debug)]
enum Op {
    Append(usize),
    Partial,
    Rotate,
    CopyTruncate,
    DeleteRecreate,
    Restart,
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..6).prop_map(Op::Append),
        1 => Just(Op::Partial),
        1 => Just(Op::Rotate),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::DeleteRecreate),
        1 => Just(Op::Restart),
        3 => Just(Op::Poll),
    ]
}

struct ModelFile {
    /// Lines written since the last poll of a running tailer.
    unpolled: Vec<String>,
    /// Polled by a running tailer while named `app.log`.
    is_seen: bool,
    /// Polled by a running tailer since its last truncation: the tailer knows a position in
    /// this content, so a copy of it can be recognised.
    is_gen_seen: bool,
    /// A copy left by copytruncate, holding lines the tailer has not read yet.
    is_copy: bool,
    /// Bytes in the current generation.
    size: u64,
}

struct Model {
    h: Harness,
    files: HashMap<String, ModelFile>,
    next_id: usize,
    /// The written-but-unfinished line of `app.log`: (full text, bytes already written).
    partial: Option<(String, usize)>,
    is_running: bool,
    /// Every complete line: text -> offset.
    lines: HashMap<String, u64>,
    at_risk: HashSet<String>,
}

impl Model {
    /// A model whose tailer reads at most `read_budget_bytes` per file and pass (a small
    /// budget makes most reads a backlog: ranges handed out unread, read when delivered).
    fn new(is_multiline: bool, read_budget_bytes: usize) -> Model {
        let mut h = Harness::new("app.log", StartAt::Beginning);
        h.options.read_budget_bytes = read_budget_bytes;
        if is_multiline {
            // Every line starts an event: an event is handed out only when the next line
            // arrives, its timeout passes, its file is closed or the tailer stops.
            h.source.multiline = Some(super::harness::multiline("^line-"));
        }
        h.start();
        Model {
            h,
            files: HashMap::new(),
            next_id: 0,
            partial: None,
            is_running: true,
            lines: HashMap::new(),
            at_risk: HashSet::new(),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.h.path(name)
    }

    fn write(&mut self, bytes: &str) {
        let path = self.path("app.log");
        self.files.entry("app.log".into()).or_insert(ModelFile {
            unpolled: Vec::new(),
            is_seen: false,
            is_gen_seen: false,
            is_copy: false,
            size: 0,
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(bytes.as_bytes()).unwrap();
    }

    fn record_line(&mut self, text: String, offset: u64) {
        let file = self.files.get_mut("app.log").unwrap();
        file.unpolled.push(text.clone());
        self.lines.insert(text, offset);
    }

    fn complete_partial(&mut self) {
        if let Some((text, written)) = self.partial.take() {
            let rest = text[written..].to_owned();
            self.write(&rest);
            let file = self.files.get_mut("app.log").unwrap();
            let offset = file.size;
            file.size += text.len() as u64;
            self.record_line(text, offset);
        }
    }

    fn append(&mut self, n: usize) {
        self.complete_partial();
        for _ in 0..n {
            let text = format!(
                "line-{:06}-{}\n",
                self.next_id,
                "x".repeat(self.next_id % 13)
            );
            self.next_id += 1;
            self.write(&text);
            let file = self.files.get_mut("app.log").unwrap();
            let offset = file.size;
            file.size += text.len() as u64;
            self.record_line(text, offset);
        }
    }

    fn partial(&mut self) {
        if self.partial.is_some() {
            return;
        }
        let text = format!("line-{:06}-partial\n", self.next_id);
        self.next_id += 1;
        let head = text[..12].to_owned();
        self.write(&head);
        self.partial = Some((text, 12));
    }

    /// `name` disappears: what the tailer had no way to read is at risk.
    fn forget(&mut self, name: &str) {
        if let Some(file) = self.files.remove(name)
            && (file.is_copy || !self.is_running || !file.is_seen)
        {
            self.at_risk.extend(file.unpolled);
        }
    }

    fn rename(&mut self, from: &str, to: &str) {
        if Path::new(&self.path(from)).exists() {
            std::fs::rename(self.path(from), self.path(to)).unwrap();
            if let Some(file) = self.files.remove(from) {
                self.files.insert(to.into(), file);
            }
        }
    }

    fn shift_rotated(&mut self) {
        if self.path("app.log.2").exists() {
            std::fs::remove_file(self.path("app.log.2")).unwrap();
            self.forget("app.log.2");
        }
        self.rename("app.log.1", "app.log.2");
    }

    fn rotate(&mut self) {
        self.complete_partial();
        if !self.path("app.log").exists() {
            return;
        }
        self.shift_rotated();
        if let Some(file) = self.files.get("app.log")
            && !file.is_seen
        {
            // Never followed under the glob's name: its new name is out of reach.
            let unpolled = file.unpolled.clone();
            self.at_risk.extend(unpolled);
        }
        self.rename("app.log", "app.log.1");
    }

    fn copytruncate(&mut self) {
        self.complete_partial();
        if !self.path("app.log").exists() {
            return;
        }
        self.shift_rotated();
        std::fs::copy(self.path("app.log"), self.path("app.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.path("app.log"))
            .unwrap()
            .set_len(0)
            .unwrap();
        let file = self.files.get_mut("app.log").unwrap();
        file.size = 0;
        let unpolled = std::mem::take(&mut file.unpolled);
        let is_recoverable = std::mem::replace(&mut file.is_gen_seen, false);
        // The tailer finds the copy by the marker of what it read: only a content it has a
        // position in can be recognised; the rest is copytruncate's loss window.
        let copy = if is_recoverable {
            unpolled
        } else {
            self.at_risk.extend(unpolled);
            Vec::new()
        };
        self.files.insert(
            "app.log.1".into(),
            ModelFile {
                unpolled: copy,
                is_seen: true,
                is_gen_seen: false,
                is_copy: true,
                size: 0,
            },
        );
    }

    fn delete(&mut self) {
        self.complete_partial();
        if !self.path("app.log").exists() {
            return;
        }
        std::fs::remove_file(self.path("app.log")).unwrap();
        self.forget("app.log");
    }

    fn poll(&mut self) {
        if !self.is_running {
            return;
        }
        self.h.poll();
        let has_bytes = std::fs::metadata(self.path("app.log")).is_ok_and(|m| m.len() > 0);
        for (name, file) in &mut self.files {
            if name == "app.log" {
                file.is_seen = true;
                file.is_gen_seen |= has_bytes;
            }
            if file.is_seen {
                file.unpolled.clear();
            }
        }
    }

    fn restart(&mut self) {
        if self.is_running {
            self.poll();
            self.h.stop();
            self.is_running = false;
        } else {
            // The thread's first pass happens right at start.
            self.h.start();
            self.is_running = true;
            self.poll();
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(n) => self.append(*n),
            Op::Partial => self.partial(),
            Op::Rotate => self.rotate(),
            Op::CopyTruncate => self.copytruncate(),
            Op::DeleteRecreate => self.delete(),
            Op::Restart => self.restart(),
            Op::Poll => self.poll(),
        }
        self.h.advance(std::time::Duration::from_millis(100));
    }

    fn check(mut self) -> Result<(), TestCaseError> {
        self.complete_partial();
        if !self.is_running {
            self.restart();
        }
        self.poll();
        self.h.advance(std::time::Duration::from_secs(2));
        self.poll();
        self.poll();
        let mut delivered: HashMap<String, u64> = HashMap::new();
        for seen in &self.h.seen {
            let Some(&offset) = self.lines.get(&seen.text) else {
                return Err(TestCaseError::fail(format!(
                    "unknown line delivered: {seen:?}"
                )));
            };
            prop_assert_eq!(seen.offset, offset, "offset of {:?}", seen.text);
            prop_assert!(
                delivered.insert(seen.text.clone(), seen.offset).is_none(),
                "duplicated: {:?}",
                seen.text
            );
        }
        for text in self.lines.keys() {
            prop_assert!(
                delivered.contains_key(text) || self.at_risk.contains(text),
                "lost: {:?}",
                text
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn model_random_writes_rotations_truncations_restarts(
        ops in proptest::collection::vec(op(), 1..40),
        is_multiline in proptest::bool::weighted(0.3),
        read_budget_bytes in proptest::sample::select(vec![1 << 20, 64, 200]),
    ) {
        let mut model = Model::new(is_multiline, read_budget_bytes);
        for op in &ops {
            model.apply(op);
        }
        model.check()?;
    }
}
