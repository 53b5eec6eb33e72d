#!/usr/bin/env bash
# Every performance figure of logding in one table, next to ripgrep, grep, mtail and
# `tail -F | grep`: scan, run's first-run backlog, following a busy log, idle (bench/bench.py).
#
# Usage: bench/run.sh [SIZE_MB] [--only scan,backlog,follow,idle]     (default 200 MiB, all)
# Env:   see bench/bench.py (RUNS, PEER_TIMEOUT, RATE, FOLLOW_S, IDLE_S, FILES, LOGDING, ...).
# Needs python3, ripgrep, GNU time and taskset; mtail is used when installed.
set -euo pipefail
size_mb=200
if [ $# -gt 0 ] && [[ $1 != -* ]]; then size_mb=$1; shift; fi
exec python3 "$(dirname "$0")/bench.py" --size-mb "$size_mb" "$@"
