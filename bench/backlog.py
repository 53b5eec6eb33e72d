#!/usr/bin/env python3
"""Time `logding run` catching up on an existing log: its first run, from the file's beginning.

Usage: bench/backlog.py LOGDING CONFIG LOG [--cpus LIST] [--runs N]

CONFIG must follow LOG with `start_at: beginning`. The agent runs as a dry run (nothing is
written, so every run is a first run) with debug logs in JSON; the backlog is done when a
`batch_scanned` event reaches the file's size. Then the agent is stopped (SIGINT: it flushes the
window and prints its summary) and the summaries' hits per rule are summed.

`--cpus 0` runs it under `taskset -c 0`: the whole process on one core (the agent sees one core:
one scan at a time). Prints one line per run kept (the fastest of N):
"wall_s cpu_s rss_kib hits bytes span_s span_cpu_s" (hits: per rule, summed; span: from the
first batch scanned to the last, the catch-up without the agent's startup; span_cpu: the CPU
seconds spent over the span) (wall and CPU at the end of the backlog, RSS at the end).
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
    wall = cpu = first = first_cpu = span_cpu = None
    for line in agent.stderr:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        fields = record.get("fields", record)
        scanned = fields.get("event") == "batch_scanned" or fields.get("message") == "batch scanned"
        if scanned and first is None:
            first = time.monotonic() - started
            first_cpu = on_cpu(agent.pid)
        if scanned and int(fields.get("end", 0)) >= size:
            wall = time.monotonic() - started
            cpu = cpu_of(agent.pid, ticks)
            span_cpu = on_cpu(agent.pid) - first_cpu
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
    return wall, cpu, rss, hits, wall - first, span_cpu


def on_cpu(pid):
    """Seconds the process's threads have been on a CPU so far (nanosecond counts)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except OSError:  # the thread ended meanwhile
            pass
    return total / 1e9


def cpu_of(pid, ticks):
    """CPU seconds (user + system) the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        parts = stat.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / ticks


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
    print(f"{best[0]:.3f} {best[1]:.2f} {best[2]} {best[3]} {size} {best[4]:.3f} {best[5]:.3f}")


if __name__ == "__main__":
    main()
