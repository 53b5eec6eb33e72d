//! The schema against the loader and the files the project ships: `schema/*.json` is what
//! `logding schema` prints, every bundled and example file is valid against it, and the keys
//! of every mapping are exactly the loader's (recorded while the loader reads those files).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{config_schema, rules_schema};
use crate::config::walk::recording::{KeySets, record_key_sets};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every config file the project ships or documents; each must pass `logding check`.
fn config_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        "config/logding.yaml",
        "packaging/logding.yaml",
        "examples/rules-repo/logding.yaml",
        "tests/fixtures/schema/every-section.yaml",
    ]
    .iter()
    .map(|f| root().join(f))
    .collect();
    files.extend(yaml_files("examples/kubernetes/config"));
    files
}

/// Every rule file the project ships.
fn rule_files() -> Vec<PathBuf> {
    [
        "config/rules",
        "examples/rules",
        "examples/rules-repo/rules",
        "examples/kubernetes/config/rules",
    ]
    .iter()
    .flat_map(|dir| yaml_files(dir))
    .collect()
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("the directory is in the repository")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn committed_schemas_are_what_logding_schema_prints() {
    for (file, schema) in [
        ("schema/logding.schema.json", config_schema()),
        ("schema/rules.schema.json", rules_schema()),
    ] {
        let path = root().join(file);
        let expected = format!("{}\n", serde_json::to_string_pretty(&schema).expect("json"));
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &expected).expect("write the schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == expected,
            "`{file}` is stale: run `UPDATE_SCHEMA=1 cargo test --lib schema` and commit it"
        );
    }
}

#[test]
fn every_bundled_and_example_file_is_valid_against_the_schema() {
    let config = jsonschema::validator_for(&config_schema()).expect("a valid schema");
    let rules = jsonschema::validator_for(&rules_schema()).expect("a valid schema");
    let files = config_files().into_iter().map(|f| (f, &config));
    let files = files.chain(rule_files().into_iter().map(|f| (f, &rules)));
    let mut problems = Vec::new();
    for (file, validator) in files {
        let text = std::fs::read_to_string(&file).expect("readable file");
        let value: Value = serde_saphyr::from_str(&text).expect("valid YAML");
        for error in validator.iter_errors(&value) {
            problems.push(format!(
                "{}: {}: {error}",
                file.display(),
                error.instance_path()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The file's `# yaml-language-server: $schema=` path, resolved as yaml-language-server does:
/// relative to the file's directory.
fn named_schema(file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).expect("readable file");
    let path = text
        .lines()
        .next()?
        .strip_prefix("# yaml-language-server: $schema=")?;
    Some(file.parent()?.join(path))
}

#[test]
fn every_bundled_file_names_a_schema_that_resolves_there_and_once_installed() {
    let files = config_files().into_iter().chain(rule_files());
    let mut problems = Vec::new();
    for file in files.filter(|f| !f.starts_with(root().join("tests"))) {
        let Some(schema) = named_schema(&file) else {
            problems.push(format!("{}: no schema modeline", file.display()));
            continue;
        };
        // The repository's copy: the path leads to a committed schema. The installed copy
        // (packaging/build-deb.sh) keeps the file name under /usr/share/logding/schema/,
        // where the package installs schema/*.json.
        let resolved = schema.canonicalize().ok();
        let name = schema.file_name().map(|n| root().join("schema").join(n));
        if resolved.is_none()
            || resolved.as_ref() != name.and_then(|n| n.canonicalize().ok()).as_ref()
        {
            problems.push(format!(
                "{}: `{}` is not a file of schema/",
                file.display(),
                schema.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_schema_has_exactly_the_keys_the_loader_accepts() {
    let mut loaded = KeySets::new();
    for file in config_files() {
        let (result, key_sets) =
            record_key_sets(|| crate::config::load_with(&file, false, &|_| None));
        if let Err(err) = result {
            panic!("`{}` does not load:\n{err}", file.display());
        }
        loaded.extend(key_sets);
    }
    let mut in_schema = KeySets::new();
    objects("", &config_schema(), &mut in_schema);
    objects("", &rules_schema(), &mut in_schema);

    // The loader names `rules[N].examples` just `examples`: a loader path matches a schema
    // path that ends with it.
    let matches = |(loader_path, loader_keys): &(String, Vec<String>),
                   (schema_path, schema_keys): &(String, Vec<String>)| {
        loader_keys == schema_keys
            && (loader_path == schema_path || schema_path.ends_with(&format!(".{loader_path}")))
    };
    let not_in_schema: Vec<_> = loaded
        .iter()
        .filter(|l| !in_schema.iter().any(|s| matches(l, s)))
        .collect();
    let not_in_loader: Vec<_> = in_schema
        .iter()
        .filter(|s| !loaded.iter().any(|l| matches(l, s)))
        .collect();
    assert!(
        not_in_schema.is_empty() && not_in_loader.is_empty(),
        "the loader reads mappings whose keys differ from the schema's (see src/config/schema.rs)\n\
         loader: {not_in_schema:#?}\nschema: {not_in_loader:#?}"
    );
}

/// Every mapping of `schema` with its path (`sources[].multiline`) and sorted keys.
fn objects(path: &str, schema: &Value, out: &mut KeySets) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let keys: BTreeSet<String> = properties.keys().cloned().collect();
        out.insert((path.to_owned(), keys.into_iter().collect()));
        for (key, value) in properties {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            objects(&child, value, out);
        }
    }
    if let Some(items) = schema.get("items") {
        objects(&format!("{path}[]"), items, out);
    }
    // A key that takes a word or a mapping (`timestamp: log4j` or `{preset, timezone}`).
    for alternative in schema
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        objects(path, alternative, out);
    }
}

#[test]
fn schema_paths_are_relative_to_the_file() {
    // The modelines point at the committed copies, so editors work in a clone.
    let text = std::fs::read_to_string(root().join("config/logding.yaml")).expect("readable");
    let first = text.lines().next().unwrap_or_default();
    let target = first.rsplit('=').next().unwrap_or_default();
    assert!(
        Path::new(&root().join("config").join(target)).exists(),
        "{first}"
    );
}
