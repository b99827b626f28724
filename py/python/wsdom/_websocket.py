"""The public ``WebSocket`` class: the compiled browser API plus the asyncio helpers."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Optional, Union

from . import _wsdom
from ._wsdom import Blob

if TYPE_CHECKING:
    from types import TracebackType

    from ._wsdom import Event

#: What ``async for`` yields: ``MessageEvent.data`` (per ``binaryType`` for binary messages).
MessageData = Union[str, Blob, memoryview]

__all__ = ["WebSocket"]

_get_running_loop = asyncio.events._get_running_loop

_INBOX = "_wsdom_inbox"


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any) -> None:
    """Resolves ``future`` of ``loop`` from any thread (observers run on the dispatcher)."""
    if _get_running_loop() is loop:
        _set_result(future, value)
        return
    try:
        loop.call_soon_threadsafe(_set_result, future, value)
    except RuntimeError:
        pass  # the loop is closed: nobody waits any more


async def _wait(ws: WebSocket, for_close: bool, timeout: Optional[float]) -> bool:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def observer(event: Event, listened: int) -> None:
        kind = event.type
        if kind == "close":
            _resolve(loop, future, for_close)
        elif kind == "open" and not for_close:
            _resolve(loop, future, True)

    token, opened, closed = ws._observe(observer)
    try:
        if closed:
            return True if for_close else opened
        if opened and not for_close:
            return True
        if timeout is None:
            return await future
        try:
            return await asyncio.wait_for(future, max(timeout, 0.0))
        except asyncio.TimeoutError:
            return False
    finally:
        ws._unobserve(token)


class _Inbox:
    """Messages kept for ``async for``: all of them while an iterator is active, and those
    no listener received otherwise (so none is lost between ``async with`` and the loop)."""

    __slots__ = ("loop", "lock", "items", "closed", "waiter", "iterating", "__weakref__")

    def __init__(self, ws: WebSocket, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.RLock()
        self.items: Deque[MessageData] = deque()
        self.waiter: Optional[asyncio.Future[None]] = None
        self.iterating = 0
        self.closed = False
        _token, _opened, closed = ws._observe(self._on_event)
        self.closed = closed

    def _on_event(self, event: Event, listened: int) -> None:
        kind = event.type
        if kind == "message":
            if listened and not self.iterating:
                return
            with self.lock:
                self.items.append(event.data)  # type: ignore[attr-defined]
                waiter, self.waiter = self.waiter, None
        elif kind == "close":
            with self.lock:
                self.closed = True
                waiter, self.waiter = self.waiter, None
        else:
            return
        if waiter is not None:
            _resolve(self.loop, waiter, None)


def _inbox(ws: WebSocket) -> _Inbox:
    loop = asyncio.get_running_loop()
    inbox: Optional[_Inbox] = ws.__dict__.get(_INBOX)
    if inbox is None:
        inbox = _Inbox(ws, loop)
        ws.__dict__[_INBOX] = inbox
    elif inbox.loop is not loop:
        raise RuntimeError("this WebSocket's messages are already read on another event loop")
    return inbox


class _Messages:
    """The asynchronous iterator of ``async for message in ws``."""

    __slots__ = ("_inbox", "_active")

    def __init__(self, ws: WebSocket) -> None:
        self._active = False
        self._inbox = _inbox(ws)
        with self._inbox.lock:
            self._inbox.iterating += 1
        self._active = True

    def _stop(self) -> None:
        if self._active:
            self._active = False
            with self._inbox.lock:
                self._inbox.iterating -= 1

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> MessageData:
        inbox = self._inbox
        while True:
            with inbox.lock:
                if inbox.items:
                    return inbox.items.popleft()
                closed = inbox.closed
                if not closed:
                    waiter: asyncio.Future[None] = inbox.loop.create_future()
                    inbox.waiter = waiter
            if closed:
                self._stop()
                raise StopAsyncIteration
            try:
                await waiter
            except BaseException:
                with inbox.lock:
                    if inbox.waiter is waiter:
                        inbox.waiter = None
                raise

    def __del__(self) -> None:
        self._stop()


class _Constant:
    """A class constant that instances cannot shadow (the browser's read-only constants)."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    def __get__(self, instance: object, owner: Optional[type] = None) -> int:
        return self.value

    def __set__(self, instance: object, value: object) -> None:
        raise AttributeError("readyState constants are read-only")

    def __delete__(self, instance: object) -> None:
        raise AttributeError("readyState constants are read-only")


class WebSocket(_wsdom.WebSocket):
    """``WebSocket(url, protocols=None, **options)``: the browser's WebSocket.

    ``url`` is a ``ws:``, ``wss:``, ``http:`` or ``https:`` URL (relative ones need
    ``base_url=``); ``protocols`` a subprotocol or a sequence of them. Connecting starts at
    once in the background. Options (keyword arguments): ``headers``, ``base_url``,
    ``ca_file``, ``ca_pem``, ``client_cert`` and ``client_key`` (files) or
    ``client_cert_pem`` and ``client_key_pem`` (text), ``insecure``, ``default_roots``,
    ``connect_timeout``, ``close_timeout``, ``max_message_size``, ``max_frame_size``,
    ``max_buffered_amount``, ``read_chunk_size``, ``ping_interval``, ``pong_timeout``,
    ``deflate``, ``deflate_threshold``, ``deflate_level`` (1-9, default 6), ``binaryType``,
    and the event handlers ``onopen``, ``onmessage``, ``onerror`` and ``onclose``.

    Events wait until a listener, an event handler, a wait or an iteration is attached, then
    are dispatched in order: on a wsdom thread, or on the asyncio loop's thread if the
    WebSocket was created inside a running loop.

    Besides the browser's API: :meth:`wait_open` and :meth:`wait_closed` (and their
    ``_async`` forms), ``with`` / ``async with`` (closes on exit) and ``async for``.
    """

    CONNECTING = _Constant(0)
    OPEN = _Constant(1)
    CLOSING = _Constant(2)
    CLOSED = _Constant(3)

    async def wait_open_async(self, timeout: Optional[float] = None) -> bool:
        """Waits until the ``open`` event was dispatched. Returns True if the socket
        opened, False if it closed without opening or ``timeout`` seconds passed."""
        return await _wait(self, False, timeout)

    async def wait_closed_async(self, timeout: Optional[float] = None) -> bool:
        """Waits until the ``close`` event was dispatched. Returns False if ``timeout``
        seconds passed first."""
        return await _wait(self, True, timeout)

    async def __aenter__(self) -> WebSocket:
        _inbox(self)
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
        await self.wait_closed_async()

    def __aiter__(self) -> _Messages:
        """``async for message in ws``: yields ``MessageEvent.data`` of each message (a
        ``str``, or a ``Blob`` / ``memoryview`` per :attr:`binaryType`) until the socket
        closes."""
        return _Messages(self)


WebSocket.__module__ = "wsdom"
