//! Counts as a reader on a phone takes them in at a glance: `5,830`, not `5830`. Shared by every
//! renderer (window summaries, incidents, Alertmanager groups) so that one message never shows
//! the same figure in two styles.

/// `n` with a comma between groups of three digits: `5,830`, `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
