//! `rust-version` in Cargo.toml is true: no locked dependency that the binary builds with
//! asks for a newer compiler (it said 1.88 while `notify-types` needed 1.91).

use std::process::Command;

/// `1.91`, `1.88.0` → `(1, 91, 0)`.
fn parse(version: &str) -> (u64, u64, u64) {
    let mut parts = version
        .split('.')
        .map(|p| p.parse::<u64>().expect("numeric version part"));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn rust_version_is_at_least_every_locked_dependency_s() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--offline", "--locked", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let declared = parse(env!("CARGO_PKG_RUST_VERSION"));
    let nodes = metadata["resolve"]["nodes"].as_array().expect("resolve");
    let root = metadata["resolve"]["root"].as_str().expect("root");
    // What the binary builds with: normal and build dependencies, transitively (dev-only
    // dependencies are not needed to install logding).
    let mut seen = vec![root.to_owned()];
    let mut queue = vec![root.to_owned()];
    while let Some(id) = queue.pop() {
        let node = nodes.iter().find(|n| n["id"] == id).expect("node");
        for dep in node["deps"].as_array().expect("deps") {
            let is_built = dep["dep_kinds"]
                .as_array()
                .expect("dep_kinds")
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            let pkg = dep["pkg"].as_str().expect("pkg").to_owned();
            if is_built && !seen.contains(&pkg) {
                seen.push(pkg.clone());
                queue.push(pkg);
            }
        }
    }
    let mut newer = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let id = package["id"].as_str().expect("id");
        let Some(needed) = package["rust_version"].as_str() else {
            continue;
        };
        if seen.iter().any(|s| s == id) && parse(needed) > declared {
            newer.push(format!(
                "{} {} needs {needed}",
                package["name"], package["version"]
            ));
        }
    }
    assert!(
        newer.is_empty(),
        "rust-version = {} is too old: {newer:?}",
        env!("CARGO_PKG_RUST_VERSION")
    );
}
