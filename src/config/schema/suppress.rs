//! The schema of the suppression sections: `silences:`, `time_intervals:`, `mute:` and
//! `inhibit:` (kept apart so `schema.rs` stays short).

use serde_json::{Value, json};

use super::values::{choice, list, object, require, severity, string, strings};

/// Label matchers: a mapping of `rule` or a `group_by` name to a value.
fn matchers(description: &str) -> Value {
    json!({
        "description": description,
        "type": ["object", "null"],
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    })
}

/// A `mute:` mapping (top level or per rule).
pub(super) fn mute(description: &str) -> Value {
    object(
        description,
        vec![
            (
                "mute_during",
                strings("Muted while any of these `time_intervals` holds."),
            ),
            (
                "active_during",
                strings("Muted while none of these `time_intervals` holds."),
            ),
            (
                "mode",
                choice(
                    "`drop`: counted in the next message's footer; `defer`: held and reported in full when the interval ends. Default `drop`.",
                    &["drop", "defer"],
                ),
            ),
            (
                "except_severity",
                severity("Incidents at or above this severity are never muted."),
            ),
        ],
    )
}

/// `inhibit:` entries.
pub(super) fn inhibit() -> Value {
    let mut source = object(
        "The inhibiting incident.",
        vec![
            ("rule", string("Its rule.")),
            (
                "matchers",
                matchers("Further matchers on its `group_by` values."),
            ),
        ],
    );
    require(&mut source, &["rule"]);
    let target = object(
        "The inhibited incidents.",
        vec![
            ("rules", strings("Their rules; none: every other rule.")),
            (
                "matchers",
                matchers("Further matchers on their `group_by` values."),
            ),
        ],
    );
    let mut entry = object(
        "While a `source` incident is active, `target` incidents are folded under it.",
        vec![
            ("source", source),
            ("target", target),
            (
                "equal",
                strings("Labels whose values must be equal in source and target."),
            ),
        ],
    );
    require(&mut entry, &["source", "target"]);
    list("Inhibition rules.", entry)
}

/// `silences:` entries (main file and included files).
pub(super) fn silences() -> Value {
    let mut silence = object(
        "A silence: matching incidents are counted in the footer, not shown.",
        vec![
            ("id", string("Shown in the footer. Default `FILE#N`.")),
            (
                "matchers",
                matchers("`rule` and `group_by` names to values; `~regex` for a regex (anchored)."),
            ),
            (
                "starts",
                string("RFC 3339 time with an offset. Default: always."),
            ),
            (
                "expires",
                string("RFC 3339 time with an offset (required)."),
            ),
            ("author", string("Who set it.")),
            ("comment", string("Why.")),
        ],
    );
    require(&mut silence, &["matchers", "expires"]);
    list("Silences as code.", silence)
}

/// `time_intervals:`, as Alertmanager writes them.
pub(super) fn time_intervals() -> Value {
    let range = "Values or `start:end` ranges (inclusive)";
    let mut time = object(
        "A time of day range, `HH:MM`; the end is exclusive (`24:00` allowed).",
        vec![
            ("start_time", string("Start, `HH:MM`.")),
            ("end_time", string("End, `HH:MM` (exclusive).")),
        ],
    );
    require(&mut time, &["start_time", "end_time"]);
    let spec = object(
        "Holds when every field it sets holds (a field left out always holds).",
        vec![
            (
                "times",
                list("Times of day; over midnight is two ranges.", time),
            ),
            (
                "weekdays",
                strings(&format!("{range} of `sunday`..`saturday`.")),
            ),
            (
                "days_of_month",
                strings(&format!(
                    "{range} of 1..31; negative days count from the month's end."
                )),
            ),
            (
                "months",
                strings(&format!("{range} of `january`..`december` or 1..12.")),
            ),
            ("years", strings(&format!("{range} of years."))),
            (
                "location",
                string(
                    "Time zone the fields are read in: `UTC` (default), `Local`, or an IANA name.",
                ),
            ),
        ],
    );
    let mut interval = object(
        "A named interval: holds when any of its `time_intervals` holds.",
        vec![
            (
                "name",
                string("Its name, for `mute_during:`, `active_during:` and `schedule:`."),
            ),
            ("time_intervals", list("Its specs.", spec)),
        ],
    );
    require(&mut interval, &["name", "time_intervals"]);
    list("Named time intervals (Alertmanager's format).", interval)
}
