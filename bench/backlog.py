#!/usr/bin/env python3
"""Time `logding run` catching up on an existing log: its first run, from the file's beginning.

Usage: bench/backlog.py LOGDING CONFIG LOG [--cpus LIST] [--runs N]

CONFIG must follow LOG with `start_at: beginning`. The agent runs as a dry run (nothing is
written, so every run is a first run) with debug logs in JSON; the backlog is done when a
`batch_scanned` event reaches the file's size. Then the agent is stopped (SIGINT: it flushes the
window and prints its summary) and the summaries' hits per rule are summed.

`--cpus 0` runs it under `taskset -c 0`: the whole process on one core (the agent sees one core:
one scan at a time). Prints one line per run kept (the fastest of N):
"wall_s cpu_s rss_kib hits bytes span_s" (hits: per rule, summed; span: from the first batch
scanned to the last, the catch-up without the agent's startup) (wall and CPU at the end of the backlog, RSS at the end).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def one_run(args, size):
    cmd = [args.logding, "run", "--dry-run", "--output", "json", "-v", "--log-format", "json",
           "-c", args.config]
    if args.cpus is not None:
        cmd = ["taskset", "-c", args.cpus] + cmd
    ticks = os.sysconf("SC_CLK_TCK")
    started = time.monotonic()
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = cpu = first = None
    for line in agent.stderr:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        fields = record.get("fields", record)
        scanned = fields.get("event") == "batch_scanned" or fields.get("message") == "batch scanned"
        if scanned and first is None:
            first = time.monotonic() - started
        if scanned and int(fields.get("end", 0)) >= size:
            wall = time.monotonic() - started
            with open(f"/proc/{agent.pid}/stat") as stat:
                parts = stat.read().rsplit(")", 1)[1].split()
            cpu = (int(parts[11]) + int(parts[12])) / ticks
            break
    with open(f"/proc/{agent.pid}/status") as status:
        rss = next(int(l.split()[1]) for l in status if l.startswith("VmHWM"))
    agent.send_signal(signal.SIGINT)
    out, _ = agent.communicate(timeout=60)
    if wall is None:
        sys.exit("the agent never reported the end of the file")
    # Hits per rule summed (a line matching two rules counts twice), over every summary.
    hits = sum(r["count"] for line in out.splitlines() if line.strip()
               for r in json.loads(line)["rules"])
    return wall, cpu, rss, hits, wall - first


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("logding")
    parser.add_argument("config")
    parser.add_argument("log")
    parser.add_argument("--cpus")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = os.path.getsize(args.log)
    best = min((one_run(args, size) for _ in range(args.runs)), key=lambda r: r[0])
    print(f"{best[0]:.3f} {best[1]:.2f} {best[2]} {best[3]} {size} {best[4]:.3f}")


if __name__ == "__main__":
    main()
