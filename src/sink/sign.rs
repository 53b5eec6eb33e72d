//! Signing of webhook URLs (DingTalk "加签"), kept apart so its one subtle rule (percent-encode
//! the base64 exactly once) has a unit test against the reference vector.
//!
//! `sign = base64(HMAC-SHA256(key = secret, message = timestamp + "\n" + secret))`, with the
//! timestamp in milliseconds. A fresh signature is computed for every request, because DingTalk
//! rejects timestamps more than an hour off.

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a query value: RFC 3986 unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The base64 signature of `timestamp_ms` with `secret` (not yet percent-encoded).
pub(crate) fn signature(timestamp_ms: u64, secret: &str) -> String {
    let string_to_sign = format!("{timestamp_ms}\n{secret}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The webhook URL with `timestamp` and `sign` appended, the signature percent-encoded once.
///
/// The webhook is treated as opaque: only `&` or `?` is added, never a rebuilt URL.
pub(crate) fn signed_url(webhook: &str, timestamp_ms: u64, secret: &str) -> String {
    let sign = signature(timestamp_ms, secret);
    let separator = if webhook.contains('?') { '&' } else { '?' };
    format!(
        "{webhook}{separator}timestamp={timestamp_ms}&sign={}",
        utf8_percent_encode(&sign, QUERY_VALUE)
    )
}

/// Milliseconds since the Unix epoch, from the wall clock (DingTalk compares with its own).
pub(crate) fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_vector() {
        assert_eq!(
            signature(1_700_000_000_000, "secret"),
            "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
        );
    }

    #[test]
    fn encodes_the_signature_exactly_once() {
        let url = signed_url(
            "http://127.0.0.1:1/robot/send?access_token=made-up-token-1234",
            1_700_000_000_000,
            "secret",
        );
        assert_eq!(
            url,
            "http://127.0.0.1:1/robot/send?access_token=made-up-token-1234\
             &timestamp=1700000000000&sign=OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
        );
    }

    #[test]
    fn starts_the_query_when_the_webhook_has_none() {
        let url = signed_url("http://127.0.0.1:1/send", 1, "s");
        assert!(
            url.starts_with("http://127.0.0.1:1/send?timestamp=1&sign="),
            "{url}"
        );
    }

    #[test]
    fn timestamps_are_milliseconds() {
        // Seconds would be about 1.7e9 today; milliseconds about 1.7e12.
        assert!(now_ms() > 1_000_000_000_000);
    }
}
