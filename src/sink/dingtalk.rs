//! The DingTalk client: one signed POST per call, and the classification of every answer.
//!
//! DingTalk answers most failures with HTTP 200 and a non-zero `errcode`, so an answer is only a
//! success when its body says `errcode: 0`; everything else is sorted into an [`Answer`] that
//! tells the delivery task what to do (retry, pause, re-sign, re-render, wait for the operator,
//! or drop). The table is [`classify_code`]: each `errcode` with the reason for its class.
//!
//! The webhook URL is a credential. It stays inside [`Client`]: errors from `reqwest` have their
//! URL stripped, and every text that could echo it (errors, DingTalk's own `errmsg`) goes through
//! [`Redactor`] before it is logged or returned.

use std::fmt;
use std::time::Duration;

use crate::config;
use crate::metrics::PostResult;
use crate::sink::{Error, sign};

/// What one POST came back with, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `errcode: 0`: delivered.
    Ok,
    /// A transport error, timeout, HTTP 5xx, a body that is not DingTalk's JSON, or `-1`
    /// (busy): retry with backoff. A timeout does not prove non-delivery.
    Retry {
        /// What happened, without secrets.
        reason: String,
    },
    /// The robot is throttled: stay silent for `dingtalk.throttle_pause`.
    Throttled {
        /// DingTalk's code (or the HTTP status for a 429).
        errcode: i64,
        /// DingTalk's message, redacted.
        errmsg: String,
    },
    /// `310000 invalid timestamp`: re-sign once; if it repeats, the host clock is wrong.
    InvalidTimestamp {
        /// DingTalk's message, redacted.
        errmsg: String,
    },
    /// The body is over DingTalk's size limit: re-render smaller.
    TooLarge {
        /// DingTalk's code.
        errcode: i64,
        /// DingTalk's message, redacted.
        errmsg: String,
    },
    /// The robot or the webhook is misconfigured: an operator must act; the summary is kept.
    Config {
        /// DingTalk's code (or the HTTP status for an unexpected 4xx).
        errcode: i64,
        /// DingTalk's message, redacted.
        errmsg: String,
        /// Which setting is wrong.
        problem: ConfigProblem,
    },
    /// DingTalk refuses this payload for good: it is recorded and dropped.
    Content {
        /// DingTalk's code.
        errcode: i64,
        /// DingTalk's message, redacted.
        errmsg: String,
    },
    /// A code logding does not know: a failure (never a success), retried slowly.
    Unknown {
        /// DingTalk's code.
        errcode: i64,
        /// DingTalk's message, redacted.
        errmsg: String,
    },
}

/// Which robot or webhook setting a configuration error points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigProblem {
    /// The message lacks the robot's keyword.
    Keyword,
    /// The signature does not match (wrong secret, or signing not enabled on the robot).
    Signature,
    /// The host's IP is not in the robot's allowlist.
    Ip,
    /// The host's clock is more than an hour off.
    Clock,
    /// The access token is wrong, or the robot was deleted.
    Token,
    /// The robot is disabled or its group is gone.
    Robot,
    /// The webhook URL answers with an HTTP error: not a DingTalk robot endpoint.
    Endpoint,
    /// Another `310000` security check.
    Other,
    /// An Alertmanager instance refuses the alerts (HTTP 4xx).
    Alertmanager,
}

impl ConfigProblem {
    /// What the operator should do, in one sentence.
    pub fn hint(self, keyword: &str) -> String {
        match self {
            ConfigProblem::Keyword => format!(
                "the robot's keyword is not in the message: logding sends '{keyword}'; set \
                 dingtalk.keyword to one of the robot's keywords"
            ),
            ConfigProblem::Signature => "the signature does not match: set dingtalk.secret to the \
                robot's SEC... secret, or remove it if the robot does not use signing"
                .into(),
            ConfigProblem::Ip => "this host's IP is not in the robot's allowlist: add it in the \
                robot's security settings"
                .into(),
            ConfigProblem::Clock => {
                "DingTalk rejects the timestamp: synchronise this host's clock (NTP)".into()
            }
            ConfigProblem::Token => "the access token is wrong or the robot was deleted: check \
                dingtalk.webhook"
                .into(),
            ConfigProblem::Robot => "the robot is disabled or its group is gone: check the robot \
                in the DingTalk group settings"
                .into(),
            ConfigProblem::Endpoint => "the webhook does not answer like a DingTalk robot: check \
                dingtalk.webhook"
                .into(),
            ConfigProblem::Other => "the robot's security settings reject the message: check \
                them against dingtalk.keyword, dingtalk.secret and this host's IP"
                .into(),
            ConfigProblem::Alertmanager => "Alertmanager refuses the alerts: check that \
                alertmanager.urls names each instance's base URL (logding adds /api/v2/alerts) \
                and what Alertmanager says"
                .into(),
        }
    }

    /// A short name of the cause, in plain words.
    pub fn cause(self) -> &'static str {
        match self {
            ConfigProblem::Keyword => "keyword not in content",
            ConfigProblem::Signature => "signature does not match",
            ConfigProblem::Ip => "IP not in the allowlist",
            ConfigProblem::Clock => "invalid timestamp",
            ConfigProblem::Token => "invalid access token",
            ConfigProblem::Robot => "robot disabled",
            ConfigProblem::Endpoint => "not a DingTalk endpoint",
            ConfigProblem::Other => "security settings",
            ConfigProblem::Alertmanager => "refused by Alertmanager",
        }
    }
}

impl Answer {
    /// Its class in the post metrics; `is_unknown`: no answer came back in time.
    pub fn post_result(&self, is_unknown: bool) -> PostResult {
        match self {
            Answer::Ok => PostResult::Ok,
            Answer::Throttled { .. } => PostResult::Throttled,
            Answer::Config { .. } => PostResult::ConfigError,
            Answer::Retry { .. } if is_unknown => PostResult::Timeout,
            Answer::Retry { .. } => PostResult::Transient,
            Answer::InvalidTimestamp { .. }
            | Answer::TooLarge { .. }
            | Answer::Content { .. }
            | Answer::Unknown { .. } => PostResult::Rejected,
        }
    }

    /// The answer in plain words, as `logding send-test` prints it.
    pub fn describe(&self, keyword: &str) -> String {
        match self {
            Answer::Ok => "ok".into(),
            Answer::Config {
                errcode,
                errmsg,
                problem: ConfigProblem::Keyword,
            } => format!(
                "rejected: keyword not in content — the robot expects one of its keywords; \
                 logding sends '{keyword}' (DingTalk said {errcode} {errmsg:?})"
            ),
            Answer::Config {
                errcode,
                errmsg,
                problem,
            } => format!(
                "rejected: {} — {} (DingTalk said {errcode} {errmsg:?})",
                problem.cause(),
                problem.hint(keyword)
            ),
            Answer::Retry { reason } => {
                format!("not delivered, DingTalk unreachable or busy: {reason}")
            }
            Answer::Throttled { errcode, errmsg } => format!(
                "throttled: the robot received too many messages; DingTalk said {errcode} {errmsg:?}"
            ),
            Answer::InvalidTimestamp { errmsg } => format!(
                "rejected: invalid timestamp — {} (DingTalk said {errmsg:?})",
                ConfigProblem::Clock.hint(keyword)
            ),
            Answer::TooLarge { errcode, errmsg } => {
                format!("rejected: message too long (DingTalk said {errcode} {errmsg:?})")
            }
            Answer::Content { errcode, errmsg } => {
                format!(
                    "rejected: DingTalk refuses the message (DingTalk said {errcode} {errmsg:?})"
                )
            }
            Answer::Unknown { errcode, errmsg } => {
                format!("rejected with an unknown code: DingTalk said {errcode} {errmsg:?}")
            }
        }
    }
}

/// Replaces every secret (the webhook URL, each of its query values, the signing secret) in a
/// text with `<redacted>`.
#[derive(Clone)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor(<redacted>)")
    }
}

impl Redactor {
    fn new(webhook: &str, url: &reqwest::Url, secret: Option<&str>) -> Redactor {
        let mut secrets = vec![webhook.to_owned()];
        for (_, value) in url.query_pairs() {
            secrets.push(value.into_owned());
        }
        if let Some(query) = url.query() {
            secrets.extend(
                query
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .map(|(_, v)| v.to_owned()),
            );
        }
        secrets.extend(secret.map(str::to_owned));
        // Short values (`1`, `true`) would mangle ordinary text and are not credentials.
        secrets.retain(|s| s.len() >= 6);
        // Longest first, so that the whole URL is replaced before its token.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret replaced.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "<redacted>");
            }
        }
        out
    }
}

/// Answers are read up to this size; a larger one is an error (a broken proxy, not DingTalk,
/// whose answers are a few dozen bytes), and the rest is never read into memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Whether a post reached DingTalk, as far as the client can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An HTTP answer came back, with this status: [`Answer`] says what happened.
    Answered {
        /// The HTTP status.
        status: u16,
    },
    /// The connection failed: nothing was sent.
    NotSent,
    /// The request may have been received and shown without an answer coming back (timeout,
    /// connection lost mid-way): a retry may show it twice.
    Unknown,
}

/// A DingTalk robot: the webhook, its signing secret, and an HTTP client.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    webhook: config::Secret,
    secret: Option<config::Secret>,
    redactor: Redactor,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dingtalk::Client(<redacted>)")
    }
}

impl Client {
    /// A client for the configured robot.
    ///
    /// # Errors
    ///
    /// No webhook, a webhook that is not a URL, plain `http://` to a host other than loopback
    /// (unless `allow_insecure_http`), or a TLS setup failure.
    pub(crate) fn new(dingtalk: &config::DingTalk) -> Result<Client, Error> {
        let webhook = dingtalk.webhook.clone().ok_or(Error::NoWebhook)?;
        let config::CheckedWebhook { url, is_loopback } =
            config::check_webhook_url(webhook.expose(), dingtalk.allow_insecure_http).map_err(
                |problem| match problem {
                    config::WebhookProblem::Insecure => Error::InsecureWebhook,
                    config::WebhookProblem::NotUrl(_) | config::WebhookProblem::Scheme(_) => {
                        Error::InvalidWebhook
                    }
                },
            )?;
        // Fails only when a provider is already installed, which is as good.
        drop(rustls::crypto::ring::default_provider().install_default());
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(dingtalk.connect_timeout)
            .timeout(dingtalk.timeout)
            // A redirect would carry the token to wherever it points; DingTalk never redirects.
            .redirect(reqwest::redirect::Policy::none())
            // Do not reuse a connection the server may already have closed.
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("logding/", env!("CARGO_PKG_VERSION")));
        if is_loopback {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|source| Error::Client {
            source: source.without_url(),
        })?;
        let redactor = Redactor::new(
            webhook.expose(),
            &url,
            dingtalk.secret.as_ref().map(config::Secret::expose),
        );
        Ok(Client {
            http,
            webhook,
            secret: dingtalk.secret.clone(),
            redactor,
        })
    }

    /// Posts one JSON body, signed afresh, and classifies the answer.
    pub(crate) async fn post(&self, body: String) -> Answer {
        self.post_reporting(body).await.0
    }

    /// [`Client::post`], also telling whether DingTalk may have shown the message although no
    /// answer says so (a timeout or a connection lost after the request was sent).
    pub(crate) async fn post_reporting(&self, body: String) -> (Answer, Outcome) {
        let url = match &self.secret {
            Some(secret) => {
                sign::signed_url(self.webhook.expose(), sign::now_ms(), secret.expose())
            }
            None => self.webhook.expose().to_owned(),
        };
        let mut response = match send_json(&self.http, url, body).await {
            Ok(response) => response,
            Err((err, outcome)) => {
                let reason = self.describe_error(err);
                return (Answer::Retry { reason }, outcome);
            }
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                    let reason = format!(
                        "HTTP {status} with an answer larger than {} KiB",
                        MAX_ANSWER_BYTES / 1024
                    );
                    return (Answer::Retry { reason }, Outcome::Answered { status });
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(err) => {
                    let reason = self.describe_error(err);
                    return (Answer::Retry { reason }, Outcome::Unknown);
                }
            }
        }
        let text = String::from_utf8_lossy(&body);
        (
            classify(status, &text, &self.redactor),
            Outcome::Answered { status },
        )
    }

    /// A transport error in words: URL stripped, causes chained, secrets redacted.
    fn describe_error(&self, err: reqwest::Error) -> String {
        let err = err.without_url();
        let mut text = if err.is_timeout() {
            "request timed out".to_owned()
        } else if err.is_connect() {
            "failed to connect".to_owned()
        } else {
            err.to_string()
        };
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.redactor.redact(&text)
    }
}

/// POSTs one JSON body. A failure comes with whether the post may have arrived anyway.
pub(crate) async fn send_json<U: reqwest::IntoUrl>(
    http: &reqwest::Client,
    url: U,
    body: String,
) -> Result<reqwest::Response, (reqwest::Error, Outcome)> {
    let request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    request.send().await.map_err(|err| {
        // A refused or failed connection sent nothing; anything later may have.
        let outcome = if err.is_connect() {
            Outcome::NotSent
        } else {
            Outcome::Unknown
        };
        (err, outcome)
    })
}

/// Classifies an HTTP status and body per the reference's table.
pub(crate) fn classify(status: u16, body: &str, redactor: &Redactor) -> Answer {
    if status == 429 {
        return Answer::Throttled {
            errcode: 429,
            errmsg: "HTTP 429".into(),
        };
    }
    if status >= 500 {
        return Answer::Retry {
            reason: format!("HTTP {status}"),
        };
    }
    if !(200..300).contains(&status) {
        return Answer::Config {
            errcode: i64::from(status),
            errmsg: format!("HTTP {status}"),
            problem: ConfigProblem::Endpoint,
        };
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return Answer::Retry {
            reason: format!("HTTP {status} with a body that is not JSON"),
        };
    };
    let Some(errcode) = json.get("errcode").and_then(errcode_of) else {
        return Answer::Retry {
            reason: format!("HTTP {status} with JSON but no errcode"),
        };
    };
    let errmsg = redactor.redact(json.get("errmsg").and_then(|m| m.as_str()).unwrap_or(""));
    classify_code(errcode, errmsg)
}

fn errcode_of(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn classify_code(errcode: i64, errmsg: String) -> Answer {
    let lower = errmsg.to_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if errcode == 0 {
        return Answer::Ok;
    }
    if errcode == -1 {
        return Answer::Retry {
            reason: format!("DingTalk is busy (-1 {errmsg:?})"),
        };
    }
    if matches!(errcode, 130_101 | 410_100 | 660_026)
        || says(&["too fast", "too many", "限流", "太快"])
    {
        return Answer::Throttled { errcode, errmsg };
    }
    let problem = match errcode {
        310_000 if says(&["keyword", "关键词"]) => ConfigProblem::Keyword,
        310_000 if says(&["whitelist", "白名单"]) || lower.starts_with("ip ") => {
            ConfigProblem::Ip
        }
        310_000 if says(&["invalid timestamp", "时间戳"]) => {
            return Answer::InvalidTimestamp { errmsg };
        }
        310_000 if says(&["sign", "签名"]) => ConfigProblem::Signature,
        310_000 => ConfigProblem::Other,
        300_001 | 300_005 | 400_101 => ConfigProblem::Token,
        400_102 | 400_106 | 400_013 => ConfigProblem::Robot,
        460_101 | 101_002 => return Answer::TooLarge { errcode, errmsg },
        400_105 | 40035 | 43002 | 43004 | 430_101..=430_104 => {
            return Answer::Content { errcode, errmsg };
        }
        _ => return Answer::Unknown { errcode, errmsg },
    };
    Answer::Config {
        errcode,
        errmsg,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_results_are_classed_by_answer() {
        let retry = Answer::Retry {
            reason: "timeout".into(),
        };
        assert_eq!(retry.post_result(true), PostResult::Timeout);
        assert_eq!(retry.post_result(false), PostResult::Transient);
        assert_eq!(Answer::Ok.post_result(false), PostResult::Ok);
    }

    fn check(status: u16, body: &str) -> Answer {
        let url =
            reqwest::Url::parse("https://x.invalid/robot/send?access_token=made-up-token-1234")
                .expect("valid");
        classify(
            status,
            body,
            &Redactor::new(url.as_str(), &url, Some("SECmade-up-secret")),
        )
    }

    #[test]
    fn only_errcode_zero_is_success() {
        assert_eq!(check(200, r#"{"errcode":0,"errmsg":"ok"}"#), Answer::Ok);
        assert_eq!(check(200, r#"{"errcode":"0","errmsg":"ok"}"#), Answer::Ok);
        assert!(matches!(
            check(200, r#"{"errcode":12345,"errmsg":"?"}"#),
            Answer::Unknown { errcode: 12345, .. }
        ));
        assert!(matches!(
            check(200, r#"{"errcode":"12345"}"#),
            Answer::Unknown { .. }
        ));
        assert!(matches!(
            check(200, r#"{"errmsg":"ok"}"#),
            Answer::Retry { .. }
        ));
    }

    #[test]
    fn transient_answers_are_retried() {
        assert!(matches!(check(500, "oops"), Answer::Retry { .. }));
        assert!(matches!(
            check(502, r#"{"errcode":0}"#),
            Answer::Retry { .. }
        ));
        assert!(matches!(
            check(200, "<html>busy</html>"),
            Answer::Retry { .. }
        ));
        assert!(matches!(
            check(200, r#"{"errcode":-1,"errmsg":"busy"}"#),
            Answer::Retry { .. }
        ));
    }

    #[test]
    fn throttling_by_code_or_words() {
        for code in [130_101, 410_100, 660_026] {
            let body = format!(r#"{{"errcode":{code},"errmsg":"x"}}"#);
            assert!(
                matches!(check(200, &body), Answer::Throttled { .. }),
                "{code}"
            );
        }
        assert!(matches!(
            check(200, r#"{"errcode":99,"errmsg":"send too fast"}"#),
            Answer::Throttled { .. }
        ));
        assert!(matches!(
            check(200, r#"{"errcode":99,"errmsg":"发送太快"}"#),
            Answer::Throttled { .. }
        ));
        assert!(matches!(check(429, ""), Answer::Throttled { .. }));
    }

    #[test]
    fn security_errors_name_their_cause() {
        let problem =
            |msg: &str| match check(200, &format!(r#"{{"errcode":310000,"errmsg":"{msg}"}}"#)) {
                Answer::Config { problem, .. } => Some(problem),
                _ => None,
            };
        assert_eq!(
            problem("keywords not in content"),
            Some(ConfigProblem::Keyword)
        );
        assert_eq!(problem("sign not match"), Some(ConfigProblem::Signature));
        assert_eq!(
            problem("ip 1.2.3.4 not in whitelist"),
            Some(ConfigProblem::Ip)
        );
        assert_eq!(
            problem("description:关键词不匹配;solution:..."),
            Some(ConfigProblem::Keyword)
        );
        assert_eq!(problem("something else"), Some(ConfigProblem::Other));
        assert!(matches!(
            check(200, r#"{"errcode":310000,"errmsg":"invalid timestamp"}"#),
            Answer::InvalidTimestamp { .. }
        ));
        assert!(matches!(
            check(200, r#"{"errcode":300001,"errmsg":"token is not exist"}"#),
            Answer::Config {
                problem: ConfigProblem::Token,
                ..
            }
        ));
    }

    #[test]
    fn size_and_content_errors() {
        assert!(matches!(
            check(200, r#"{"errcode":460101,"errmsg":"message too long"}"#),
            Answer::TooLarge { .. }
        ));
        assert!(matches!(
            check(200, r#"{"errcode":101002}"#),
            Answer::TooLarge { .. }
        ));
        for code in [400_105, 40035, 43002, 43004, 430_101, 430_104] {
            let body = format!(r#"{{"errcode":{code},"errmsg":"x"}}"#);
            assert!(
                matches!(check(200, &body), Answer::Content { .. }),
                "{code}"
            );
        }
    }

    #[test]
    fn errmsg_echoing_a_secret_is_redacted() {
        let answer = check(
            200,
            r#"{"errcode":300001,"errmsg":"token made-up-token-1234 is not exist"}"#,
        );
        let text = format!("{answer:?} {}", answer.describe("alert"));
        assert!(!text.contains("made-up-token-1234"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn keyword_rejection_in_plain_words() {
        let answer = check(
            200,
            r#"{"errcode":310000,"errmsg":"keywords not in content"}"#,
        );
        let words = answer.describe("alert");
        assert!(
            words.starts_with(
                "rejected: keyword not in content — the robot expects one of its keywords; logding sends 'alert'"
            ),
            "{words}"
        );
    }
}
