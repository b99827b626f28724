"""Shared by the Python clients: the command line every client takes, the result line the
harness reads, and the resident-memory probe (see bench/src/lib.rs for the protocol)."""

import argparse
import itertools
import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pools import load_pool  # noqa: E402  (bench/pools.py)

FILL = 0x5A


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True,
                   choices=["rr", "push", "send", "conns", "setup", "zpush", "zsend"])
    p.add_argument("--url", required=True, help="ws://host:port, no path")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--pool", help="message pool file (zpush, zsend)")
    p.add_argument("--empty-handler", action="store_true",
                   help="push: an onmessage that does nothing per message (wsdom only)")
    a = p.parse_args()
    a.url = a.url.rstrip("/")
    a.payload = bytes([FILL]) * a.size
    if a.mode == "push":
        a.path = f"/push?n={a.n}&size={a.size}"
    elif a.mode == "send":
        a.path = f"/sink?n={a.n}"
    elif a.mode in ("zpush", "zsend"):
        if not a.pool:
            p.error("zpush and zsend need --pool FILE")
        a.text, a.messages = load_pool(a.pool)
        name = Path(a.pool).name.removesuffix(".pool")
        route = "zpush" if a.mode == "zpush" else "zsink"
        a.path = f"/{route}?n={a.n}&pool={name}"
        wire_len = [len(m.encode()) if a.text else len(m) for m in a.messages]
        full, rest = divmod(a.n, len(a.messages))
        # Payload bytes (UTF-8 for text) of the n messages of a run.
        a.payload_bytes = full * sum(wire_len) + sum(wire_len[:rest])
    else:
        a.path = "/echo"
    a.full_url = a.url + a.path
    raise_nofile()
    return a


def cycle(messages, n):
    """The first n messages of the pool's cycle."""
    return itertools.islice(itertools.cycle(messages), n)


def parse_done(text):
    """(wire_bytes, rsv1_messages) of the sink's `done W R`; fails on anything else."""
    parts = text.split(" ") if isinstance(text, str) else []
    if len(parts) != 3 or parts[0] != "done":
        fail(f"expected 'done W R' from the sink, got {text!r}"[:300])
    return int(parts[1]), int(parts[2])


def report(**fields):
    print("RESULT " + json.dumps(fields), flush=True)


def fail(why):
    print(f"error: {why}", file=sys.stderr, flush=True)
    os._exit(1)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
