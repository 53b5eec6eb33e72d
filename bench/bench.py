#!/usr/bin/env python3
"""logding next to ripgrep, grep, mtail and `tail -F | grep`: every figure of issue #18 in one run.

Usage: bench/run.sh [SIZE_MB]            (python3 bench/bench.py [--size-mb N] [--only SECTIONS])

Sections (all by default, in this order; `--only scan,backlog` runs some):
- scan:    `logding scan` of one generated Spring Boot log (bench/gen.py, seed 42) with the 20
           rules of bench/rules.yaml, on every core and with `-j1`; with 1,000 rules (the 20 plus
           980 from bench/many_rules.py, each with a `\\w+` capture) on the log and on an empty
           file (startup); with multiline events (a line starting with a date begins one), on
           every core and with `-j1`; next to `rg -c -f rules.txt`, `grep -E -c -f rules.txt`,
           rg with the 1,000 patterns, and mtail (20 counters plus "any") on the log's head.
- backlog: `logding run`'s first run over the same log (`start_at: beginning`, dry run), until
           the last batch is scanned: on every core, and under `taskset -c 0` (bench/backlog.py).
- follow:  `logding run` and `tail -F FILE | grep --line-buffered -E -f rules` following one file
           written at RATE lines/s for FOLLOW_S s (bench/gen.py --follow-rate, with a
           `LAGPROBE written_ns=` line every 10 ms): CPU, peak RSS, and the lag from write to match.
- idle:    `logding run` following FILES files nobody writes to, for IDLE_S s: CPU share, RSS.

Every tool reads the same file from the page cache (one untimed warm-up run first when a row has
more than one run). Rows with several runs interleave their runs (logding and logding -j1 take
turns), so a ratio of two rows compares runs made under the same load; the best run is kept.
Peers get PEER_TIMEOUT seconds per run and print "timeout" past it (rg with 1,000 Unicode
patterns builds its automata for minutes). The load (1-minute average, CPU pressure) is printed at
the start and the end of the run and next to each section: ratios are what matter on a busy
machine; the "cores" column (CPU seconds / wall seconds) shows how much of the machine a row got.
Throughput ratios of scan rows take the startup out (the same config scanning an empty file).

Env: BENCH_DIR (default target/bench), RUNS (3), MTAIL_MB (20), LOGDING (default
target/release/logding, built if missing), PEER_TIMEOUT (60), RATE (50000), FOLLOW_S (30),
IDLE_S (60), FILES (100).
"""

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TICKS = os.sysconf("SC_CLK_TCK")


def env(name, default):
    return type(default)(os.environ.get(name, default))


def load():
    """`load 1.23, pressure 45%`: the 1-minute load average and the CPU pressure (some, avg10)."""
    one = open("/proc/loadavg").read().split()[0]
    try:
        line = open("/proc/pressure/cpu").readline()
        pressure = line.split("avg10=")[1].split()[0]
        return f"load {one}, CPU pressure {float(pressure):.0f}%"
    except (OSError, IndexError):
        return f"load {one}"


class Run:
    """One finished process: wall and CPU seconds, peak RSS (KiB), exit code, stdout."""

    def __init__(self, wall, cpu, rss, code, out):
        self.wall, self.cpu, self.rss, self.code, self.out = wall, cpu, rss, code, out

    @property
    def timed_out(self):
        return self.code == "timeout"


LIVE = []  # followers started by the follow and idle sections, killed if we exit early


def child(cmd, **kwargs):
    """`subprocess.Popen` for a process that must not outlive this script."""
    proc = subprocess.Popen(cmd, **kwargs)
    LIVE.append(proc)
    return proc


def kill_children():
    for proc in LIVE:
        if proc.poll() is None:
            proc.kill()


def timed(cmd, timeout=None, out_path=None):
    """Runs `cmd` under GNU time to its end (or kills it after `timeout` s).

    GNU time reports its child's peak RSS: a child of this process would report at least this
    process's own peak (Linux carries `maxrss` across exec)."""
    times = os.path.join(WORK, "time.txt")
    out = open(out_path or os.devnull, "wb")
    start = time.monotonic()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", times, *cmd], stdout=out,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = "timeout"
    except BaseException:  # interrupted or killed: the tool in its own session must not outlive us
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    wall = time.monotonic() - start
    out.close()
    try:
        user, system, rss = open(times).read().split()[-3:]
        cpu, rss = float(user) + float(system), int(rss)
    except (OSError, ValueError):
        cpu, rss = float("nan"), 0
    text = open(out_path, "rb").read().decode("utf-8", "replace") if out_path else ""
    return Run(wall, cpu, rss, code, text)


def hwm(pid):
    """Peak RSS (KiB) of a running process."""
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))


def best_of(rows, runs, warm_up=True):
    """Runs every row `runs` times, the rows taking turns; keeps each row's fastest run.

    `rows` maps a name to (cmd, timeout). Returns name -> Run."""
    if warm_up and runs > 1:
        for cmd, timeout in rows.values():
            timed(cmd, timeout)
    best = {}
    for _ in range(runs):
        for name, (cmd, timeout) in rows.items():
            if name in best and best[name].timed_out:
                continue
            run = timed(cmd, timeout, out_path=os.path.join(WORK, f"out-{name}.txt"))
            if name not in best or run.timed_out or run.wall < best[name].wall:
                best[name] = run
    return best


def any_count(name, run):
    """Lines matching any rule, as each tool reports it."""
    if run.timed_out:
        return "timeout"
    try:
        if name.startswith("logding"):
            return json.loads(run.out.splitlines()[0])["matching_lines"]
        if name == "mtail":
            return json.loads(run.out)["any"][0]["LabelValues"][0]["Value"]["Value"]
        return int(run.out.split()[0])
    except (ValueError, IndexError, KeyError, TypeError):
        return "?"


# ---- setup -------------------------------------------------------------------------------

def setup(size_mb):
    os.makedirs(WORK, exist_ok=True)
    log = os.path.join(WORK, f"app-{size_mb}mb.log")
    if not os.path.exists(log):
        print(f"generating {log} ({size_mb} MiB, seed 42)...", file=sys.stderr)
        with open(log + ".tmp", "wb") as out:
            subprocess.run([sys.executable, f"{HERE}/gen.py", "--size-mb", str(size_mb), "--seed", "42"],
                           stdout=out, check=True)
        os.rename(log + ".tmp", log)
    for tool in ("rg", "taskset", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install ripgrep util-linux)")
    config = agent_config(f"{WORK}/state", "1m", f"{WORK}/*.log")
    write("logding.yaml", config)
    many = subprocess.run([sys.executable, f"{HERE}/many_rules.py", "--count", "980"],
                          capture_output=True, text=True, check=True).stdout
    write("rules-many.yaml", many)
    write("logding-1000.yaml", config.replace(f"include: [{HERE}/rules.yaml]",
                                              f"include: [{HERE}/rules.yaml, {WORK}/rules-many.yaml]"))
    # rg gets the same patterns, their capture names dropped.
    patterns = [re.sub(r"\(\?P<[a-z]*>", "(", line.split("pattern: '", 1)[1][:-1])
                for line in many.splitlines() if line.startswith("    pattern: '")]
    write("rules-1000.txt", open(f"{HERE}/rules.txt").read() + "\n".join(patterns) + "\n")
    write("logding-multiline.yaml", config + "    multiline: {start: '^\\d{4}-\\d{2}-\\d{2} '}\n")
    write("backlog.yaml", config.replace(f"'{WORK}/*.log'", f"'{log}'") + "    start_at: beginning\n")
    write("empty.log", "")
    return log


def agent_config(state_dir, window, paths, more=""):
    """A config with the 20 bench rules and one source `app` following `paths`."""
    return (f"host: bench\nstate_dir: {state_dir}\nwindow: {window}\ninclude: [{HERE}/rules.yaml]\n"
            f"sources:\n  - name: app\n    paths: ['{paths}']\n{more}")


def write(name, text):
    with open(os.path.join(WORK, name), "w") as f:
        f.write(text)


def mtail_setup(log, mtail_mb):
    """mtail's program (a counter per rule and one for "any") and the log's first MTAIL_MB MiB."""
    os.makedirs(f"{WORK}/mtail", exist_ok=True)
    patterns = [l.rstrip("\n").replace("/", "\\/") for l in open(f"{HERE}/rules.txt") if l.strip()]
    prog = "".join(f"counter rule_{i}\n/{p}/ {{\n  rule_{i}++\n}}\n" for i, p in enumerate(patterns))
    # mtail has no `||` between patterns and caps a regex at 1024 bytes: an else-chain.
    prog += "counter any\n" + "".join(f"/{p}/ {{\n  any++\n}} else {{\n" for p in patterns)
    prog += "}" * len(patterns) + "\n"
    write("mtail/rules.mtail", prog)
    head = f"{WORK}/app-{mtail_mb}mb-head.log"
    data = open(log, "rb").read(mtail_mb << 20)
    with open(head, "wb") as f:
        f.write(data[: data.rfind(b"\n") + 1])
    return head


# ---- sections ----------------------------------------------------------------------------

def scan_section(log, runs, peer_timeout, mtail_mb):
    w = WORK
    logding = LOGDING
    scan = lambda config, path, *flags: [logding, "scan", *flags, "-c", f"{w}/{config}", "--output", "json", path]
    subprocess.run(["cat", log], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    print(f"# scan ({load()})", file=sys.stderr)
    # Every logding row in one group: the rows take turns, so their ratios compare runs made
    # under the same load.
    rows = best_of({
        "logding": (scan("logding.yaml", log), None),
        "logding-j1": (scan("logding.yaml", log, "-j1"), None),
        "logding-multiline": (scan("logding-multiline.yaml", log), None),
        "logding-multiline-j1": (scan("logding-multiline.yaml", log, "-j1"), None),
        "logding-start": (scan("logding.yaml", f"{w}/empty.log"), None),
        "logding-1000": (scan("logding-1000.yaml", log), None),
        "logding-1000-start": (scan("logding-1000.yaml", f"{w}/empty.log"), None),
    }, runs)
    rows.update(best_of({
        "rg": (["rg", "-c", "-f", f"{HERE}/rules.txt", log], peer_timeout),
        "grep": (["env", "LC_ALL=C", "grep", "-E", "-c", "-f", f"{HERE}/rules.txt", log], peer_timeout),
    }, runs))
    # rg's default 100 MB regex size limit refuses the 1,000 Unicode patterns.
    rows.update(best_of({"rg-1000": (["rg", "--regex-size-limit", "2G", "--dfa-size-limit", "2G", "-c", "-f",
                                      f"{w}/rules-1000.txt", log], peer_timeout)}, 1, warm_up=False))
    sizes = {name: os.path.getsize(log) for name in rows}
    sizes["logding-1000-start"] = sizes["logding-start"] = 0
    if shutil.which("mtail"):
        head = mtail_setup(log, mtail_mb)
        rows.update(best_of({
            "mtail": (["mtail", "--one_shot", "--one_shot_format", "json", "--progs", f"{w}/mtail",
                       "--logs", head], peer_timeout),
            "logding-head": (scan("logding.yaml", head), None),
        }, 1, warm_up=False))
        sizes["mtail"] = sizes["logding-head"] = os.path.getsize(head)
    return rows, sizes


def backlog_section(log, runs):
    print(f"# backlog ({load()})", file=sys.stderr)
    out = {}
    for name, cpus in (("run-backlog", None), ("run-backlog-1core", "0")):
        cmd = [sys.executable, f"{HERE}/backlog.py", LOGDING, f"{WORK}/backlog.yaml", log, "--runs", "1"]
        out[name] = cmd + (["--cpus", cpus] if cpus else [])
    best = {}
    for _ in range(runs):  # taking turns, as in best_of
        for name, cmd in out.items():
            wall, cpu, rss, hits, size, span, span_cpu = subprocess.run(
                cmd, capture_output=True, text=True, check=True).stdout.split()
            run = Run(float(wall), float(cpu), int(rss), 0, hits)
            run.span, run.span_cpu = float(span), float(span_cpu)
            if name not in best or run.wall < best[name].wall:
                best[name] = run
    return best, int(size)


def follow_section(rate, duration):
    """logding run and tail -F | grep on one file written at `rate` lines/s."""
    work = f"{WORK}/follow"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    log = f"{work}/app.log"
    open(log, "w").close()
    with open(f"{work}/logding.yaml", "w") as f:
        f.write(agent_config(f"{work}/state", "250ms", log, """rules:
  - name: lag-probe
    pattern: '^LAGPROBE written_ns='
    severity: info
    repeat_interval: 1ms
"""))
    with open(f"{work}/grep-rules.txt", "w") as f:
        f.write(open(f"{HERE}/rules.txt").read() + "^LAGPROBE written_ns=\n")
    print(f"# follow: {rate} lines/s for {duration:.0f} s ({load()})", file=sys.stderr)
    # FOLLOW_ALSO=BINARY follows with a second logding too (another build), in the same run.
    binaries = {"logding": LOGDING}
    if os.environ.get("FOLLOW_ALSO"):
        binaries["logding-also"] = os.environ["FOLLOW_ALSO"]
    agents = {name: child([binary, "run", "--dry-run", "--output", "json", "-c", f"{work}/logding.yaml"],
                                     stdout=open(f"{work}/{name}.jsonl", "wb"),
                                     stderr=open(f"{work}/{name}.err", "wb"))
              for name, binary in binaries.items()}
    tail = child(["tail", "-n0", "-F", log], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    grep = child(["grep", "--line-buffered", "-E", "-f", f"{work}/grep-rules.txt"],
                            stdin=tail.stdout, stdout=subprocess.PIPE, env={**os.environ, "LC_ALL": "C"})
    tail.stdout.close()
    grep_lags = []

    def stamp():  # outside the measured processes: when each probe line arrives
        for line in grep.stdout:
            if line.startswith(b"LAGPROBE written_ns="):
                grep_lags.append(time.time_ns() - int(line.split(b"=")[1]))

    reader = threading.Thread(target=stamp)
    reader.start()
    time.sleep(2)  # both are following the (empty) file
    with open(log, "ab") as out:
        subprocess.run([sys.executable, f"{HERE}/gen.py", "--follow-rate", str(rate), "--duration", str(duration)],
                       stdout=out, check=True)
    time.sleep(2)  # let both catch up
    threads = {}
    agent = agents["logding"]
    for task in os.listdir(f"/proc/{agent.pid}/task"):
        name = open(f"/proc/{agent.pid}/task/{task}/comm").read().strip()
        fields = open(f"/proc/{agent.pid}/task/{task}/stat").read().rsplit(")", 1)[1].split()
        threads[name] = threads.get(name, 0) + (int(fields[11]) + int(fields[12])) / TICKS
    rss = {name: hwm(agent.pid) for name, agent in agents.items()}
    rss["grep"] = hwm(tail.pid) + hwm(grep.pid)
    usage = {}
    for name, agent in agents.items():
        agent.send_signal(signal.SIGINT)
        usage[name] = os.wait4(agent.pid, 0)[2]
    tail.send_signal(signal.SIGTERM)
    _, _, tail_usage = os.wait4(tail.pid, 0)
    _, _, grep_usage = os.wait4(grep.pid, 0)
    reader.join()
    lines = sum(1 for _ in open(log, "rb"))
    lags = {name: [] for name in agents}
    for name in agents:
        for line in open(f"{work}/{name}.jsonl"):
            for rule in json.loads(line)["rules"]:
                if rule["name"] == "lag-probe" and rule["patterns"]:
                    written = int(rule["patterns"][0]["sample"].split("=")[1])
                    lags[name].append(ns(rule["first"]) - written)
    cpu = lambda u: u.ru_utime + u.ru_stime
    out = {name: Run(duration, cpu(usage[name]), rss[name], 0, lags[name]) for name in agents}
    out["grep"] = Run(duration, cpu(tail_usage) + cpu(grep_usage), rss["grep"], 0, grep_lags)
    return {"lines": lines, "threads": threads, "rows": out}


def ns(ts):
    """RFC 3339 with up to 9 fractional digits, UTC, to nanoseconds."""
    from datetime import datetime, timezone
    main, _, frac = ts.rstrip("Z").partition(".")
    seconds = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 10**9 + int((frac or "0").ljust(9, "0")[:9])


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def idle_section(files, duration):
    work = f"{WORK}/idle"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(f"{work}/logs")
    for i in range(1, files + 1):
        with open(f"{work}/logs/app-{i}.log", "w") as f:
            f.write(f"2026-11-28 10:00:00.000  INFO 4242 --- [main] c.e.App : started {i}\n")
    with open(f"{work}/logding.yaml", "w") as f:
        f.write(agent_config(f"{work}/state", "1m", f"{work}/logs/*.log"))
    print(f"# idle: {files} files for {duration:.0f} s ({load()})", file=sys.stderr)
    agent = child([LOGDING, "run", "--dry-run", "-c", f"{work}/logding.yaml"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sample():
        fields = open(f"/proc/{agent.pid}/stat").read().rsplit(")", 1)[1].split()
        rss = next(int(l.split()[1]) for l in open(f"/proc/{agent.pid}/status") if l.startswith("VmRSS"))
        return (int(fields[11]) + int(fields[12])) / TICKS, rss

    time.sleep(5)  # start-up
    cpu0, rss0 = sample()
    time.sleep(duration)
    cpu1, rss1 = sample()
    agent.send_signal(signal.SIGINT)
    agent.wait()
    return {"cpu": cpu1 - cpu0, "duration": duration, "rss0": rss0, "rss1": rss1}


# ---- report ------------------------------------------------------------------------------

def report(args, scan, backlog, follow, idle, started_load):
    print(f"# logding {version()} on {os.cpu_count()} cores; started with {started_load}, ended with {load()}")
    targets = []

    def target(what, value, ok):
        targets.append((what, value, "met" if ok else "NOT met"))

    if scan:
        rows, sizes = scan
        rg = rows["rg"]
        print(f"## scan: {sizes['rg'] / 2**20:.0f} MiB generated log; {tool_versions()}")
        print(f"{'row':22} {'MiB':>5} {'wall s':>7} {'CPU s':>7} {'cores':>5} {'MiB/s':>7} {'RSS MiB':>8} "
              f"{'any-match':>10} {'wall/rg':>8}")
        for name, r in rows.items():
            mib = sizes[name] / 2**20
            if r.timed_out:
                print(f"{name:22} {mib:5.0f} {'timeout':>7} (killed after {r.wall:.0f} s)")
                continue
            same = sizes[name] == sizes["rg"]
            print(f"{name:22} {mib:5.0f} {r.wall:7.2f} {r.cpu:7.2f} {r.cpu / max(r.wall, 1e-3):5.2f} "
                  f"{mib / max(r.wall, 1e-3):7.0f} {r.rss / 1024:8.1f} {str(any_count(name, r)):>10} "
                  f"{(f'{r.wall / rg.wall:.2f}' if same else '-'):>8}")
        w = {n: r.wall for n, r in rows.items()}
        # Throughput: the time spent on the log, startup (config, automata) taken out.
        start20 = w["logding-start"]
        speedup = (w["logding-j1"] - start20) / max(w["logding"] - start20, 1e-3)
        target("scan on every core >= 1.7x one thread (scan -j1)",
               f"{speedup:.2f}x throughput ({w['logding-j1'] / w['logding']:.2f}x wall with the "
               f"{1000 * start20:.0f} ms startup); cores obtained: {rows['logding'].cpu / w['logding']:.2f}",
               speedup >= 1.7)
        target("scan wall <= 0.25x ripgrep's", f"{w['logding'] / w['rg']:.2f}x", w["logding"] <= 0.25 * w["rg"])
        start = w["logding-1000-start"]
        target("1,000 rules start <= 1 s", f"{start:.2f} s", start <= 1)
        share = (w["logding"] - start20) / max(w["logding-1000"] - start, 1e-3)
        target("1,000 rules scan >= 50% of the 20-rule throughput", f"{share:.0%} (startup taken out)", share >= 0.5)
        ml = (w["logding-multiline"] - start20) / max(w["logding"] - start20, 1e-3)
        ml1 = (w["logding-multiline-j1"] - start20) / max(w["logding-j1"] - start20, 1e-3)
        ml_cpu = rows["logding-multiline-j1"].cpu / rows["logding-j1"].cpu
        target("multiline <= 1.5x the plain scan", f"{ml:.2f}x time on every core, {ml1:.2f}x time and "
               f"{ml_cpu:.2f}x CPU on one thread", max(ml, ml1) <= 1.5)
        full = {n: any_count(n, r) for n, r in rows.items()
                if sizes[n] == sizes["rg"] and "multiline" not in n and not r.timed_out}
        agree = len(set(full.values())) == 1
        print(("counts agree" if agree else "COUNTS DIFFER") + f" on the whole log: {full}")
        if "mtail" in rows:
            print(f"on the {sizes['mtail'] / 2**20:.0f} MiB head: mtail any={any_count('mtail', rows['mtail'])}, "
                  f"logding any={any_count('logding-head', rows['logding-head'])} (mtail stops matching at "
                  f"the first invalid UTF-8 byte)")
    if backlog:
        rows, size = backlog
        print(f"## run: first-run backlog of the same log ({size / 2**20:.0f} MiB), until its last batch is scanned")
        print(f"{'row':22} {'wall s':>7} {'span s':>7} {'CPU s':>7} {'cores':>5} {'MiB/s':>7} {'RSS MiB':>8} "
              f"{'hits':>10}")
        for name, r in rows.items():
            print(f"{name:22} {r.wall:7.2f} {r.span:7.2f} {r.cpu:7.2f} {r.span_cpu / r.span:5.2f} "
                  f"{size / 2**20 / r.span:7.0f} {r.rss / 1024:8.1f} {r.out:>10}")
        print("(span: first batch scanned to last, the catch-up without the agent's startup; MiB/s and "
              "cores (CPU seconds / wall seconds) over it)")
        speedup = rows["run-backlog-1core"].span / rows["run-backlog"].span
        target("run's backlog on every core >= 1.7x one core",
               f"{speedup:.2f}x throughput ({rows['run-backlog-1core'].wall / rows['run-backlog'].wall:.2f}x "
               f"wall with startup); cores obtained over the span: "
               f"{rows['run-backlog'].span_cpu / rows['run-backlog'].span:.2f}",
               speedup >= 1.7)
    if follow:
        print(f"## follow: {args.rate} lines/s for {args.follow_s:.0f} s ({follow['lines']} lines written)")
        print(f"{'follower':22} {'CPU s':>7} {'CPU %':>6} {'RSS MiB':>8} {'lag p50 ms':>11} {'p99 ms':>8} "
              f"{'max ms':>8} {'probes':>7}")
        labels = {"logding": "logding run", "logding-also": "logding run (FOLLOW_ALSO)", "grep": "tail -F | grep"}
        for name, r in follow["rows"].items():
            label = labels[name]
            print(f"{label:22} {r.cpu:7.2f} {100 * r.cpu / r.wall:6.1f} {r.rss / 1024:8.1f} "
                  f"{pct(r.out, 50) / 1e6:11.1f} {pct(r.out, 99) / 1e6:8.1f} "
                  f"{max(r.out, default=float('nan')) / 1e6:8.1f} {len(r.out):7}")
        print("logding CPU s by thread: " + ", ".join(
            f"{n} {s:.2f}" for n, s in sorted(follow["threads"].items(), key=lambda x: -x[1]) if s > 0))
        rows = follow["rows"]
        if "logding-also" in rows:
            print(f"FOLLOW_ALSO / logding CPU: {rows['logding-also'].cpu / rows['logding'].cpu:.2f}")
        ratio = rows["logding"].cpu / rows["grep"].cpu
        target("follow CPU <= 0.5x tail -F | grep", f"{ratio:.2f}x", ratio <= 0.5)
        p99 = pct(rows["logding"].out, 99) / 1e6
        target("follow p99 lag <= 100 ms", f"{p99:.0f} ms", p99 <= 100)
        rss = rows["logding"].rss / 1024
        target("RSS while following <= 32 MiB", f"{rss:.1f} MiB", rss <= 32)
    if idle:
        share = 100 * idle["cpu"] / idle["duration"]
        print(f"## idle: {args.files} followed files, nothing written, {idle['duration']:.0f} s: CPU {idle['cpu']:.2f} s "
              f"= {share:.3f}% of a core; RSS {idle['rss0'] / 1024:.1f} -> {idle['rss1'] / 1024:.1f} MiB")
        target(f"idle <= 0.2% of a core with {args.files} files", f"{share:.3f}%", share <= 0.2)
    print("## targets")
    for what, value, verdict in targets:
        print(f"{verdict:8} {what}: {value}")
    return scan is None or agree


def version():
    out = subprocess.run([LOGDING, "--version"], capture_output=True, text=True).stdout.split()
    return out[-1] if out else "?"


def tool_versions():
    first = lambda cmd: (subprocess.run(cmd, capture_output=True, text=True).stdout or "?").splitlines()[0]
    mtail = first(["mtail", "--version"]) if shutil.which("mtail") else "mtail: not installed"
    return f"{first(['rg', '--version'])}; {first(['grep', '--version'])}; {mtail}"


def main():
    global WORK, LOGDING
    # SIGTERM unwinds like Ctrl-C, so `timed` kills the tool it started (GNU time runs it in a
    # session of its own, which a signal to this process group would not reach).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    atexit.register(kill_children)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--only", default="scan,backlog,follow,idle")
    args = parser.parse_args()
    args.rate, args.follow_s = env("RATE", 50000), env("FOLLOW_S", 30.0)
    args.files, args.idle_s = env("FILES", 100), env("IDLE_S", 60.0)
    WORK = os.path.abspath(os.environ.get("BENCH_DIR", f"{REPO}/target/bench"))
    LOGDING = os.environ.get("LOGDING", f"{REPO}/target/release/logding")
    if not os.access(LOGDING, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True)
    sections = set(args.only.split(","))
    started = load()
    log = setup(args.size_mb)
    runs = env("RUNS", 3)
    scan = scan_section(log, runs, env("PEER_TIMEOUT", 60.0), env("MTAIL_MB", 20)) if "scan" in sections else None
    backlog = backlog_section(log, runs) if "backlog" in sections else None
    follow = follow_section(args.rate, args.follow_s) if "follow" in sections else None
    idle = idle_section(args.files, args.idle_s) if "idle" in sections else None
    sys.exit(0 if report(args, scan, backlog, follow, idle, started) else 1)


WORK = LOGDING = None

if __name__ == "__main__":
    main()
