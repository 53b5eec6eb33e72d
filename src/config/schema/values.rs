//! The building blocks of the schema: one JSON Schema value per kind of config value, each
//! accepting what the loader's reader of that kind accepts (`${VAR}` included).

use serde_json::{Map, Value, json};

use crate::rules::Severity;

pub(super) fn object(description: &str, properties: Vec<(&str, Value)>) -> Value {
    let properties: Map<String, Value> = properties
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    json!({
        "description": description,
        "type": ["object", "null"],
        "properties": properties,
        "additionalProperties": false,
    })
}

pub(super) fn require(object: &mut Value, keys: &[&str]) {
    object["required"] = json!(keys);
}

pub(super) fn list(description: &str, item: Value) -> Value {
    json!({"description": description, "type": ["array", "null"], "items": item})
}

/// `${VAR}` may stand for any string value.
pub(super) fn string(description: &str) -> Value {
    json!({"description": description, "type": ["string", "number", "boolean"]})
}

/// A list of strings; one string is a list of one.
pub(super) fn strings(description: &str) -> Value {
    json!({
        "description": description,
        "type": ["array", "string", "null"],
        "items": {"type": ["string", "number", "boolean"]},
    })
}

pub(super) fn boolean(description: &str) -> Value {
    json!({"description": description, "type": "boolean"})
}

pub(super) fn integer(description: &str, minimum: u64, maximum: u64) -> Value {
    json!({"description": description, "type": "integer", "minimum": minimum, "maximum": maximum})
}

/// `500ms`, `30s`, `5m`, `1h 30m`, or a `${VAR}` reference; a bare number is ambiguous.
pub(super) fn duration(description: &str) -> Value {
    json!({
        "description": description,
        "type": "string",
        "pattern": r"^\s*(\d+\s*[a-zµ]+\s*)+$|\$\{",
    })
}

/// A number of bytes, or a number with a unit (`64KiB`, `1MiB`, `500KB`).
pub(super) fn byte_size(description: &str) -> Value {
    json!({
        "description": description,
        "type": ["integer", "string"],
        "minimum": 0,
        "pattern": r"^\s*\d+\s*(B|K|k|KiB|M|MiB|G|GiB|KB|kB|MB|GB)?\s*$",
    })
}

pub(super) fn choice(description: &str, choices: &[&str]) -> Value {
    json!({"description": description, "enum": choices})
}

pub(super) fn severity(description: &str) -> Value {
    let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    choice(description, &names)
}
