#!/usr/bin/env python3
"""Runs the wsdom benchmark and writes its report.

    harness.py run [--smoke] [--clients a,b] [--cases rr256,push64,...] [--runs N] --out FILE
    harness.py report --results FILE [--md bench/RESULTS.md] [--png bench/results.png]

`run` starts a fresh `bench-server` pinned to CPU 0 for every run and the client pinned to
CPU 1, both on 127.0.0.1; it interleaves the clients run by run (so slow drifts of the
machine touch all of them alike), and records for every run the client's result, the CPU time
the server and the client used, and the CPU time *other* processes used meanwhile (from
/proc/stat), which is how busy the machine was: the noise.

`report` renders RESULTS.md (median [min–max], ratio to wsdom of the same language and to
the raw limit, the targets of issue #7, the compression cases of issue #9) and results.png.

The compression cases (zpushjson, zsendjson, zsendrandom) run the clients that have
permessage-deflate with it on, against bench-server's /zpush and /zsink routes, cycling
through the message pools that `pools.py` writes into bench/build/pools/ (every client sends
exactly the same bytes); headless Chromium (bench/node/client_chromium.mjs) joins zsendjson
for its bytes on the wire.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pools

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / "build"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
PY = sys.executable
SERVER = TARGET / "bench-server"
POOLS_DIR = BUILD / "pools"
NODE = shutil.which("node") or "node"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = ROOT / "tests" / "browser" / "node_modules" / "playwright-core"

# name -> (language, command, workloads (modes, or case ids) it supports)
ALL_MODES = {"rr", "push", "send", "conns", "setup"}
# With permessage-deflate: only the clients that have it (picows, tokio-tungstenite,
# websocket-client and raw have none).
Z_MODES = {"zpush", "zsend"}
CLIENTS = {
    "raw": ("C", [BUILD / "raw_client"], {"rr", "push", "send", "setup"}),
    # Ceilings, not peers: round trips of a WebSocket client that does no work (frames
    # encoded once, echoes skipped), and wsdom-py with an onmessage that does nothing.
    "ws-floor": ("C", [BUILD / "raw_client", "--framing", "ws"], {"rr"}),
    "wsdom-rust": ("Rust", [TARGET / "client-wsdom"], ALL_MODES | Z_MODES),
    "tokio-tungstenite": ("Rust", [TARGET / "client-tokio-tungstenite"], ALL_MODES),
    "wsdom-c": ("C", [BUILD / "wsdom_client"], ALL_MODES | Z_MODES),
    "wsdom-py": ("Python", [PY, BENCH / "py" / "client_wsdom.py"], ALL_MODES | Z_MODES),
    "wsdom-py-empty": ("Python", [PY, BENCH / "py" / "client_wsdom.py", "--empty-handler"],
                       {"push64"}),
    "picows": ("Python", [PY, BENCH / "py" / "client_picows.py"], ALL_MODES),
    "websockets": ("Python", [PY, BENCH / "py" / "client_websockets.py"],
                   (ALL_MODES - {"conns"}) | Z_MODES),
    "aiohttp": ("Python", [PY, BENCH / "py" / "client_aiohttp.py"],
                (ALL_MODES - {"conns"}) | Z_MODES),
    "websocket-client": ("Python", [PY, BENCH / "py" / "client_websocket_client.py"],
                         ALL_MODES - {"conns"}),
    # The browser's own WebSocket, for its bytes on the wire with the same JSON messages.
    "chromium": ("browser", [NODE, BENCH / "node" / "client_chromium.mjs"], {"zsendjson"}),
}
WSDOM_OF = {"Rust": "wsdom-rust", "C": "wsdom-c", "Python": "wsdom-py"}


def supports(client, case):
    return CASES[case][0] in CLIENTS[client][2] or case in CLIENTS[client][2]

# case id -> (mode, size or connection count, label)
CASES = {
    "rr256": ("rr", 256, "round trips/s, 256 B"),
    "rr8192": ("rr", 8192, "round trips/s, 8 KiB"),
    "rr100000": ("rr", 100000, "round trips/s, 100 KB"),
    "push64": ("push", 64, "receive, 64 B (msg/s)"),
    "push65536": ("push", 65536, "receive, 64 KiB (msg/s)"),
    "send64": ("send", 64, "send, 64 B (msg/s)"),
    "send65536": ("send", 65536, "send, 64 KiB (msg/s)"),
    "conns1000": ("conns", 1000, "1,000 connections"),
    "conns10000": ("conns", 10000, "10,000 connections"),
    "setup": ("setup", 0, "open + close / s"),
    # Compression (issue #9): the "size" is the message pool (pools.py).
    "zpushjson": ("zpush", "json", "receive JSON ~1.2 KB, deflate (msg/s)"),
    "zsendjson": ("zsend", "json", "send JSON ~1.2 KB, deflate (msg/s)"),
    "zsendrandom": ("zsend", "random", "send random 16 KiB, deflate (msg/s)"),
}
Z_CASES = [k for k, v in CASES.items() if v[0] in Z_MODES]

# verify: in which compression runs bench-server unmasks and inflates every /zsink message and
# checks it against the pool: "pilot" (each client's pilot run and Chromium's run; the
# measured runs only count, so that the server stays far from being the limit) or "all".
# chromium_passes: the browser sends the JSON pool this many times (one run, no pilot: its
# bytes on the wire do not vary, and its rate is not comparable).
FULL = dict(runs=3, rr_duration=1.5, rr_warmup=100, stream_seconds=0.5, setup_duration=1.0,
            conns_scale=1, pilot=True, noisy=0.15, max_attempts=3, budget_s=480, verify="pilot",
            chromium_passes=5)
SMOKE = dict(runs=1, rr_duration=0.2, rr_warmup=10, stream_seconds=0.05, setup_duration=0.2,
             conns_scale=0.02, pilot=False, noisy=1.0, max_attempts=1, budget_s=60, verify="all",
             chromium_passes=1)
# Rough seconds each case takes in a full run, to share the time budget for re-runs.
CASE_COST = {"rr256": 52, "rr8192": 52, "rr100000": 52, "push64": 30, "push65536": 30,
             "send64": 30, "send65536": 30, "conns1000": 15, "conns10000": 50, "setup": 35,
             "zpushjson": 18, "zsendjson": 24, "zsendrandom": 20}

# First-guess message counts of push/send (messages/s the client roughly reaches); a pilot run
# then sizes each case to last about `stream_seconds`.
GUESS = {"raw": 20e6, "wsdom-rust": 5e6, "tokio-tungstenite": 5e6, "wsdom-c": 2e6,
         "wsdom-py": 1e6, "wsdom-py-empty": 1.5e6, "picows": 1e6, "aiohttp": 5e5, "websockets": 1e5,
         "websocket-client": 1e5}
# The same for the compression cases, per case.
GUESS_Z = {
    "zpushjson": {"wsdom-rust": 2e5, "wsdom-c": 2e5, "wsdom-py": 1.3e5, "aiohttp": 1.5e5,
                  "websockets": 1e5},
    "zsendjson": {"wsdom-rust": 1.2e5, "wsdom-c": 1.2e5, "wsdom-py": 6e4, "aiohttp": 3.5e4,
                  "websockets": 2e4, "chromium": 1e4},
    "zsendrandom": {"wsdom-rust": 1.3e4, "wsdom-c": 1.3e4, "wsdom-py": 1e4, "aiohttp": 3e3,
                    "websockets": 1e3},
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    return total - idle, total


def proc_cpu(pid):
    """utime + stime of a live process, in jiffies."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


class Server:
    def __init__(self, args=()):
        self.p = subprocess.Popen(["taskset", "-c", "0", str(SERVER), *map(str, args)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"bench-server did not start: {line!r}")
        self.port = int(m.group(1))

    def cpu(self):
        return proc_cpu(self.p.pid)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def run_client(client, mode, size, n, cfg, timeout, pool=None, verify=False):
    """One run: fresh server, pinned client. Returns a dict (result + accounting). `pool`:
    the pool's entry of pools.write_pools (compression cases); `verify`: the server checks
    every message the client sends against it."""
    lang, cmd, _ = CLIENTS[client]
    args = ["--mode", mode]
    server_args = []
    if mode == "rr":
        args += ["--size", size, "--duration", cfg["rr_duration"], "--warmup", cfg["rr_warmup"]]
    elif mode in ("push", "send"):
        args += ["--size", size, "--n", n]
    elif mode == "conns":
        args += ["--n", n, "--size", 32]
    elif mode == "setup":
        args += ["--duration", cfg["setup_duration"], "--warmup", 20]
    elif mode in Z_MODES:
        args += ["--pool", pool["file"], "--n", n]
        server_args = ["--pools", POOLS_DIR] + (["--verify"] if verify else [])
    server = Server(server_args)
    argv = ["taskset", "-c", "1"] + [str(c) for c in cmd] + ["--url", f"ws://127.0.0.1:{server.port}"]
    argv += [str(a) for a in args]
    hz = os.sysconf("SC_CLK_TCK")
    try:
        busy0, total0 = cpu_busy()
        s0 = server.cpu()
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            server.stop()
            return {"error": f"timed out after {timeout} s", "stderr": err[-2000:]}
        wall = time.monotonic() - t0
        s1 = server.cpu()
        busy1, total1 = cpu_busy()
    finally:
        server.stop()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if p.returncode != 0 or line is None:
        return {"error": f"exit status {p.returncode}", "stderr": (err or out)[-2000:]}
    res = json.loads(line[len("RESULT "):])
    if mode == "zsend":
        # The sink's count of the bytes on the wire and of the messages that came compressed.
        res["wire_per_msg"] = res["wire_bytes"] / n
        res["zratio"] = res["payload_bytes"] / res["wire_bytes"]
        res["rsv1_share"] = res["rsv1_messages"] / n
        if pool["kind"] == "text" and res["rsv1_messages"] == 0:
            return {"error": "permessage-deflate was negotiated but no message came compressed",
                    "stderr": line}
    res["verified"] = verify
    res["wall_s"] = wall
    res["server_cpu_s"] = (s1 - s0) / hz
    # Children's CPU (client + taskset) accumulates in RUSAGE_CHILDREN; the delta is taken by
    # the caller, which knows the previous value.
    res["_children_cpu"] = ru.ru_utime + ru.ru_stime
    res["_busy_s"] = (busy1 - busy0) / hz
    res["_capacity_s"] = (total1 - total0) / hz
    return res


class Runner:
    def __init__(self, cfg):
        self.cfg = cfg
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children_cpu = ru.ru_utime + ru.ru_stime

    def run(self, client, mode, size, n, pool=None, pilot=False):
        timeout = 300 if mode == "conns" else 120
        verify = mode == "zsend" and (self.cfg["verify"] == "all" or pilot or client == "chromium")
        res = run_client(client, mode, size, n, self.cfg, timeout, pool, verify)
        if "error" in res:
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.children_cpu = ru.ru_utime + ru.ru_stime
            return res
        # Client CPU = growth of RUSAGE_CHILDREN minus the server's share (it exited too and
        # was reaped by us). The server's own CPU is known from /proc, so subtract it.
        cc = res.pop("_children_cpu")
        grown = cc - self.children_cpu
        self.children_cpu = cc
        client_cpu = max(grown - res["server_cpu_s"], 0.0)
        res["client_cpu_s"] = client_cpu
        if res.get("cpu_s") is not None:
            ops = res.get("count") or n
            if ops:
                res["cpu_us_per_op"] = res["cpu_s"] / ops * 1e6
        busy, capacity = res.pop("_busy_s"), res.pop("_capacity_s")
        foreign = max(busy - client_cpu - res["server_cpu_s"], 0.0)
        # Share of the machine (both CPUs) used by other processes during the run.
        res["foreign_load"] = foreign / capacity if capacity > 0 else 0.0
        return res


def stream_n(client, mode, size, seconds, pilot_rate=None):
    rate = pilot_rate or GUESS.get(client, 1e5) / (1 if size < 1024 else 60)
    n = int(rate * seconds)
    lo, hi = (2000, 20_000_000) if size < 1024 else (200, 200_000)
    return max(lo, min(hi, n))


def zstream_n(client, case, pool, seconds, pilot_rate=None):
    """Messages of a compression run: whole passes over the pool (at least one), so that every
    client's bytes per message average over the same messages."""
    rate = pilot_rate or GUESS_Z[case].get(client, 1e4)
    passes = max(1, round(rate * seconds / pool["count"]))
    return min(passes, 2_000_000 // pool["count"]) * pool["count"]


def main_run(opts):
    cfg = dict(SMOKE if opts.smoke else FULL)
    if opts.runs:
        cfg["runs"] = opts.runs
    clients = [c.strip() for c in opts.clients.split(",")] if opts.clients else list(CLIENTS)
    cases = [c.strip() for c in opts.cases.split(",")] if opts.cases else list(CASES)
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    missing = {}
    for c in list(clients):
        exe = [a for a in CLIENTS[c][1] if isinstance(a, Path)][-1]
        if not Path(exe).exists():
            missing[c] = f"not built ({exe} is missing)"
        elif c == "chromium":
            why = chromium_missing()
            if why:
                missing[c] = why
        elif c.startswith("wsdom-py") and subprocess.run([PY, "-c", "import wsdom"],
                                                capture_output=True).returncode != 0:
            missing[c] = "the wsdom Python package is not installed in the bench venv"
    for c, why in missing.items():
        log(f"!! skipping {c}: {why}")
        clients.remove(c)
    if not SERVER.exists():
        sys.exit(f"{SERVER} is missing: build it with cargo build --release -p wsdom-bench")
    out = {"meta": machine_info(cfg, opts.smoke), "skipped": missing, "cases": {}}
    if any(c in Z_CASES for c in cases):
        out["meta"]["pools"] = pools.write_pools(POOLS_DIR)
    out["meta"]["load_before"] = os.getloadavg()
    runner = Runner(cfg)
    failures = 0
    started = time.monotonic()
    total_cost = sum(CASE_COST[c] for c in cases)
    spent_cost = 0
    for case in cases:
        spent_cost += CASE_COST[case]
        # Re-runs of noisy runs are allowed while this case is within its share of the budget.
        deadline = started + cfg["budget_s"] * spent_cost / total_cost
        mode, size, label = CASES[case]
        who = [c for c in clients if supports(c, case)]
        entry = out["cases"][case] = {"mode": mode, "size": size, "label": label, "clients": {}}
        pool = out["meta"]["pools"][size] if mode in Z_MODES else None
        ns = {}
        for c in who:
            if c == "chromium":
                ns[c] = cfg["chromium_passes"] * pool["count"]
            elif mode in Z_MODES:
                n = zstream_n(c, case, pool, cfg["stream_seconds"])
                if cfg["pilot"]:
                    pilot = runner.run(c, mode, size, n, pool, pilot=True)
                    if "error" in pilot:
                        # A verification failure (or any error) must not go unnoticed.
                        failures += 1
                        pilot["error"] = "pilot run: " + pilot["error"]
                        entry["clients"][c] = {"errors": [pilot]}
                        log(f"!! {case} {c} (pilot): {pilot['error']}\n{pilot.get('stderr', '')}")
                    else:
                        n = zstream_n(c, case, pool, cfg["stream_seconds"], pilot["rate"])
                ns[c] = n
            elif mode in ("push", "send"):
                n = stream_n(c, mode, size, cfg["stream_seconds"])
                if cfg["pilot"]:
                    pilot = runner.run(c, mode, size, n)
                    if "error" not in pilot:
                        n = stream_n(c, mode, size, cfg["stream_seconds"], pilot["rate"])
                ns[c] = n
            elif mode == "conns":
                ns[c] = max(int(size * cfg["conns_scale"]), 10)
            else:
                ns[c] = 0
            errors = entry["clients"].get(c, {}).get("errors", [])
            entry["clients"][c] = {"runs": [], "errors": errors, "n": ns[c]}
        for r in range(cfg["runs"]):
            for c in who:
                if c == "chromium" and r > 0:
                    continue  # one run: see chromium_passes
                res = runner.run(c, mode, size, ns[c], pool)
                attempts = 1
                # A run during which other processes took much of the machine is repeated
                # (time permitting); the quietest attempt is kept.
                while ("error" not in res and res["foreign_load"] > cfg["noisy"]
                       and attempts < cfg["max_attempts"] and time.monotonic() < deadline
                       and c != "chromium"):
                    log(f"   {case:10} {c:18} run {r + 1}: foreign load "
                        f"{res['foreign_load']:.0%}, running it again")
                    again = runner.run(c, mode, size, ns[c], pool)
                    attempts += 1
                    if "error" not in again and again["foreign_load"] < res["foreign_load"]:
                        res = again
                res["attempts"] = attempts
                slot = entry["clients"][c]
                if "error" in res:
                    failures += 1
                    slot["errors"].append(res)
                    log(f"!! {case} {c}: {res['error']}\n{res.get('stderr', '')}")
                else:
                    slot["runs"].append(res)
                    log(f"   {case:10} {c:18} run {r + 1}: {fmt(res['rate'])}"
                        f"  (foreign load {res['foreign_load']:.0%})")
        for c in who:
            summarize(entry["clients"][c])
    out["meta"]["load_after"] = os.getloadavg()
    out["meta"]["elapsed_s"] = time.monotonic() - started
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(out, indent=1))
    log(f"wrote {opts.out} in {out['meta']['elapsed_s']:.0f} s; {failures} failed runs")
    return 1 if failures else 0


METRICS = ("rate", "mbps", "open_s", "echo_s", "rss_per_conn", "foreign_load", "server_cpu_s",
           "client_cpu_s", "seconds", "wall_s", "cpu_us_per_op", "wire_per_msg", "zratio",
           "rsv1_share")


def chromium_missing():
    """Why the chromium client cannot run here, or None. The bench never installs Chromium."""
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed ({CHROMIUM}; the bench never installs it)"
    major = cmd_out([NODE, "-p", "process.versions.node.split('.')[0]"])
    if not major.isdigit() or int(major) < 20:
        return f"needs Node >= 20 for playwright-core (found {major or 'none'})"
    if not (PLAYWRIGHT / "package.json").exists():
        return f"playwright-core is not installed ({PLAYWRIGHT}: npm ci in tests/browser)"
    return None


def summarize(slot):
    runs = slot["runs"]
    for k in METRICS:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            slot[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.1f}k"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def cmd_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def npm_version(path):
    try:
        return json.loads((Path(path) / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "not installed"


def lock_version(name):
    text = (ROOT / "Cargo.lock").read_text()
    m = re.search(r'name = "' + re.escape(name) + r'"\nversion = "([^"]+)"', text)
    return m.group(1) if m else "?"


def machine_info(cfg, smoke):
    from importlib import metadata

    def pyver(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {
        "python": platform.python_version(),
        "wsdom (Python package)": pyver("wsdom"),
        "picows": pyver("picows"),
        "aiofastnet": pyver("aiofastnet"),
        "uvloop": pyver("uvloop"),
        "websockets": pyver("websockets"),
        "aiohttp": pyver("aiohttp"),
        "websocket-client": pyver("websocket-client"),
        "chromium": (cmd_out([CHROMIUM, "--version"]).splitlines() or ["not installed"])[-1],
        "node": cmd_out([NODE, "--version"]) or "not installed",
        "playwright-core": npm_version(PLAYWRIGHT),
        "flate2 (crate, bench-server's deflate)": lock_version("flate2"),
        "tokio (crate)": lock_version("tokio"),
        "tokio-tungstenite (crate)": lock_version("tokio-tungstenite"),
        "tungstenite (crate)": lock_version("tungstenite"),
        "rustc": cmd_out(["rustc", "-V"]),
        "gcc": cmd_out(["gcc", "--version"]).splitlines()[0] if cmd_out(["gcc", "--version"]) else "",
    }
    commit = cmd_out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = cmd_out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "core", "ffi-c", "py"])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "smoke": smoke,
        "config": cfg,
        "cpu": f"{os.cpu_count()} x {cpu}",
        "kernel": platform.release(),
        "commit": commit + (" (+ uncommitted changes in core/ffi-c/py)" if dirty else ""),
        "versions": versions,
    }


# ------------------------------------------------------------------------------------------
# Report


def med(data, case, client, key="rate"):
    try:
        return data["cases"][case]["clients"][client][key]["median"]
    except KeyError:
        return None


def ratio(a, b):
    return a / b if a is not None and b else None


def cell(slot, key="rate", scale=1.0, digits=None):
    s = slot.get(key)
    if not s:
        return "–"
    f = (lambda v: f"{v * scale:.{digits}f}") if digits is not None else (lambda v: fmt(v * scale))
    return f"**{f(s['median'])}** [{f(s['min'])}–{f(s['max'])}]"


def rfmt(r):
    return "–" if r is None else f"{r:.2f}"


ORDER = ["raw", "ws-floor", "wsdom-rust", "tokio-tungstenite", "wsdom-c", "wsdom-py",
         "wsdom-py-empty", "picows", "aiohttp", "websockets", "websocket-client", "chromium"]


# Issue #7's ratios of wsdom-py to picows, per case.
PICOWS_TARGETS = {"rr256": 1.0, "rr8192": 1.0, "rr100000": 1.1, "push64": 1.5, "push65536": 1.2}


def targets(data):
    """(target, measured ratio, CPU-time ratio, verdict) rows of issue #7. The verdict is
    on the measured (throughput) ratio; the CPU-time ratio (the other client's CPU time per
    operation ÷ wsdom's, so above 1 means wsdom does the same work with less CPU) is shown
    because it is far less sensitive to a busy machine."""
    rows = []

    def cpu_ratio(case, ours, theirs):
        return ratio(med(data, case, theirs, "cpu_us_per_op"), med(data, case, ours, "cpu_us_per_op"))

    def add(text, value, threshold, higher=True, cpu=None):
        c = "–" if cpu is None else f"{cpu:.2f}"
        if value is None:
            rows.append((text, "not measured", c, "n/a"))
            return
        ok = value >= threshold if higher else value <= threshold
        rows.append((text, f"{value:.2f}", c, "met" if ok else "**missed**"))

    def size_of(case):
        return CASES[case][2].split(", ")[1].split(" (")[0]

    for case in ("rr256", "rr8192", "rr100000"):
        th = PICOWS_TARGETS[case]
        add(f"Python rr {size_of(case)}: wsdom-py ÷ picows ≥ {th}",
            ratio(med(data, case, "wsdom-py"), med(data, case, "picows")), th,
            cpu=cpu_ratio(case, "wsdom-py", "picows"))
    add("Python rr 256 B: wsdom-py ÷ raw TCP ≥ 0.9",
        ratio(med(data, "rr256", "wsdom-py"), med(data, "rr256", "raw")), 0.9,
        cpu=cpu_ratio("rr256", "wsdom-py", "raw"))
    for case in ("push64", "push65536"):
        th = PICOWS_TARGETS[case]
        add(f"Python receive {size_of(case)}: wsdom-py ÷ picows ≥ {th}",
            ratio(med(data, case, "wsdom-py"), med(data, case, "picows")), th,
            cpu=cpu_ratio(case, "wsdom-py", "picows"))
    for peer in ("websockets", "aiohttp", "websocket-client"):
        worst, where, worst_cpu = None, None, None
        for case in CASES:
            # Issue #7's cases: compression (issue #9) has its own section.
            if case.startswith("conns") or case in Z_CASES:
                continue
            r = ratio(med(data, case, "wsdom-py"), med(data, case, peer))
            if r is not None and (worst is None or r < worst):
                worst, where = r, case
            cr = cpu_ratio(case, "wsdom-py", peer)
            if cr is not None and (worst_cpu is None or cr < worst_cpu):
                worst_cpu = cr
        add(f"Python: wsdom-py ahead of {peer} everywhere (lowest ratio: {where})", worst,
            1.0 + 1e-9, cpu=worst_cpu)
    for case in ("rr256", "rr8192", "rr100000"):
        add(f"C rr {size_of(case)}: wsdom-c ÷ tokio-tungstenite ≥ 0.95",
            ratio(med(data, case, "wsdom-c"), med(data, case, "tokio-tungstenite")), 0.95,
            cpu=cpu_ratio(case, "wsdom-c", "tokio-tungstenite"))
    for case in ("push64", "push65536"):
        add(f"C receive {size_of(case)}: wsdom-c ÷ tokio-tungstenite ≥ 0.9",
            ratio(med(data, case, "wsdom-c"), med(data, case, "tokio-tungstenite")), 0.9,
            cpu=cpu_ratio(case, "wsdom-c", "tokio-tungstenite"))
    for c in ("wsdom-rust", "wsdom-c", "wsdom-py"):
        slot = data["cases"].get("conns10000", {}).get("clients", {}).get(c)
        ok = bool(slot and slot["runs"] and not slot["errors"])
        n = slot["n"] if slot else 0
        rows.append((f"Scale: {c} holds {n:,} concurrent connections in one process",
                     "yes" if ok else "no", "–", "met" if ok and n >= 10000 else "**missed**"))
        rss = med(data, "conns10000", c, "rss_per_conn")
        add(f"Scale: {c} resident memory per idle connection ≤ 16 KiB (KiB)",
            rss / 1024 if rss is not None else None, 16.0, higher=False)
    return rows


def ceilings(data):
    """(target, needed ratio, ceiling ratio, what sets the ceiling) for the Python targets
    missed in this run whose ratio a client doing (next to) no work bounds, measured in the
    same run."""
    rows = []
    for case, floor, what in (
            ("rr100000", "ws-floor", "a WebSocket client that does no work (ws-floor) ÷ picows"),
            ("push64", "wsdom-py-empty",
             "wsdom-py with an onmessage that does nothing (wsdom-py-empty) ÷ picows")):
        needed = PICOWS_TARGETS[case]
        label = CASES[case][2].split(" (")[0].replace("round trips/s", "rr").replace(", ", " ")
        ours = ratio(med(data, case, "wsdom-py"), med(data, case, "picows"))
        if ours is not None and ours >= needed:
            continue
        r = ratio(med(data, case, floor), med(data, case, "picows"))
        rows.append((f"Python {label}", f"{needed}", rfmt(r), what))
    return rows


def render_md(data, png_name):
    m = data["meta"]
    L = []
    w = L.append
    w("# wsdom benchmark results\n")
    if m.get("smoke"):
        w("> **Smoke run**: a few iterations to check the harness; the numbers mean nothing.\n")
    w(f"Run {m['date']}, commit {m['commit']}; {m['config']['runs']} runs per case, "
      f"**median** with [min–max]; {m['elapsed_s']:.0f} s in all. Machine: {m['cpu']}, "
      f"kernel {m['kernel']}. Load average before / after: "
      f"{' '.join(f'{x:.2f}' for x in m['load_before'])} / "
      f"{' '.join(f'{x:.2f}' for x in m['load_after'])}.\n")
    w("Server `bench/src/bin/bench-server.rs` (tokio current_thread + tokio-tungstenite, "
      "TCP_NODELAY, no compression except on the compression cases' routes) pinned to CPU 0 "
      "with `taskset -c 0`, a fresh one per run; "
      "each client pinned to CPU 1; 127.0.0.1 only. Regenerate with `make bench` "
      "(`bench/run.sh`). Chart: "
      f"[{png_name}]({png_name}).\n")
    noisy = []
    for case, e in data["cases"].items():
        for c, s in e["clients"].items():
            fl = s.get("foreign_load")
            if fl and fl["max"] > 0.05:
                noisy.append((fl["max"], case, c))
    worst = max((x[0] for x in noisy), default=0.0)
    reruns = sum(max(r.get("attempts", 1) - 1, 0) for e in data["cases"].values()
                 for sl in e["clients"].values() for r in sl["runs"])
    w(f"**Noise.** For every run the harness measures the CPU time used by *other* processes "
      f"(from /proc/stat, minus the server's and the client's own): the share of the machine "
      f"they took. A run above {m['config'].get('noisy', 1.0):.0%} is repeated while the time budget "
      f"allows ({reruns} re-runs here) and the quietest attempt is kept. Even so, the worst "
      f"kept run saw {worst:.0%}, and {len(noisy)} client-cases had a kept run above 5% "
      f"(`foreign_load` in `results.json`). On this 2-vCPU VM an idle machine also makes "
      f"round trips *slower* (an idle vCPU takes long to wake; see peerbench.md), so rr rates "
      f"move with the background load too: compare rr by the CPU-time table, and treat rate "
      f"differences under ~10% as noise.\n")
    if data.get("skipped"):
        w("**Not measured:** " + "; ".join(f"{c}: {why}" for c, why in data["skipped"].items()) + "\n")

    w("## Targets (issue #7), ratios of medians from this run\n")
    w("Verdicts are on the measured ratio (rates). The CPU column is the other client's "
      "CPU time per operation ÷ wsdom's (above 1: wsdom needs less CPU for the same work), "
      "which a busy machine disturbs much less; see the CPU table below.\n")
    w("| target | measured | CPU-time ratio | |")
    w("|---|---|---|---|")
    for t, v, c, ok in targets(data):
        w(f"| {t} | {v} | {c} | {ok} |")
    w("")
    missed_ceilings = ceilings(data)
    if missed_ceilings:
        w("**Ceilings** of the Python targets missed above: the same ratio for a client that does "
          "(next to) no work, measured in the same run: how far any client could get on this "
          "machine and server. A target above its ceiling cannot be met by a faster wsdom.\n")
        w("| target | needed | ceiling | ceiling measured as |")
        w("|---|---|---|---|")
        for t, needed, r, what in missed_ceilings:
            w(f"| {t} | ≥ {needed} | {r} | {what} |")
        w("")

    def clients_of(cases):
        seen = [c for c in ORDER if any(c in data["cases"].get(k, {}).get("clients", {}) for k in cases)]
        return seen

    def section(title, cases, note, key="rate", raw_ok=True, mb=False):
        cases = [k for k in cases if k in data["cases"]]
        if not cases:
            return
        w(f"## {title}\n")
        w(note + "\n")
        head = "| client | lang | " + " | ".join(CASES[k][2] for k in cases)
        head += " | ÷ wsdom (same language) |" + (" % of raw |" if raw_ok else "")
        w(head)
        w("|" + "---|" * (len(cases) + 3 + (1 if raw_ok else 0)))
        for c in clients_of(cases):
            lang = CLIENTS[c][0]
            cells, rw, rr = [], [], []
            for k in cases:
                slot = data["cases"][k]["clients"].get(c)
                if not slot:
                    cells.append("–")
                    rw.append("–")
                    rr.append("–")
                    continue
                txt = cell(slot, key)
                if mb and slot.get("mbps"):
                    txt += f"<br>{slot['mbps']['median']:,.0f} MB/s"
                if slot["errors"]:
                    txt += f" ({len(slot['errors'])} failed)"
                cells.append(txt)
                rw.append(rfmt(ratio(med(data, k, c, key), med(data, k, WSDOM_OF[lang], key))))
                rr.append((f"{100 * ratio(med(data, k, c, key), med(data, k, 'raw', key)):.0f}%"
                           if med(data, k, "raw", key) and med(data, k, c, key) else "–"))
            name = f"**{c}**" if c.startswith("wsdom") else c
            row = f"| {name} | {lang} | " + " | ".join(cells) + " | " + " / ".join(rw) + " |"
            if raw_ok:
                row += " " + " / ".join(rr) + " |"
            w(row)
        w("")

    section("Round trips on one connection (round trips/s, higher is better)",
            ["rr256", "rr8192", "rr100000"],
            "Send a binary message, await its echo, send the next (callback clients send from "
            "their message callback). After the warm-up, count for "
            f"{m['config']['rr_duration']} s. raw = C ping-pong of the same bytes with no "
            "framing (the loopback floor). ws-floor = the same C client with WebSocket frames "
            "against the echo route, doing no work itself (frame encoded once with mask key 0, "
            "echo skipped without a copy): the floor of any WebSocket client against this "
            "server.")
    section("Receive rate from the push server (messages/s, higher is better)",
            ["push64", "push65536"],
            "The server writes N pre-encoded binary messages, then the text `done`; timed from "
            "the client's open event (handshake complete) to `done`. wsdom-py calls a Python "
            "`onmessage` per message; wsdom-py-empty is the same with an `onmessage` that does "
            "nothing (the floor of a Python call per message). raw = a C frame skipper that "
            "never copies payloads (the "
            "server + loopback ceiling). N per client is sized by a pilot run to last ~"
            f"{m['config']['stream_seconds']} s.", mb=True)
    section("Send rate to the sink server (messages/s, higher is better)",
            ["send64", "send65536"],
            "The client sends N binary messages; the server counts them with a frame skipper "
            "and answers `done` after the last; timed from open to `done`. wsdom clients send "
            "from the main thread and wait while bufferedAmount > 4 MiB; tokio-tungstenite "
            "`feed`s each message and flushes once; raw writes ~1 MiB blocks of pre-masked "
            "frames (the ceiling).", mb=True)
    section("Connection setup on one thread (open + close per second, higher is better)",
            ["setup"],
            "Open a connection, wait for open, close, wait for the close event; repeat for "
            f"{m['config']['setup_duration']} s. raw = connect, fixed upgrade, Close frame, EOF.")
    cc = [k for k in ("conns1000", "conns10000") if k in data["cases"]]
    if cc:
        w("## Many concurrent connections from one process\n")
        w("Open N connections at once and wait until all are open; then send one 32-byte message "
          "on each and wait for every echo; then read the resident set size (RSS): memory per "
          "idle open connection = (RSS after − RSS before opening) ÷ N. Connections per second "
          "= N ÷ time to open all.\n")
        w("| client | lang | " + " | ".join(
            f"{CASES[k][2]}: open/s | echo all (ms) | RSS per conn (KiB)" for k in cc) + " |")
        w("|" + "---|" * (2 + 3 * len(cc)))
        for c in clients_of(cc):
            cells = []
            for k in cc:
                slot = data["cases"][k]["clients"].get(c)
                if not slot or not slot.get("rate"):
                    cells += ["–"] * 3
                    if slot and slot["errors"]:
                        cells[-3] = f"failed: {slot['errors'][0]['error']}"
                    continue
                cells += [cell(slot, "rate"), cell(slot, "echo_s", 1000, 1),
                          cell(slot, "rss_per_conn", 1 / 1024, 1)]
            name = f"**{c}**" if c.startswith("wsdom") else c
            w(f"| {name} | {CLIENTS[c][0]} | " + " | ".join(cells) + " |")
        w("")

    render_compression(data, w)

    cpu_cases = [k for k in CASES if not k.startswith("conns") and k in data["cases"]]
    if cpu_cases:
        w("## Client CPU time per operation (µs, lower is better)\n")
        w("CPU time (user + system, all threads) the client process used inside the timed "
          "window, divided by the round trips / messages / connections in it. Unlike the "
          "rates above it hardly changes when other processes compete for the CPU, so it is "
          "the better comparison on a busy machine. It includes the kernel's TCP work done "
          "in the client's context (on loopback, part of the receiving side's too).\n")
        short = {"rr256": "rr 256 B", "rr8192": "rr 8 KiB", "rr100000": "rr 100 KB",
                 "push64": "receive 64 B", "push65536": "receive 64 KiB", "send64": "send 64 B",
                 "send65536": "send 64 KiB", "setup": "open + close",
                 "zpushjson": "receive JSON, deflate", "zsendjson": "send JSON, deflate",
                 "zsendrandom": "send random 16 KiB, deflate"}
        w("| client | lang | " + " | ".join(short.get(k, k) for k in cpu_cases) + " |")
        w("|" + "---|" * (2 + len(cpu_cases)))
        for c in clients_of(cpu_cases):
            if c == "chromium":
                continue  # not measured (several processes)
            cells = []
            for k in cpu_cases:
                slot = data["cases"][k]["clients"].get(c)
                v = slot.get("cpu_us_per_op") if slot else None
                cells.append("–" if not v else f"{v['median']:.3g}")
            name = f"**{c}**" if c.startswith("wsdom") else c
            w(f"| {name} | {CLIENTS[c][0]} | " + " | ".join(cells) + " |")
        w("")

    w("## Clients\n")
    w("- **raw** (C, `bench/c/raw_client.c`): blocking sockets, TCP_NODELAY. rr: plain TCP "
      "ping-pong after an upgrade to `/raw` (the server echoes bytes as they arrive). push: "
      "frame skipper over one 256 KiB buffer. send: ~1 MiB blocks of pre-masked frames.")
    w("- **wsdom-rust** (`bench/src/bin/client-wsdom.rs`), **wsdom-c** (`bench/c/wsdom_client.c`), "
      "**wsdom-py** (`bench/py/client_wsdom.py`): callbacks on wsdom's I/O thread (the "
      "default); the next message is sent from inside the message callback. Python: "
      "`onmessage` per message, binaryType `arraybuffer`. Deflate off (Rust `deflate: false`, "
      "Python `deflate=False`; C offers it by default, which the plain routes ignore), except "
      "in the compression cases: on, wsdom's defaults (`deflate: true` / `deflate=True` / "
      "`ws_options_set_deflate(opts, true)`, threshold 0).")
    w("- **tokio-tungstenite** (`bench/src/bin/client-tokio-tungstenite.rs`): current_thread "
      "runtime, `connect_async_with_config(.., disable_nagle=true)`, `send` + `next`.")
    w("- **picows**: `ws_connect` + `WSListener` on uvloop (aiofastnet), `enable_auto_ping=False`.")
    w("- **websockets**: `websockets.asyncio.client.connect(url, compression=None, "
      "max_size=None, ping_interval=None)` on asyncio; in the compression cases "
      "`compression=\"deflate\"` (its defaults: memLevel 5, zlib's default level).")
    w("- **aiohttp**: `ClientSession().ws_connect(url, compress=0, max_msg_size=0)` on asyncio; "
      "in the compression cases `compress=15`.")
    w("- **websocket-client**: blocking `create_connection(url, sockopt=TCP_NODELAY)`, "
      "defaults otherwise (no wsaccel). Not in the many-connections case (one thread per "
      "connection).")
    w("- **chromium** (`bench/node/client_chromium.mjs`): headless Chromium (Debian's, driven by "
      "playwright-core from `tests/browser/node_modules`), the page's own `WebSocket` sending "
      "the JSON pool to `/zsink` in a loop from `onopen`; only in the JSON send case. Skipped "
      "(and named under *Not measured*) when Chromium, Node >= 20 or playwright-core is missing.")
    w("")
    w("Every payload of the plain cases is 0x5a bytes; the compression cases cycle through "
      "the message pools of `bench/pools.py`. Every client checks each echoed / received length. Push "
      "and sink frames are written/skipped by the server without tungstenite's per-message "
      "path so that the server is not the limit (peerbench.md); the server CPU time of each "
      "run is in the JSON (`server_cpu_s`).\n")
    w("## Versions\n")
    w("| component | version |")
    w("|---|---|")
    for k, v in m["versions"].items():
        w(f"| {k} | {v} |")
    w(f"| kernel | {m['kernel']} |")
    w(f"| cpu | {m['cpu']} |")
    w("")
    return "\n".join(L)


def render_compression(data, w):
    """The section of the compression cases (issue #9)."""
    cases = [k for k in Z_CASES if k in data["cases"]]
    if not cases:
        return
    m = data["meta"]
    pl = m.get("pools", {})
    pj, pr = pl.get("json"), pl.get("random")
    w("## Compression: permessage-deflate (issue #9)\n")
    desc = []
    if pj:
        desc.append(f"**JSON**: {pj['count']:,} distinct JSON records (compact, UTF-8, "
                    f"{pj['min']:,}–{pj['max']:,} bytes, mean {pj['mean']:,.0f}: order events "
                    f"with ids, names, e-mails, timestamps, UUIDs, nested objects and arrays, "
                    f"floats), sent as text")
    if pr:
        desc.append(f"**random**: {pr['count']} blobs of {pr['mean']:,.0f} pseudo-random bytes, "
                    f"sent as binary")
    w("Every client that has permessage-deflate, with it on, against bench-server's "
      "compression routes; each cycles through the same message pool (`bench/pools.py`, "
      "written to `bench/build/pools/`): " + "; ".join(desc) + ". Every run sends whole passes "
      "over the pool, so per-message figures average over the same messages. The server "
      "answers `permessage-deflate; server_no_context_takeover` (+ `client_max_window_bits=15` "
      "when offered), so clients keep their compression context across messages "
      "(context takeover) with a 15-bit window unless their own settings say otherwise; a "
      "client that does not offer the extension is refused, so no run measures without it. "
      + ("bench-server also inflated every message it received and checked it against the "
         "pool, " + ("in every run. " if m["config"].get("verify") == "all" else
                     "in each client's pilot run and in Chromium's run (the measured runs only "
                     "count, so that it stays far from being the limit). ")
         if m["config"].get("verify") else "")
      + "MB/s counts uncompressed payload bytes. picows, tokio-tungstenite and "
      "websocket-client have no permessage-deflate and are not in these cases.\n")
    w("- **receive JSON** (`/zpush`): the server sends N messages of the pool, each compressed "
      "once up front (zlib's default level, no context takeover, RSV1 on every frame), in "
      "~1 MiB blocks, then `done`; timed from open to `done`. Clients inflate, validate UTF-8 "
      "and check each message's length against the pool (and that it starts with `{`).")
    w("- **send JSON** / **send random** (`/zsink`): the client sends N messages; the server "
      "counts them with the frame skipper, adds up the bytes of the data frames on the wire "
      "(header, mask key, payload) and the messages that arrived compressed (RSV1), and "
      "answers `done <wire bytes> <compressed>` after the last; timed from open to `done`. "
      "A JSON run in which no message arrived compressed fails.\n")

    def zcell(slot, key, fmt_=None):
        s = slot.get(key) if slot else None
        if not s:
            return "–"
        f = fmt_ or fmt
        return f"**{f(s['median'])}** [{f(s['min'])}–{f(s['max'])}]"

    clients = [c for c in ORDER if any(c in data["cases"][k]["clients"] for k in cases)]
    w("### Throughput (messages/s and uncompressed MB/s, higher is better)\n")
    w("Ratios: the client's median ÷ the median of wsdom in the same language "
      "(Python peers ÷ wsdom-py). Chromium's rate is timed inside the page (from `open` to "
      "`done`, Playwright's round trips outside it) with all of the browser's processes on "
      "CPU 1: indicative only, not comparable with the others.\n")
    w("| client | lang | " + " | ".join(CASES[k][2] for k in cases) + " | ÷ wsdom (same language) |")
    w("|" + "---|" * (len(cases) + 3))
    for c in clients:
        lang = CLIENTS[c][0]
        cells, rw = [], []
        for k in cases:
            slot = data["cases"][k]["clients"].get(c)
            if not slot:
                cells.append("–")
                rw.append("–")
                continue
            txt = zcell(slot, "rate")
            if slot.get("mbps"):
                txt += f"<br>{slot['mbps']['median']:,.0f} MB/s"
            if c == "chromium" and slot.get("rate"):
                txt += " (in-page, indicative)"
            if slot["errors"]:
                txt += f" ({len(slot['errors'])} failed: {slot['errors'][0]['error']})"
            cells.append(txt)
            ours = WSDOM_OF.get(lang)
            rw.append(rfmt(ratio(med(data, k, c), med(data, k, ours))) if ours else "–")
        name = f"**{c}**" if c.startswith("wsdom") else c
        w(f"| {name} | {lang} | " + " | ".join(cells) + " | " + " / ".join(rw) + " |")
    w("")
    sends = [k for k in cases if CASES[k][0] == "zsend"]
    if not sends:
        return
    w("### Bytes on the wire, client to server (lower is better)\n")
    w("Per message: the sink's count of the data frames' bytes (frame header, mask key and "
      "payload) ÷ messages, for the same messages from every client. Ratio = payload bytes "
      "÷ wire bytes (higher is better). Compressed = share of the messages sent with RSV1 "
      "(a client may send a message plain when compression does not shrink it). "
      "÷ wsdom = wire bytes ÷ wsdom's (wsdom-rust, wsdom-c and wsdom-py share one "
      "compressor; shown is wsdom-py's, else the first measured).\n")
    head = "| client | " + " | ".join(
        f"{CASES[k][2].split(',')[0].replace('send ', '')}: B/msg | ratio | compressed | ÷ wsdom"
        for k in sends) + " |"
    w(head)
    w("|" + "---|" * (1 + 4 * len(sends)))

    def wsdom_wire(k):
        for c in ("wsdom-py", "wsdom-rust", "wsdom-c"):
            v = med(data, k, c, "wire_per_msg")
            if v:
                return v
        return None

    for c in clients:
        if not any(c in data["cases"][k]["clients"] for k in sends):
            continue
        cells = []
        for k in sends:
            slot = data["cases"][k]["clients"].get(c)
            if not slot or not slot.get("wire_per_msg"):
                cells += ["–"] * 4
                continue
            wpm = slot["wire_per_msg"]["median"]
            cells += [f"**{wpm:,.1f}**", f"{slot['zratio']['median']:.2f}",
                      f"{100 * slot['rsv1_share']['median']:.0f}%",
                      rfmt(ratio(wpm, wsdom_wire(k)))]
        name = f"**{c}**" if c.startswith("wsdom") else c
        w(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for k in sends:
        p = pl.get(CASES[k][1])
        if p:
            cells += [f"{p['plain_wire_mean']:,.1f}", f"{p['mean'] / p['plain_wire_mean']:.2f}",
                      "0%", rfmt(ratio(p["plain_wire_mean"], wsdom_wire(k)))]
        else:
            cells += ["–"] * 4
    w("| *uncompressed (any client)* | " + " | ".join(cells) + " |")
    w("")
    if "chromium" in data.get("skipped", {}):
        w(f"Chromium was not measured: {data['skipped']['chromium']}.\n")


def render_png(data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    panels = [
        ("rr256", "rate", "round trips/s, 256 B", 1),
        ("rr8192", "rate", "round trips/s, 8 KiB", 1),
        ("rr100000", "rate", "round trips/s, 100 KB", 1),
        ("setup", "rate", "open+close per s", 1),
        ("push64", "rate", "receive 64 B: msg/s", 1),
        ("push65536", "mbps", "receive 64 KiB: MB/s", 1),
        ("send64", "rate", "send 64 B: msg/s", 1),
        ("send65536", "mbps", "send 64 KiB: MB/s", 1),
        ("conns1000", "rate", "1k conns: opened per s", 1),
        ("conns10000", "rate", "10k conns: opened per s", 1),
        ("conns10000", "echo_s", "10k conns: echo all (ms, lower better)", 1000),
        ("conns10000", "rss_per_conn", "10k conns: KiB RSS / conn (lower better)", 1 / 1024),
        ("zpushjson", "mbps", "receive JSON, deflate: MB/s", 1),
        ("zsendjson", "mbps", "send JSON, deflate: MB/s (chromium: in-page)", 1),
        ("zsendrandom", "mbps", "send random 16 KiB, deflate: MB/s", 1),
        ("zsendjson", "wire_per_msg", "send JSON: wire bytes / msg (lower better)", 1),
    ]
    panels = [p for p in panels if p[0] in data["cases"]]
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(20, 4.2 * rows), squeeze=False)
    colors = {"wsdom-rust": "#d9480f", "wsdom-c": "#e8590c", "wsdom-py": "#f76707", "raw": "#868e96",
              "ws-floor": "#adb5bd", "wsdom-py-empty": "#ffc078", "chromium": "#37b24d"}
    for ax, (case, key, title, scale) in zip(axes.flat, panels):
        clients = data["cases"][case]["clients"]
        items = [(c, s[key]) for c, s in clients.items() if s.get(key)]
        items.sort(key=lambda x: x[1]["median"])
        note = None
        others = [s["median"] for c, s in items if c != "raw"]
        raw = next((s for c, s in items if c == "raw"), None)
        if raw and others and raw["median"] > 2.5 * max(others):
            # The raw limit would squash every other bar: say it in words instead.
            items = [(c, s) for c, s in items if c != "raw"]
            note = f"raw limit: {fmt(raw['median'] * scale)} (off scale)"

        names = [c for c, _ in items]
        vals = [s["median"] * scale for _, s in items]
        lo = [max((s["median"] - s["min"]) * scale, 0) for _, s in items]
        hi = [max((s["max"] - s["median"]) * scale, 0) for _, s in items]
        ax.barh(names, vals, xerr=[lo, hi], color=[colors.get(c, "#4c6ef5") for c in names],
                capsize=3, ecolor="#333")
        for y, (v, h) in enumerate(zip(vals, hi)):
            ax.text(v + h, y, "  " + fmt(v), va="center", fontsize=8)
        ax.set_title(title, fontsize=11)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v) if v else "0"))
        if note:
            ax.text(0.98, 0.02, note, transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=9, color="#555")
        ax.tick_params(axis="y", labelsize=9)
        ax.tick_params(axis="x", labelsize=8)
        if vals:
            ax.set_xlim(0, max(v + h for v, h in zip(vals, hi)) * 1.25)
        for label in ax.get_yticklabels():
            if label.get_text().startswith("wsdom"):
                label.set_fontweight("bold")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    m = data["meta"]
    fig.suptitle(f"wsdom vs peers, loopback, server on CPU 0 / client on CPU 1 — median of "
                 f"{m['config']['runs']} runs, bars min–max — {m['date']}"
                 + ("  [SMOKE: meaningless]" if m.get("smoke") else ""), fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=80)


def main_report(opts):
    data = json.loads(Path(opts.results).read_text())
    md = Path(opts.md)
    png = Path(opts.png)
    md.write_text(render_md(data, os.path.relpath(png, md.parent)))
    try:
        render_png(data, png)
    except ImportError as e:
        log(f"!! no chart: {e}")
    log(f"wrote {md} and {png}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--smoke", action="store_true")
    r.add_argument("--clients")
    r.add_argument("--cases")
    r.add_argument("--runs", type=int)
    r.add_argument("--out", required=True)
    g = sub.add_parser("report")
    g.add_argument("--results", required=True)
    g.add_argument("--md", default=str(BENCH / "RESULTS.md"))
    g.add_argument("--png", default=str(BENCH / "results.png"))
    opts = p.parse_args()
    sys.exit(main_run(opts) if opts.cmd == "run" else main_report(opts))


if __name__ == "__main__":
    main()
