"""Event order and close codes for the scenarios of the test server."""

from __future__ import annotations

import struct

import pytest

from wsdom import WebSocket

from conftest import Recorder, close_frames, data_frames, wait_until


def frame(first: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([first, len(payload)]) + payload


def test_echo_open_message_close(server):
    url = server.url("/echo")
    ws = WebSocket(url)
    rec = Recorder(ws)
    states = []
    ws.onopen = lambda e: (states.append(ws.readyState), ws.send("hello"), ws.send(b"\x00\xff"))
    ws.onmessage = lambda e: (states.append(ws.readyState),
                              isinstance(e.data, str) or ws.close(1000, "done"))
    ws.onclose = lambda e: states.append(ws.readyState)
    rec.wait()
    assert rec.events == [("open",), ("message", "hello"), ("message", b"\x00\xff"),
                          ("close", 1000, "done", True)]
    assert states == [ws.OPEN, ws.OPEN, ws.OPEN, ws.CLOSED]
    assert ws.readyState == ws.CLOSED
    seen = server.observed(url)
    assert [(f["opcode"], bytes.fromhex(f["payload_hex"])) for f in data_frames(seen)] == [
        (1, b"hello"), (2, b"\x00\xff")]
    assert all(f["masked"] for f in seen["frames"])
    assert close_frames(seen) == [struct.pack("!H", 1000) + b"done"]


def test_close_without_code_sends_empty_close(server):
    url = server.url("/echo")
    ws = WebSocket(url)
    rec = Recorder(ws)
    ws.onopen = lambda e: ws.close()
    rec.wait()
    assert rec.events == [("open",), ("close", 1005, "", True)]
    assert close_frames(server.observed(url)) == [b""]


def test_reason_without_code_sends_1000(server):
    url = server.url("/echo")
    ws = WebSocket(url)
    rec = Recorder(ws)
    ws.onopen = lambda e: ws.close(reason="só")
    rec.wait()
    assert rec.events[-1] == ("close", 1000, "só", True)
    assert close_frames(server.observed(url)) == [struct.pack("!H", 1000) + "só".encode()]


def test_server_close_with_code_and_reason(server):
    ws = WebSocket(server.url("/close?code=4001&reason=bye%20now"))
    rec = Recorder(ws).wait()
    assert rec.events == [("open",), ("close", 4001, "bye now", True)]


def test_server_close_without_body_is_1005(server):
    ws = WebSocket(server.url("/close?empty=1"))
    rec = Recorder(ws).wait()
    assert rec.events == [("open",), ("close", 1005, "", True)]


@pytest.mark.parametrize("path, protocols", [
    ("/raw?status=404", None),
    ("/raw?status=200", None),
    ("/raw?accept=bad", None),
    ("/protocol?select=other", ["chat"]),
    ("/protocol?none=1", ["chat"]),
    ("/protocol?select=chat", None),
    ("/extension?value=x-unknown", None),
    ("/nonexistent-path", None),
])
def test_handshake_failures_are_error_then_close_1006(server, path, protocols):
    ws = WebSocket(server.url(path), protocols)
    rec = Recorder(ws)
    states = []
    ws.onerror = lambda e: states.append(ws.readyState)
    rec.wait()
    assert rec.events == [("error",), ("close", 1006, "", False)]
    assert states == [ws.CLOSED]
    assert ws.protocol == "" and ws.extensions == ""


def test_connection_refused_is_error_then_close_1006():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ws = WebSocket(f"ws://127.0.0.1:{port}/")
    rec = Recorder(ws).wait()
    assert rec.events == [("error",), ("close", 1006, "", False)]


def test_connect_timeout(server):
    ws = WebSocket(server.url("/never-handshake"), connect_timeout=0.3)
    rec = Recorder(ws).wait(10)
    assert rec.events == [("error",), ("close", 1006, "", False)]


def test_protocol_error_after_a_good_message(server):
    frames = frame(0x81, b"ok") + frame(0x83, b"")  # then a reserved opcode
    url = server.url("/send?frames=" + frames.hex())
    ws = WebSocket(url)
    rec = Recorder(ws).wait()
    assert rec.events == [("open",), ("message", "ok"), ("error",), ("close", 1006, "", False)]
    assert close_frames(server.observed(url)) == [struct.pack("!H", 1002)]


def test_invalid_utf8_after_a_good_message(server):
    frames = frame(0x82, b"\x01") + frame(0x81, b"\xff\xfe")
    url = server.url("/send?frames=" + frames.hex())
    ws = WebSocket(url)
    rec = Recorder(ws).wait()
    assert rec.events == [("open",), ("message", b"\x01"), ("error",),
                          ("close", 1006, "", False)]
    assert close_frames(server.observed(url)) == [struct.pack("!H", 1007)]


def test_fragmented_message_is_reassembled(server):
    frames = frame(0x01, b"hel") + frame(0x00, b"l") + frame(0x80, b"o")
    ws = WebSocket(server.url("/send?frames=" + frames.hex()), onmessage=lambda e: ws.close())
    rec = Recorder(ws).wait()
    assert rec.events[:2] == [("open",), ("message", "hello")]


@pytest.mark.parametrize("path", ["/drop", "/drop?rst=1", "/rst-after-open"])
def test_drop_after_open_is_error_then_1006(server, path):
    ws = WebSocket(server.url(path))
    rec = Recorder(ws).wait()
    assert rec.events == [("open",), ("error",), ("close", 1006, "", False)]


def test_messages_before_a_drop_are_delivered(server):
    ws = WebSocket(server.url("/push?n=50&size=10&type=text"))
    ws.onmessage = lambda e: e.data == "done" and ws.close()
    rec = Recorder(ws).wait()
    assert rec.types() == ["open"] + ["message"] * 51 + ["close"]


def test_close_while_connecting(server):
    ws = WebSocket(server.url("/delay-handshake?ms=300"))
    ws.close()
    # Nothing is dispatched before a listener is attached, so CLOSING is seen here.
    assert ws.readyState == ws.CLOSING
    rec = Recorder(ws)
    rec.wait()
    assert rec.events == [("error",), ("close", 1006, "", False)]
    assert ws.readyState == ws.CLOSED


def test_repeated_close_gives_one_close_event(server):
    ws = WebSocket(server.url("/echo"))
    rec = Recorder(ws)
    ws.onopen = lambda e: (ws.close(4000), ws.close(4001), ws.close())
    rec.wait()
    assert rec.events == [("open",), ("close", 4000, "", True)]
    ws.close()
    assert ws.readyState == ws.CLOSED


def test_close_waits_for_a_delayed_reply(server):
    ws = WebSocket(server.url("/echo?delay_close_ms=300"))
    rec = Recorder(ws)
    assert ws.wait_open(10)
    ws.close(1000)
    assert ws.readyState == ws.CLOSING
    assert not ws.wait_closed(0.1)
    rec.wait()
    assert rec.events[-1] == ("close", 1000, "", True)


def test_close_timeout_when_the_server_never_answers(server):
    ws = WebSocket(server.url("/no-close-reply"), close_timeout=0.3)
    rec = Recorder(ws)
    assert ws.wait_open(10)
    ws.close()
    rec.wait()
    assert rec.events[-1] == ("close", 1006, "", False)
    assert rec.types() == ["open", "error", "close"]


def test_messages_after_close_are_not_delivered(server):
    ws = WebSocket(server.url("/push?n=2000&size=10&type=text"))
    got = []

    def on_message(e):
        got.append(e.data)
        ws.close()

    ws.onmessage = on_message
    assert ws.wait_closed(10)
    assert len(got) == 1


def test_buffered_amount(server):
    ws = WebSocket(server.url("/echo"))
    assert ws.wait_open(10)
    assert ws.bufferedAmount == 0
    ws.send("abc")
    wait_until(lambda: ws.bufferedAmount == 0)
    ws.close()
    ws.send("12345")  # discarded after close, but counted
    ws.send(b"67")
    assert ws.bufferedAmount == 7
    assert ws.wait_closed(10)
    assert ws.bufferedAmount == 7


def test_send_after_close_does_not_raise(server):
    ws = WebSocket(server.url("/close?code=1000"))
    assert ws.wait_closed(10)
    ws.send("late")
    assert ws.readyState == ws.CLOSED


def test_max_message_size_fails_with_1009(server):
    url = server.url("/push?n=1&size=2000&type=binary")
    ws = WebSocket(url, max_message_size=1000)
    rec = Recorder(ws).wait()
    assert rec.events == [("open",), ("error",), ("close", 1006, "", False)]
    assert close_frames(server.observed(url)) == [struct.pack("!H", 1009)]
