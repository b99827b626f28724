#!/usr/bin/env python3
"""Python `websockets` (asyncio) server with the wsdom conformance behaviours.

Listens on 127.0.0.1 with an ephemeral port, prints one line `LISTENING <port>`, and runs
until stdin reaches EOF (or SIGTERM). Paths and parameters: tests/scenarios/README.md.
Compression is off, so `extensions` stays "" as on the scenario server.
"""
import asyncio
import json
import socket
import struct
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def split(path):
    parts = urlsplit(path)
    q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return parts.path, q


def flag(q, name):
    return q.get(name) in ("1", "true", "yes", "")


def select_subprotocol(connection, offered):
    path, q = split(connection.request.path)
    if path == "/protocol" and flag(q, "none"):
        return None
    if path == "/protocol" and q.get("select") in offered:
        return q["select"]
    return offered[0] if offered else None


async def echo(ws):
    try:
        async for msg in ws:
            await ws.send(msg)  # str -> text, bytes -> binary
    except ConnectionClosed:
        pass


def drop(ws, rst):
    sock = ws.transport.get_extra_info("socket")
    if rst:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.transport.abort()
    else:
        ws.transport.close()


async def handler(ws):
    path, q = split(ws.request.path)
    if path in ("/echo", "/protocol"):
        await echo(ws)
    elif path == "/close":
        if flag(q, "empty"):
            await ws.close(None)  # websockets sends an empty body for code None
        else:
            await ws.close(int(q.get("code", "1000")), q.get("reason", ""))
    elif path == "/headers":
        merged = {}
        for name, value in ws.request.headers.raw_items():
            name = name.lower()
            merged[name] = merged[name] + ", " + value if name in merged else value
        await ws.send(json.dumps(merged, separators=(",", ":")))
        await echo(ws)
    elif path == "/push":
        n, size = int(q.get("n", "1")), int(q.get("size", "1"))
        text = q.get("type") == "text"
        payload = "x" * size if text else b"x" * size
        for _ in range(n):
            await ws.send(payload)
        await ws.send("done")
        await echo(ws)
    elif path == "/drop":
        drop(ws, flag(q, "rst"))


async def process_request(connection, request):
    path, _ = split(request.path)
    if path not in ("/echo", "/protocol", "/close", "/headers", "/push", "/drop"):
        return connection.respond(404, "unknown path\n")
    return None


async def main():
    async with serve(handler, "127.0.0.1", 0, compression=None,
                     select_subprotocol=select_subprotocol,
                     process_request=process_request,
                     max_size=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sys.stdout.write("LISTENING %d\n" % port)
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until EOF


if __name__ == "__main__":
    asyncio.run(main())
