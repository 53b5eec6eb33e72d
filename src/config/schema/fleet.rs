//! The fleet's parts of the schema: the agent's `alertmanager:` section, and the relay's
//! config file (`relay.schema.json`).

use serde_json::{Value, json};

use super::{duration, object, require, strings};

/// The `alertmanager:` section.
pub(super) fn alertmanager() -> Value {
    let mut section = object(
        "Alertmanager instances every incident is posted to as an alert (off when absent).",
        vec![
            (
                "urls",
                strings(
                    "Base URL of every instance of the cluster (`http://am-1:9093`); each gets every alert at `/api/v2/alerts`.",
                ),
            ),
            (
                "labels",
                json!({
                    "description": "Labels added to every alert (not `alertname`, `severity`, `host`, `source`).",
                    "type": ["object", "null"],
                    "propertyNames": {"pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                }),
            ),
            (
                "resend_every",
                duration(
                    "Firing alerts are posted again this often (`endsAt` moved ahead). Default `1m`.",
                ),
            ),
            (
                "timeout",
                duration("Bound on one post, connecting included. Default `10s`."),
            ),
        ],
    );
    require(&mut section, &["urls"]);
    section
}

/// The schema of the relay's config file (`logding relay -c relay.yaml`).
pub fn relay_schema() -> Value {
    let mut robot = super::dingtalk();
    robot["description"] = json!(
        "A DingTalk robot: its `name` (Alertmanager posts to `/robots/<name>`) and every key of the agent's `dingtalk:`."
    );
    robot["properties"]["name"] = json!({"description": "Letters, digits, `-` or `_`: the URL path `/robots/<name>`.", "type": "string", "pattern": "^[A-Za-z0-9_-]+$"});
    require(&mut robot, &["name"]);
    let outbox = super::config_schema()["properties"]["outbox"].clone();
    let mut root = object(
        "The config of `logding relay` (`logding check -c relay.yaml` validates it).",
        vec![
            (
                "listen",
                super::string(
                    "Address and port of the webhook listener. Default `127.0.0.1:9099`; outside loopback `auth.bearer_token` is required.",
                ),
            ),
            (
                "auth",
                object(
                    "How Alertmanager authenticates (its `http_config.authorization`).",
                    vec![
                        (
                            "bearer_token",
                            super::string(
                                "The token, usually `${RELAY_TOKEN}`. Never write it here.",
                            ),
                        ),
                        (
                            "bearer_token_file",
                            super::string(
                                "Read the token from this file (trimmed). Exclusive with `bearer_token`.",
                            ),
                        ),
                    ],
                ),
            ),
            (
                "state_dir",
                super::string(
                    "Outboxes and post times, one directory per robot. Default `/var/lib/logding-relay`.",
                ),
            ),
            (
                "max_request_bytes",
                super::byte_size("Larger webhook calls are refused with 413. Default `16MiB`."),
            ),
            (
                "dedupe_window",
                duration(
                    "A notification identical to one accepted for its group within this long is the other instance's copy: answered 200, not posted again. Default `5m`.",
                ),
            ),
            ("outbox", outbox),
            ("robots", super::list("The robots, by name.", robot)),
        ],
    );
    require(&mut root, &["robots"]);
    super::with_header(
        &mut root,
        "relay.schema.json",
        "logding relay configuration",
    );
    root
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;
    use crate::config::walk::recording::record_key_sets;

    fn keys(object: &Value) -> Vec<String> {
        let keys: BTreeSet<String> = object["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.into_iter().collect()
    }

    #[test]
    fn the_relay_schema_is_committed_and_has_the_loaders_keys() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let schema = relay_schema();
        let expected = format!("{}\n", serde_json::to_string_pretty(&schema).expect("json"));
        let path = root.join("schema/relay.schema.json");
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &expected).expect("write the schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == expected,
            "`schema/relay.schema.json` is stale: run `UPDATE_SCHEMA=1 cargo test --lib schema`"
        );

        let fixture = root.join("tests/fixtures/schema/relay.yaml");
        let (loaded, key_sets) =
            record_key_sets(|| crate::config::load_relay_with(&fixture, &|_| None));
        loaded.unwrap_or_else(|err| panic!("the relay fixture does not load:\n{err}"));
        let loader = |path: &str| {
            key_sets
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, keys)| keys.clone())
                .unwrap_or_else(|| panic!("the loader read no `{path}`"))
        };
        let robot = &schema["properties"]["robots"]["items"];
        let mut robot_keys = keys(robot);
        robot_keys.retain(|k| k != "name");
        for (what, in_schema, in_loader) in [
            ("top level", keys(&schema), loader("")),
            ("auth", keys(&schema["properties"]["auth"]), loader("auth")),
            (
                "outbox",
                keys(&schema["properties"]["outbox"]),
                loader("outbox"),
            ),
            ("robots[]", robot_keys, loader("dingtalk")),
            (
                "robots[].mention",
                keys(&robot["properties"]["mention"]),
                loader("dingtalk.mention"),
            ),
        ] {
            assert_eq!(in_schema, in_loader, "{what}");
        }

        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let text = std::fs::read_to_string(&fixture).expect("fixture");
        let value: Value = serde_saphyr::from_str(&text).expect("valid YAML");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
