"""Load from Python (issue #8, part 3): N concurrent connections each echo M messages of random
size (1 B to 64 KiB, log-uniform plus the frame-length boundaries) and type (str with 1- to
4-byte characters, or bytes) through the non-recording echo server; every message must come back
exactly once, in order, byte-identical (length, type and BLAKE2b checked in the handler).
A quarter of the connections use permessage-deflate.

    python load.py N M [TIMEOUT_S]
"""

from __future__ import annotations

import collections
import random
import sys
import threading
import time

import relcommon as rc
from wsdom import WebSocket

WINDOW = 4


class Conn:
    def __init__(self, i: int, m: int, done: threading.Semaphore):
        self.i, self.m, self.done = i, m, done
        self.rng = random.Random(i)
        self.expected: collections.deque = collections.deque()
        self.sent = self.received = self.bad = 0
        self.close = None
        self.error = ""
        path = "/deflate" if i % 4 == 3 else "/echo"
        self.ws = WebSocket(rc.url(path, rc.BULK_PORT), proxy=False, binaryType="arraybuffer",
                            connect_timeout=60, onopen=self.onopen, onmessage=self.onmessage,
                            onerror=self.onerror, onclose=self.onclose)

    def send_next(self) -> None:
        msg = rc.make_message(self.rng)
        self.expected.append(rc.digest(msg))
        self.sent += 1
        self.ws.send(msg)

    def onopen(self, _event) -> None:
        while self.sent < min(self.m, WINDOW):
            self.send_next()

    def onmessage(self, event) -> None:
        self.received += 1
        got = rc.digest(event.data)
        if not self.expected or self.expected.popleft() != got:
            self.bad += 1
        if self.sent < self.m:
            self.send_next()
        elif self.received == self.m:
            self.ws.close(1000, "done")

    def onerror(self, event) -> None:
        self.error = getattr(event, "message", "") or "error"

    def onclose(self, event) -> None:
        self.close = (event.code, event.wasClean)
        self.done.release()


def main() -> None:
    n, m = int(sys.argv[1]), int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 120
    done = threading.Semaphore(0)
    rss0 = rc.rss_kb()
    t0 = time.monotonic()
    conns = [Conn(i, m, done) for i in range(n)]
    finished = 0
    deadline = t0 + timeout
    last = t0
    while finished < n and time.monotonic() < deadline:
        if done.acquire(timeout=0.5):
            finished += 1
        if time.monotonic() - last > 10:
            last = time.monotonic()
            print(f"   ... {last - t0:.0f} s: {finished}/{n} connections done", flush=True)
    secs = time.monotonic() - t0
    peak = rc.rss_kb()
    sent = sum(c.sent for c in conns)
    received = sum(c.received for c in conns)
    bad = sum(c.bad for c in conns)
    failed = [c for c in conns if c.close != (1000, True) or c.received != m or c.bad]
    for c in failed[:5]:
        rc.fail(f"connection {c.i}: sent {c.sent} received {c.received} bad {c.bad} "
                f"close {c.close} {c.error}")
    print(f"load (Python): {n} connections x {m} messages in {secs:.1f} s: {sent} sent, "
          f"{received - bad} received in order and byte-identical, {bad} mismatched; "
          f"{len(failed)} failed connections; {received / secs:.0f} msg/s; "
          f"RSS {peak} KiB (start {rss0} KiB)", flush=True)
    if received != n * m or bad:
        rc.fail("every message exactly once, in order, byte-identical")
    rc.finish("load")


if __name__ == "__main__":
    main()
