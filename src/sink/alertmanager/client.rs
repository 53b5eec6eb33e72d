//! The HTTP client of one Alertmanager instance: `POST <url>/api/v2/alerts`, and its answers in
//! the delivery task's terms ([`Answer`]), so that the retry classes are DingTalk's:
//! - 2xx: delivered;
//! - a transport error, a timeout, 5xx or 429: retried with backoff (the instance is down,
//!   starting or overloaded; the other instances are posted to independently);
//! - any other 4xx: a configuration error (a wrong URL or path, a proxy asking for
//!   credentials, labels Alertmanager refuses), logged once and retried slowly, and at once
//!   after a reload.

use std::fmt;

use crate::sink::Error;
use crate::sink::dingtalk::{Answer, ConfigProblem, Outcome, send_json};

/// How much of an answer is read: Alertmanager's errors are one line.
const MAX_ANSWER_BYTES: usize = 4 * 1024;
/// How much of an error answer is logged.
const MAX_ERROR_CHARS: usize = 300;

/// One Alertmanager instance.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// `<base>/api/v2/alerts`.
    endpoint: reqwest::Url,
    /// The endpoint as logs show it (no credentials).
    shown: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "alertmanager::Client({})", self.shown)
    }
}

impl Client {
    /// A client for the instance at `base` (its base URL, a path prefix allowed).
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built.
    pub(crate) fn new(base: &reqwest::Url, timeout: std::time::Duration) -> Result<Client, Error> {
        let endpoint = endpoint(base);
        drop(rustls::crypto::ring::default_provider().install_default());
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(timeout)
            .timeout(timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("logding/", env!("CARGO_PKG_VERSION")));
        if crate::config::check_webhook_url(endpoint.as_str(), true).is_ok_and(|c| c.is_loopback) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|source| Error::Client {
            source: source.without_url(),
        })?;
        let shown = crate::config::shown_url(&endpoint);
        Ok(Client {
            http,
            endpoint,
            shown,
        })
    }

    /// The URL posted to, as logs show it: without credentials.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// Posts a JSON array of alerts and classifies the answer.
    pub(crate) async fn post_reporting(&self, body: String) -> (Answer, Outcome) {
        let sent = send_json(&self.http, self.endpoint.clone(), body).await;
        let mut response = match sent {
            Ok(response) => response,
            Err((err, outcome)) => {
                return (
                    Answer::Retry {
                        reason: describe(err),
                    },
                    outcome,
                );
            }
        };
        let status = response.status().as_u16();
        let mut text = Vec::new();
        while text.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&text);
        (classify(status, &text), Outcome::Answered { status })
    }
}

/// `<base>/api/v2/alerts`, keeping a path prefix (`http://host/am/` → `/am/api/v2/alerts`).
pub(crate) fn endpoint(base: &reqwest::Url) -> reqwest::Url {
    let mut url = base.clone();
    let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url
}

/// An HTTP status and answer in the delivery task's terms.
pub(crate) fn classify(status: u16, text: &str) -> Answer {
    match status {
        200..=299 => Answer::Ok,
        429 | 500.. => Answer::Retry {
            reason: format!("HTTP {status}"),
        },
        _ => Answer::Config {
            errcode: i64::from(status),
            errmsg: text.trim().chars().take(MAX_ERROR_CHARS).collect(),
            problem: ConfigProblem::Alertmanager,
        },
    }
}

/// A transport error in words, without its URL (it may hold credentials).
fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        return "request timed out".to_owned();
    }
    if err.is_connect() {
        return "failed to connect".to_owned();
    }
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_keeps_a_path_prefix() {
        let url = |s: &str| endpoint(&reqwest::Url::parse(s).expect("url")).to_string();
        assert_eq!(url("http://am-1:9093"), "http://am-1:9093/api/v2/alerts");
        assert_eq!(url("http://am-1:9093/"), "http://am-1:9093/api/v2/alerts");
        assert_eq!(
            url("https://proxy/am/?x=1"),
            "https://proxy/am/api/v2/alerts"
        );
    }

    #[test]
    fn answers_fall_into_dingtalks_retry_classes() {
        assert_eq!(classify(200, ""), Answer::Ok);
        for status in [429, 500, 502, 503] {
            assert!(
                matches!(classify(status, ""), Answer::Retry { .. }),
                "{status}"
            );
        }
        for status in [400, 401, 404] {
            assert!(
                matches!(
                    classify(status, "invalid label set"),
                    Answer::Config {
                        problem: ConfigProblem::Alertmanager,
                        ..
                    }
                ),
                "{status}"
            );
        }
    }
}
