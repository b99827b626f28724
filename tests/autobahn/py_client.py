#!/usr/bin/env python3
"""Autobahn|Testsuite client driver for the wsdom Python package (agent `wsdom-python`).

For each case it opens `/runCase?case=N&agent=AGENT`, echoes every text and binary message
back unchanged from `onmessage` (binaryType "arraybuffer": the data is a memoryview of the
received bytes, sent back as is), and waits for the `close` event, bounded by a per-case
timeout after which the socket is closed and the next case starts. At the end it calls
`/updateReports?agent=AGENT` so the server writes `reports/clients/index.json`. Handlers run on
wsdom's dispatcher thread (no asyncio), as in a plain script.

    py_client.py [--url ws://127.0.0.1:9001] [--agent wsdom-python] [--case-timeout 60] [PATTERN ...]

A PATTERN selects case ids: `1.*`, `7.1.*`, `9.1.6` (a trailing `*` matches any suffix); none
means every case. tests/autobahn/run.sh starts the server and runs this with the Python of
.venv-test, where the wsdom wheel is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, Optional, Tuple

from wsdom import WebSocket


def run(url: str, echo: bool, timeout: float) -> Tuple[List[str], Optional[Tuple[int, bool]]]:
    """Opens `url`; with `echo` sends every message back. Returns the text messages (when not
    echoing) and (code, wasClean) of the close event, or None if it did not come in time."""
    texts: List[str] = []
    closed: List[Tuple[int, bool]] = []
    try:
        ws = WebSocket(url, binaryType="arraybuffer")
    except Exception as e:  # noqa: BLE001
        print("%s: %s" % (url, e), file=sys.stderr)
        return texts, None

    def on_message(event) -> None:
        if echo:
            try:
                ws.send(event.data)
            except Exception:  # noqa: BLE001  (the socket is already closing)
                pass
        elif isinstance(event.data, str):
            texts.append(event.data)

    def on_close(event) -> None:
        closed.append((event.code, event.wasClean))

    ws.onmessage = on_message
    ws.onclose = on_close
    if not ws.wait_closed(timeout):
        print("%s: no close event within %ss; closing" % (url, timeout), file=sys.stderr)
        ws.close()
        ws.wait_closed(10)
    return texts, (closed[0] if closed else None)


def matches(case_id: str, patterns: List[str]) -> bool:
    if not patterns:
        return True
    for p in patterns:
        if p.endswith("*") and case_id.startswith(p[:-1]):
            return True
        if case_id == p:
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="ws://127.0.0.1:9001")
    ap.add_argument("--agent", default="wsdom-python")
    ap.add_argument("--case-timeout", type=float, default=60)
    ap.add_argument("patterns", nargs="*")
    a = ap.parse_args()

    texts, _ = run(a.url + "/getCaseCount", False, 30)
    try:
        count = int(texts[0].strip())
    except (IndexError, ValueError):
        print("cannot read the case count from %s" % a.url, file=sys.stderr)
        return 2
    t0 = time.monotonic()
    ran = 0
    no_close = []
    for n in range(1, count + 1):
        case_id = str(n)
        if a.patterns:
            info, _ = run("%s/getCaseInfo?case=%d" % (a.url, n), False, 30)
            try:
                case_id = json.loads(info[0])["id"]
            except (IndexError, ValueError, KeyError):
                print("case %d: no case info" % n, file=sys.stderr)
                continue
            if not matches(case_id, a.patterns):
                continue
        started = time.monotonic()
        _, close = run("%s/runCase?case=%d&agent=%s" % (a.url, n, a.agent), True, a.case_timeout)
        if close is None:
            no_close.append(case_id)
        took = time.monotonic() - started
        if took > 5:
            print("case %d (%s): %.1fs" % (n, case_id, took), file=sys.stderr)
        ran += 1
    _, done = run("%s/updateReports?agent=%s" % (a.url, a.agent), False, 300)
    print("ran %d of %d cases in %.1fs (agent %s); reports updated: %s"
          % (ran, count, time.monotonic() - t0, a.agent, "true" if done else "false"))
    if no_close:
        print("cases without a close event: %s" % " ".join(no_close))
    return 0


if __name__ == "__main__":
    sys.exit(main())
