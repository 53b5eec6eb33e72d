//! `${VAR}` and `${VAR:-default}` in string values.
//!
//! Secrets (the webhook URL, the signing secret) must not live in a YAML file kept in git, so
//! any string value may name environment variables. The rules are the shell's, reduced to the
//! two forms people use: `${VAR}` (an unset variable is an error naming it) and
//! `${VAR:-default}` (the default when unset or empty). `$${` writes a literal `${`; a `$` not
//! followed by `{` is kept as is, so regexes ending in `$` need no escaping.

/// Why a value cannot be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// `${NAME}` with `NAME` unset.
    Unset(String),
    /// `${` without a valid name and a closing `}`.
    Malformed(String),
}

/// Expands `text`, looking variables up with `env`.
pub(crate) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                return Err(ExpandError::Malformed(truncate(&rest[dollar..])));
            };
            out.push_str(&substitute(&body[..close], env)?);
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if !is_name(name) {
        return Err(ExpandError::Malformed(truncate(&format!("${{{inner}}}"))));
    }
    match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(ExpandError::Unset(name.to_owned())),
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The reference as written, cut short: it goes into an error message.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK" => Some("https://example.invalid/robot?access_token=made-up-token-1234".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[track_caller]
    fn check(text: &str, expected: Result<&str, ExpandError>) {
        assert_eq!(expand(text, &env), expected.map(str::to_owned));
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        check(
            "${HOOK}",
            Ok("https://example.invalid/robot?access_token=made-up-token-1234"),
        );
        check("a-${MISSING:-b}-c", Ok("a-b-c"));
        check("${EMPTY:-fallback}", Ok("fallback"));
        check("${MISSING:-}", Ok(""));
        check("${EMPTY}", Ok(""));
    }

    #[test]
    fn leaves_regexes_alone() {
        check(r"error$", Ok(r"error$"));
        check(r"\$\d+ costs", Ok(r"\$\d+ costs"));
        check("literal $${HOME}", Ok("literal ${HOME}"));
    }

    #[test]
    fn reports_unset_and_malformed_references() {
        check("${NOPE}", Err(ExpandError::Unset("NOPE".into())));
        check("${1X}", Err(ExpandError::Malformed("${1X}".into())));
        check("x ${OPEN", Err(ExpandError::Malformed("${OPEN".into())));
    }
}
