//! logding tails application logs, matches every line against regex rules kept in YAML, and
//! posts one summary per time window to a DingTalk group robot.
//!
//! Codemap, in data-flow order (see ARCHITECTURE.md for the invariants):
//!
//! - [`config`]: YAML (+ included rule files) validated into a typed [`config::Config`].
//! - [`rules`]: compiled rules (bytes regexes, severity, thresholds, `group_by`). Pure.
//! - [`discover`]: the one glob walker (sources, `include:`, rotated siblings).
//! - [`tail`]: follows files across rotation, truncation and restarts; hands out complete lines
//!   with exact offsets.
//! - [`checkpoint`]: per-file identity and committed offset, written atomically.
//! - [`scan`]: runs the rules over a chunk of lines and returns hits. Pure, hot path.
//! - [`window`]: hits to one [`summary::Summary`] per window. Pure; time is passed in.
//! - [`event_time`]: the time a hit's line says it happened (`timestamp:` presets). Pure.
//! - [`incident`]: closed windows to incidents (new, ongoing, repeat, resolved): what a window
//!   says. Pure; its state is persisted by the agent.
//! - [`absence`]: absence rules and stalled sources: incidents of what is *not* there. Pure;
//!   evaluated by the incident stage.
//! - [`summary`]: the summary type shared by window, render, outbox and JSON output.
//! - [`render`]: summary to DingTalk payload; escapes untrusted log text; byte budget. Pure.
//! - [`notification`]: Alertmanager's webhook payload, which `relay` queues and `render` renders.
//! - [`outbox`]: durable queue of summaries awaiting delivery.
//! - [`state`]: atomic, durable writes of state files (tmp → fsync → rename → fsync dir).
//! - [`sink`]: the DingTalk client: signing, rate budget, answer classification, retry.
//! - [`agent`]: wires `logding run`: tail → scan → window → outbox → deliver, shutdown, reload.
//! - [`ruletest`]: `logding test`: rule test files run on a virtual clock through scan, window
//!   and render.
//! - [`metrics`]: the one metrics registry, `/metrics`, `/healthz` and `/readyz`.
//! - [`cmd`], [`cli`], [`logging`]: the command line.

pub mod absence;
pub mod agent;
pub mod checkpoint;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod discover;
pub mod event_time;
pub mod incident;
pub mod logging;
pub mod metrics;
pub mod notification;
pub mod outbox;
pub mod relay;
pub mod render;
pub mod rules;
pub mod ruletest;
pub mod scan;
pub mod sink;
pub mod state;
pub mod summary;
pub mod suppress;
pub mod tail;
pub mod window;
