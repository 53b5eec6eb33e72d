//! The relay's HTTP side: `POST /robots/<name>` takes an Alertmanager webhook call.
//!
//! Answers, so that Alertmanager's retries and the relay's outbox together lose nothing:
//! - 200 once the notification is durable in the robot's outbox (or printed, `--dry-run`);
//! - 400 for a body that is not a version-4 payload, 401 without the bearer token (when one
//!   is configured), 404 for an unknown robot, 413 over `max_request_bytes`: Alertmanager
//!   logs these and does not retry, and they are the sender's to fix;
//! - 503 when the outbox cannot be written: Alertmanager retries.
//!
//! `GET /-/healthy` and `GET /-/ready` answer 200 for probes; `GET /metrics` is the registry
//! ([`crate::metrics`]), every answer to a webhook call counted there by its result.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use super::webhook::{Notification, Notifications};
use super::{Routes, Target};
use crate::render::render_alerts_text;

/// Serves until `shutdown`, then finishes the requests in flight.
pub(super) async fn serve(
    listener: TcpListener,
    routes: Arc<RwLock<Routes>>,
    max_request_bytes: usize,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/robots/{name}", post(receive))
        .route_layer(axum::middleware::map_response(count))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(ok))
        .route("/-/ready", get(ok))
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .with_state(routes);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "relay listening");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn ok() -> &'static str {
    "ok\n"
}

/// Counts a webhook call by how it was answered (refusals by the body limit included).
async fn count(response: Response) -> Response {
    crate::metrics::get().relay_request(response.status().as_u16());
    response
}

async fn metrics(headers: HeaderMap) -> Response {
    let accepts_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("openmetrics")));
    let (content_type, body) = crate::metrics::exposition(accepts_openmetrics);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn receive(
    State(routes): State<Arc<RwLock<Routes>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let routes = routes.read().await;
    if let Some(token) = &routes.token
        && !authorized(&headers, token.expose())
    {
        tracing::warn!(robot = %name, "refused a call without the right bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token\n",
        )
            .into_response();
    }
    let Some(target) = routes.robots.get(&name) else {
        let known: Vec<&str> = routes.robots.keys().map(String::as_str).collect();
        return answer(
            StatusCode::NOT_FOUND,
            format!("unknown robot `{name}`; configured: {}", known.join(", ")),
        );
    };
    let notification = match Notification::parse(&body) {
        Ok(notification) => notification,
        Err(err) => {
            tracing::warn!(robot = %name, error = %err, "refused an invalid notification");
            return answer(StatusCode::BAD_REQUEST, err.to_string());
        }
    };
    crate::metrics::get().relay_alerts(&name, notification.total_alerts());
    tracing::debug!(
        robot = %name,
        group = %notification.group_key,
        alerts = notification.total_alerts(),
        "notification received"
    );
    let claim = {
        let mut dedupe = routes.dedupe.lock().expect("dedupe lock is never poisoned");
        dedupe.claim(&name, &notification, tokio::time::Instant::now())
    };
    let Some(claim) = claim else {
        tracing::debug!(robot = %name, group = %notification.group_key, "copy from the other instance: not posted again");
        return answer(StatusCode::OK, "duplicate: already queued".into());
    };
    let batch = Notifications::of(notification);
    match target {
        Target::Print(options) => {
            print(&render_alerts_text(&batch, options));
            answer(StatusCode::OK, "printed".into())
        }
        Target::Deliver(handle) => match handle.enqueue(batch).await {
            Ok(()) => answer(StatusCode::OK, "queued".into()),
            Err(err) => {
                routes
                    .dedupe
                    .lock()
                    .expect("dedupe lock is never poisoned")
                    .release(claim);
                tracing::error!(
                    robot = %name,
                    error = %crate::logging::error_chain(&err),
                    "failed to persist a notification: answering 503, Alertmanager will retry"
                );
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "failed to persist the notification".into(),
                )
            }
        },
    }
}

fn answer(status: StatusCode, text: String) -> Response {
    (status, format!("{text}\n")).into_response()
}

/// Returns true if and only if the request carries `Authorization: Bearer <token>`. The
/// comparison takes the same time wherever the first difference is.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (given, token) = (given.trim().as_bytes(), token.as_bytes());
    given.len() == token.len()
        && given
            .iter()
            .zip(token)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[allow(clippy::print_stdout)]
fn print(text: &str) {
    println!("{text}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            headers
        };
        assert!(authorized(&with("Bearer made-up"), "made-up"));
        assert!(!authorized(&with("Bearer made-uq"), "made-up"));
        assert!(!authorized(&with("Bearer made"), "made-up"));
        assert!(!authorized(&with("Basic made-up"), "made-up"));
        assert!(!authorized(&HeaderMap::new(), "made-up"));
    }
}
