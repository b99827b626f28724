"""DOMException and its subclasses, and where the API raises them."""

from __future__ import annotations

import pickle

import pytest

import wsdom
from wsdom import (DOMException, DOMSyntaxError, InvalidAccessError, InvalidStateError,
                   WebSocket)


def test_domexception_basics():
    e = DOMException("boom", "NotFoundError")
    assert isinstance(e, Exception)
    assert (e.message, e.name, e.code) == ("boom", "NotFoundError", 8)
    assert str(e) == "boom"
    assert DOMException().name == "Error" and DOMException().code == 0
    assert DOMException.SYNTAX_ERR == 12 and DOMException.INVALID_STATE_ERR == 11
    assert DOMException.INVALID_ACCESS_ERR == 15
    assert DOMException.__module__ == "wsdom"
    with pytest.raises(AttributeError):
        e.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("cls, name, code, builtin", [
    (DOMSyntaxError, "SyntaxError", 12, ValueError),
    (InvalidStateError, "InvalidStateError", 11, RuntimeError),
    (InvalidAccessError, "InvalidAccessError", 15, ValueError),
])
def test_subclasses(cls, name, code, builtin):
    e = cls("why")
    assert isinstance(e, DOMException) and isinstance(e, builtin)
    assert (e.name, e.code, e.message, str(e)) == (name, code, "why", "why")
    assert repr(e) == f"{cls.__name__}('why')"
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is cls and again.message == "why"
    with pytest.raises(builtin):
        raise e


def test_pickle_domexception():
    e = pickle.loads(pickle.dumps(DOMException("m", "AbortError")))
    assert (e.message, e.name, e.code) == ("m", "AbortError", 20)


def test_constructor_raises_syntax_error():
    with pytest.raises(DOMSyntaxError, match="relative URL"):
        WebSocket("nope")
    with pytest.raises(wsdom.SyntaxError):
        WebSocket("ws://x/", ["a", "a"])


def test_send_while_connecting_raises_invalid_state(server):
    ws = WebSocket(server.url("/delay-handshake?ms=500"))
    try:
        with pytest.raises(InvalidStateError) as info:
            ws.send("x")
        assert info.value.code == 11 and isinstance(info.value, RuntimeError)
        assert ws.bufferedAmount == 0
    finally:
        ws.close()


@pytest.mark.parametrize("code", [0, 999, 1001, 1005, 1006, 1015, 2999, 5000, 65535, 65536,
                                  -1, 10**30])
def test_close_with_bad_code_raises_invalid_access(server, code):
    ws = WebSocket(server.url("/delay-handshake?ms=300"))
    try:
        with pytest.raises(InvalidAccessError) as info:
            ws.close(code)
        assert info.value.code == 15 and isinstance(info.value, ValueError)
        assert ws.readyState == ws.CONNECTING
    finally:
        ws.close()


def test_close_with_long_reason_raises_syntax_error(server):
    ws = WebSocket(server.url("/delay-handshake?ms=300"))
    try:
        with pytest.raises(DOMSyntaxError):
            ws.close(1000, "x" * 124)
        with pytest.raises(DOMSyntaxError):
            ws.close(1000, "é" * 62)  # 124 bytes
        # The code is checked first.
        with pytest.raises(InvalidAccessError):
            ws.close(1, "x" * 200)
        assert ws.readyState == ws.CONNECTING
        ws.close(4000, "x" * 123)
        assert ws.readyState == ws.CLOSING
    finally:
        ws.close()


@pytest.mark.parametrize("code, reason", [("1000", None), (1000.0, None), (1000, b"r"),
                                          (None, 5)])
def test_close_with_wrong_types_raises_type_error(server, code, reason):
    ws = WebSocket(server.url("/delay-handshake?ms=300"))
    try:
        with pytest.raises(TypeError):
            ws.close(code, reason)
    finally:
        ws.close()


@pytest.mark.parametrize("data", [1, 2.5, None, object(), ["a"], {"a": 1}])
def test_send_wrong_type_raises_type_error(server, data):
    ws = WebSocket(server.url("/echo"))
    try:
        assert ws.wait_open(10)
        with pytest.raises(TypeError):
            ws.send(data)
    finally:
        ws.close()
        ws.wait_closed(10)


def test_dispatch_event_errors(server):
    ws = WebSocket(server.url("/delay-handshake?ms=300"))
    try:
        with pytest.raises(TypeError):
            ws.dispatchEvent("open")
        ev = wsdom.Event("x")
        nested = []

        def listener(e):
            with pytest.raises(InvalidStateError):
                ws.dispatchEvent(e)
            nested.append(True)

        ws.addEventListener("x", listener)
        ws.dispatchEvent(ev)
        assert nested == [True]
    finally:
        ws.close()
