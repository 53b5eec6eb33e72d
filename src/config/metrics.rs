//! The `metrics:` section: where the metrics and health listener binds (off when the section
//! is absent) and when `/readyz` gives up on failing deliveries.

use std::net::SocketAddr;

use super::MetricsOptions;
use super::walk::Ctx;
use super::walk::opt;
use super::yaml::Node;

const METRICS_KEYS: &[&str] = &["listen", "ready_max_failing"];

/// Reads `metrics:`; `Some(None)` when absent (no listener).
pub(crate) fn metrics(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Option<Option<MetricsOptions>> {
    let Some(node) = node else {
        return Some(None);
    };
    let map = ctx.map(node, "metrics", METRICS_KEYS)?;
    let defaults = MetricsOptions::default();
    let listen = opt(ctx, &map, "listen", defaults.listen, |c, n, _| {
        listen_address(c, n)
    });
    let ready_max_failing = opt(
        ctx,
        &map,
        "ready_max_failing",
        defaults.ready_max_failing,
        |c, n, _| c.duration(n, "metrics.ready_max_failing"),
    );
    Some(Some(MetricsOptions {
        listen: listen?,
        ready_max_failing: ready_max_failing?,
    }))
}

fn listen_address(ctx: &mut Ctx<'_>, node: &Node) -> Option<SocketAddr> {
    let text = ctx.string(node, "metrics.listen")?;
    match text.trim().parse() {
        Ok(address) => Some(address),
        Err(_) => {
            ctx.error(
                node.pos,
                format!("`metrics.listen` is not an address and port: `{text}`"),
                Some(
                    "write `127.0.0.1:9687` (this host only) or `0.0.0.0:9687` (every interface)"
                        .into(),
                ),
            );
            None
        }
    }
}
