"""fork() with open sockets and transfers in flight (issue #8, part 6). The parent keeps 16
echo streams busy (each echo triggers the next message, checked byte for byte) and two Python
threads sending, and forks again and again: from the main thread, from another Python thread,
and from inside an event handler. In each child the parent's sockets are inert (send raises
InvalidStateError), and a new socket works (echo of 10 messages) before the child exits, within
10 s. The parent's streams go on unharmed.

    python misuse_fork.py short|stress
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
import warnings

import relcommon as rc
from wsdom import InvalidStateError, WebSocket

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, on purpose

ECHO = rc.url("/echo", rc.BULK_PORT)


class Stream:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.expected = []
        self.received = self.bad = 0
        self.ws = WebSocket(ECHO, proxy=False, binaryType="arraybuffer",
                            onopen=self.next, onmessage=self.onmessage)

    def next(self, _event=None) -> None:
        msg = rc.make_message(self.rng, 4096)
        self.expected.append(rc.digest(msg))
        self.ws.send(msg)

    def onmessage(self, event) -> None:
        self.received += 1
        if rc.digest(event.data) != self.expected.pop(0):
            self.bad += 1
        self.next()


def child(streams) -> None:
    """Runs in the child; never returns."""
    status = 1
    try:
        for s in streams[:3]:
            try:
                s.ws.send("from the child")
                print("the parent's socket accepted a send in the child", file=sys.stderr)
                os._exit(2)
            except InvalidStateError:
                pass
        got = []
        done = threading.Event()
        ws = WebSocket(ECHO, proxy=False)
        ws.onopen = lambda e: [ws.send(f"c{i}") for i in range(10)]
        ws.onmessage = lambda e: (got.append(e.data), len(got) == 10 and ws.close())
        ws.onclose = lambda e: done.set()
        if done.wait(8) and got == [f"c{i}" for i in range(10)]:
            status = 0
        else:
            print(f"child echo: {got}", file=sys.stderr)
    finally:
        os._exit(status)


def wait_child(pid: int, how: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                return True
            rc.fail(f"fork {how}: child ended with status {status}")
            return False
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    rc.fail(f"fork {how}: the child hung (killed after 10 s)")
    return False


def main() -> None:
    stress = len(sys.argv) > 1 and sys.argv[1] == "stress"
    rounds = 60 if stress else 6
    streams = [Stream(i) for i in range(16)]
    stop = threading.Event()

    def sender():
        ws = WebSocket(ECHO, proxy=False)
        ws.onmessage = lambda e: None
        ws.wait_open(10)
        while not stop.is_set():
            ws.send(b"t" * 1000)
            time.sleep(0.001)
        ws.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    rng = random.Random(5)
    ok = 0
    t0 = time.monotonic()
    for r in range(rounds):
        how = ("the main thread", "a Python thread", "an event handler")[r % 3]
        time.sleep(rng.random() * 0.1)
        pids = []
        if how == "the main thread":
            pid = os.fork()
            if pid == 0:
                child(streams)
            pids.append(pid)
        elif how == "a Python thread":
            def fork_here():
                pid = os.fork()
                if pid == 0:
                    child(streams)
                pids.append(pid)
            t = threading.Thread(target=fork_here)
            t.start()
            t.join()
        else:
            forked = threading.Event()
            s = streams[r % len(streams)]

            def in_handler(event, s=s):
                s.ws.removeEventListener("message", in_handler)
                pid = os.fork()
                if pid == 0:
                    child(streams)
                pids.append(pid)
                forked.set()
            s.ws.addEventListener("message", in_handler)
            if not forked.wait(10):
                rc.fail("the handler that forks never ran")
                continue
        ok += wait_child(pids[0], how)
    stop.set()
    for t in threads:
        t.join()
    before = [s.received for s in streams]
    time.sleep(0.3)
    moving = sum(1 for s, b in zip(streams, before) if s.received > b)
    for s in streams:
        s.ws.onmessage = None
        s.ws.close()
    for s in streams:
        s.ws.wait_closed(10)
    bad = sum(s.bad for s in streams)
    echoed = sum(s.received for s in streams)
    print(f"misuse (Python fork with open sockets): {ok}/{rounds} children (forked from the main "
          f"thread, a Python thread and an event handler) found the parent's sockets inert and "
          f"echoed on a new socket; the parent's 16 streams echoed {echoed} messages, {bad} "
          f"mismatched, {moving}/16 still moving after the forks; {time.monotonic() - t0:.1f} s",
          flush=True)
    if bad:
        rc.fail(f"{bad} echoes mismatched in the parent")
    if moving != 16:
        rc.fail("some parent streams stopped")
    rc.finish("misuse_fork")


if __name__ == "__main__":
    main()
