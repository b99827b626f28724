"""Soak from Python (issue #8, part 3): connections churn for SECONDS while RSS is sampled
(after gc.collect() and malloc_trim) twice a second; memory must not grow.

Each of 48 slots runs one connection after another: echo 1-100 messages of 1 B-16 KiB (checked
in order, byte for byte) then close; a /deflate echo; the server closes (4001); the server
drops TCP; a 404; a socket whose handlers are removed and which is dropped without close()
while messages flow (garbage-collected, as in a browser: closed by the library); a handler that
raises. Criterion as in C: the peak of the last quarter of the samples is at most the peak of
the second quarter + max(2 MiB, 5%); descriptors back to their count after the first
connection.

    python soak.py SECONDS
"""

from __future__ import annotations

import collections
import random
import sys
import threading
import time

import relcommon as rc
from wsdom import WebSocket

SLOTS = 48
SCENARIOS = ["echo", "echo", "deflate", "server-close", "drop", "404", "dropped", "raises"]
stats = {"connections": 0, "messages": 0, "raised": 0}


def unraisable(_args) -> None:
    stats["raised"] += 1


class Conn:
    """One connection of a slot, with its own handlers and state."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.kind = rng.choice(SCENARIOS)
        self.target = rng.randrange(1, 101)
        self.sent = self.received = self.bad = 0
        self.expected: collections.deque = collections.deque()
        self.closed = None
        self.t0 = time.monotonic()
        stats["connections"] += 1
        path, port = {"echo": ("/echo", rc.BULK_PORT), "deflate": ("/deflate", rc.BULK_PORT),
                      "raises": ("/echo", rc.BULK_PORT), "dropped": ("/echo", rc.BULK_PORT),
                      "server-close": ("/close?code=4001&after_ms=20", rc.PORT),
                      "drop": ("/drop?after_ms=20", rc.PORT),
                      "404": ("/raw?status=404", rc.PORT)}[self.kind]
        self.ws = WebSocket(rc.url(path, port), proxy=False, binaryType="arraybuffer",
                            onopen=self.onopen, onmessage=self.onmessage, onclose=self.onclose)

    def send_next(self, ws) -> None:
        msg = rc.make_message(self.rng, 16384)
        self.expected.append(rc.digest(msg))
        self.sent += 1
        ws.send(msg)

    def onopen(self, event) -> None:
        if self.kind in ("echo", "deflate", "raises", "dropped"):
            for _ in range(min(4, self.target)):
                self.send_next(event.target)

    def onmessage(self, event) -> None:
        ws = event.target
        self.received += 1
        stats["messages"] += 1
        if not self.expected or self.expected.popleft() != rc.digest(event.data):
            self.bad += 1
        if self.sent < self.target:
            self.send_next(ws)
        elif self.received == self.target:
            ws.close(1000)
        # After the handler's work (raising first would leave a 1-message connection open).
        if self.kind == "raises" and self.received == 1:
            raise RuntimeError("a handler that raises (expected)")

    def onclose(self, event) -> None:
        self.closed = (event.code, event.wasClean)

    def over(self) -> bool:
        """True once this connection is over; records a wrong outcome."""
        if self.kind == "dropped":
            if self.received < 2 and time.monotonic() - self.t0 < 10:
                return False
            # No handler left: nothing keeps the socket alive; the collector closes it.
            self.ws.onopen = self.ws.onmessage = self.ws.onclose = None
            self.ws = None
            return True
        if self.closed is None:
            if time.monotonic() - self.t0 > 30:
                rc.fail(f"{self.kind}: not closed after 30 s")
                return True
            return False
        code, clean = self.closed
        if self.kind in ("echo", "deflate", "raises"):
            ok = (code, clean) == (1000, True) and self.received == self.target and not self.bad
        elif self.kind == "server-close":
            ok = (code, clean) == (4001, True)
        else:
            ok = code == 1006 and not clean
        if not ok:
            rc.fail(f"{self.kind}: close {self.closed}, received {self.received}/{self.target}, "
                    f"bad {self.bad}")
        self.ws = None
        return True


def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 20
    sys.unraisablehook = unraisable
    threading.excepthook = unraisable
    first = WebSocket(rc.url("/echo", rc.BULK_PORT), proxy=False)
    first.onopen = lambda e: first.close()
    assert first.wait_closed(10)
    del first
    time.sleep(0.2)
    fds_base = rc.fd_count()
    rng = random.Random(99)
    slots = [Conn(random.Random(rng.random())) for _ in range(SLOTS)]
    samples, raw_peak = [], 0
    t0 = time.monotonic()
    next_sample = t0 + 0.5
    while time.monotonic() - t0 < secs:
        for i, conn in enumerate(slots):
            if conn.over():
                slots[i] = Conn(random.Random(rng.random()))
        if time.monotonic() >= next_sample:
            raw_peak = max(raw_peak, rc.rss_kb())
            samples.append(rc.rss_kb(trim=True))
            next_sample += 0.5
        time.sleep(0.002)
    for conn in slots:
        if conn.ws is not None:
            conn.ws.close()
            conn.ws.wait_closed(10)
    slots.clear()
    deadline = time.monotonic() + 10
    while rc.fd_count() > fds_base and time.monotonic() < deadline:
        rc.rss_kb(trim=True)
        time.sleep(0.05)
    fds = rc.fd_count()
    q = len(samples) // 4
    warm = max(samples[q:2 * q]) if q else 0
    last = max(samples[-q:]) if q else 0
    allowed = warm + max(2048, warm // 20)
    print(f"soak (Python): {secs:.0f} s, {SLOTS} slots: {stats['connections']} connections, "
          f"{stats['messages']} messages echoed, {stats['raised']} handler exceptions reported; "
          f"RSS samples {len(samples)}: first {samples[0] if samples else 0} KiB, second-quarter "
          f"peak {warm} KiB, last-quarter peak {last} KiB (allowed {allowed}), raw peak "
          f"{raw_peak} KiB; descriptors {fds} (base {fds_base})", flush=True)
    if len(samples) < 8:
        rc.fail("not enough samples")
    if last > allowed:
        rc.fail(f"RSS grew: {last} KiB > {allowed} KiB")
    if fds > fds_base:
        rc.fail(f"descriptors: {fds} > {fds_base}")
    rc.finish("soak")


if __name__ == "__main__":
    main()
