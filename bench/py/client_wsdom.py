"""wsdom from Python, used the browser way: ``onmessage`` is a Python function called for
every message (on wsdom's event thread, the default outside an asyncio loop), and the next
message is sent from inside it. binaryType "arraybuffer" (a memoryview, as performance-minded
browser code does); deflate off (the server has none anyway) except in the compression cases
(zpush, zsend), which use the default ``deflate=True``. Streaming sends come from the main
thread and respect ``bufferedAmount`` like browser code does."""

import itertools
import threading
import time

from wsdom import WebSocket

from benchcommon import cycle, fail, parse_args, parse_done, report, rss_bytes

HIGH_WATER = 4 << 20


def new(url, deflate=False, **handlers):
    return WebSocket(url, deflate=deflate, binaryType="arraybuffer", onerror=on_error, **handlers)


def check_deflate(ws):
    if "permessage-deflate" not in ws.extensions:
        fail(f"permessage-deflate was not negotiated (extensions {ws.extensions!r})")


def on_error(event):
    fail(f"error event: {getattr(event, 'message', event)}")


def rr(args):
    payload, size, warmup = args.payload, args.size, max(args.warmup, 1)
    warm = threading.Event()
    state = {"count": 0, "stop": False}
    ws = None

    def onmessage(event):
        if len(event.data) != size:
            fail(f"echo of {len(event.data)} bytes, expected {size}")
        state["count"] += 1
        if state["count"] == warmup:
            warm.set()
        if not state["stop"]:
            ws.send(payload)

    ws = new(args.full_url, onopen=lambda e: ws.send(payload), onmessage=onmessage)
    if not warm.wait(60):
        fail("timed out in warm-up")
    c0, t0, k0 = state["count"], time.perf_counter(), time.process_time()
    time.sleep(args.duration)
    c1, t1, k1 = state["count"], time.perf_counter(), time.process_time()
    state["stop"] = True
    ws.close()
    ws.wait_closed(60)
    report(rate=(c1 - c0) / (t1 - t0), count=c1 - c0, seconds=t1 - t0, cpu_s=k1 - k0)


def push(args):
    size = args.size
    state = {"count": 0, "start": None, "end": None, "cpu0": None, "cpu1": None}
    ws = None

    def onopen(event):
        state["start"], state["cpu0"] = time.perf_counter(), time.process_time()

    def onmessage(event):
        data = event.data
        if isinstance(data, str):
            if data == "done":
                state["end"], state["cpu1"] = time.perf_counter(), time.process_time()
                ws.close()
            return
        if len(data) != size:
            fail(f"message of {len(data)} bytes, expected {size}")
        state["count"] += 1

    if args.empty_handler:
        # The floor of "a Python onmessage call per message": a handler that does nothing
        # for the first n messages (an iterator's step), then checks that the next is "done".
        full = onmessage
        step, n = itertools.count().__next__, args.n

        def onmessage(event):
            if step() < n:
                return
            if event.data != "done":
                fail("message n+1 is not 'done': messages were lost or added")
            state["count"] = n
            full(event)

    ws = new(args.full_url, onopen=onopen, onmessage=onmessage)
    if not ws.wait_closed(120):
        fail("timed out")
    if state["count"] != args.n or state["end"] is None:
        fail(f"received {state['count']} messages, expected {args.n}")
    secs = state["end"] - state["start"]
    rate = args.n / secs
    report(rate=rate, mbps=rate * size / 1e6, seconds=secs, cpu_s=state["cpu1"] - state["cpu0"])


def send(args):
    done = threading.Event()
    state = {"end": None, "cpu1": None}

    def onmessage(event):
        if event.data == "done":
            state["end"], state["cpu1"] = time.perf_counter(), time.process_time()
            done.set()

    ws = new(args.full_url, onmessage=onmessage)
    if not ws.wait_open(60):
        fail("did not open")
    payload, send_ = args.payload, ws.send
    t0, k0 = time.perf_counter(), time.process_time()
    for _ in range(args.n):
        while ws.bufferedAmount > HIGH_WATER:
            time.sleep(0.0001)
        send_(payload)
    if not done.wait(120):
        fail("no done")
    secs = state["end"] - t0
    ws.close()
    ws.wait_closed(60)
    rate = args.n / secs
    report(rate=rate, mbps=rate * args.size / 1e6, seconds=secs, cpu_s=state["cpu1"] - k0)


class Tally:
    """Counts events of many sockets; ``event`` is set at ``target``."""

    def __init__(self, target):
        self.count = 0
        self.target = target
        self.event = threading.Event()

    def __call__(self, _event=None):
        self.count += 1
        if self.count == self.target:
            self.event.set()

    def wait(self, what):
        if not self.event.wait(120):
            fail(f"timed out waiting for {what}: {self.count}/{self.target}")


def conns(args):
    url = args.url + "/echo"
    w = new(url)
    w.wait_open(60)
    w.close()
    w.wait_closed(60)
    rss0 = rss_bytes()
    opened, echoed, closed = Tally(args.n), Tally(args.n), Tally(args.n)
    size = args.size

    def onmessage(event):
        if len(event.data) != size:
            fail("bad echo length")
        echoed()

    t0 = time.perf_counter()
    socks = [new(url, onopen=opened, onmessage=onmessage, onclose=closed) for _ in range(args.n)]
    opened.wait("open")
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for ws in socks:
        ws.send(args.payload)
    echoed.wait("echo")
    echo_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    for ws in socks:
        ws.close()
    closed.wait("close")
    report(rate=args.n / open_s, open_s=open_s, echo_s=echo_s,
           rss_per_conn=(rss1 - rss0) / args.n, rss_before=rss0, rss_after=rss1)


def setup(args):
    url = args.url + "/echo"

    def once():
        ws = new(url)
        if not ws.wait_open(60):
            fail("did not open")
        ws.close()
        ws.wait_closed(60)

    for _ in range(min(args.warmup, 20)):
        once()
    count, t0, k0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        once()
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - k0
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


def zpush(args):
    messages, text = args.messages, args.text
    lens = [len(m) for m in messages]
    pool_n = len(messages)
    state = {"count": 0, "start": None, "end": None, "cpu0": None, "cpu1": None}
    ws = None

    def onopen(event):
        check_deflate(ws)
        state["start"], state["cpu0"] = time.perf_counter(), time.process_time()

    def onmessage(event):
        data = event.data
        i = state["count"]
        if i == args.n:
            if data != "done":
                fail(f"expected done, got {str(data)[:80]!r}")
            state["end"], state["cpu1"] = time.perf_counter(), time.process_time()
            ws.close()
            return
        if isinstance(data, str) != text or len(data) != lens[i % pool_n]:
            fail(f"message {i}: {type(data).__name__} of {len(data)}, expected {lens[i % pool_n]}")
        if text and data[0] != "{":
            fail(f"message {i} does not start with {{")
        state["count"] = i + 1

    ws = new(args.full_url, deflate=True, onopen=onopen, onmessage=onmessage)
    if not ws.wait_closed(120):
        fail("timed out")
    if state["count"] != args.n or state["end"] is None:
        fail(f"received {state['count']} messages, expected {args.n}")
    secs = state["end"] - state["start"]
    report(rate=args.n / secs, mbps=args.payload_bytes / secs / 1e6, seconds=secs,
           cpu_s=state["cpu1"] - state["cpu0"], payload_bytes=args.payload_bytes)


def zsend(args):
    done = threading.Event()
    state = {"end": None, "cpu1": None, "text": None}

    def onmessage(event):
        state["end"], state["cpu1"], state["text"] = (time.perf_counter(), time.process_time(),
                                                      event.data)
        done.set()

    ws = new(args.full_url, deflate=True, onmessage=onmessage)
    if not ws.wait_open(60):
        fail("did not open")
    check_deflate(ws)
    send_ = ws.send
    t0, k0 = time.perf_counter(), time.process_time()
    for m in cycle(args.messages, args.n):
        while ws.bufferedAmount > HIGH_WATER:
            time.sleep(0.0001)
        send_(m)
    if not done.wait(120):
        fail("no done")
    wire, rsv1 = parse_done(state["text"])
    secs = state["end"] - t0
    ws.close()
    ws.wait_closed(60)
    report(rate=args.n / secs, mbps=args.payload_bytes / secs / 1e6, seconds=secs,
           cpu_s=state["cpu1"] - k0, payload_bytes=args.payload_bytes, wire_bytes=wire,
           rsv1_messages=rsv1)


def main():
    args = parse_args()
    {"rr": rr, "push": push, "send": send, "conns": conns, "setup": setup, "zpush": zpush,
     "zsend": zsend}[args.mode](args)


if __name__ == "__main__":
    main()
