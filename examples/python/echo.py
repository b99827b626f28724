#!/usr/bin/env python3
"""An echo client written the way a web page uses WebSocket.

    python echo.py [URL] [MESSAGE ...]

It connects, sends each MESSAGE (default: "Hello" and "WebSocket"), prints what the server
sends back, and closes once every message came back. Try it with any echo server, e.g. the
repository's test server: `cargo run -p wsdom-testserver` prints `LISTENING <port>`, then
`python echo.py ws://127.0.0.1:<port>/echo`.
"""

import sys

from wsdom import WebSocket

url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001/echo"
messages = sys.argv[2:] or ["Hello", "WebSocket"]

# 1. Create the socket. As in the browser, this returns at once: the connection is made in
#    the background, and readyState is CONNECTING (0) for now. A proxy is taken from
#    http_proxy / https_proxy / all_proxy (minus no_proxy) as curl does; keyword options
#    choose otherwise, e.g. proxy="socks5h://user:password@proxy:1080" or proxy=False.
ws = WebSocket(url)
print(f"connecting to {ws.url} (readyState {ws.readyState})")

# 2. Attach event handlers. Nothing is lost by attaching them after the constructor: a
#    socket keeps its events until its first handler is set, then delivers them in order.
received: list = []


def on_open(event):
    # The connection is open: protocol and extensions are known, send() is allowed.
    print(f"open (protocol {ws.protocol!r}, extensions {ws.extensions!r})")
    for text in messages:
        ws.send(text)


def on_message(event):
    # event.data is a str for text messages (a Blob or memoryview for binary ones).
    print(f"message: {event.data!r}")
    received.append(event.data)
    if len(received) == len(messages):
        # Start the closing handshake; the close event follows when the server answers.
        ws.close(1000, "all echoed")


def on_error(event):
    # The browser's error event has no detail; wsdom's ErrorEvent says what went wrong.
    print(f"error: {event.message}")


def on_close(event):
    print(f"close: code {event.code}, reason {event.reason!r}, clean {event.wasClean}")


ws.onopen = on_open
ws.onmessage = on_message
ws.onerror = on_error
ws.onclose = on_close
# addEventListener works too, and allows several listeners per event:
ws.addEventListener("close", lambda event: print("bye"))

# 3. The handlers run one at a time, in order, on wsdom's dispatcher thread. A script has
#    nothing else to do, so the main thread waits for the close event (Ctrl-C interrupts).
ws.wait_closed()
sys.exit(0 if received == messages else 1)
