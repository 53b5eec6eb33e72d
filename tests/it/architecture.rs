//! ARCHITECTURE.md's invariants about where code lives, checked on the source itself: the pure
//! cores do no IO and read no clock, only `src/sink/` is an HTTP client, hits reach the
//! aggregator one way, the pure cores import each other only downwards, and no source file
//! grows past 700 lines.

use std::path::{Path, PathBuf};

/// The pure cores: data in, data out.
const PURE: &[&str] = &[
    "src/rules.rs",
    "src/rules",
    "src/scan.rs",
    "src/scan",
    "src/window",
    "src/summary.rs",
    "src/summary",
    "src/event_time.rs",
    "src/event_time",
    "src/incident",
    "src/absence",
    "src/render.rs",
    "src/render",
    "src/suppress",
    "src/sink/alertmanager/alerts.rs",
    "src/sink/alertmanager/alerts",
    "src/sink/alertmanager/firing.rs",
];

/// What IO, the clock or the environment look like in code.
const IMPURE: &[&str] = &[
    "std::fs",
    "File::",
    "tokio",
    "std::net",
    "reqwest",
    "std::process",
    "std::env",
    "::now()",
    "SystemTime",
    "Instant",
];

/// The `.rs` files under `path` (or `path` itself), tests excluded.
fn sources(path: &Path) -> Vec<PathBuf> {
    rust_files(path, false)
}

/// The `.rs` files under `path` (or `path` itself), test files and `tests` directories included
/// only when `with_tests`.
fn rust_files(path: &Path, with_tests: bool) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_test = path
            .file_stem()
            .is_some_and(|stem| stem == "tests" || stem == "test");
        if is_test && !with_tests {
            continue;
        }
        if path.is_dir() {
            out.extend(rust_files(&path, with_tests));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The code lines of a file before its `#[cfg(test)]` part, without comments.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).expect("read source");
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(i, line)| (i + 1, line.to_owned()))
        .collect()
}

/// Every `file:line: text` of the files under `roots` holding one of `needles`.
fn find(roots: &[&str], needles: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut checked = 0;
    for dir in roots {
        for file in sources(&root.join(dir)) {
            checked += 1;
            for (n, line) in code_lines(&file) {
                if needles.iter().any(|needle| line.contains(needle)) {
                    let shown = file.strip_prefix(root).unwrap_or(&file).display();
                    found.push(format!("{shown}:{n}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        checked >= roots.len() / 2,
        "only {checked} files found under {roots:?}"
    );
    found
}

#[test]
fn the_pure_cores_do_no_io_and_read_no_clock() {
    let found = find(PURE, IMPURE);
    assert!(
        found.is_empty(),
        "IO or clock in a pure core:\n{}",
        found.join("\n")
    );
}

/// Every top-level entry of `src/` but `except`.
fn src_but(except: &str) -> Vec<String> {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .expect("src")
        .flatten()
        .map(|e| format!("src/{}", e.file_name().to_string_lossy()))
        .filter(|name| name != except)
        .collect()
}

/// The pure cores below `render`, from the bottom up: each imports only cores below it, and none
/// imports `config` (which builds their types) or `render` (which reads them).
const LAYERS: &[&str] = &[
    "rules",
    "scan",
    "summary",
    "event_time",
    "window",
    "absence",
    "incident",
    "suppress",
];

/// The files of the top-level module `module` of `src/` (`x.rs` and its folder `x/`), as roots
/// for [`find`].
fn module_roots(module: &str) -> Vec<String> {
    [format!("src/{module}.rs"), format!("src/{module}")]
        .into_iter()
        .filter(|p| Path::new(env!("CARGO_MANIFEST_DIR")).join(p).exists())
        .collect()
}

/// The top-level modules `module`'s code refers to (`crate::x`, in any form: `crate::x::y`,
/// `crate::x;`, `crate::x as y`), each with the line that does (from [`find`]).
fn references(module: &str) -> Vec<(String, String)> {
    let roots = module_roots(module);
    let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
    let mut found = Vec::new();
    for line in find(&roots, &["crate::"]) {
        for (at, _) in line.match_indices("crate::") {
            let name: String = line[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                found.push((name, line.clone()));
            }
        }
    }
    found
}

#[test]
fn the_pure_cores_import_each_other_only_downwards() {
    let mut upwards = Vec::new();
    for (i, layer) in LAYERS.iter().enumerate() {
        let above: Vec<&str> = LAYERS[i + 1..]
            .iter()
            .chain(&["config", "render"])
            .copied()
            .collect();
        let found = references(layer).into_iter();
        upwards.extend(
            found
                .filter(|(to, _)| above.contains(&to.as_str()))
                .map(|(_, line)| line),
        );
    }
    assert!(
        upwards.is_empty(),
        "a pure core imports one above it (a circle in the making; move the shared type down):\n{}",
        upwards.join("\n")
    );
}

/// The top-level modules of `src/` (a file `x.rs` and its folder `x/` are one module).
fn top_modules() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .expect("read src")
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            (path.is_dir() || path.extension().is_some_and(|x| x == "rs")).then_some(stem)
        })
        .filter(|name| name != "lib" && name != "main")
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_modules_import_each_other_without_a_circle() {
    let modules = top_modules();
    assert!(modules.len() > 10, "modules: {modules:?}");
    // Who imports whom, from code lines (comments and `#[cfg(test)]` parts left out).
    let imports: Vec<Vec<usize>> = modules
        .iter()
        .map(|module| {
            let mut to: Vec<usize> = references(module)
                .iter()
                .filter_map(|(name, _)| modules.iter().position(|m| m == name))
                .collect();
            to.sort_unstable();
            to.dedup();
            to
        })
        .collect();
    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit(
        at: usize,
        imports: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[at] = 1;
        path.push(at);
        for &next in &imports[at] {
            if state[next] == 1 {
                let start = path.iter().position(|&m| m == next).unwrap_or(0);
                return Some(path[start..].iter().copied().chain([next]).collect());
            }
            if state[next] == 0
                && let Some(circle) = visit(next, imports, state, path)
            {
                return Some(circle);
            }
        }
        path.pop();
        state[at] = 2;
        None
    }
    let mut state = vec![0u8; modules.len()];
    for start in 0..modules.len() {
        if state[start] == 0
            && let Some(circle) = visit(start, &imports, &mut state, &mut Vec::new())
        {
            let names: Vec<&str> = circle.iter().map(|&m| modules[m].as_str()).collect();
            panic!(
                "modules import each other in a circle: {} (move what they share below both)",
                names.join(" -> ")
            );
        }
    }
}

#[test]
fn hits_reach_the_aggregator_one_way() {
    let others = src_but("src/window");
    let roots: Vec<&str> = others.iter().map(String::as_str).collect();
    let found = find(&roots, &["HitRef {"]);
    assert!(
        found.is_empty(),
        "hits fed to the aggregator outside Aggregator::observe_scan:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_sink_is_an_http_client() {
    let others = src_but("src/sink");
    let roots: Vec<&str> = others.iter().map(String::as_str).collect();
    // `reqwest::Url` (webhook checks in `config`) parses; it does not speak HTTP.
    let found = find(
        &roots,
        &[
            "reqwest::Client",
            "ClientBuilder",
            "reqwest::Response",
            "hyper::",
        ],
    );
    assert!(
        found.is_empty(),
        "HTTP outside src/sink/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_delivery_task_writes_files_only_on_the_blocking_pool() {
    // The outbox's writing methods and the send times' save are called only inside the
    // closures `with_outbox` and `blocking` run on the blocking pool: the nearest opening
    // line above each call is one of those, not a plain `lock_outbox()`.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sink/deliver.rs");
    let writes = [
        "outbox.push(",
        "outbox.remove(",
        "outbox.replace(",
        "outbox.set_aside_dropped(",
        "send_times.save(",
    ];
    let lines = code_lines(&file);
    let mut found = Vec::new();
    for (i, (n, line)) in lines.iter().enumerate() {
        if !writes.iter().any(|w| line.contains(w)) {
            continue;
        }
        let opener = lines[..=i].iter().rev().find(|(_, l)| {
            l.contains("with_outbox(") || l.contains("blocking(") || l.contains("lock_outbox()")
        });
        let is_blocking =
            opener.is_some_and(|(_, l)| l.contains("with_outbox(") || l.contains("blocking("));
        if !is_blocking {
            found.push(format!("src/sink/deliver.rs:{n}: {}", line.trim()));
        }
    }
    assert!(
        found.is_empty(),
        "file writes on a runtime thread:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_over_700_lines() {
    let files = rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), true);
    assert!(files.len() > 50, "found only {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > 700)
        .map(|(f, n)| format!("{}: {n} lines", f.display()))
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}
