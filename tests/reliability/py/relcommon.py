"""Shared helpers of the Python reliability scripts (tests/reliability/py): server ports from
the environment (tests/reliability/run.sh starts the servers), memory and descriptor probes,
and self-checking messages."""

from __future__ import annotations

import ctypes
import gc
import hashlib
import math
import os
import random
import sys

PORT = int(os.environ.get("WSDOM_TEST_PORT", "0"))
BULK_PORT = int(os.environ.get("WSDOM_BULK_PORT", "0"))
FAULT_PORT = int(os.environ.get("WSDOM_FAULT_PORT", "0"))

_libc = ctypes.CDLL(None)
FAILURES: list[str] = []


def fail(msg: str) -> None:
    FAILURES.append(msg)
    print("FAIL:", msg, file=sys.stderr, flush=True)


def finish(name: str) -> None:
    print(f"{name}: {'FAILED' if FAILURES else 'ok'}", flush=True)
    sys.exit(1 if FAILURES else 0)


def url(path: str, port: int = 0) -> str:
    return f"ws://127.0.0.1:{port or PORT}{path}"


def rss_kb(trim: bool = False) -> int:
    """VmRSS in KiB; with `trim`, after a full collection and malloc_trim(0)."""
    if trim:
        gc.collect()
        try:
            _libc.malloc_trim(0)
        except AttributeError:
            pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd")) - 1


# A pool of mixed 1- to 4-byte UTF-8 text to cut messages from.
_rng = random.Random(1234)
_chars = []
for _ in range(200_000):
    k = _rng.randrange(8)
    if k == 0:
        _chars.append(chr(_rng.randrange(0x10000, 0x110000)))
    elif k == 1:
        c = _rng.randrange(0x800, 0x10000 - 0x800)
        _chars.append(chr(c + 0x800 if c >= 0xD800 else c))
    elif k == 2:
        _chars.append(chr(_rng.randrange(0x80, 0x800)))
    else:
        _chars.append(chr(_rng.randrange(0x20, 0x7F)))
TEXT_POOL = "".join(_chars).encode()
EDGES = (1, 2, 125, 126, 127, 128, 65535, 65536)


def message_size(rng: random.Random, largest: int = 65536) -> int:
    """1 B to `largest`: log-uniform, with the frame-length boundaries one time in ten."""
    if rng.randrange(10) == 0 and largest == 65536:
        return rng.choice(EDGES)
    return max(1, min(largest, int(math.exp(rng.random() * math.log(largest)))))


def make_message(rng: random.Random, largest: int = 65536):
    """A random text (str) or binary (bytes) message of a random size in bytes."""
    n = message_size(rng, largest)
    if rng.randrange(2):
        return rng.randbytes(n)
    start = rng.randrange(len(TEXT_POOL) - n - 8)
    while TEXT_POOL[start] & 0xC0 == 0x80:  # start on a character boundary
        start += 1
    chunk = TEXT_POOL[start:start + n]
    end = len(chunk)
    while end and chunk[end - 1] & 0xC0 == 0x80:
        end -= 1
    if end and chunk[end - 1] >= 0xC0:  # a lead byte whose character was cut off
        end -= 1
    text = chunk[:end].decode() + "x" * (n - end)
    return text


def digest(data) -> tuple[bool, int, bytes]:
    """(is_text, length in bytes, BLAKE2b-128) of a message as sent or received."""
    if isinstance(data, str):
        b = data.encode()
        return True, len(b), hashlib.blake2b(b, digest_size=16).digest()
    b = bytes(data)
    return False, len(b), hashlib.blake2b(b, digest_size=16).digest()
