//! The tailer: conformance cases c01-c14 (each a known tailer failure), a model-based property test,
//! real logrotate, kill and restart of a process, many files. Each asserts no loss, no
//! duplicates (except where a crash makes them expected) and exact offsets.
//! Process-level tests print what they measured; one that cannot run here (no logrotate, root
//! without `setpriv`) prints SKIP, and fails where `CI` is set.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod harness;
mod model;
mod process;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use harness::{Harness, line_list, lines, multiline, rename};
use logding::config::StartAt;
use logding::tail::Settled;

/// The texts of `seen` lines with their offsets.
fn offsets(h: &Harness) -> Vec<(u64, String)> {
    h.seen.iter().map(|s| (s.offset, s.text.clone())).collect()
}

/// `lines` in the order of their texts.
fn sorted(mut lines: Vec<(u64, String)>) -> Vec<(u64, String)> {
    lines.sort_by(|x, y| x.1.cmp(&y.1));
    lines
}

/// Expected (offset, line) pairs of consecutive lines starting at `offset`.
fn at(offset: u64, lines: &[String]) -> Vec<(u64, String)> {
    let mut offset = offset;
    lines
        .iter()
        .map(|line| {
            let pair = (offset, line.clone());
            offset += line.len() as u64;
            pair
        })
        .collect()
}

#[test]
fn c01_crash_and_restart_resumes_at_the_last_checkpoint() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", lines("a", 0, 100).as_bytes());
    h.poll();
    h.save();
    let checkpoint_offset = lines("a", 0, 100).len() as u64;
    h.append("app.log", lines("a", 100, 50).as_bytes());
    h.poll();
    h.kill();
    h.append("app.log", lines("a", 150, 50).as_bytes());
    h.start();
    h.poll();
    let all = line_list("a", 0, 200);
    for line in &all {
        assert!(h.texts().contains(line), "lost {line}");
    }
    // Duplicates only after the last persisted checkpoint, and exactly those.
    let mut dups: Vec<u64> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in &h.seen {
        if !seen.insert(s.text.clone()) {
            dups.push(s.offset);
        }
    }
    assert_eq!(dups.len(), 50);
    assert!(dups.iter().all(|&o| o >= checkpoint_offset));
}

#[test]
fn c02_partial_write_is_one_line_also_across_a_restart() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", b"Hello ");
    h.poll();
    assert!(h.seen.is_empty(), "a partial line was handed out");
    h.append("app.log", b"World\nsecond ");
    h.poll();
    h.stop();
    h.append("app.log", b"half\n");
    h.start();
    h.poll();
    assert_eq!(
        offsets(&h),
        vec![(0, "Hello World\n".into()), (12, "second half\n".into())]
    );
}

#[test]
fn c03_rename_then_new_file_outgrows_the_old_before_the_tailer_runs() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", lines("old", 0, 10).as_bytes());
    h.poll();
    h.append("app.log", lines("old", 10, 5).as_bytes());
    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.append("app.log", lines("new", 0, 100).as_bytes());
    h.poll();
    h.poll();
    let old = line_list("old", 0, 15);
    let new = line_list("new", 0, 100);
    let mut expected = at(0, &old);
    expected.extend(at(0, &new));
    assert_eq!(offsets(&h), expected);
    assert_eq!(h.stats().rotations, 1);
}

#[test]
fn c04_late_writes_to_the_renamed_file_are_read_until_rotate_wait() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.options.rotate_wait = Duration::from_secs(2);
    h.start();
    let mut writer = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(h.path("app.log"))
        .unwrap();
    writer.write_all(lines("w", 0, 10).as_bytes()).unwrap();
    h.poll();
    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.append("app.log", lines("new", 0, 3).as_bytes());
    h.poll();
    for step in 0..4 {
        h.advance(Duration::from_millis(400));
        writer
            .write_all(lines("w", 10 + step, 1).as_bytes())
            .unwrap();
        h.poll();
    }
    h.advance(Duration::from_secs(3));
    h.poll();
    writer.write_all(lines("w", 99, 1).as_bytes()).unwrap();
    h.poll();
    let old: Vec<String> = h
        .seen
        .iter()
        .filter(|s| s.text.starts_with('w'))
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(
        old,
        line_list("w", 0, 14),
        "late writes within rotate_wait are read"
    );
    assert_eq!(
        h.tailer().open_files(),
        1,
        "the rotated file is closed after rotate_wait"
    );
}

#[test]
fn c05_copytruncate_regrown_past_the_offset_is_detected_by_the_marker() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", lines("a", 0, 10).as_bytes());
    h.poll();
    std::fs::copy(h.path("app.log"), h.path("app.log.1")).unwrap();
    h.truncate("app.log");
    h.append("app.log", lines("bb", 0, 30).as_bytes());
    h.poll();
    let mut expected = at(0, &line_list("a", 0, 10));
    expected.extend(at(0, &line_list("bb", 0, 30)));
    assert_eq!(offsets(&h), expected);
    assert_eq!(h.stats().truncations, 1);
}

#[test]
fn c06_truncated_while_stopped_and_regrown_is_read_from_zero() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", lines("a", 0, 10).as_bytes());
    h.poll();
    h.stop();
    std::fs::OpenOptions::new()
        .write(true)
        .open(h.path("app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    h.append("app.log", lines("bb", 0, 30).as_bytes());
    h.clear();
    h.start();
    h.poll();
    assert_eq!(offsets(&h), at(0, &line_list("bb", 0, 30)));
    assert_eq!(h.stats().identity_resets, 1);
}

#[test]
fn c07_delete_and_recreate_before_the_tailer_notices() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", lines("a", 0, 10).as_bytes());
    h.poll();
    h.append("app.log", lines("a", 10, 5).as_bytes());
    std::fs::remove_file(h.path("app.log")).unwrap();
    h.append("app.log", lines("b", 0, 20).as_bytes());
    h.poll();
    h.poll();
    let mut expected = at(0, &line_list("a", 0, 15));
    expected.extend(at(0, &line_list("b", 0, 20)));
    assert_eq!(offsets(&h), expected);
    assert_eq!(
        h.tailer().open_files(),
        1,
        "the deleted file is closed once drained"
    );
}

#[test]
fn c08_inode_reuse_with_a_different_head_starts_at_zero() {
    let mut h = Harness::new("app.log", StartAt::End);
    h.append("app.log", lines("new", 0, 20).as_bytes());
    let meta = std::fs::metadata(h.path("app.log")).unwrap();
    std::fs::create_dir_all(&h.state).unwrap();
    let forged = logding::checkpoint::Checkpoint {
        version: logding::checkpoint::VERSION,
        saved_at_ns: 0,
        sources: vec!["app".into()],
        files: vec![logding::checkpoint::Entry {
            dev: meta.dev(),
            ino: meta.ino(),
            head_len: 10,
            head_hash: 12345,
            offset: 100,
            marker_len: 10,
            marker_hash: 6789,
            path: h.path("app.log"),
            last_seen_ns: i128::MAX / 2,
            born_ns: None,
        }],
    };
    logding::checkpoint::save(&h.state, &forged).unwrap();
    h.start();
    h.poll();
    assert_eq!(offsets(&h), at(0, &line_list("new", 0, 20)));
    assert_eq!(h.stats().identity_resets, 1);
}

#[test]
fn c09_rotation_while_stopped_drains_the_rotated_tail_without_its_head() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", lines("a", 0, 10).as_bytes());
    h.poll();
    h.stop();
    h.append("app.log", lines("a", 10, 5).as_bytes());
    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.append("app.log", lines("b", 0, 3).as_bytes());
    h.clear();
    h.start();
    h.poll();
    let head = lines("a", 0, 10).len() as u64;
    let mut expected = at(0, &line_list("b", 0, 3));
    expected.extend(at(head, &line_list("a", 10, 5)));
    let mut actual = offsets(&h);
    actual.sort_by(|a, b| a.1.cmp(&b.1));
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(actual, expected);
}

#[test]
fn c10_long_lines_are_cut_and_later_lines_keep_exact_offsets() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.source.max_line_bytes = 100;
    h.options.read_budget_bytes = 4096;
    h.start();
    let long = format!("{}\n", "x".repeat(10_000));
    h.append("app.log", b"before\n");
    h.append("app.log", long.as_bytes());
    h.append("app.log", b"after 1\nafter 2\n");
    h.poll();
    assert_eq!(
        offsets(&h),
        vec![
            (0, "before\n".into()),
            (7, format!("{}\n", "x".repeat(100))),
            (7 + 10_001, "after 1\n".into()),
            (7 + 10_001 + 8, "after 2\n".into()),
        ]
    );
    assert_eq!(h.stats().lines_cut, 1);
}

#[test]
fn c11_invalid_utf8_and_crlf_are_delivered_as_bytes() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    h.append("app.log", b"ERROR caf\xe9 latin1\r\nok\r\nERROR \xff\xfe\n");
    h.poll();
    let data: Vec<u8> = h.batches.iter().flat_map(|b| b.data.clone()).collect();
    assert_eq!(data, b"ERROR caf\xe9 latin1\r\nok\r\nERROR \xff\xfe\n");
    let rule = regex::bytes::Regex::new(r"(?-u)^ERROR .*[^ ]$").unwrap();
    let matched: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| rule.is_match(line))
        .collect();
    assert_eq!(
        matched,
        vec![&b"ERROR caf\xe9 latin1"[..], &b"ERROR \xff\xfe"[..]]
    );
}

#[test]
fn c12_without_any_event_the_reconcile_loop_delivers() {
    // Poll-only through the real thread: notify is off, as if every event were lost.
    process::poll_only_thread_delivers_everything();
}

#[test]
fn a_stuck_checkpoint_write_does_not_stop_reading() {
    process::a_stuck_checkpoint_write_does_not_stop_reading();
}

#[test]
fn c13_many_files_one_hot_every_file_progresses_and_fds_stay_capped() {
    let mut h = Harness::new("*.log", StartAt::Beginning);
    h.options.max_open_files = 64;
    h.options.read_budget_bytes = 64 * 1024;
    h.options.poll_interval = Duration::from_secs(10);
    h.options.rescan_interval = Duration::from_secs(10);
    let n = 1000;
    for i in 0..n {
        h.append(
            &format!("f{i:04}.log"),
            format!("file {i} line 0\n").as_bytes(),
        );
    }
    let hot = "x".repeat(200) + "\n";
    h.append("f0000.log", hot.repeat(10_000).as_bytes());
    h.start();
    // While the hot file still has megabytes to go, every other file is read.
    let mut passes = 0;
    while h
        .seen
        .iter()
        .filter(|s| s.text.starts_with("file "))
        .count()
        < n
    {
        assert!(
            h.poll_once(),
            "the hot file was drained before the others were read"
        );
        passes += 1;
        assert!(passes < 50, "files starved");
    }
    for i in 0..n {
        h.append(
            &format!("f{i:04}.log"),
            format!("file {i} line 1\n").as_bytes(),
        );
    }
    h.advance(Duration::from_secs(11));
    h.poll();
    for i in 0..n {
        for k in 0..2 {
            let text = format!("file {i} line {k}\n");
            assert_eq!(
                h.texts().iter().filter(|t| **t == text).count(),
                1,
                "{text}"
            );
        }
    }
    assert_eq!(
        h.seen.iter().filter(|s| s.text == hot).count(),
        10_000,
        "the hot file is read whole"
    );
    assert!(h.stats().open_files_peak <= 64, "{:?}", h.stats());
}

#[test]
fn c14_java_stack_trace_split_across_a_restart_and_a_rotation() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.source.multiline = Some(multiline(r"^\d{4}-\d\d-\d\d "));
    h.start();
    h.append("app.log", b"2026-11-28 ok\n2026-11-28 ERROR boom\n");
    h.append(
        "app.log",
        b"java.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n",
    );
    h.poll();
    assert_eq!(h.texts(), vec!["2026-11-28 ok\n".to_owned()]);
    h.stop();
    // The open event was flushed at shutdown; a restart resumes after it.
    let first = h.texts();
    assert_eq!(first.len(), 2);
    h.clear();
    h.append("app.log", b"\tat d.E.f(E.java:2)\n");
    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.append("app.log", b"2026-11-28 next\n");
    h.start();
    h.poll();
    h.advance(Duration::from_secs(2));
    h.poll();
    let mut texts = h.texts();
    texts.sort();
    assert_eq!(
        texts,
        vec![
            "\tat d.E.f(E.java:2)\n".to_owned(),
            "2026-11-28 next\n".to_owned()
        ]
    );
}

#[test]
fn c14b_an_open_event_is_never_split_by_a_checkpoint() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.source.multiline = Some(multiline(r"^\d{4}-\d\d-\d\d "));
    h.start();
    h.append("app.log", b"2026-11-28 ERROR boom\n\tat a\n");
    h.poll();
    assert!(h.seen.is_empty());
    h.kill();
    // Crash with the event open: nothing of it was committed, the restart reads it whole.
    h.append("app.log", b"\tat b\n2026-11-28 next\n");
    h.start();
    h.poll();
    assert_eq!(
        offsets(&h),
        vec![(0, "2026-11-28 ERROR boom\n\tat a\n\tat b\n".into())]
    );
    h.advance(Duration::from_secs(2));
    h.poll();
    assert_eq!(h.texts().last().unwrap(), "2026-11-28 next\n");
}

#[test]
fn start_at_end_on_first_run_then_new_files_from_zero() {
    let mut h = Harness::new("*.log", StartAt::End);
    h.append("old.log", b"history\nmore history\nhalf");
    h.start();
    h.poll();
    h.append("old.log", b" line\nfresh\n");
    h.append("new.log", b"new file line\n");
    h.poll();
    let mut texts = h.texts();
    texts.sort();
    assert_eq!(texts, vec!["fresh\n", "half line\n", "new file line\n"]);
    h.stop();
    // A file born after the checkpoint is read from 0 on the next run; a file that predates it
    // but is unknown starts at the end.
    h.append("later.log", b"written while stopped\n");
    h.clear();
    h.start();
    h.poll();
    assert_eq!(h.texts(), vec!["written while stopped\n"]);
}

#[test]
fn symlinked_path_is_followed_through_its_target() {
    let mut h = Harness::new("current.log", StartAt::Beginning);
    h.append("real-1.log", b"one\n");
    std::os::unix::fs::symlink(h.path("real-1.log"), h.path("current.log")).unwrap();
    h.start();
    h.poll();
    h.append("real-1.log", b"two\n");
    h.poll();
    // The link is re-pointed: like a rotation.
    h.append("real-2.log", b"three\n");
    let tmp = h.path("tmp.link");
    std::os::unix::fs::symlink(h.path("real-2.log"), &tmp).unwrap();
    rename(&tmp, &h.path("current.log"));
    h.poll();
    h.poll();
    assert_eq!(h.texts(), vec!["one\n", "two\n", "three\n"]);
}

#[test]
fn a_directory_or_fifo_where_a_file_was_expected_is_skipped_and_a_missing_dir_is_waited_for() {
    let mut h = Harness::new("sub/*.log", StartAt::Beginning);
    h.start();
    h.poll();
    std::fs::create_dir_all(h.logs.join("sub/dir.log")).unwrap();
    // A FIFO is not a file either, and must never block the tailer.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        h.logs.join("sub/pipe.log"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    h.poll();
    h.append("sub/a.log", b"a\n");
    h.poll();
    assert_eq!(h.texts(), vec!["a\n"]);
}

#[test]
fn final_fragment_of_a_rotated_idle_file_is_flushed() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.options.rotate_wait = Duration::from_secs(1);
    h.start();
    h.append("app.log", b"full\nno newline");
    h.poll();
    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.poll();
    assert_eq!(h.texts(), vec!["full\n"]);
    h.advance(Duration::from_secs(2));
    h.poll();
    assert_eq!(
        offsets(&h),
        vec![(0, "full\n".into()), (5, "no newline".into())]
    );
}

#[test]
fn per_source_figures_count_files_uncommitted_bytes_rotations_and_truncations() {
    let mut h = Harness::new("*.log", StartAt::Beginning);
    h.options.rotate_wait = Duration::from_secs(2);
    h.auto_commit = false;
    h.start();
    h.append("app.log", b"one\ntwo\n");
    h.append("other.log", b"x\n");
    h.poll();
    let app = |h: &mut Harness| {
        h.tailer().publish_sources();
        h.counters.sources()["app"]
    };
    let figures = app(&mut h);
    assert_eq!(
        (figures.files, figures.lag_bytes),
        (2, 10),
        "read, not committed"
    );
    let batches: Vec<_> = h
        .batches
        .iter()
        .map(|b| (b.file.id.clone(), b.end))
        .collect();
    for (file, end) in batches {
        h.tailer().commit(&file, end);
    }
    assert_eq!(app(&mut h).lag_bytes, 0, "committed");

    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.append("app.log", b"three\n");
    std::fs::write(h.path("other.log"), b"").unwrap();
    h.poll();
    let figures = app(&mut h);
    assert_eq!((figures.rotations, figures.truncations), (1, 1));
    assert_eq!(
        figures.files, 3,
        "the rotated file is drained until rotate_wait"
    );
    assert_eq!(figures.lag_bytes, 6, "the new app.log, read, not committed");
    h.advance(Duration::from_secs(3));
    h.poll();
    assert_eq!(app(&mut h).files, 2);
    assert_eq!(figures.read_errors, 0);
}

#[test]
fn reading_a_followed_file_leaves_its_access_time_alone() {
    // Under `relatime`, a read after a write would update the access time: a journalled inode
    // change for every read of a busy log, and a log that looks used to tools that go by it.
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.append("app.log", b"first\n");
    let past = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let times = std::fs::FileTimes::new().set_accessed(past);
    let set_past = |h: &Harness| {
        std::fs::File::options()
            .append(true)
            .open(h.path("app.log"))
            .unwrap()
            .set_times(times)
            .unwrap();
    };
    set_past(&h);
    h.start();
    h.poll();
    h.append("app.log", b"second\n");
    set_past(&h);
    h.poll();
    assert_eq!(h.texts(), vec!["first\n", "second\n"]);
    let accessed = std::fs::metadata(h.path("app.log")).unwrap().accessed();
    assert_eq!(accessed.unwrap(), past);
}

#[test]
fn permission_denied_is_retried() {
    if rustix::process::geteuid().is_root() {
        // Root reads anything: run the tailer as `nobody` instead (CI runs as root).
        if !process::permission_denied_as_nobody() {
            crate::support::cannot_run(
                "permission_denied_is_retried",
                "running as root without `setpriv` (util-linux; .ci/run installs it), permissions are not enforced",
            );
        }
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.append("app.log", b"secret\n");
    std::fs::set_permissions(h.path("app.log"), std::fs::Permissions::from_mode(0o000)).unwrap();
    h.start();
    h.poll();
    assert!(h.seen.is_empty());
    let read_errors = h.counters.sources().get("app").map(|s| s.read_errors);
    assert!(read_errors >= Some(1), "counted for the metrics");
    std::fs::set_permissions(h.path("app.log"), std::fs::Permissions::from_mode(0o644)).unwrap();
    h.poll();
    assert_eq!(h.texts(), vec!["secret\n"]);
}

#[test]
fn sigkill_mid_stream_and_restart_loses_nothing_and_duplicates_only_after_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state");
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        process::write_at_rate(&writer_log, 5_000, Duration::from_secs(3))
    });
    let args = [
        "--start-at",
        "beginning",
        "--poll-interval",
        "50ms",
        "--checkpoint-interval",
        "100ms",
    ];
    let first = process::Probe::start(&log, &state, &args);
    process::wait_until(Duration::from_secs(10), "first lines", || {
        first.count() > 2_000
    });
    let before = first.kill();
    let checkpoint = match logding::checkpoint::load(&state) {
        logding::checkpoint::Loaded::Found { checkpoint, .. } => checkpoint,
        other => panic!("no checkpoint after the kill: {other:?}"),
    };
    let persisted = checkpoint.files.iter().map(|e| e.offset).max().unwrap();
    let second = process::Probe::start(&log, &state, &args);
    let written = writer.join().unwrap();
    let last = format!(
        "seq-{:09} the quick brown fox jumps over the lazy dog",
        written - 1
    );
    process::wait_until(Duration::from_secs(20), "the last line", || {
        second.contains(&last)
    });
    let after = second.stop();
    let counts = process::seq_counts(&before.iter().chain(&after).cloned().collect::<Vec<_>>());
    let lost: Vec<usize> = (0..written).filter(|n| !counts.contains_key(n)).collect();
    assert!(
        lost.is_empty(),
        "lost {} lines, first {:?}",
        lost.len(),
        lost.first()
    );
    let first_seen: std::collections::HashSet<&str> =
        before.iter().map(|(_, _, t)| t.as_str()).collect();
    let mut duplicates = 0;
    for (_, offset, text) in &after {
        if first_seen.contains(text.as_str()) {
            duplicates += 1;
            assert!(
                *offset >= persisted,
                "duplicate at {offset}, before the persisted checkpoint {persisted}"
            );
        }
    }
    println!(
        "sigkill: {written} lines, {} before the kill, {duplicates} duplicated after the checkpoint at {persisted}",
        before.len()
    );
}

fn logrotate_available() -> bool {
    std::process::Command::new("logrotate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a writer of 400,000 lines at 20,000 lines/s (20 s when the machine keeps up) under
/// `logrotate -f` every 2 s in `mode`; returns (written, lost, duplicated).
fn logrotate_run(mode: &str) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state");
    let config = dir.path().join("logrotate.conf");
    std::fs::write(
        &config,
        format!(
            "{} {{\n  rotate 100\n  {mode}\n  missingok\n  nocompress\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::write(&log, b"").unwrap();
    let probe = process::Probe::start(
        &log,
        &state,
        &[
            "--start-at",
            "beginning",
            "--poll-interval",
            "50ms",
            "--rotate-wait",
            "1s",
        ],
    );
    let writer_log = log.clone();
    let duration = Duration::from_secs(20);
    let writer = std::thread::spawn(move || process::write_at_rate(&writer_log, 20_000, duration));
    // Rotate every 2 s for as long as the writer runs (20 s on an idle machine, longer on a
    // loaded one: the writer always writes all its lines).
    let start = std::time::Instant::now();
    let mut rotations = 0;
    while !writer.is_finished() {
        let next = start + Duration::from_secs(2) * (rotations + 1);
        if let Some(wait) = next.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait); // pacing logrotate, not synchronising
        }
        if writer.is_finished() {
            break;
        }
        let output = std::process::Command::new("logrotate")
            .arg("-f")
            .arg("-s")
            .arg(dir.path().join("logrotate.state"))
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "logrotate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        rotations += 1;
    }
    let written = writer.join().unwrap();
    let last = format!(
        "seq-{:09} the quick brown fox jumps over the lazy dog",
        written - 1
    );
    process::wait_until(Duration::from_secs(20), "the last line", || {
        probe.contains(&last)
    });
    // Rotated files may still be draining: wait (bounded) until as many lines as were written
    // have arrived. copytruncate may have lost some in its copy/truncate gap, so in that mode
    // the wait can end at its limit; the loss is then counted below.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while probe.count() < written && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = probe.stop();
    let counts = process::seq_counts(&out);
    let lost = (0..written).filter(|n| !counts.contains_key(n)).count();
    let duplicated: usize = counts.values().map(|c| c - 1).sum();
    println!(
        "logrotate {mode}: {rotations} rotations, {written} lines written, {lost} lost, {duplicated} duplicated"
    );
    (written, lost, duplicated)
}

#[test]
fn logrotate_create_and_copytruncate_under_20k_lines_per_second() {
    if !logrotate_available() {
        crate::support::cannot_run(
            "logrotate_create_and_copytruncate_under_20k_lines_per_second",
            "logrotate is not installed (.ci/run installs it)",
        );
        return;
    }
    let create = std::thread::spawn(|| logrotate_run("create"));
    let copytruncate = std::thread::spawn(|| logrotate_run("copytruncate"));
    let (written, lost, duplicated) = create.join().unwrap();
    assert_eq!(written, 400_000);
    assert_eq!((lost, duplicated), (0, 0), "create mode: lost, duplicated");
    let (written, lost, duplicated) = copytruncate.join().unwrap();
    assert_eq!(written, 400_000);
    assert_eq!(duplicated, 0, "copytruncate mode: duplicated");
    println!("copytruncate: {lost} lines lost in logrotate's copy/truncate gap");
}

#[test]
fn copytruncate_unread_end_is_read_from_the_copy_running_and_stopped() {
    let mut h = Harness::new("app.log", StartAt::Beginning);
    h.start();
    let truncate = |h: &Harness, copy: &str| {
        std::fs::copy(h.path("app.log"), h.path(copy)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(h.path("app.log"))
            .unwrap()
            .set_len(0)
            .unwrap();
    };
    h.append("app.log", lines("a", 0, 10).as_bytes());
    h.poll();
    h.append("app.log", lines("a", 10, 5).as_bytes());
    h.append("app.log", b"a-partial");
    truncate(&h, "app.log.1");
    h.append("app.log", lines("b", 0, 3).as_bytes());
    h.poll();
    h.poll();
    // Stopped: copied and truncated while down.
    h.stop();
    h.append("app.log", lines("b", 3, 2).as_bytes());
    std::fs::rename(h.path("app.log.1"), h.path("app.log.2")).unwrap();
    truncate(&h, "app.log.1");
    h.append("app.log", lines("c", 0, 1).as_bytes());
    h.start();
    h.poll();
    h.poll();
    let mut expected = at(0, &line_list("a", 0, 15));
    expected.push((15 * 9, "a-partial".into()));
    expected.extend(at(0, &line_list("b", 0, 5)));
    expected.extend(at(0, &line_list("c", 0, 1)));
    assert_eq!(sorted(offsets(&h)), sorted(expected));
    assert_eq!(h.stats().copies_drained, 2);
}

/// A backlog's ranges are handed out unread and read by the scanning threads: a copytruncate
/// before one is settled (read or not) drains the copy from that range, so each line comes
/// once; with no copy, a range read before the truncation is kept, one read after it is lost
/// (with the file's unread end), never garbage.
#[test]
fn a_backlog_range_settled_after_a_copytruncate_comes_once_from_the_copy() {
    // The first range: the lines that end in the first 4096 bytes (9 bytes each).
    let in_range = 4096 / 9;
    for (is_read_first, is_copied, settles, a_lines) in [
        (false, true, Settled::FromCopy, 1000),
        (true, true, Settled::FromCopy, 1000),
        (true, false, Settled::Keep, in_range),
        (false, false, Settled::Lost, 0),
    ] {
        let mut h = Harness::new("app.log", StartAt::Beginning);
        h.options.read_budget_bytes = 4096;
        h.append("app.log", lines("a", 0, 1000).as_bytes());
        h.start();
        let (mut held, has_more) = h.poll_once_holding();
        assert!(has_more && held.len() == 1 && held[0].unread.is_some());
        let mut range = held.remove(0);
        if is_read_first {
            range.read_unread();
        }
        if is_copied {
            std::fs::copy(h.path("app.log"), h.path("app.log.1")).unwrap();
        }
        h.truncate("app.log");
        h.append("app.log", lines("b", 0, 3).as_bytes());
        h.poll();
        let case = format!("read first {is_read_first}, copied {is_copied}");
        assert_eq!(range.settle(), settles, "{case}");
        h.deliver(range);
        let mut expected = at(0, &line_list("a", 0, a_lines));
        expected.extend(at(0, &line_list("b", 0, 3)));
        assert_eq!(sorted(offsets(&h)), sorted(expected), "{case}");
    }
}

#[test]
fn a_wide_glob_matching_rotated_names_never_reads_them_twice() {
    let mut h = Harness::new("app.log*", StartAt::Beginning);
    h.options.rescan_interval = Duration::from_secs(60);
    h.start();
    h.append("app.log", lines("a", 0, 10).as_bytes());
    h.poll();
    h.append("app.log", lines("a", 10, 5).as_bytes());
    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.append("app.log", lines("b", 0, 3).as_bytes());
    h.poll();
    h.advance(Duration::from_secs(61));
    h.poll();
    rename(&h.path("app.log.1"), &h.path("app.log.2"));
    rename(&h.path("app.log"), &h.path("app.log.1"));
    h.append("app.log", lines("c", 0, 3).as_bytes());
    h.append("app.log.1", lines("b", 3, 1).as_bytes());
    h.poll();
    h.advance(Duration::from_secs(61));
    h.poll();
    h.stop();
    h.start();
    h.poll();
    let mut texts = h.texts();
    texts.sort();
    let mut expected = line_list("a", 0, 15);
    expected.extend(line_list("b", 0, 4));
    expected.extend(line_list("c", 0, 3));
    assert_eq!(texts, expected);
}

#[test]
fn reload_keeps_offsets_and_starts_new_sources_by_their_start_at() {
    let mut h = Harness::new("a.log", StartAt::Beginning);
    h.append("a.log", b"a1\n");
    h.append("b.log", b"history\n");
    h.start();
    h.poll();
    h.append("a.log", b"a2\n");
    let mut other = h.source.clone();
    other.name = "other".into();
    other.paths = vec![format!("{}/b.log", h.logs.display())];
    other.start_at = StartAt::End;
    let mut first = h.source.clone();
    first.max_line_bytes = 4;
    let options = h.options.clone();
    h.tailer().reload(vec![first, other], options).unwrap();
    h.poll();
    h.append("b.log", b"fresh\n");
    h.append("a.log", b"long line\n");
    h.poll();
    let mut texts = h.texts();
    texts.sort();
    assert_eq!(texts, vec!["a1\n", "a2\n", "fresh\n", "long\n"]);
    let source_of = |text: &[u8]| h.batches.iter().find(|b| b.data == text).map(|b| b.source);
    assert_eq!(source_of(b"long\n"), Some(0));
    assert_eq!(source_of(b"fresh\n"), Some(1));
}

#[test]
fn a_file_dropped_by_a_reload_is_closed_and_the_open_files_gauge_says_so_at_once() {
    let mut h = Harness::new("a.log", StartAt::Beginning);
    h.append("a.log", b"a1\n");
    h.start();
    h.poll();
    assert_eq!(h.stats().open_files, 1);
    let mut other = h.source.clone();
    other.paths = vec![format!("{}/b.log", h.logs.display())];
    let options = h.options.clone();
    h.tailer().reload(vec![other], options).unwrap();
    // Before the next pass: the gauge is not fixed up later, it never disagrees.
    assert_eq!(h.stats().open_files, 0);
    assert_eq!(h.tailer().open_files(), 0);
}

#[test]
fn both_checkpoint_copies_unreadable_are_moved_aside_and_no_line_is_skipped() {
    let mut h = Harness::new("app.log", StartAt::End);
    h.append("app.log", b"history\n");
    h.start();
    h.poll();
    h.append("app.log", b"seen\n");
    h.poll();
    h.save();
    h.stop();
    h.append("app.log", b"written while stopped\n");
    let current = h.state.join("tail-checkpoint.json");
    let prev = h.state.join("tail-checkpoint.json.prev");
    assert!(current.exists() && prev.exists());
    std::fs::write(&current, b"{\"version\": 1, \"sav").unwrap();
    std::fs::write(&prev, b"").unwrap();
    h.clear();
    let (guard, logs) = crate::support::logs::capture();
    h.start();
    drop(guard);
    h.poll();
    // Re-reported rather than lost: the file is read from its beginning.
    assert_eq!(
        h.texts(),
        vec!["history\n", "seen\n", "written while stopped\n"]
    );
    let errors = logs.lines_with("ERROR");
    assert_eq!(errors.len(), 1, "{}", logs.contents());
    assert!(
        errors[0].contains("no checkpoint copy is usable"),
        "{}",
        errors[0]
    );
    let mut aside: Vec<(String, Vec<u8>)> = std::fs::read_dir(&h.state)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().contains(".corrupt-"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let kind = name.split(".corrupt-").next().unwrap().to_owned();
            (kind, std::fs::read(&path).unwrap())
        })
        .collect();
    aside.sort();
    assert_eq!(
        aside,
        vec![
            (
                "tail-checkpoint.json".to_owned(),
                b"{\"version\": 1, \"sav".to_vec()
            ),
            ("tail-checkpoint.json.prev".to_owned(), Vec::new()),
        ]
    );
    // The next start resumes normally from the new checkpoint.
    h.stop();
    h.append("app.log", b"after\n");
    h.clear();
    h.start();
    h.poll();
    assert_eq!(h.texts(), vec!["after\n"]);
}
