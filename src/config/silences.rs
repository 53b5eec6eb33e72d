//! `silences:` as code: in the main file and in included files, next to `rules:`. A silence
//! has `matchers` (a mapping of `rule` or a `group_by` name to a value, `~regex` for a
//! regex), an optional `starts`, a **required** `expires`, `author`, `comment` and `id`.
//! `check` warns about silences already expired and those longer than `max_silence`.

use std::time::Duration;

use jiff::Timestamp;

use super::walk::Ctx;
use super::yaml::{Kind, Node};
use crate::suppress::{Matcher, Silence};

const SILENCE_KEYS: &[&str] = &["id", "matchers", "starts", "expires", "author", "comment"];

/// Default of `max_silence`.
pub(crate) const DEFAULT_MAX_SILENCE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Collects silences across files.
pub(crate) struct SilenceReader {
    silences: Vec<Silence>,
    is_ok: bool,
    /// Silences that start at or after the end of another are fine; this is `check`'s clock.
    now: Option<Timestamp>,
    max_silence: Option<Duration>,
}

impl Default for SilenceReader {
    /// A reader that warns about nothing (no clock).
    fn default() -> SilenceReader {
        SilenceReader {
            silences: Vec::new(),
            is_ok: true,
            now: None,
            max_silence: None,
        }
    }
}

impl SilenceReader {
    /// A reader warning about silences expired before `now` or longer than `max_silence`.
    pub(crate) fn new(now: Timestamp, max_silence: Duration) -> SilenceReader {
        SilenceReader {
            silences: Vec::new(),
            is_ok: true,
            now: Some(now),
            max_silence: Some(max_silence),
        }
    }

    /// Reads a `silences:` list of the current file (`file` names their default ids).
    pub(crate) fn read(&mut self, ctx: &mut Ctx<'_>, node: &Node, file: &str) {
        let Some(items) = ctx.list(node, "silences") else {
            self.is_ok = false;
            return;
        };
        for (index, item) in items.iter().enumerate() {
            match self.silence(ctx, item, index, file) {
                Some(silence) => self.silences.push(silence),
                None => self.is_ok = false,
            }
        }
    }

    /// The silences, or `None` when one had a problem.
    pub(crate) fn finish(self) -> Option<Vec<Silence>> {
        self.is_ok.then_some(self.silences)
    }

    fn silence(
        &mut self,
        ctx: &mut Ctx<'_>,
        node: &Node,
        index: usize,
        file: &str,
    ) -> Option<Silence> {
        let what = format!("silences[{index}]");
        let map = ctx.map(node, &what, SILENCE_KEYS)?;
        let id = match map.get("id") {
            Some(n) => ctx.non_empty_string(n, &format!("{what}.id")),
            None => Some(format!("{file}#{}", index + 1)),
        };
        let matchers = match ctx.required(&map, "matchers", &format!("`{what}`")) {
            Some(n) => matchers(ctx, n, &format!("{what}.matchers")),
            None => None,
        };
        let starts = match map.get("starts") {
            Some(n) => time(ctx, n, &format!("{what}.starts")),
            None => Some(Timestamp::MIN),
        };
        let expires_node = ctx.required(
            &map,
            "expires",
            &format!("`{what}` (a silence without an end is an error)"),
        );
        let expires = expires_node.and_then(|n| time(ctx, n, &format!("{what}.expires")));
        let text = |ctx: &mut Ctx<'_>, key: &str| match map.get(key) {
            Some(n) => ctx.string(n, &format!("{what}.{key}")).map(Some),
            None => Some(None),
        };
        let author = text(ctx, "author");
        let comment = text(ctx, "comment");
        let (starts, expires) = (starts?, expires?);
        if expires <= starts {
            ctx.error(
                expires_node.map_or(map.pos, |n| n.pos),
                format!("`{what}.expires` is not after its `starts`"),
                None,
            );
            return None;
        }
        let id = id?;
        self.warn(
            ctx,
            expires_node.map_or(map.pos, |n| n.pos),
            &id,
            starts,
            expires,
        );
        Some(Silence {
            id,
            matchers: matchers?,
            starts,
            expires,
            author: author?,
            comment: comment?,
        })
    }

    fn warn(
        &self,
        ctx: &mut Ctx<'_>,
        pos: super::yaml::Pos,
        id: &str,
        starts: Timestamp,
        expires: Timestamp,
    ) {
        if let Some(now) = self.now
            && expires <= now
        {
            ctx.warn(
                pos,
                format!("silence `{id}` expired at {expires}"),
                Some("remove it".into()),
            );
        }
        if let Some(max) = self.max_silence {
            let from = self.now.map_or(starts, |now| starts.max(now));
            let length = expires.duration_since(from);
            if jiff::SignedDuration::try_from(max).is_ok_and(|max| length > max) {
                ctx.warn(
                    pos,
                    format!(
                        "silence `{id}` lasts longer than `max_silence` ({})",
                        crate::config::format_duration(max)
                    ),
                    Some("a silence is for a known, bounded event; raise `max_silence` if this one is meant".into()),
                );
            }
        }
    }
}

/// A mapping of labels to values (`~regex`), or a list of `label=value` strings.
pub(crate) fn matchers(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<Matcher>> {
    let entries = match &node.kind {
        Kind::Map(entries) => entries,
        other => {
            ctx.error(
                node.pos,
                format!(
                    "`{what}` must be a mapping of labels to values, found {}",
                    other.describe()
                ),
                Some("write `{rule: db-timeout, peer: 10.0.0.5}`; `peer: \"~10\\\\..*\"` for a regex".into()),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut is_ok = true;
    for (key, value) in entries {
        let (Some(label), Some(text)) = (
            ctx.string(key, &format!("{what} key")),
            ctx.string(value, &format!("{what} value")),
        ) else {
            is_ok = false;
            continue;
        };
        match Matcher::new(&label, &text) {
            Ok(matcher) => out.push(matcher),
            Err(err) => {
                ctx.error(value.pos, err.to_string(), None);
                is_ok = false;
            }
        }
    }
    is_ok.then_some(out)
}

/// An RFC 3339 time with an offset (`2026-12-01T22:00:00+08:00`).
fn time(ctx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Timestamp> {
    let text = ctx.string(node, what)?;
    match text.trim().parse::<Timestamp>() {
        Ok(at) => Some(at),
        Err(_) => {
            ctx.error(
                node.pos,
                format!("`{what}` is not a time with an offset: `{text}`"),
                Some("write `2026-12-01T22:00:00+08:00` (or `Z` for UTC)".into()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_yaml as load;

    const RULES: &str =
        "rules:\n  - {name: db, pattern: 'timeout (?P<peer>\\S+)', group_by: [peer]}\n";

    #[test]
    fn silences_load_and_a_missing_expires_is_an_error_with_its_position() {
        let text = format!(
            "silences:
  - matchers: {{rule: db, peer: '~10\\.0\\..*'}}
    starts: 2026-12-01T22:00:00+08:00
    expires: 2099-12-02T02:00:00+08:00
    comment: failover drill
{RULES}"
        );
        let config = load(&text).unwrap();
        let silence = &config.suppression.silences[0];
        assert_eq!(silence.id, "logding.yaml#1");
        let group = vec![("peer".to_owned(), "10.0.0.5".to_owned())];
        assert!(silence.silences("db", &group, "2026-12-01T15:00:00Z".parse().unwrap()));
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.message.contains("longer than `max_silence`")),
            "{:?}",
            config.warnings
        );

        let text = format!("silences:\n  - matchers: {{rule: db}}\n    comment: forever\n{RULES}");
        let err = load(&text).unwrap_err();
        assert!(err.contains("logding.yaml:2:5"), "{err}");
        assert!(err.contains("missing the required key `expires`"), "{err}");
        let text = format!("silences:\n  - matchers: {{rule: db}}\n    expires: tomorrow\n{RULES}");
        let err = load(&text).unwrap_err();
        assert!(err.contains("logding.yaml:3:14"), "{err}");
        assert!(err.contains("not a time with an offset"), "{err}");
    }

    #[test]
    fn expired_silences_are_warned_about() {
        let text = format!(
            "max_silence: 1d\nsilences:\n  - {{id: old, matchers: {{rule: db}}, expires: 2020-01-01T00:00:00Z}}\n{RULES}"
        );
        let config = load(&text).unwrap();
        let messages: Vec<&str> = config.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.contains("silence `old` expired")),
            "{messages:?}"
        );
    }
}
