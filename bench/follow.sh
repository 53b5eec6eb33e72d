#!/usr/bin/env bash
# Following a busy log: logding run next to `tail -F | grep --line-buffered`, on one stream.
#
# Usage: bench/follow.sh            Env: RATE (lines/s, default 50000), DURATION (s, default 30),
#                                        BATCH_WAIT (tail.batch_wait, default 50ms; `none`: unset),
#                                        BENCH_DIR (default target/bench), LOGDING.
#
# A writer (bench/gen.py --follow-rate) appends RATE lines/s for DURATION s to one file, with a
# `LAGPROBE written_ns=<ns>` line every 10 ms. Both followers run at the same time on it:
# - `logding run --dry-run --output json` with the 20 bench rules plus `lag-probe`, window 250ms;
#   lag = the lag-probe rule's `first` (when the first probe of a window was matched) minus the
#   write time carried by that probe (its sample), one figure per window;
# - `tail -F FILE | grep --line-buffered -E -f rules`, whose output lines are time-stamped as
#   they arrive (by a reader outside the measured processes); lag per probe line.
# Reported: CPU seconds (user+sys), peak RSS, p50/p99/max lag, and the CPU ratio.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
rate=${RATE:-50000}
duration=${DURATION:-30}
work=${BENCH_DIR:-$repo/target/bench}/follow
logding=${LOGDING:-$repo/target/release/logding}
[ -x "$logding" ] || (cd "$repo" && cargo build --release --locked >&2)
# BATCH_WAIT (default 50ms) sets `tail.batch_wait`; BATCH_WAIT=none measures the default
# (files read at once on every notify event).
batch_wait=${BATCH_WAIT:-50ms}
batch_wait_yaml=""
[ "$batch_wait" = none ] || batch_wait_yaml=$'tail:\n  batch_wait: '"$batch_wait"
rm -rf "$work" && mkdir -p "$work"
log=$work/app.log
: > "$log"

cat > "$work/logding.yaml" <<EOF
host: bench
state_dir: $work/state
window: 250ms
include: [$here/rules.yaml]
sources:
  - name: app
    paths: ['$log']
$batch_wait_yaml
rules:
  - name: lag-probe
    pattern: '^LAGPROBE written_ns='
    severity: info
EOF
{ cat "$here/rules.txt"; echo '^LAGPROBE written_ns='; } > "$work/grep-rules.txt"

# logding, under GNU time (its pid is the child of time's pid).
/usr/bin/time -f '%U %S %M' -o "$work/time-logding.txt" \
  "$logding" run --dry-run --output json -c "$work/logding.yaml" > "$work/logding.jsonl" 2> "$work/logding.err" &
time_logding=$!
# tail -F | grep, under GNU time (counts both), its output stamped on arrival by a reader
# outside the measured processes.
mkfifo "$work/grep.fifo"
python3 -u -c '
import sys, time
out = open(sys.argv[1], "w")
for line in sys.stdin.buffer:
    if line.startswith(b"LAGPROBE written_ns="):
        out.write("%d\n" % (time.time_ns() - int(line.split(b"=")[1])))
' "$work/grep-lag.txt" < "$work/grep.fifo" &
/usr/bin/time -f '%U %S %M' -o "$work/time-grep.txt" \
  sh -c "tail -n0 -F '$log' 2>/dev/null | LC_ALL=C grep --line-buffered -E -f '$work/grep-rules.txt'" \
  > "$work/grep.fifo" &
time_grep=$!
sleep 2 # both are following the (empty) file

echo "writing $rate lines/s for $duration s to $log ..." >&2
python3 "$here/gen.py" --follow-rate "$rate" --duration "$duration" >> "$log"
sleep 2 # let both catch up

logding_pid=$(pgrep -P "$time_logding")
ticks=$(getconf CLK_TCK)
for task in /proc/"$logding_pid"/task/*; do # where logding's CPU went, per thread
  printf '%s %s\n' "$(tr ' ' '_' < "$task/comm")" "$(awk -v t="$ticks" '{print ($14 + $15) / t}' "$task/stat")"
done > "$work/threads.txt"
kill -INT "$logding_pid"
kill "$(pgrep -P "$(pgrep -P "$time_grep")" -x tail)" # grep sees EOF, then sh and time end
wait

python3 - "$work" "$rate" "$duration" "$(wc -l < "$log")" <<'EOF'
import json, sys
work, rate, duration, lines = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])

def ns(ts):  # RFC 3339 with up to 9 fractional digits, UTC
    from datetime import datetime, timezone
    main, _, frac = ts.rstrip("Z").partition(".")
    seconds = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 10**9 + int((frac or "0").ljust(9, "0")[:9])

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")

lag_logding = []
for line in open(f"{work}/logding.jsonl"):
    summary = json.loads(line)
    for rule in summary["rules"]:
        if rule["name"] == "lag-probe" and rule["patterns"]:
            written = int(rule["patterns"][0]["sample"].split("=")[1])
            lag_logding.append(ns(rule["first"]) - written)
lag_grep = [int(l) for l in open(f"{work}/grep-lag.txt")]

def cpu(name):
    user, sys_, rss = open(f"{work}/time-{name}.txt").read().split()[-3:]
    return float(user) + float(sys_), int(rss) / 1024

print(f"# follow: {rate} lines/s for {duration:.0f} s ({lines} lines written)")
print(f"{'follower':22} {'CPU s':>7} {'CPU %':>6} {'RSS MiB':>8} {'lag p50 ms':>11} {'p99 ms':>8} {'max ms':>8} {'probes':>7}")
rows = {}
for name, lags in (("logding", lag_logding), ("grep", lag_grep)):
    c, rss = cpu(name)
    rows[name] = c
    label = "logding run" if name == "logding" else "tail -F | grep"
    print(f"{label:22} {c:7.2f} {100 * c / duration:6.1f} {rss:8.1f} {pct(lags, 50) / 1e6:11.1f} "
          f"{pct(lags, 99) / 1e6:8.1f} {max(lags, default=float('nan')) / 1e6:8.1f} {len(lags):7}")
print(f"CPU ratio logding / (tail -F | grep): {rows['logding'] / rows['grep']:.2f}")
threads = {}
for line in open(f"{work}/threads.txt"):
    name, seconds = line.split()
    threads[name] = threads.get(name, 0) + float(seconds)
print("logding CPU s by thread: " + ", ".join(f"{n} {s:.2f}" for n, s in sorted(threads.items(), key=lambda x: -x[1]) if s > 0))
EOF
