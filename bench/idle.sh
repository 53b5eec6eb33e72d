#!/usr/bin/env bash
# Idle cost: logding run following 100 files that nobody writes to.
#
# Usage: bench/idle.sh        Env: FILES (default 100), DURATION (s, default 60),
#                                  BENCH_DIR (default target/bench), LOGDING.
#
# Samples logding's CPU time and RSS from /proc every 5 s; prints the series, the CPU share of
# one core over the run (after a 5 s start-up), and the RSS drift from first to last sample.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
files=${FILES:-100}
duration=${DURATION:-60}
work=${BENCH_DIR:-$repo/target/bench}/idle
logding=${LOGDING:-$repo/target/release/logding}
[ -x "$logding" ] || (cd "$repo" && cargo build --release --locked >&2)
rm -rf "$work" && mkdir -p "$work/logs"
for i in $(seq "$files"); do
  printf '2026-11-28 10:00:00.000  INFO 4242 --- [main] c.e.App : started %d\n' "$i" > "$work/logs/app-$i.log"
done
cat > "$work/logding.yaml" <<EOF
host: bench
state_dir: $work/state
window: 1m
include: [$here/rules.yaml]
sources:
  - name: app
    paths: ['$work/logs/*.log']
EOF

"$logding" run --dry-run -c "$work/logding.yaml" > "$work/out.txt" 2> "$work/err.txt" &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' EXIT
ticks=$(getconf CLK_TCK)
sample() { # prints "cpu_seconds rss_kib"
  awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$pid/stat" | tr '\n' ' '
  awk '/^VmRSS/ {print $2}' "/proc/$pid/status"
}
sleep 5
read -r cpu0 rss0 < <(sample)
echo "# idle: $files followed files, no writes, ${duration} s (after 5 s start-up)"
echo "t_s cpu_s rss_kib"
echo "0 $cpu0 $rss0"
elapsed=0
while [ "$elapsed" -lt "$duration" ]; do
  sleep 5
  elapsed=$((elapsed + 5))
  read -r cpu rss < <(sample)
  echo "$elapsed $cpu $rss"
done
python3 -c "
cpu0, rss0, cpu, rss, d = $cpu0, $rss0, $cpu, $rss, $duration
print(f'CPU: {cpu - cpu0:.2f} s in {d} s = {100 * (cpu - cpu0) / d:.3f}% of one core; '
      f'RSS: {rss0 / 1024:.1f} -> {rss / 1024:.1f} MiB ({(rss - rss0) / 1024:+.1f})')
"
