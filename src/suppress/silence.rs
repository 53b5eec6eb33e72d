//! Silences: matchers on an incident's rule name and `group_by` values, active from `starts`
//! until `expires` (exclusive: a silence expiring at 12:00:00 no longer applies at that
//! second). They come from config files (`silences:`) and from `logding silence add`, which
//! keeps them in `state_dir/silences.json` ([`SilenceFile`], its JSON form; the file IO is the
//! caller's).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The label a matcher names to match the rule name.
pub const RULE_LABEL: &str = "rule";

/// Version of `silences.json`.
pub const SILENCES_VERSION: u32 = 1;

/// One label matcher: `peer=10.0.0.5`, or with a regex, `peer=~10\.0\..*` (anchored at both
/// ends, as in Alertmanager). A label the incident does not have reads as empty.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// `rule`, or a `group_by` capture name.
    pub label: String,
    /// What the value must be.
    pub value: MatchValue,
}

/// The value side of a [`Matcher`].
#[derive(Clone, Debug)]
pub enum MatchValue {
    /// Exactly this.
    Equal(String),
    /// The whole value matches this regex (as written, without the `~`).
    Regex(String, regex::Regex),
}

/// A silence.
#[derive(Clone, Debug)]
pub struct Silence {
    /// `SIL-3` for silences added at run time; the file's `id` (or `file:N`) for files.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// From this instant on.
    pub starts: Timestamp,
    /// Until this instant (exclusive).
    pub expires: Timestamp,
    /// Who set it.
    pub author: Option<String>,
    /// Why.
    pub comment: Option<String>,
}

/// `state_dir/silences.json`: the silences added at run time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceFile {
    /// Always [`SILENCES_VERSION`].
    pub version: u32,
    /// The number of the next `SIL-N`.
    pub next_id: u64,
    /// Silences, active, pending and expired (pruned a day after they expire).
    pub silences: Vec<StoredSilence>,
}

/// A silence as stored: matchers as written (`peer=~10\..*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSilence {
    /// `SIL-N`.
    pub id: String,
    /// `label=value` or `label=~regex`.
    pub matchers: Vec<String>,
    /// From.
    pub starts: Timestamp,
    /// Until (exclusive).
    pub expires: Timestamp,
    /// Who.
    #[serde(default)]
    pub author: Option<String>,
    /// Why.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Why a matcher or a silence file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// Not `label=value`.
    #[error("matcher `{0}` is not `label=value` or `label=~regex`")]
    Matcher(String),
    /// A bad regex.
    #[error("matcher `{text}` has an invalid regex: {reason}")]
    Regex {
        /// The matcher as written.
        text: String,
        /// The regex crate's reason.
        reason: String,
    },
    /// Not JSON of this shape.
    #[error("silences are not valid JSON")]
    Json(#[source] serde_json::Error),
    /// Another version.
    #[error("silences have version {0}, this logding reads version {SILENCES_VERSION}")]
    Version(u32),
}

impl Matcher {
    /// A matcher of `label` against `value` (`~regex` for a regex).
    ///
    /// # Errors
    ///
    /// An invalid regex.
    pub fn new(label: &str, value: &str) -> Result<Matcher, SilenceError> {
        let value = match value.strip_prefix('~') {
            Some(pattern) => {
                let anchored = format!("^(?:{pattern})$");
                let regex = regex::Regex::new(&anchored).map_err(|err| SilenceError::Regex {
                    text: format!("{label}=~{pattern}"),
                    reason: crate::rules::short_regex_error(&err.to_string()),
                })?;
                MatchValue::Regex(pattern.to_owned(), regex)
            }
            None => MatchValue::Equal(value.to_owned()),
        };
        Ok(Matcher {
            label: label.to_owned(),
            value,
        })
    }

    /// Parses `label=value` or `label=~regex`.
    ///
    /// # Errors
    ///
    /// No `=`, an empty label, or an invalid regex.
    pub fn parse(text: &str) -> Result<Matcher, SilenceError> {
        match text.split_once('=') {
            Some((label, value)) if !label.trim().is_empty() => Matcher::new(label.trim(), value),
            _ => Err(SilenceError::Matcher(text.to_owned())),
        }
    }

    /// Returns true if and only if the incident of `rule` with `group` values matches.
    pub fn matches(&self, rule: &str, group: &[(String, String)]) -> bool {
        let value = label_value(&self.label, rule, group);
        match &self.value {
            MatchValue::Equal(expected) => value == expected,
            MatchValue::Regex(_, regex) => regex.is_match(value),
        }
    }
}

/// The value of `label` for the incident of `rule` with `group` values (empty when it has none).
pub fn label_value<'a>(label: &str, rule: &'a str, group: &'a [(String, String)]) -> &'a str {
    if label == RULE_LABEL {
        return rule;
    }
    group
        .iter()
        .find(|(name, _)| name == label)
        .map_or("", |(_, value)| value.as_str())
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            MatchValue::Equal(value) => write!(f, "{}={value}", self.label),
            MatchValue::Regex(pattern, _) => write!(f, "{}=~{pattern}", self.label),
        }
    }
}

impl Silence {
    /// Returns true if and only if it applies at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.starts <= now && now < self.expires
    }

    /// Returns true if and only if it applies to the incident of `rule` with `group` values
    /// at `now`.
    pub fn silences(&self, rule: &str, group: &[(String, String)], now: Timestamp) -> bool {
        self.is_active(now) && self.matchers.iter().all(|m| m.matches(rule, group))
    }

    /// The stored form.
    pub fn to_stored(&self) -> StoredSilence {
        StoredSilence {
            id: self.id.clone(),
            matchers: self.matchers.iter().map(ToString::to_string).collect(),
            starts: self.starts,
            expires: self.expires,
            author: self.author.clone(),
            comment: self.comment.clone(),
        }
    }
}

impl StoredSilence {
    /// The silence, its matchers parsed.
    ///
    /// # Errors
    ///
    /// A matcher that does not parse.
    pub fn to_silence(&self) -> Result<Silence, SilenceError> {
        let matchers = self
            .matchers
            .iter()
            .map(|m| Matcher::parse(m))
            .collect::<Result<_, _>>()?;
        Ok(Silence {
            id: self.id.clone(),
            matchers,
            starts: self.starts,
            expires: self.expires,
            author: self.author.clone(),
            comment: self.comment.clone(),
        })
    }
}

impl SilenceFile {
    /// Reads the JSON form.
    ///
    /// # Errors
    ///
    /// Not JSON of this shape, or another version.
    pub fn from_json(bytes: &[u8]) -> Result<SilenceFile, SilenceError> {
        let file: SilenceFile = serde_json::from_slice(bytes).map_err(SilenceError::Json)?;
        if file.version != SILENCES_VERSION {
            return Err(SilenceError::Version(file.version));
        }
        Ok(file)
    }

    /// The JSON form (pretty: people read it).
    pub fn to_json(&self) -> Vec<u8> {
        let mut file = self.clone();
        file.version = SILENCES_VERSION;
        let mut bytes = serde_json::to_vec_pretty(&file).expect("silences always serialize");
        bytes.push(b'\n');
        bytes
    }

    /// Adds a silence, numbering it `SIL-N`; returns its id.
    pub fn add(&mut self, mut silence: StoredSilence) -> String {
        self.next_id = self.next_id.max(1);
        silence.id = format!("SIL-{}", self.next_id);
        self.next_id += 1;
        let id = silence.id.clone();
        self.silences.push(silence);
        id
    }

    /// Ends silence `id` at `now` (an already expired one is left as it is). Returns false
    /// when there is no such silence.
    pub fn expire(&mut self, id: &str, now: Timestamp) -> bool {
        let Some(silence) = self
            .silences
            .iter_mut()
            .find(|s| s.id.eq_ignore_ascii_case(id))
        else {
            return false;
        };
        silence.expires = silence.expires.min(now);
        silence.starts = silence.starts.min(silence.expires);
        true
    }

    /// Forgets silences that expired more than `keep` before `now`.
    pub fn prune(&mut self, now: Timestamp, keep: jiff::SignedDuration) {
        self.silences
            .retain(|s| now.duration_since(s.expires) <= keep);
    }

    /// The silences that parse (a bad one, hand-edited, is skipped and returned as an error).
    pub fn parsed(&self) -> (Vec<Silence>, Vec<SilenceError>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for stored in &self.silences {
            match stored.to_silence() {
                Ok(silence) => ok.push(silence),
                Err(err) => bad.push(err),
            }
        }
        (ok, bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn matchers_equal_regex_and_missing_labels() {
        let group = vec![("peer".to_owned(), "10.0.0.5".to_owned())];
        let check = |text: &str, rule: &str| Matcher::parse(text).unwrap().matches(rule, &group);
        assert!(check("rule=db-timeout", "db-timeout"));
        assert!(!check("rule=db", "db-timeout"), "equality is whole");
        assert!(check("rule=~db-.*", "db-timeout"));
        assert!(!check("rule=~db", "db-timeout"), "regexes are anchored");
        assert!(check(r"peer=~10\.0\.0\.\d+", "x"));
        assert!(check("zone=", "x"), "a missing label is empty");
        assert!(!check("zone=~.+", "x"));
        assert!(matches!(
            Matcher::parse("nolabel"),
            Err(SilenceError::Matcher(_))
        ));
        assert!(matches!(
            Matcher::parse("peer=~(unclosed"),
            Err(SilenceError::Regex { .. })
        ));
        assert_eq!(
            Matcher::parse("peer=~a|b").unwrap().to_string(),
            "peer=~a|b"
        );
    }

    #[test]
    fn a_silence_applies_from_starts_until_just_before_expires() {
        let silence = Silence {
            id: "SIL-1".into(),
            matchers: vec![Matcher::parse("rule=db").unwrap()],
            starts: at("2026-12-01T10:00:00Z"),
            expires: at("2026-12-01T12:00:00Z"),
            author: None,
            comment: None,
        };
        assert!(!silence.silences("db", &[], at("2026-12-01T09:59:59Z")));
        assert!(silence.silences("db", &[], at("2026-12-01T10:00:00Z")));
        assert!(silence.silences("db", &[], at("2026-12-01T11:59:59Z")));
        assert!(!silence.silences("db", &[], at("2026-12-01T12:00:00Z")));
        assert!(!silence.silences("api", &[], at("2026-12-01T11:00:00Z")));
    }

    #[test]
    fn the_file_numbers_expires_prunes_and_round_trips() {
        let mut file = SilenceFile::default();
        let stored = StoredSilence {
            id: String::new(),
            matchers: vec!["rule=db".into()],
            starts: at("2026-12-01T10:00:00Z"),
            expires: at("2026-12-01T12:00:00Z"),
            author: Some("ops".into()),
            comment: Some("failover drill".into()),
        };
        assert_eq!(file.add(stored.clone()), "SIL-1");
        assert_eq!(file.add(stored), "SIL-2");
        assert!(file.expire("sil-1", at("2026-12-01T11:00:00Z")));
        assert!(!file.expire("SIL-9", at("2026-12-01T11:00:00Z")));
        assert_eq!(file.silences[0].expires, at("2026-12-01T11:00:00Z"));
        let back = SilenceFile::from_json(&file.to_json()).unwrap();
        assert_eq!(
            back,
            SilenceFile {
                version: 1,
                ..file.clone()
            }
        );
        file.prune(
            at("2026-12-02T11:30:00Z"),
            jiff::SignedDuration::from_hours(24),
        );
        assert_eq!(file.silences.len(), 1);
        assert!(matches!(
            SilenceFile::from_json(b"{\"version\": 7, \"next_id\": 1, \"silences\": []}"),
            Err(SilenceError::Version(7))
        ));
    }
}
