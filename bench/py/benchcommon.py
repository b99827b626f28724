"""Shared by the Python clients: the command line every client takes, the result line the
harness reads, and the resident-memory probe (see bench/src/lib.rs for the protocol)."""

import argparse
import json
import os
import resource
import sys

FILL = 0x5A


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True, choices=["rr", "push", "send", "conns", "setup"])
    p.add_argument("--url", required=True, help="ws://host:port, no path")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=int, default=100)
    a = p.parse_args()
    a.url = a.url.rstrip("/")
    a.payload = bytes([FILL]) * a.size
    if a.mode == "push":
        a.path = f"/push?n={a.n}&size={a.size}"
    elif a.mode == "send":
        a.path = f"/sink?n={a.n}"
    else:
        a.path = "/echo"
    a.full_url = a.url + a.path
    raise_nofile()
    return a


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
