"""picows on uvloop (aiofastnet transport, picows' default when installed): ws_connect +
WSListener callbacks, enable_auto_ping=False, as in peerbench.md. The listener answers each
echo from inside on_ws_frame, as picows' own benchmark client does."""

import asyncio
import time

import uvloop
from picows import WSListener, WSMsgType, ws_connect

from benchcommon import fail, parse_args, report, rss_bytes

MAX_FRAME = 1 << 30


class Tally:
    """Counts echoes across many connections; `future` resolves at `target`."""

    def __init__(self, target):
        self.count = 0
        self.target = target
        self.future = asyncio.get_running_loop().create_future()

    def hit(self):
        self.count += 1
        if self.count == self.target:
            self.future.set_result(None)


class Listener(WSListener):
    def __init__(self, args, tally=None):
        self.args = args
        self.tally = tally
        self.size = args.size
        self.payload = args.payload
        self.count = 0
        self.stop = False
        self.transport = None
        self.start = None
        self.end = None
        self.cpu0 = self.cpu1 = None
        self.loop = asyncio.get_running_loop()
        self.warm = self.loop.create_future()
        self.done = self.loop.create_future()
        self.resumed = None

    def on_ws_connected(self, transport):
        self.transport = transport
        self.start, self.cpu0 = time.perf_counter(), time.process_time()

    def on_ws_frame(self, transport, frame):
        t = frame.msg_type
        if t == WSMsgType.BINARY:
            if frame.payload_size != self.size:
                fail(f"message of {frame.payload_size} bytes, expected {self.size}")
            self.count += 1
            if self.tally is not None:
                self.tally.hit()
            elif self.args.mode == "rr":
                if self.count == self.args.warmup:
                    self.warm.set_result(None)
                if not self.stop:
                    transport.send(WSMsgType.BINARY, self.payload)
        elif t == WSMsgType.TEXT:
            if frame.get_payload_as_bytes() == b"done":
                self.end, self.cpu1 = time.perf_counter(), time.process_time()
                self.done.set_result(None)
        elif t == WSMsgType.CLOSE:
            transport.disconnect()

    def pause_writing(self):
        self.resumed = self.loop.create_future()

    def resume_writing(self):
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)
        self.resumed = None


async def connect(args, url, tally=None):
    transport, listener = await ws_connect(
        lambda: Listener(args, tally), url, enable_auto_ping=False, max_frame_size=MAX_FRAME
    )
    return transport, listener


async def close(transport):
    transport.send_close()
    await transport.wait_disconnected()


async def rr(args):
    transport, listener = await connect(args, args.full_url)
    transport.send(WSMsgType.BINARY, args.payload)
    await listener.warm
    c0, t0, k0 = listener.count, time.perf_counter(), time.process_time()
    await asyncio.sleep(args.duration)
    c1, t1, k1 = listener.count, time.perf_counter(), time.process_time()
    listener.stop = True
    await close(transport)
    report(rate=(c1 - c0) / (t1 - t0), count=c1 - c0, seconds=t1 - t0, cpu_s=k1 - k0)


async def push(args):
    transport, listener = await connect(args, args.full_url)
    await listener.done
    secs = listener.end - listener.start
    if listener.count != args.n:
        fail(f"received {listener.count} messages, expected {args.n}")
    await close(transport)
    rate = args.n / secs
    report(rate=rate, mbps=rate * args.size / 1e6, seconds=secs,
           cpu_s=listener.cpu1 - listener.cpu0)


async def send(args):
    transport, listener = await connect(args, args.full_url)
    payload = args.payload
    t0, k0 = time.perf_counter(), time.process_time()
    for _ in range(args.n):
        if listener.resumed is not None:
            await listener.resumed
        transport.send(WSMsgType.BINARY, payload)
    await listener.done
    secs = listener.end - t0
    await close(transport)
    rate = args.n / secs
    report(rate=rate, mbps=rate * args.size / 1e6, seconds=secs, cpu_s=listener.cpu1 - k0)


async def conns(args):
    url = args.url + "/echo"
    t, _ = await connect(args, url)
    await close(t)
    rss0 = rss_bytes()
    tally = Tally(args.n)
    t0 = time.perf_counter()
    pairs = await asyncio.gather(*(connect(args, url, tally) for _ in range(args.n)))
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for transport, _ in pairs:
        transport.send(WSMsgType.BINARY, args.payload)
    await tally.future
    echo_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    await asyncio.gather(*(close(t) for t, _ in pairs))
    report(rate=args.n / open_s, open_s=open_s, echo_s=echo_s,
           rss_per_conn=(rss1 - rss0) / args.n, rss_before=rss0, rss_after=rss1)


async def setup(args):
    url = args.url + "/echo"
    for _ in range(min(args.warmup, 20)):
        t, _ = await connect(args, url)
        await close(t)
    count, t0, k0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        t, _ = await connect(args, url)
        await close(t)
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - k0
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


def main():
    args = parse_args()
    uvloop.run({"rr": rr, "push": push, "send": send, "conns": conns, "setup": setup}[args.mode](args))


if __name__ == "__main__":
    main()
