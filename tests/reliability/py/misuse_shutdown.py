"""Interpreter shutdown mid-transfer (issue #8, part 6): child interpreters with floods of
messages arriving, threads sending, and handlers running exit at a random moment, in every way a
Python program can end. Each must end promptly (15 s), with the exit status its way implies,
and without a crash: no "Fatal Python error", no signal other than the one sent, no panic,
no traceback other than the one raised on purpose.

    python misuse_shutdown.py short|stress
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import relcommon as rc

PRELUDE = """
import os, sys, threading, time, random
from wsdom import WebSocket
PUSH = {push!r}
ECHO = {echo!r}
DELAY = {delay!r}
socks = []
for i in range(6):
    ws = WebSocket(PUSH, proxy=False)
    ws.onmessage = lambda e: None
    socks.append(ws)
def sender():
    ws = WebSocket(ECHO, proxy=False)
    ws.onmessage = lambda e: None
    ws.wait_open(10)
    try:
        while True:
            ws.send(b"s" * 4096)
            time.sleep(0.0005)
    except Exception:
        pass
for _ in range(2):
    threading.Thread(target=sender, daemon=True).start()
slow = WebSocket(ECHO, proxy=False)
slow.onopen = lambda e: slow.send("x")
slow.onmessage = lambda e: (time.sleep(0.05), slow.send("x"))
socks[0].wait_open(10)
slow.wait_open(10)
time.sleep(DELAY)
"""

# name: (code run after the prelude, expected exit status (negative: signal), traceback marker)
ENDINGS = {
    "end of the script": ("", 0, None),
    "sys.exit(0)": ("sys.exit(0)", 0, None),
    "sys.exit(7)": ("sys.exit(7)", 7, None),
    "os._exit(0)": ("os._exit(0)", 0, None),
    "uncaught exception": ("raise RuntimeError('marker-uncaught')", 1, "marker-uncaught"),
    # An uncaught KeyboardInterrupt ends Python with SIGINT (3.8+).
    "KeyboardInterrupt": ("raise KeyboardInterrupt", -signal.SIGINT, "KeyboardInterrupt"),
    "SIGTERM": ("os.kill(os.getpid(), 15); time.sleep(10)", -signal.SIGTERM, None),
    "os._exit from a handler": (
        "slow.onmessage = lambda e: os._exit(0)\nslow.send('y')\ntime.sleep(10)", 0, None),
    "sys.exit in a thread, then the end": (
        "t = threading.Thread(target=sys.exit, args=(5,)); t.start(); t.join()", 0, None),
    "exit while a handler blocks": (
        "slow.onmessage = lambda e: time.sleep(3)\nslow.send('y')\ntime.sleep(0.1)", 0, None),
}

BAD = ("Fatal Python error", "panicked", "Segmentation fault", "core dumped", "AddressSanitizer")


def main() -> None:
    stress = len(sys.argv) > 1 and sys.argv[1] == "stress"
    per_ending = 20 if stress else 1
    rng = random.Random(11)
    push = rc.url("/push?n=200000&size=500&type=binary")
    echo = rc.url("/echo", rc.BULK_PORT)
    runs = 0
    slowest = 0.0
    t0 = time.monotonic()
    for name, (ending, status, marker) in ENDINGS.items():
        for _ in range(per_ending):
            code = PRELUDE.format(push=push, echo=echo, delay=rng.random() * 0.3) + "\n" + \
                textwrap.dedent(ending) + "\n"
            start = time.monotonic()
            try:
                p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   timeout=15)
            except subprocess.TimeoutExpired:
                rc.fail(f"{name}: the interpreter did not exit within 15 s (hang)")
                continue
            took = time.monotonic() - start
            slowest = max(slowest, took)
            runs += 1
            err = p.stderr
            if p.returncode != status:
                rc.fail(f"{name}: exit status {p.returncode}, expected {status}: {err[-800:]}")
            if any(b in err for b in BAD):
                rc.fail(f"{name}: crash report on stderr: {err[-800:]}")
            if "Traceback" in err and (marker is None or marker not in err):
                rc.fail(f"{name}: unexpected traceback: {err[-800:]}")
    print(f"misuse (Python shutdown mid-transfer): {runs} interpreters ended {len(ENDINGS)} ways "
          f"with floods, senders and busy handlers in flight, in {time.monotonic() - t0:.1f} s; "
          f"slowest exit {slowest:.2f} s", flush=True)
    rc.finish("misuse_shutdown")


if __name__ == "__main__":
    main()
