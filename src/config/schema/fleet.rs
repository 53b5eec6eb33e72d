//! The fleet's parts of the schema: the agent's `alertmanager:` section.

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
