"""Type stubs of the compiled module ``wsdom._wsdom``."""

import builtins
import os
import sys
from typing import (
    Any,
    Callable,
    Iterable,
    Literal,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
    final,
)

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

if sys.version_info >= (3, 12):
    from collections.abc import Buffer as _Buffer
else:
    from typing_extensions import Buffer as _Buffer

__all__ = [
    "__version__",
    "DOMException",
    "DOMSyntaxError",
    "InvalidStateError",
    "InvalidAccessError",
    "WebSocket",
    "Event",
    "MessageEvent",
    "CloseEvent",
    "ErrorEvent",
    "Blob",
    "LoopQueue",
    "_shutdown",
    "_after_fork_child",
]

__version__: str

# Exceptions -----------------------------------------------------------------------------

class DOMException(Exception):
    """The browser's DOMException: ``name``, ``message`` and legacy numeric ``code``."""

    INDEX_SIZE_ERR: int
    DOMSTRING_SIZE_ERR: int
    HIERARCHY_REQUEST_ERR: int
    WRONG_DOCUMENT_ERR: int
    INVALID_CHARACTER_ERR: int
    NO_DATA_ALLOWED_ERR: int
    NO_MODIFICATION_ALLOWED_ERR: int
    NOT_FOUND_ERR: int
    NOT_SUPPORTED_ERR: int
    INUSE_ATTRIBUTE_ERR: int
    INVALID_STATE_ERR: int
    SYNTAX_ERR: int
    INVALID_MODIFICATION_ERR: int
    NAMESPACE_ERR: int
    INVALID_ACCESS_ERR: int
    VALIDATION_ERR: int
    TYPE_MISMATCH_ERR: int
    SECURITY_ERR: int
    NETWORK_ERR: int
    ABORT_ERR: int
    URL_MISMATCH_ERR: int
    QUOTA_EXCEEDED_ERR: int
    TIMEOUT_ERR: int
    INVALID_NODE_TYPE_ERR: int
    DATA_CLONE_ERR: int

    def __init__(self, message: str = "", name: str = "Error") -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def code(self) -> int: ...

class DOMSyntaxError(DOMException, ValueError):
    """``SyntaxError`` (code 12): bad URL, subprotocol, close reason or option."""

    def __init__(self, message: str = "") -> None: ...

class InvalidStateError(DOMException, RuntimeError):
    """``InvalidStateError`` (code 11): e.g. ``send()`` while CONNECTING."""

    def __init__(self, message: str = "") -> None: ...

class InvalidAccessError(DOMException, ValueError):
    """``InvalidAccessError`` (code 15): a close code other than 1000 or 3000-4999."""

    def __init__(self, message: str = "") -> None: ...

# Events ---------------------------------------------------------------------------------

class Event:
    """The base class of all events."""

    NONE: int
    CAPTURING_PHASE: int
    AT_TARGET: int
    BUBBLING_PHASE: int

    def __new__(
        cls,
        type: str,
        init: Optional[Mapping[str, Any]] = None,
        *,
        bubbles: bool = False,
        cancelable: bool = False,
        composed: bool = False,
    ) -> Self: ...
    @property
    def type(self) -> str: ...
    @property
    def target(self) -> Optional[Any]: ...
    @property
    def srcElement(self) -> Optional[Any]: ...
    @property
    def currentTarget(self) -> Optional[Any]: ...
    @property
    def eventPhase(self) -> int: ...
    @property
    def bubbles(self) -> bool: ...
    @property
    def cancelable(self) -> bool: ...
    @property
    def composed(self) -> bool: ...
    @property
    def isTrusted(self) -> bool: ...
    @property
    def timeStamp(self) -> float:
        """Milliseconds since the module was loaded when the event was fired. Events fired
        back to back in one batch may share a clock reading (a few microseconds apart at most;
        browsers coarsen ``timeStamp`` to 5-100 µs)."""
        ...
    @property
    def defaultPrevented(self) -> bool: ...
    returnValue: bool
    cancelBubble: bool
    def stopPropagation(self) -> None: ...
    def stopImmediatePropagation(self) -> None: ...
    def preventDefault(self) -> None: ...
    def composedPath(self) -> list[Any]: ...

class MessageEvent(Event):
    """A message: ``data`` is a ``str`` (text) or a ``Blob`` / ``memoryview`` (binary)."""

    def __new__(
        cls,
        type: str,
        init: Optional[Mapping[str, Any]] = None,
        *,
        bubbles: bool = False,
        cancelable: bool = False,
        composed: bool = False,
        data: Any = None,
        origin: str = "",
        lastEventId: str = "",
        source: Any = None,
        ports: Iterable[Any] = (),
    ) -> Self: ...
    @property
    def data(self) -> Any: ...
    @property
    def origin(self) -> str: ...
    @property
    def lastEventId(self) -> str: ...
    @property
    def source(self) -> Any: ...
    @property
    def ports(self) -> Tuple[Any, ...]: ...

class CloseEvent(Event):
    """The last event of a WebSocket."""

    def __new__(
        cls,
        type: str,
        init: Optional[Mapping[str, Any]] = None,
        *,
        bubbles: bool = False,
        cancelable: bool = False,
        composed: bool = False,
        wasClean: bool = False,
        code: int = 0,
        reason: str = "",
    ) -> Self: ...
    @property
    def wasClean(self) -> bool: ...
    @property
    def code(self) -> int: ...
    @property
    def reason(self) -> str: ...

class ErrorEvent(Event):
    """The ``error`` event of a WebSocket; ``message`` says what went wrong."""

    def __new__(
        cls,
        type: str,
        init: Optional[Mapping[str, Any]] = None,
        *,
        bubbles: bool = False,
        cancelable: bool = False,
        composed: bool = False,
        message: str = "",
        filename: str = "",
        lineno: int = 0,
        colno: int = 0,
        error: Any = None,
    ) -> Self: ...
    @property
    def message(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def lineno(self) -> int: ...
    @property
    def colno(self) -> int: ...
    @property
    def error(self) -> Any: ...

# Blob -----------------------------------------------------------------------------------

@final
class Blob:
    """Immutable bytes with a MIME type; the default ``data`` of binary messages."""

    def __new__(
        cls,
        blobParts: Optional[Iterable[Union[str, builtins.bytes, _Buffer, Blob]]] = None,
        options: Optional[Mapping[str, str]] = None,
        *,
        type: Optional[str] = None,
    ) -> Self: ...
    @property
    def size(self) -> int: ...
    @property
    def type(self) -> str: ...
    def bytes(self) -> builtins.bytes: ...
    def text(self) -> str: ...
    def arrayBuffer(self) -> memoryview: ...
    def slice(
        self,
        start: Optional[int] = None,
        end: Optional[int] = None,
        contentType: Optional[str] = None,
    ) -> Blob: ...
    def __bytes__(self) -> builtins.bytes: ...

# WebSocket ------------------------------------------------------------------------------

class _HandleEvent(Protocol):
    def handleEvent(self, event: Any, /) -> object: ...

_EventHandler = Optional[Callable[[Any], object]]
_Listener = Union[Callable[[Any], object], _HandleEvent]
_StrPath = Union[str, "os.PathLike[str]"]

class WebSocket:
    """The browser's WebSocket (see ``wsdom.WebSocket`` for the asyncio helpers).

    ``proxy``: ``None`` (the default) reads the proxy from the environment as curl does
    (``https_proxy``/``HTTPS_PROXY`` for wss, ``http_proxy``/``HTTP_PROXY`` for ws, then
    ``all_proxy``/``ALL_PROXY``, except hosts in ``no_proxy``/``NO_PROXY``; loopback hosts
    always connect directly); ``False`` (or ``""``, as in C) connects directly; a URL uses that
    proxy: ``http://[user:password@]host:port`` (HTTP CONNECT), ``https://...`` (CONNECT over
    TLS, verified with this socket's TLS options), ``socks5://...`` or ``socks5h://...`` (the
    proxy resolves the host name). An invalid URL raises ``DOMSyntaxError``; errors never show
    the password. ``ping_interval`` ``None`` or ``0`` turns keepalive off.
    """

    CONNECTING: int
    OPEN: int
    CLOSING: int
    CLOSED: int

    def __init__(
        self,
        url: str,
        protocols: Union[str, Sequence[str], None] = None,
        *,
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
        base_url: Optional[str] = None,
        ca_file: Union[_StrPath, Sequence[_StrPath], None] = None,
        ca_pem: Union[str, bytes, Sequence[Union[str, bytes]], None] = None,
        client_cert: Optional[_StrPath] = None,
        client_key: Optional[_StrPath] = None,
        client_cert_pem: Union[str, bytes, None] = None,
        client_key_pem: Union[str, bytes, None] = None,
        insecure: bool = False,
        default_roots: bool = True,
        proxy: Union[str, Literal[False], None] = None,
        connect_timeout: Optional[float] = None,
        close_timeout: Optional[float] = None,
        max_message_size: Optional[int] = None,
        max_frame_size: Optional[int] = None,
        max_buffered_amount: Optional[int] = None,
        read_chunk_size: Optional[int] = None,
        ping_interval: Optional[float] = None,
        pong_timeout: Optional[float] = None,
        deflate: bool = True,
        deflate_threshold: Optional[int] = None,
        deflate_level: Optional[int] = None,
        binaryType: str = "blob",
        onopen: _EventHandler = None,
        onmessage: _EventHandler = None,
        onerror: _EventHandler = None,
        onclose: _EventHandler = None,
    ) -> None: ...
    @property
    def url(self) -> str: ...
    @property
    def readyState(self) -> int: ...
    @property
    def bufferedAmount(self) -> int: ...
    @property
    def extensions(self) -> str: ...
    @property
    def protocol(self) -> str: ...
    @property
    def binaryType(self) -> str: ...
    @binaryType.setter
    def binaryType(self, value: object) -> None: ...
    @property
    def onopen(self) -> _EventHandler: ...
    @onopen.setter
    def onopen(self, value: object) -> None: ...
    @property
    def onmessage(self) -> _EventHandler: ...
    @onmessage.setter
    def onmessage(self, value: object) -> None: ...
    @property
    def onerror(self) -> _EventHandler: ...
    @onerror.setter
    def onerror(self, value: object) -> None: ...
    @property
    def onclose(self) -> _EventHandler: ...
    @onclose.setter
    def onclose(self, value: object) -> None: ...
    def send(self, data: Union[str, bytes, bytearray, memoryview, _Buffer, Blob]) -> None: ...
    def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None: ...
    def addEventListener(
        self,
        type: str,
        listener: Optional[_Listener],
        options: Union[bool, Mapping[str, bool], None] = None,
        *,
        once: Optional[bool] = None,
        capture: Optional[bool] = None,
        passive: Optional[bool] = None,
    ) -> None: ...
    def removeEventListener(
        self,
        type: str,
        listener: Optional[_Listener],
        options: Union[bool, Mapping[str, bool], None] = None,
        *,
        capture: Optional[bool] = None,
    ) -> None: ...
    def dispatchEvent(self, event: Event) -> bool: ...
    def wait_open(self, timeout: Optional[float] = None) -> bool: ...
    def wait_closed(self, timeout: Optional[float] = None) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...
    def _observe(self, callback: Callable[[Event, int], object]) -> Tuple[int, bool, bool]: ...
    def _unobserve(self, token: int) -> None: ...
    @property
    def _loop_mode(self) -> bool: ...

@final
class LoopQueue:
    """Internal: the event queue of one asyncio loop."""

    def fileno(self) -> int: ...
    def _drain(self) -> None: ...

def _shutdown() -> None: ...
def _after_fork_child() -> None: ...
