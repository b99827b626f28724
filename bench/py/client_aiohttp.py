"""aiohttp's client on the stock asyncio loop, as in peerbench.md:
ClientSession().ws_connect(url, compress=0, max_msg_size=0); send_bytes/receive."""

import asyncio
import time

import aiohttp

from benchcommon import fail, parse_args, report, rss_bytes


async def connect(session, url):
    return await session.ws_connect(url, compress=0, max_msg_size=0)


async def rr(args, session):
    ws = await connect(session, args.full_url)
    payload, size = args.payload, args.size

    async def once():
        await ws.send_bytes(payload)
        m = await ws.receive()
        if m.type != aiohttp.WSMsgType.BINARY or len(m.data) != size:
            fail(f"bad echo {m.type}")

    for _ in range(args.warmup):
        await once()
    count, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        await once()
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


async def push(args, session):
    ws = await connect(session, args.full_url)
    t0, c0 = time.perf_counter(), time.process_time()
    count, size = 0, args.size
    while True:
        m = await ws.receive()
        if m.type == aiohttp.WSMsgType.BINARY:
            if len(m.data) != size:
                fail(f"message of {len(m.data)} bytes, expected {size}")
            count += 1
        elif m.type == aiohttp.WSMsgType.TEXT and m.data == "done":
            break
        else:
            fail(f"unexpected {m.type}")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    if count != args.n:
        fail(f"received {count} messages, expected {args.n}")
    await ws.close()
    rate = count / secs
    report(rate=rate, mbps=rate * size / 1e6, seconds=secs, cpu_s=cpu)


async def send(args, session):
    ws = await connect(session, args.full_url)
    payload = args.payload
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.n):
        await ws.send_bytes(payload)
    m = await ws.receive()
    if m.type != aiohttp.WSMsgType.TEXT or m.data != "done":
        fail("expected done")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    rate = args.n / secs
    report(rate=rate, mbps=rate * args.size / 1e6, seconds=secs, cpu_s=cpu)


async def conns(args, session):
    url = args.url + "/echo"
    await (await connect(session, url)).close()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    socks = await asyncio.gather(*(connect(session, url) for _ in range(args.n)))
    open_s = time.perf_counter() - t0

    async def echo(ws):
        await ws.send_bytes(args.payload)
        if len((await ws.receive()).data) != args.size:
            fail("bad echo length")

    t0 = time.perf_counter()
    await asyncio.gather(*(echo(ws) for ws in socks))
    echo_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    await asyncio.gather(*(ws.close() for ws in socks))
    report(rate=args.n / open_s, open_s=open_s, echo_s=echo_s,
           rss_per_conn=(rss1 - rss0) / args.n, rss_before=rss0, rss_after=rss1)


async def setup(args, session):
    url = args.url + "/echo"
    for _ in range(min(args.warmup, 20)):
        await (await connect(session, url)).close()
    count, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        await (await connect(session, url)).close()
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


async def run(args):
    # No connection limit (the default is 100), so the many-connections case can run.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await {"rr": rr, "push": push, "send": send, "conns": conns, "setup": setup}[args.mode](args, session)


def main():
    asyncio.run(run(parse_args()))


if __name__ == "__main__":
    main()
