"""Handlers that raise, under load (issue #8, part 6): many sockets whose `on*` handlers raise
all kinds of exceptions (including KeyboardInterrupt, SystemExit, RecursionError and
exceptions whose __str__ raises) on random events, while a second listener of each event
records it. Every event must still reach every listener, in order; every exception must be
reported to sys.unraisablehook (exactly once); nothing may crash or hang.

    python misuse_handlers.py short|stress
"""

from __future__ import annotations

import random
import sys
import threading
import time

import relcommon as rc
from wsdom import WebSocket


class BadStr(Exception):
    def __str__(self):
        raise ValueError("__str__ of the exception raises too")


def recurse(n=0):
    return recurse(n + 1)


RAISERS = [
    lambda: (_ for _ in ()).throw(RuntimeError("expected")),
    lambda: {}["missing"],
    lambda: 1 / 0,
    lambda: (_ for _ in ()).throw(KeyboardInterrupt()),
    lambda: (_ for _ in ()).throw(SystemExit(3)),
    lambda: (_ for _ in ()).throw(BadStr()),
    recurse,
    lambda: (_ for _ in ()).throw(MemoryError("pretend")),
]

lock = threading.Lock()
reported = []


def hook(info) -> None:
    with lock:
        reported.append(info.exc_type)


def main() -> None:
    stress = len(sys.argv) > 1 and sys.argv[1] == "stress"
    n, m = (1000, 100) if stress else (200, 20)
    sys.unraisablehook = hook
    rng = random.Random(3)
    raised = [0]
    socks, logs = [], []
    t0 = time.monotonic()
    for i in range(n):
        log = []
        ws = WebSocket(rc.url("/echo", rc.BULK_PORT), proxy=False)
        plan = rng.random()

        def bad(event, ws=ws, plan=plan):
            if rng.random() < plan:
                with lock:
                    raised[0] += 1
                rng.choice(RAISERS)()

        def record(event, ws=ws, log=log):
            log.append(event.type if event.type != "message" else event.data)
            if event.type == "open":
                for k in range(m):
                    ws.send(f"m{k}")
            elif event.type == "message" and event.data == f"m{m - 1}":
                ws.close(1000)

        for t in ("open", "message", "error", "close"):
            setattr(ws, "on" + t, bad)  # the on* handler runs first and may raise
            ws.addEventListener(t, record)
        socks.append(ws)
        logs.append(log)
    for ws in socks:
        if not ws.wait_closed(60):
            rc.fail("a socket did not close within 60 s")
            break
    deadline = time.monotonic() + 10
    while len(reported) < raised[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    expected = ["open"] + [f"m{k}" for k in range(m)] + ["close"]
    wrong = [i for i, log in enumerate(logs) if log != expected]
    for i in wrong[:3]:
        rc.fail(f"socket {i}: the recording listener saw {logs[i][:5]}...{logs[i][-3:]}")
    if len(reported) != raised[0]:
        rc.fail(f"{raised[0]} exceptions raised, {len(reported)} reported")
    kinds = sorted({t.__name__ for t in reported})
    print(f"misuse (Python handlers that raise): {n} sockets x {m} messages in "
          f"{time.monotonic() - t0:.1f} s: {raised[0]} exceptions raised and reported "
          f"({', '.join(kinds)}); {n - len(wrong)}/{n} sockets saw every event in order",
          flush=True)
    rc.finish("misuse_handlers")


if __name__ == "__main__":
    main()
