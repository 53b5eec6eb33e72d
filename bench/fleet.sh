#!/usr/bin/env bash
# Fleet benchmark (issue 16): 50 hosts' alerts for N incidents (default 10), as 50 agents'
# `alertmanager:` sinks post a new incident (one alert per host and post, all hosts at once),
# to a two-instance Alertmanager cluster (real, clustered on loopback), grouped by alertname
# and sent to `logding relay`, which posts to a local mock robot. Prints messages per incident
# (goal: 1) and each message's title, the relay's CPU time and the latency from
# Alertmanager's notification to the robot's accept, beside prometheus-webhook-dingtalk's
# documented behaviour. Needs prometheus-alertmanager. PROFILE=release for optimized figures.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGDING_FLEET_BENCH="${1:-10}" cargo test --profile "${PROFILE:-dev}" --locked --test it \
  fleet::bench_fifty_hosts_through_the_cluster_and_the_relay -- --nocapture 2>&1 |
  grep -E "^fleet bench|test result"
