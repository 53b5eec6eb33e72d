#!/usr/bin/env bash
# logding scan next to ripgrep, grep and mtail, on one generated log, in one run.
#
# Rows: logding on every core and on one (-j1: the parallel speedup); with 1,000 rules (the 20
# of bench/rules.yaml plus 980 from bench/many_rules.py, each with a `\w+` capture) on the log
# and on an empty file (startup time and RSS); with multiline events (a line starting with a
# date begins one); rg with the same 20 and 1,000 patterns, grep with the 20, mtail with the 20.
# Usage: bench/run.sh [SIZE_MB]        (default 500)
# Env:   BENCH_DIR (default target/bench), RUNS (timed runs per tool, best kept; default 3),
#        MTAIL_MB (mtail is ~100x slower: it gets the first MTAIL_MB MiB; default 20),
#        LOGDING (binary; default target/release/logding, built if missing).
#
# Every tool reads the same file from the page cache (one untimed warm-up run each first).
# logding runs with per-rule attribution (bench/rules.yaml: 20 rules, per-rule counts and the
# summary it would send); rg and grep count lines matching any of the same patterns
# (bench/rules.txt); mtail runs one counter per rule plus one for "any". The "any" counts must
# agree. Reported: wall seconds, CPU seconds (user+sys), MiB/s (wall), peak RSS, and ratios to rg.
# mtail 3.0.0-rc50 (Debian) stops matching at the first invalid UTF-8 byte of a log (line ~4,000
# here), so its count on the head is expected to be lower; that is a finding, not a bench bug.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
size_mb=${1:-500}
work=${BENCH_DIR:-$repo/target/bench}
runs=${RUNS:-3}
mtail_mb=${MTAIL_MB:-20}
logding=${LOGDING:-$repo/target/release/logding}
mkdir -p "$work"
log=$work/app-${size_mb}mb.log

if [ ! -s "$log" ]; then
  echo "generating $log ($size_mb MiB, seed 42)..." >&2
  python3 "$here/gen.py" --size-mb "$size_mb" --seed 42 > "$log.tmp" && mv "$log.tmp" "$log"
fi
if [ ! -x "$logding" ]; then
  (cd "$repo" && cargo build --release --locked >&2)
fi
command -v rg > /dev/null || { echo "ripgrep (rg) is required: apt-get install ripgrep" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is required: apt-get install time" >&2; exit 2; }

cat > "$work/logding.yaml" <<EOF
host: bench
state_dir: $work/state
window: 1m
include: [$here/rules.yaml]
sources:
  - name: app
    paths: ['$work/*.log']
EOF
# 1,000 rules: the 20 and 980 generated ones; rg gets them too (capture names dropped).
python3 "$here/many_rules.py" --count 980 > "$work/rules-many.yaml"
sed "s|^include: .*|include: [$here/rules.yaml, $work/rules-many.yaml]|" "$work/logding.yaml" > "$work/logding-1000.yaml"
{ cat "$here/rules.txt"; sed -n "s/^    pattern: '\(.*\)'$/\1/p" "$work/rules-many.yaml" | sed 's/(?P<[a-z]*>/(/'; } > "$work/rules-1000.txt"
{ cat "$work/logding.yaml"; echo "    multiline: {start: '^\\d{4}-\\d{2}-\\d{2} '}"; } > "$work/logding-multiline.yaml"
empty=$work/empty.log
: > "$empty"

# mtail: one counter per rule and one for any rule, over the first $mtail_mb MiB.
mtail_log=$work/app-${mtail_mb}mb-head.log
if command -v mtail > /dev/null; then
  mkdir -p "$work/mtail"
  python3 - "$here/rules.txt" > "$work/mtail/rules.mtail" <<'EOF'
import sys
patterns = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
patterns = [p.replace("/", "\\/") for p in patterns]
for i, p in enumerate(patterns):
    print(f"counter rule_{i}\n/{p}/ {{\n  rule_{i}++\n}}")
# "any": mtail has no `||` between patterns and caps a regex at 1024 bytes: an else-chain.
print("counter any")
print("".join(f"/{p}/ {{\n  any++\n}} else {{\n" for p in patterns) + "}" * len(patterns))
EOF
  head -c $((mtail_mb << 20)) "$log" | python3 -c '
import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data[: data.rfind(b"\n") + 1])' > "$mtail_log"
fi

# run NAME FILE COMMAND...: best of $runs timed runs after one warm-up; prints
# "name wall cpu rss_kb count bytes".
run() {
  local name=$1 file=$2; shift 2
  local best_wall='' best_line=''
  "$@" > /dev/null 2>&1 || true
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" "$@" > "$work/out-$name.txt" 2> "$work/err-$name.txt" || true
    read -r wall user sys rss < <(tail -1 "$work/time.txt")
    if [ -z "$best_wall" ] || awk "BEGIN{exit !($wall < $best_wall)}"; then
      best_wall=$wall
      best_line="$name $wall $(awk "BEGIN{print $user + $sys}") $rss $(count "$name") $(stat -L -c %s "$file")"
    fi
  done
  echo "$best_line"
}

# count NAME: the "lines matching any rule" of the last run of NAME.
count() {
  case $1 in
    logding*) python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["matching_lines"])' "$work/out-$1.txt" ;;
    mtail) python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))["any"][0]["LabelValues"][0]["Value"]["Value"])' "$work/out-mtail.txt" 2>/dev/null || echo "?" ;;
    *) first=$(head -1 "$work/out-$1.txt"); echo "${first:-?}" ;;
  esac
}

cat "$log" > /dev/null
results=$work/results.txt
{
  run logding "$log" "$logding" scan -c "$work/logding.yaml" --output json "$log"
  run logding-j1 "$log" "$logding" scan -j1 -c "$work/logding.yaml" --output json "$log"
  run logding-1000 "$log" "$logding" scan -c "$work/logding-1000.yaml" --output json "$log"
  run logding-1000-start "$empty" "$logding" scan -c "$work/logding-1000.yaml" --output json "$empty"
  run logding-multiline "$log" "$logding" scan -c "$work/logding-multiline.yaml" --output json "$log"
  run rg "$log" rg -c -f "$here/rules.txt" "$log"
  # rg's default 100 MB regex size limit refuses the 1,000 Unicode patterns.
  runs=1 run rg-1000 "$log" rg --regex-size-limit 2G --dfa-size-limit 2G -c -f "$work/rules-1000.txt" "$log"
  run grep "$log" env LC_ALL=C grep -E -c -f "$here/rules.txt" "$log"
  if command -v mtail > /dev/null; then
    runs=1 run mtail "$mtail_log" mtail --one_shot --one_shot_format json --progs "$work/mtail" --logs "$mtail_log"
    runs=1 run logding-head "$mtail_log" "$logding" scan -c "$work/logding.yaml" --output json "$mtail_log"
  fi
} > "$results"

python3 - "$results" "$size_mb" "$(nproc)" "$(rg --version | head -1)" "$(grep --version | head -1)" \
  "$(command -v mtail > /dev/null && mtail --version 2>&1 | head -1 || echo 'mtail: not installed')" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, cpu, rss, count, size = line.split()
    rows[name] = dict(wall=float(wall), cpu=float(cpu), rss=int(rss) / 1024, count=count, mib=int(size) / 2**20)
rg = rows["rg"]
print(f"# {sys.argv[2]} MiB generated log, {sys.argv[3]} cores; {sys.argv[4]}; {sys.argv[5]}; {sys.argv[6]}")
print(f"{'tool':18} {'MiB':>6} {'wall s':>7} {'CPU s':>7} {'MiB/s':>8} {'RSS MiB':>8} {'any-match':>10} {'wall/rg':>8} {'CPU/rg':>7}")
for name, r in rows.items():
    ratio = lambda k: f"{r[k] / rg[k]:.2f}" if r["mib"] == rg["mib"] else "-"
    print(f"{name:18} {r['mib']:6.0f} {r['wall']:7.2f} {r['cpu']:7.2f} {r['mib'] / max(r['wall'], 0.01):8.0f} "
          f"{r['rss']:8.1f} {r['count']:>10} {ratio('wall'):>8} {ratio('cpu'):>7}")
# Multiline counts events, not lines: left out of the agreement.
full = {n: r["count"] for n, r in rows.items() if r["mib"] == rg["mib"] and n != "logding-multiline"}
ok = len(set(full.values())) == 1
w = {n: r["wall"] for n, r in rows.items()}
scan_1000 = max(w["logding-1000"] - w["logding-1000-start"], 0.01)
print(f"parallel speedup {w['logding-j1'] / w['logding']:.2f}x (target >= 1.7); wall {w['logding'] / w['rg']:.2f}x rg (<= 0.25)")
print(f"1,000 rules: start {w['logding-1000-start']:.2f} s (<= 1), RSS {rows['logding-1000']['rss']:.0f} MiB (<= 64), "
      f"scan at {w['logding'] / scan_1000:.0%} of the 20-rule throughput (>= 50%)")
print(f"multiline: {w['logding-multiline'] / w['logding']:.2f}x the plain scan's wall time (<= 1.5)")
print(("counts agree" if ok else "COUNTS DIFFER") + f" on the full file: {full}")
if "mtail" in rows:
    same = rows["mtail"]["count"] == rows["logding-head"]["count"]
    print(f"on the {rows['mtail']['mib']:.0f} MiB head: mtail any={rows['mtail']['count']}, "
          f"logding any={rows['logding-head']['count']}" + ("" if same else "  (DIFFER)"))
sys.exit(0 if ok else 1)
EOF
