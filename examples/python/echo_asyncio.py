#!/usr/bin/env python3
"""An echo client for asyncio: `async with`, `await` and `async for`.

    python echo_asyncio.py [URL] [MESSAGE ...]

A WebSocket created inside a running event loop delivers its events on that loop, so its
handlers and the code below never run at the same time.
"""

import asyncio
import sys

from wsdom import WebSocket


async def main(url: str, messages: list) -> int:
    # `async with` closes the socket on exit and waits for its close event.
    async with WebSocket(url) as ws:
        if not await ws.wait_open_async(timeout=10):
            print("could not connect")
            return 1
        print(f"open: {ws.url}")
        for text in messages:
            ws.send(text)
        received = []
        # Each iteration yields MessageEvent.data; the loop ends when the socket closes.
        async for data in ws:
            print(f"message: {data!r}")
            received.append(data)
            if len(received) == len(messages):
                break
    print(f"closed (readyState {ws.readyState})")
    return 0 if received == messages else 1


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001/echo"
    sys.exit(asyncio.run(main(url, sys.argv[2:] or ["Hello", "asyncio"])))
