"""wss: with the test server's CA, and failure without it."""

from __future__ import annotations

import pytest

from wsdom import WebSocket

from conftest import Recorder


def echo_once(ws):
    got = []
    ws.onopen = lambda e: ws.send("secure")
    ws.onmessage = lambda e: (got.append(e.data), ws.close())
    assert ws.wait_closed(15)
    return got


def test_wss_with_ca_file(tls_server):
    ws = WebSocket(tls_server.url("/echo"), ca_file=tls_server.ca_file)
    assert echo_once(ws) == ["secure"]
    assert ws.url.startswith("wss://localhost:")


def test_wss_with_ca_pem(tls_server):
    for pem in (tls_server.ca_pem, tls_server.ca_pem.encode(), [tls_server.ca_pem]):
        ws = WebSocket(tls_server.url("/echo"), ca_pem=pem)
        assert echo_once(ws) == ["secure"]


def test_wss_with_pathlike_ca_file(tls_server):
    import pathlib

    ws = WebSocket(tls_server.url("/echo"), ca_file=[pathlib.Path(tls_server.ca_file)])
    assert echo_once(ws) == ["secure"]


def test_wss_without_the_ca_fails(tls_server):
    ws = WebSocket(tls_server.url("/echo"))
    messages = []
    ws.onerror = lambda e: messages.append(e.message)
    rec = Recorder(ws).wait(15)
    assert rec.events == [("error",), ("close", 1006, "", False)]
    assert "TLS" in messages[0] or "certificate" in messages[0].lower()


def test_wss_insecure(tls_server):
    ws = WebSocket(tls_server.url("/echo"), insecure=True, default_roots=False)
    assert echo_once(ws) == ["secure"]


def test_wss_large_message(tls_server):
    payload = b"t" * (1 << 20)
    ws = WebSocket(tls_server.url("/echo"), ca_file=tls_server.ca_file,
                   binaryType="arraybuffer")
    got = []
    ws.onopen = lambda e: ws.send(payload)
    ws.onmessage = lambda e: (got.append(bytes(e.data)), ws.close())
    assert ws.wait_closed(20)
    assert got == [payload]


def test_client_certificate_options_need_both_parts(tls_server):
    with pytest.raises(ValueError):
        WebSocket(tls_server.url("/echo"), client_cert=tls_server.ca_file)
