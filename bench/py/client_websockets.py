"""websockets (asyncio implementation) on the stock asyncio loop, as in peerbench.md:
connect(url, compression=None, max_size=None, ping_interval=None); send/recv. The compression
cases (zpush, zsend) use compression="deflate" (its default settings: memLevel 5, window as
negotiated)."""

import asyncio
import time

from websockets.asyncio.client import connect as ws_connect

from benchcommon import cycle, fail, parse_args, parse_done, report, rss_bytes


def connect(url, compression=None):
    return ws_connect(url, compression=compression, max_size=None, ping_interval=None)


async def zconnect(url):
    ws = await connect(url, compression="deflate")
    names = [e.name for e in ws.protocol.extensions]
    if "permessage-deflate" not in names:
        fail(f"permessage-deflate was not negotiated ({names})")
    return ws


async def rr(args):
    ws = await connect(args.full_url)
    payload, size = args.payload, args.size

    async def once():
        await ws.send(payload)
        m = await ws.recv()
        if len(m) != size:
            fail(f"echo of {len(m)} bytes, expected {size}")

    for _ in range(args.warmup):
        await once()
    count, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        await once()
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


async def push(args):
    ws = await connect(args.full_url)
    t0, c0 = time.perf_counter(), time.process_time()
    count, size = 0, args.size
    while True:
        m = await ws.recv()
        if isinstance(m, bytes):
            if len(m) != size:
                fail(f"message of {len(m)} bytes, expected {size}")
            count += 1
        elif m == "done":
            break
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    if count != args.n:
        fail(f"received {count} messages, expected {args.n}")
    await ws.close()
    rate = count / secs
    report(rate=rate, mbps=rate * size / 1e6, seconds=secs, cpu_s=cpu)


async def send(args):
    ws = await connect(args.full_url)
    payload = args.payload
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.n):
        await ws.send(payload)
    if await ws.recv() != "done":
        fail("expected done")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    rate = args.n / secs
    report(rate=rate, mbps=rate * args.size / 1e6, seconds=secs, cpu_s=cpu)


async def conns(args):
    url = args.url + "/echo"
    await (await connect(url)).close()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    socks = await asyncio.gather(*(connect(url) for _ in range(args.n)))
    open_s = time.perf_counter() - t0

    async def echo(ws):
        await ws.send(args.payload)
        if len(await ws.recv()) != args.size:
            fail("bad echo length")

    t0 = time.perf_counter()
    await asyncio.gather(*(echo(ws) for ws in socks))
    echo_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    await asyncio.gather(*(ws.close() for ws in socks))
    report(rate=args.n / open_s, open_s=open_s, echo_s=echo_s,
           rss_per_conn=(rss1 - rss0) / args.n, rss_before=rss0, rss_after=rss1)


async def setup(args):
    url = args.url + "/echo"
    for _ in range(min(args.warmup, 20)):
        await (await connect(url)).close()
    count, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        await (await connect(url)).close()
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


async def zpush(args):
    ws = await zconnect(args.full_url)
    t0, c0 = time.perf_counter(), time.process_time()
    messages, text = args.messages, args.text
    lens = [len(m) for m in messages]
    pool_n = len(messages)
    for i in range(args.n):
        m = await ws.recv()
        if isinstance(m, str) != text or len(m) != lens[i % pool_n]:
            fail(f"message {i}: {type(m).__name__} of {len(m)}, expected {lens[i % pool_n]}")
        if text and m[0] != "{":
            fail(f"message {i} does not start with {{")
    if await ws.recv() != "done":
        fail("expected done")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    report(rate=args.n / secs, mbps=args.payload_bytes / secs / 1e6, seconds=secs, cpu_s=cpu,
           payload_bytes=args.payload_bytes)


async def zsend(args):
    ws = await zconnect(args.full_url)
    t0, c0 = time.perf_counter(), time.process_time()
    for m in cycle(args.messages, args.n):
        await ws.send(m)
    wire, rsv1 = parse_done(await ws.recv())
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    report(rate=args.n / secs, mbps=args.payload_bytes / secs / 1e6, seconds=secs, cpu_s=cpu,
           payload_bytes=args.payload_bytes, wire_bytes=wire, rsv1_messages=rsv1)


def main():
    args = parse_args()
    asyncio.run({"rr": rr, "push": push, "send": send, "conns": conns, "setup": setup,
                 "zpush": zpush, "zsend": zsend}[args.mode](args))


if __name__ == "__main__":
    main()
