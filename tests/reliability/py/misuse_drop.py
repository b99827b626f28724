"""Sockets dropped without close() (issue #8, part 6): rounds of sockets abandoned in every
state — connecting, open with a flood of messages arriving (/push), open with megabytes still
buffered to send, inside their own handler (which removes the handlers and drops the last
reference) — then garbage-collected. As in a browser, a socket with no listener left is
collected and its connection closed by the library. After each round the descriptors return
to their baseline, and RSS (after gc + malloc_trim) does not grow from round to round.

    python misuse_drop.py short|stress
"""

from __future__ import annotations

import gc
import sys
import time

import relcommon as rc
from wsdom import WebSocket

held = []


def round_(n: int) -> None:
    socks = []
    for i in range(n):
        kind = i % 4
        if kind == 0:  # connecting
            socks.append(WebSocket(rc.url("/delay-handshake?ms=200"), proxy=False))
        elif kind == 1:  # a flood arriving
            ws = WebSocket(rc.url("/push?n=2000&size=1000&type=binary"), proxy=False)
            ws.onmessage = lambda e: None
            socks.append(ws)
        elif kind == 2:  # megabytes buffered to send to a server that does not read
            ws = WebSocket(rc.url("/stall", rc.FAULT_PORT), proxy=False, close_timeout=0.5)

            def flood(e, ws=ws):
                for _ in range(8):
                    ws.send(b"z" * (256 << 10))
            ws.onopen = flood
            socks.append(ws)
        else:  # dropped from inside its own handler
            ws = WebSocket(rc.url("/echo", rc.BULK_PORT), proxy=False)

            def drop_self(e):
                me = e.target
                me.onopen = me.onmessage = None
                held.remove(me)
            ws.onopen = drop_self
            held.append(ws)
    time.sleep(0.3)  # let the transfers start
    for ws in socks:
        ws.onopen = ws.onmessage = None
    socks.clear()
    gc.collect()


def main() -> None:
    stress = len(sys.argv) > 1 and sys.argv[1] == "stress"
    rounds, n = (40, 200) if stress else (5, 200)
    warm = WebSocket(rc.url("/echo", rc.BULK_PORT), proxy=False)
    warm.onopen = lambda e: warm.close()
    warm.wait_closed(10)
    del warm
    time.sleep(0.2)
    fds_base = rc.fd_count()
    rss = []
    t0 = time.monotonic()
    for r in range(rounds):
        round_(n)
        deadline = time.monotonic() + 15
        while (rc.fd_count() > fds_base or held) and time.monotonic() < deadline:
            gc.collect()
            time.sleep(0.05)
        if rc.fd_count() > fds_base or held:
            rc.fail(f"round {r}: descriptors {rc.fd_count()} > {fds_base}, {len(held)} "
                    "sockets not dropped by their handler")
            break
        rss.append(rc.rss_kb(trim=True))
    growth = rss[-1] - rss[0] if rss else 0
    print(f"misuse (Python dropped sockets): {rounds} rounds x {n} sockets dropped without close "
          f"in {time.monotonic() - t0:.1f} s; descriptors back to {fds_base} after every round; "
          f"RSS after round 1 {rss[0] if rss else 0} KiB, after round {len(rss)} "
          f"{rss[-1] if rss else 0} KiB", flush=True)
    if rss and growth > max(4096, rss[0] // 10):
        rc.fail(f"RSS grew by {growth} KiB")
    rc.finish("misuse_drop")


if __name__ == "__main__":
    main()
