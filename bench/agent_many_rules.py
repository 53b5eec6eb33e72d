#!/usr/bin/env python3
"""Start time and memory of a RUNNING agent with 1,000 rules, each with a `\\w+` capture.

Usage: bench/agent_many_rules.py [--rules 1000] [--log-mb 1]
Env:   LOGDING (binary; default target/release/logding, built with `cargo build --release` if
       missing), BENCH_DIR (default target/bench/agent).

The target (#12): 1,000 rules with a `\\w+` capture each run in <= 64 MiB RSS and start in
<= 1 s. The rules are bench/rules.yaml (20) plus bench/many_rules.py (the rest); the log is a
small generated one (bench/gen.py), read from its beginning. The agent runs as an operator runs
it, `logding run --dry-run` (no webhook needed), with JSON logs; this script:

1. starts it and times the `started` event (config loaded, rules compiled, files found);
2. waits until the whole log is scanned (`batch_scanned` events up to the file's size);
3. appends a line that a generated rule matches and times until it is scanned;
4. reads VmRSS and VmHWM (peak) from /proc, then stops the agent with SIGTERM.

It prints the figures next to the targets; it is a benchmark, not a test (nothing fails).
"""

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def binary():
    path = os.environ.get("LOGDING", os.path.join(REPO, "target/release/logding"))
    if not os.access(path, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True,
                       stdout=sys.stderr)
    return path


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--log-mb", type=int, default=1)
    args = parser.parse_args()
    work = os.environ.get("BENCH_DIR", os.path.join(REPO, "target/bench/agent"))
    os.makedirs(work, exist_ok=True)
    logding = binary()

    log = os.path.join(work, "app.log")
    with open(log, "wb") as out:
        subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), "--size-mb",
                        str(args.log_mb), "--seed", "42"], stdout=out, check=True)
    many = os.path.join(work, "rules-many.yaml")
    with open(many, "w") as out:
        subprocess.run([sys.executable, os.path.join(HERE, "many_rules.py"), "--count",
                        str(args.rules - 20)], stdout=out, check=True)
    state = os.path.join(work, "state")
    subprocess.run(["rm", "-rf", state], check=True)
    config = os.path.join(work, "logding.yaml")
    with open(config, "w") as f:
        f.write(f"""host: bench
state_dir: {state}
window: 1m
include: [{HERE}/rules.yaml, {many}]
sources:
  - name: app
    paths: ['{log}']
    start_at: beginning
""")

    events = queue.Queue()
    spawned = time.monotonic()
    agent = subprocess.Popen(
        [logding, "-v", "--log-format", "json", "run", "--dry-run", "-c", config],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def read():
        # Every log record is a JSON line; anything else (a panic message) is not an event.
        for line in agent.stderr:
            if line.startswith("{"):
                record = json.loads(line)
                events.put((time.monotonic(), record.get("fields", record)))
        events.put((time.monotonic(), None))

    threading.Thread(target=read, daemon=True).start()

    def wait(what, done, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                agent.kill()
                sys.exit(f"timed out waiting for {what}")
            try:
                at, fields = events.get(timeout=left)
            except queue.Empty:
                continue
            if fields is None:
                sys.exit(f"the agent exited (status {agent.wait()}) before {what}")
            if done(fields):
                return at, fields

    try:
        started_at, started = wait("the started event", lambda f: f.get("event") == "started")
        size = os.path.getsize(log)
        scanned_at, _ = wait("the log to be scanned", lambda f: f.get("event") == "batch_scanned"
                             and int(f.get("end", 0)) >= size)
        written = time.monotonic()
        with open(log, "a") as f:
            f.write("2026-11-28 10:00:00.000 ERROR 1 --- [main] c.e.Shop : "
                    "OrderLookupException: timeout\n")
        new_size = os.path.getsize(log)
        hit_at, hit = wait("the appended line", lambda f: f.get("event") == "batch_scanned"
                         and int(f.get("end", 0)) >= new_size)
        rss = status_kib(agent.pid, "VmRSS") / 1024
        peak = status_kib(agent.pid, "VmHWM") / 1024
    finally:
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=30)
            except subprocess.TimeoutExpired:
                agent.kill()

    start = started_at - spawned
    print(f"logding run --dry-run, {started.get('rules')} rules, "
          f"{size / 2**20:.1f} MiB log read from the beginning")
    print(f"start (spawn to `started`):        {start:6.2f} s   (target <= 1 s)  "
          f"{'ok' if start <= 1 else 'OVER'}")
    print(f"whole log scanned after:           {scanned_at - spawned:6.2f} s")
    print(f"appended line scanned after:       {hit_at - written:6.3f} s   "
          f"({hit.get('hits')} hits)")
    print(f"RSS after the scan:                {rss:6.1f} MiB (target <= 64 MiB)  "
          f"{'ok' if rss <= 64 else 'OVER'}")
    print(f"peak RSS (VmHWM):                  {peak:6.1f} MiB (target <= 64 MiB)  "
          f"{'ok' if peak <= 64 else 'OVER'}")


if __name__ == "__main__":
    main()
