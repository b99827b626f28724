"""aiohttp's client on the stock asyncio loop, as in peerbench.md:
ClientSession().ws_connect(url, compress=0, max_msg_size=0); send_bytes/receive. The
compression cases (zpush, zsend) use compress=15 (permessage-deflate, 15-bit window)."""

import asyncio
import time

import aiohttp

from benchcommon import cycle, fail, parse_args, parse_done, report, rss_bytes


async def connect(session, url, compress=0):
    return await session.ws_connect(url, compress=compress, max_msg_size=0)


async def zconnect(session, url):
    ws = await connect(session, url, compress=15)
    if not ws.compress:
        fail("permessage-deflate was not negotiated")
    return ws


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


async def zpush(args, session):
    ws = await zconnect(session, args.full_url)
    t0, c0 = time.perf_counter(), time.process_time()
    messages, text = args.messages, args.text
    lens = [len(m) for m in messages]
    pool_n = len(messages)
    want = aiohttp.WSMsgType.TEXT if text else aiohttp.WSMsgType.BINARY
    for i in range(args.n):
        m = await ws.receive()
        if m.type != want or len(m.data) != lens[i % pool_n]:
            fail(f"message {i}: {m.type} of {len(m.data or '')}, expected {lens[i % pool_n]}")
        if text and m.data[0] != "{":
            fail(f"message {i} does not start with {{")
    m = await ws.receive()
    if m.type != aiohttp.WSMsgType.TEXT or m.data != "done":
        fail("expected done")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    report(rate=args.n / secs, mbps=args.payload_bytes / secs / 1e6, seconds=secs, cpu_s=cpu,
           payload_bytes=args.payload_bytes)


async def zsend(args, session):
    ws = await zconnect(session, args.full_url)
    send = ws.send_str if args.text else ws.send_bytes
    t0, c0 = time.perf_counter(), time.process_time()
    for m in cycle(args.messages, args.n):
        await send(m)
    m = await ws.receive()
    if m.type != aiohttp.WSMsgType.TEXT:
        fail(f"expected done, got {m.type}")
    wire, rsv1 = parse_done(m.data)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    await ws.close()
    report(rate=args.n / secs, mbps=args.payload_bytes / secs / 1e6, seconds=secs, cpu_s=cpu,
           payload_bytes=args.payload_bytes, wire_bytes=wire, rsv1_messages=rsv1)


async def run(args):
    # No connection limit (the default is 100), so the many-connections case can run.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await {"rr": rr, "push": push, "send": send, "conns": conns, "setup": setup,
               "zpush": zpush, "zsend": zsend}[args.mode](args, session)


def main():
    asyncio.run(run(parse_args()))


if __name__ == "__main__":
    main()
