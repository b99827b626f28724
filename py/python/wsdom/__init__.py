"""wsdom: the browser's WebSocket API for Python, on a Rust core.

The same names, events and semantics as ``WebSocket`` in a web page (the WHATWG WebSockets
Standard), plus a few Pythonic extras: blocking and awaitable waits, context managers and
``async for``::

    from wsdom import WebSocket

    ws = WebSocket("wss://echo.example.org/")
    ws.onopen = lambda event: ws.send("hello")
    ws.onmessage = lambda event: (print(event.data), ws.close())
    ws.wait_closed()

Event handlers run one at a time, in order: on a wsdom thread, or on the asyncio loop
thread when the WebSocket was created inside a running loop.
"""

from ._websocket import WebSocket
from ._wsdom import (
    Blob,
    CloseEvent,
    DOMException,
    DOMSyntaxError,
    ErrorEvent,
    Event,
    InvalidAccessError,
    InvalidStateError,
    MessageEvent,
    __version__,
)

#: The browser's name for :class:`DOMSyntaxError`. Not exported by ``from wsdom import *``,
#: where it would hide Python's built-in ``SyntaxError``.
SyntaxError = DOMSyntaxError  # noqa: A001

__all__ = [
    "Blob",
    "CloseEvent",
    "DOMException",
    "DOMSyntaxError",
    "ErrorEvent",
    "Event",
    "InvalidAccessError",
    "InvalidStateError",
    "MessageEvent",
    "WebSocket",
    "__version__",
]
