"""websocket-client (blocking), as in peerbench.md: create_connection(url,
sockopt=TCP_NODELAY), send_bytes/recv; defaults otherwise (no wsaccel)."""

import socket
import time

import websocket

from benchcommon import fail, parse_args, report

NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def connect(url):
    return websocket.create_connection(url, sockopt=NODELAY)


def rr(args):
    ws = connect(args.full_url)
    payload, size = args.payload, args.size
    for _ in range(args.warmup):
        ws.send_bytes(payload)
        ws.recv()
    count, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        ws.send_bytes(payload)
        m = ws.recv()
        if len(m) != size:
            fail(f"echo of {len(m)} bytes, expected {size}")
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    ws.close()
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


def push(args):
    ws = connect(args.full_url)
    t0, c0 = time.perf_counter(), time.process_time()
    count, size = 0, args.size
    while True:
        m = ws.recv()
        if isinstance(m, bytes):
            if len(m) != size:
                fail(f"message of {len(m)} bytes, expected {size}")
            count += 1
        elif m == "done":
            break
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    if count != args.n:
        fail(f"received {count} messages, expected {args.n}")
    ws.close()
    rate = count / secs
    report(rate=rate, mbps=rate * size / 1e6, seconds=secs, cpu_s=cpu)


def send(args):
    ws = connect(args.full_url)
    payload = args.payload
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.n):
        ws.send_bytes(payload)
    if ws.recv() != "done":
        fail("expected done")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    ws.close()
    rate = args.n / secs
    report(rate=rate, mbps=rate * args.size / 1e6, seconds=secs, cpu_s=cpu)


def setup(args):
    url = args.url + "/echo"
    for _ in range(min(args.warmup, 20)):
        connect(url).close()
    count, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.duration:
        connect(url).close()
        count += 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    report(rate=count / secs, count=count, seconds=secs, cpu_s=cpu)


def main():
    args = parse_args()
    if args.mode == "conns":
        fail("websocket-client is blocking: one thread per connection; not measured")
    {"rr": rr, "push": push, "send": send, "setup": setup}[args.mode](args)


if __name__ == "__main__":
    main()
