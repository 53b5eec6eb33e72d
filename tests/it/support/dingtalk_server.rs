//! [`MockDingTalk`]: a local DingTalk-like custom robot on `127.0.0.1:0`, for tests of the sink
//! and of the whole agent.
//!
//! It behaves like the real webhook as `sink::dingtalk::classify_code` describes it: it answers HTTP 200
//! with DingTalk's error codes, checks the access token, the signature (when a secret is set:
//! timestamp within an hour, `sign` percent-decoded exactly once), the size (over 20,000 bytes
//! is `460101`) and the keyword (`310000`), and throttles past 20 messages in a rolling minute
//! (`660026`). Time is tokio's, so paused-time tests drive the throttle window.
//!
//! Faults are injected with [`MockDingTalk::set_mode`]: HTTP 500, HTML bodies, hangs,
//! connection resets, a fixed DingTalk answer, or no listener at all (connection refused).
//! Every answer carries `Connection: close`, so no pooled connection outlives a mode change.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The access token every mock webhook carries: made up, and greppable in captured output.
pub(crate) const TOKEN: &str = "made-up-token-1234";

/// How the mock is set up.
#[derive(Clone, Debug)]
pub(crate) struct MockOptions {
    /// The robot's keywords (a message must contain one); empty: no keyword check.
    pub(crate) keywords: Vec<String>,
    /// The signing secret; `None`: no signature check.
    pub(crate) secret: Option<String>,
    /// Messages accepted per rolling minute before answering `660026`.
    pub(crate) max_per_minute: usize,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            keywords: vec!["alert".into()],
            secret: Some("SECmade-up-secret-5678".into()),
            max_per_minute: 20,
        }
    }
}

/// What the mock does with the next requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Behave like DingTalk.
    Normal,
    /// HTTP 500.
    Http500,
    /// HTTP 200 with an HTML page.
    Html,
    /// Never answer.
    Hang,
    /// Accept the connection and reset it at once.
    Reset,
    /// Close the listening socket: connection refused.
    Down,
    /// HTTP 200 with a success answer padded past 1 MiB (a broken proxy).
    Oversized,
    /// HTTP 200 with this DingTalk answer.
    Answer {
        /// `errcode`.
        errcode: i64,
        /// `errmsg`.
        errmsg: String,
    },
}

/// One request that reached the handler.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    /// When it arrived (tokio time).
    pub(crate) at: Instant,
    /// The body, as sent.
    pub(crate) body: String,
    /// The query string, as sent.
    pub(crate) query: String,
    /// The `errcode` answered (`-500` for HTTP 500, `-2` for HTML, `-3` for a hang, `-4` for
    /// an oversized answer).
    pub(crate) errcode: i64,
}

impl Request {
    /// Returns true if and only if the mock accepted it (`errcode 0`).
    pub(crate) fn is_accepted(&self) -> bool {
        self.errcode == 0
    }

    /// The message text: `markdown.title` + `markdown.text`, or `text.content`.
    pub(crate) fn text(&self) -> String {
        message_text(&self.body)
    }

    /// The message id on the text's last line (`#a3f9`), if any.
    pub(crate) fn message_id(&self) -> Option<String> {
        let text = self.text();
        let last = text.lines().last()?.trim();
        let id = last.rsplit(' ').next()?.strip_prefix('#')?;
        (id.len() >= 4 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| id.to_owned())
    }
}

struct Shared {
    options: MockOptions,
    mode: Mode,
    /// How long a new connection waits before its request is read (network latency).
    delay: Duration,
    requests: Vec<Request>,
    connections: usize,
}

/// A running mock robot.
pub(crate) struct MockDingTalk {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl MockDingTalk {
    /// Starts a mock on `127.0.0.1:0`.
    pub(crate) async fn start(options: MockOptions) -> MockDingTalk {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound");
        let shared = Arc::new(Mutex::new(Shared {
            options,
            mode: Mode::Normal,
            delay: Duration::ZERO,
            requests: Vec::new(),
            connections: 0,
        }));
        let server = serve(listener, shared.clone());
        MockDingTalk {
            addr,
            shared,
            server: Mutex::new(Some(server)),
        }
    }

    /// The webhook URL (with the made-up [`TOKEN`]).
    pub(crate) fn url(&self) -> String {
        format!("http://{}/robot/send?access_token={TOKEN}", self.addr)
    }

    /// The signing secret the mock checks, if any.
    pub(crate) fn secret(&self) -> Option<String> {
        self.lock().options.secret.clone()
    }

    /// Every request that reached the handler, in arrival order.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The requests the mock accepted (`errcode 0`).
    pub(crate) fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::is_accepted)
            .collect()
    }

    /// TCP connections accepted (including reset ones).
    pub(crate) fn connections(&self) -> usize {
        self.lock().connections
    }

    /// Replaces the robot's keywords.
    pub(crate) fn set_keywords(&self, keywords: &[&str]) {
        self.lock().options.keywords = keywords.iter().map(|k| (*k).to_owned()).collect();
    }

    /// Delays every new connection by `delay` before its request is read, so requests arrive
    /// that long after they were sent (latency the client cannot see).
    pub(crate) fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Switches the fault mode. Leaving [`Mode::Down`] listens again on the same port.
    pub(crate) fn set_mode(&self, mode: Mode) {
        let previous = std::mem::replace(&mut self.lock().mode, mode.clone());
        let mut server = self.server.lock().expect("not poisoned");
        if mode == Mode::Down {
            if let Some(task) = server.take() {
                task.abort();
            }
        } else if previous == Mode::Down || server.is_none() {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            socket.bind(self.addr).expect("bind the mock's port again");
            let listener = socket.listen(128).expect("listen");
            *server = Some(serve(listener, self.shared.clone()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("not poisoned")
    }
}

impl Drop for MockDingTalk {
    fn drop(&mut self) {
        if let Some(task) = self.server.lock().expect("not poisoned").take() {
            task.abort();
        }
    }
}

fn serve(listener: TcpListener, shared: Arc<Mutex<Shared>>) -> JoinHandle<()> {
    let app = axum::Router::new()
        .route("/robot/send", axum::routing::post(robot_send))
        .with_state(shared.clone());
    let listener = MockListener {
        inner: listener,
        shared,
    };
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the mock serves until aborted");
    })
}

/// Counts connections and resets them in [`Mode::Reset`].
struct MockListener {
    inner: TcpListener,
    shared: Arc<Mutex<Shared>>,
}

impl axum::serve::Listener for MockListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Ok((stream, addr)) = self.inner.accept().await else {
                continue;
            };
            let (reset, delay) = {
                let mut shared = self.shared.lock().expect("not poisoned");
                shared.connections += 1;
                (shared.mode == Mode::Reset, shared.delay)
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if reset {
                stream.set_zero_linger().expect("SO_LINGER");
                drop(stream);
                continue;
            }
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

async fn robot_send(
    State(shared): State<Arc<Mutex<Shared>>>,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let query = query.unwrap_or_default();
    let (mode, errcode, errmsg) = {
        let mut shared = shared.lock().expect("not poisoned");
        let mode = shared.mode.clone();
        let (errcode, errmsg) = match &mode {
            Mode::Http500 => (-500, String::new()),
            Mode::Html => (-2, String::new()),
            Mode::Hang => (-3, String::new()),
            Mode::Oversized => (-4, String::new()),
            Mode::Answer { errcode, errmsg } => (*errcode, errmsg.clone()),
            Mode::Normal | Mode::Reset | Mode::Down => judge(&mut shared, &query, &body),
        };
        shared.requests.push(Request {
            at: Instant::now(),
            body,
            query,
            errcode,
        });
        (mode, errcode, errmsg)
    };
    let close = [(header::CONNECTION, "close")];
    match mode {
        Mode::Http500 => {
            (StatusCode::INTERNAL_SERVER_ERROR, close, "internal error").into_response()
        }
        Mode::Html => (
            StatusCode::OK,
            [
                (header::CONNECTION, "close"),
                (header::CONTENT_TYPE, "text/html"),
            ],
            "<html><body>502 Bad Gateway</body></html>",
        )
            .into_response(),
        Mode::Hang => {
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
        Mode::Oversized => (
            StatusCode::OK,
            close,
            axum::Json(
                serde_json::json!({"errcode": 0, "errmsg": "ok", "pad": "x".repeat(1 << 20)}),
            ),
        )
            .into_response(),
        _ => (
            StatusCode::OK,
            close,
            axum::Json(serde_json::json!({"errcode": errcode, "errmsg": errmsg})),
        )
            .into_response(),
    }
}

/// DingTalk's checks, in its order: token, signature, size, keyword, rate.
fn judge(shared: &mut Shared, query: &str, body: &str) -> (i64, String) {
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    if param("access_token") != Some(TOKEN) {
        return (300_001, "token is not exist".into());
    }
    if let Some(secret) = &shared.options.secret
        && let Err(reason) = check_signature(secret, param("timestamp"), param("sign"))
    {
        return (310_000, reason);
    }
    if body.len() > 20_000 {
        return (460_101, "message too long, exceed 20000 bytes".into());
    }
    let text = message_text(body);
    let keywords = &shared.options.keywords;
    if !keywords.is_empty() && !keywords.iter().any(|k| text.contains(k.as_str())) {
        return (310_000, "keywords not in content".into());
    }
    let now = Instant::now();
    let recent = shared
        .requests
        .iter()
        .filter(|r| r.is_accepted() && now.duration_since(r.at) < Duration::from_secs(60))
        .count();
    if recent >= shared.options.max_per_minute {
        return (660_026, "sending too many messages per minute".into());
    }
    (0, "ok".into())
}

fn check_signature(
    secret: &str,
    timestamp: Option<&str>,
    sign: Option<&str>,
) -> Result<(), String> {
    let (Some(timestamp), Some(sign)) = (timestamp, sign) else {
        return Err("sign not match".into());
    };
    let Ok(timestamp_ms) = timestamp.parse::<u64>() else {
        return Err("invalid timestamp".into());
    };
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits");
    if now_ms.abs_diff(timestamp_ms) > 3_600_000 {
        return Err("invalid timestamp".into());
    }
    let decoded = percent_encoding::percent_decode_str(sign).decode_utf8_lossy();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if decoded == expected {
        Ok(())
    } else {
        Err("sign not match".into())
    }
}

fn message_text(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return String::new();
    };
    let field = |pointer: &str| {
        json.pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    [
        field("/markdown/title"),
        field("/markdown/text"),
        field("/text/content"),
    ]
    .join("\n")
}

impl MockDingTalk {
    /// A `dingtalk:` config pointing at this mock: its URL and secret, keyword `alert`, a
    /// budget of 18 per minute, a 10-minute throttle pause.
    pub(crate) fn dingtalk_config(&self) -> logding::config::DingTalk {
        logding::config::DingTalk {
            webhook: Some(logding::config::Secret::new(self.url())),
            secret: self.secret().map(logding::config::Secret::new),
            max_body_bytes: 18_000,
            timeout: Duration::from_secs(10),
            ..logding::config::DingTalk::default()
        }
    }
}

/// Render options matching [`MockDingTalk::dingtalk_config`].
pub(crate) fn render_options(
    dingtalk: &logding::config::DingTalk,
) -> logding::render::RenderOptions {
    logding::render::RenderOptions {
        keyword: dingtalk.keyword.clone(),
        msgtype: dingtalk.msgtype,
        mention: dingtalk.mention.clone(),
        max_body_bytes: dingtalk.max_body_bytes,
        timezone: jiff::tz::TimeZone::UTC,
        window: Duration::from_secs(60),
    }
}
