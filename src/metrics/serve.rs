//! The listener of `metrics.listen`: a deliberately small HTTP/1.1 responder (GET only, one
//! request per connection, bounded request size and time) for `/metrics`, `/healthz` and
//! `/readyz`. Scrapers and probes need nothing more, and it keeps an HTTP server framework out
//! of the agent. (The relay serves [`exposition`] on its own axum listener.)

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::get;

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer(stream));
                }
                Err(err) => tracing::warn!(error = %err, "metrics listener: accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = shutdown.cancelled() => break,
        }
    }
    connections.abort_all();
}

/// Binds the metrics listener.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// The registry as a scrape answer: its content type and body. OpenMetrics when the scraper
/// asks for it (`Accept: application/openmetrics-text`), else the classic text format.
pub fn exposition(accepts_openmetrics: bool) -> (&'static str, String) {
    if accepts_openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            get().encode(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            classic_text(&get().encode()),
        )
    }
}

/// Requests larger than this are refused: a scrape is one short line.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// A client that does not send its request within this is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

async fn answer(mut stream: TcpStream) {
    let mut buf = vec![0_u8; MAX_REQUEST_BYTES];
    let mut len = 0;
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        while len < buf.len() {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(());
            }
        }
        None
    })
    .await;
    let (status, content_type, body) = match read {
        Ok(Some(())) => respond(&buf[..len]),
        _ => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // A client gone mid-answer is its own problem: nothing to report or retry.
    let mut response = head.into_bytes();
    response.extend_from_slice(body.as_bytes());
    if stream.write_all(&response).await.is_ok() {
        drop(stream.shutdown().await);
    }
}

/// Status, content type and body for a request.
fn respond(request: &[u8]) -> (&'static str, &'static str, String) {
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", "text/plain", "GET only\n".into());
    }
    let path = target.split('?').next().unwrap_or(target);
    let accepts_openmetrics = String::from_utf8_lossy(request)
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("accept:") && l.contains("openmetrics"));
    match path {
        "/metrics" => {
            let (content_type, body) = exposition(accepts_openmetrics);
            ("200 OK", content_type, body)
        }
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        "/readyz" => match get().not_ready() {
            None => ("200 OK", "text/plain", "ready\n".into()),
            Some(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// OpenMetrics text as the classic Prometheus text format (what `promtool check metrics` and
/// scrapers that do not ask for OpenMetrics read): a counter's `# HELP`/`# TYPE` name its
/// samples' `_total` name, and there is no `# EOF`.
fn classic_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().filter(|l| *l != "# EOF").collect();
    let mut out = String::with_capacity(openmetrics.len());
    for (i, line) in lines.iter().enumerate() {
        let is_counter = |name: &str| {
            let type_line = format!("# TYPE {name} counter");
            lines[i..].iter().take(2).any(|l| *l == type_line)
        };
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            is_counter(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples_and_drops_eof() {
        let openmetrics = "# HELP logding_posts Posts.\n# TYPE logding_posts counter\nlogding_posts_total{result=\"ok\"} 1\n# HELP logding_files_open Open.\n# TYPE logding_files_open gauge\nlogding_files_open 2\n# EOF\n";
        assert_eq!(
            classic_text(openmetrics),
            "# HELP logding_posts_total Posts.\n# TYPE logding_posts_total counter\nlogding_posts_total{result=\"ok\"} 1\n# HELP logding_files_open Open.\n# TYPE logding_files_open gauge\nlogding_files_open 2\n"
        );
    }

    #[test]
    fn requests_other_than_a_get_of_a_known_path_are_refused() {
        let status = |request: &str| respond(request.as_bytes()).0;
        assert_eq!(status("GET /healthz HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(status("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(
            status("POST /metrics HTTP/1.1\r\n\r\n"),
            "405 Method Not Allowed"
        );
        assert_eq!(
            status("GET /../etc/passwd HTTP/1.1\r\n\r\n"),
            "404 Not Found"
        );
        let (_, content_type, body) =
            respond(b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n");
        assert!(content_type.starts_with("application/openmetrics-text"));
        assert!(body.ends_with("# EOF\n"));
    }
}
