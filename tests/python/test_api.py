"""The WebSocket attributes, constants, constructor arguments and options."""

from __future__ import annotations

import pytest

import wsdom
from wsdom import WebSocket

from conftest import Recorder


def test_package_exports():
    assert wsdom.__version__ == "0.1.0"
    for name in wsdom.__all__:
        assert hasattr(wsdom, name), name
    assert set(wsdom.__all__) >= {
        "WebSocket", "Event", "MessageEvent", "CloseEvent", "ErrorEvent", "Blob",
        "DOMException", "DOMSyntaxError", "InvalidStateError", "InvalidAccessError",
    }
    assert "SyntaxError" not in wsdom.__all__
    assert wsdom.SyntaxError is wsdom.DOMSyntaxError


def test_constants_on_class_and_instance(server):
    assert (WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED) == (
        0, 1, 2, 3)
    ws = WebSocket(server.url("/delay-handshake?ms=300"))
    try:
        assert (ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED) == (0, 1, 2, 3)
        assert ws.readyState == ws.CONNECTING
    finally:
        ws.close()


def test_initial_attributes(server):
    url = server.url("/delay-handshake?ms=300")
    ws = WebSocket(url)
    try:
        assert ws.url == url
        assert ws.readyState == 0
        assert ws.bufferedAmount == 0
        assert ws.protocol == ""
        assert ws.extensions == ""
        assert ws.binaryType == "blob"
        assert ws.onopen is None and ws.onmessage is None
        assert ws.onerror is None and ws.onclose is None
        assert "readyState=0" in repr(ws) and url in repr(ws)
    finally:
        ws.close()


@pytest.mark.parametrize("name", ["url", "readyState", "bufferedAmount", "extensions",
                                  "protocol", "CONNECTING", "OPEN", "CLOSING", "CLOSED"])
def test_read_only_attributes_stay_read_only(server, name):
    ws = WebSocket(server.url("/delay-handshake?ms=200"))
    try:
        before = getattr(ws, name)
        with pytest.raises(AttributeError):
            setattr(ws, name, 7)
        assert getattr(ws, name) == before
    finally:
        ws.close()


def test_binary_type_ignores_other_values(server):
    ws = WebSocket(server.url("/delay-handshake?ms=200"))
    try:
        ws.binaryType = "arraybuffer"
        assert ws.binaryType == "arraybuffer"
        for bad in ("ArrayBuffer", "", "text", None, 3, b"blob"):
            ws.binaryType = bad
            assert ws.binaryType == "arraybuffer"
        ws.binaryType = "blob"
        assert ws.binaryType == "blob"
        assert WebSocket(server.url("/echo"), binaryType="arraybuffer").binaryType == "arraybuffer"
    finally:
        ws.close()


def test_url_is_serialized_and_http_becomes_ws(server):
    ws = WebSocket(f"http://127.0.0.1:{server.port}/echo")
    try:
        assert ws.url == f"ws://127.0.0.1:{server.port}/echo"
    finally:
        ws.close()
    ws = WebSocket("HTTPS://Example.COM:443/a b")
    try:
        assert ws.url == "wss://example.com/a%20b"
    finally:
        ws.close()


def test_relative_url_needs_base_url(server):
    with pytest.raises(wsdom.DOMSyntaxError):
        WebSocket("/echo")
    ws = WebSocket("echo?x=1", base_url=f"http://127.0.0.1:{server.port}/dir")
    try:
        assert ws.url == f"ws://127.0.0.1:{server.port}/echo?x=1"
        assert ws.wait_open(10)
    finally:
        ws.close()


@pytest.mark.parametrize("url", ["", "foo", "ftp://example.com/", "ws://example.com/#frag",
                                 "ws://exa mple.com/", "mailto:x@example.com"])
def test_bad_urls_are_syntax_errors(url):
    with pytest.raises(wsdom.DOMSyntaxError) as info:
        WebSocket(url)
    assert info.value.name == "SyntaxError" and info.value.code == 12
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("protocols", [["a", "a"], ["bad token"], [""], ["a,b"], "x y"])
def test_bad_protocols_are_syntax_errors(server, protocols):
    with pytest.raises(wsdom.DOMSyntaxError):
        WebSocket(server.url("/echo"), protocols)


def test_protocols_accepts_str_and_sequences(server):
    for protocols, expected in (("chat", "chat"), (["v2", "v1"], "v2"), (("v1",), "v1"),
                                (iter(["x"]), "x"), ([], ""), (None, "")):
        ws = WebSocket(server.url("/echo"), protocols)
        try:
            assert ws.wait_open(10)
            assert ws.protocol == expected
        finally:
            ws.close()
            ws.wait_closed(10)


@pytest.mark.parametrize("args, kwargs", [
    ((b"ws://127.0.0.1/",), {}),
    ((42,), {}),
    (("ws://127.0.0.1/", b"chat"), {}),
    (("ws://127.0.0.1/", 5), {}),
    (("ws://127.0.0.1/", [1]), {}),
    (("ws://127.0.0.1/",), {"no_such_option": 1}),
    (("ws://127.0.0.1/",), {"headers": 5}),
    (("ws://127.0.0.1/",), {"headers": {"X": 1}}),
    (("ws://127.0.0.1/",), {"insecure": "yes"}),
    (("ws://127.0.0.1/",), {"connect_timeout": "1"}),
    (("ws://127.0.0.1/",), {"max_message_size": 1.5}),
])
def test_wrong_argument_types_are_type_errors(args, kwargs):
    with pytest.raises(TypeError):
        WebSocket(*args, **kwargs)


@pytest.mark.parametrize("kwargs", [
    {"connect_timeout": 0}, {"close_timeout": -1}, {"connect_timeout": float("nan")},
    {"max_message_size": 0}, {"max_frame_size": -5}, {"client_cert_pem": "x"},
    {"max_buffered_amount": 0}, {"pong_timeout": 0}, {"ping_interval": -1},
])
def test_bad_option_values_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        WebSocket("ws://127.0.0.1:1/", **kwargs)


@pytest.mark.parametrize("name", ["Host", "Upgrade", "Sec-WebSocket-Key", "bad name"])
def test_reserved_or_invalid_headers_are_syntax_errors(name):
    with pytest.raises(wsdom.DOMSyntaxError):
        WebSocket("ws://127.0.0.1:1/", headers={name: "x"})


def test_pem_text_given_as_a_path_is_not_echoed():
    key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n"
    for name, hint in (("client_key", "client_key_pem"), ("ca_file", "ca_pem")):
        kwargs = {name: key}
        if name == "client_key":
            kwargs["client_cert_pem"] = "x"
        with pytest.raises(ValueError) as info:
            WebSocket("wss://127.0.0.1:1/", **kwargs)
        assert hint in str(info.value)
        assert "c2VjcmV0" not in str(info.value)


def test_ping_interval_zero_or_none_is_off(server):
    # As in C (ws_options_set_ping_interval(o, 0)).
    for value in (0, 0.0, None):
        ws = WebSocket(server.url("/echo"), ping_interval=value)
        assert ws.wait_open(10)
        ws.close()
        assert ws.wait_closed(10)


def test_missing_ca_file_raises_oserror():
    with pytest.raises(FileNotFoundError):
        WebSocket("wss://127.0.0.1:1/", ca_file="/nonexistent/ca.pem")


def test_headers_are_sent(server):
    import json

    ws = WebSocket(server.url("/headers"), headers=[("Authorization", "Bearer t"),
                                                     ("X-Two", "2")])
    rec = Recorder(ws)
    got = []
    ws.onmessage = lambda e: (got.append(json.loads(e.data)), ws.close())
    rec.wait()
    headers = {k.lower(): v for k, v in got[0].items()}
    assert headers["authorization"] == "Bearer t"
    assert headers["x-two"] == "2"
    ws = WebSocket(server.url("/headers"), headers={"User-Agent": "wsdom-test"})
    got.clear()
    ws.onmessage = lambda e: (got.append(json.loads(e.data)), ws.close())
    assert ws.wait_closed(10)
    assert {k.lower(): v for k, v in got[0].items()}["user-agent"] == "wsdom-test"


def test_all_documented_options_are_accepted(server):
    ws = WebSocket(
        server.url("/echo"), "chat",
        headers={"X-A": "1"}, base_url=None, ca_pem=[], insecure=False, default_roots=True,
        proxy=False, connect_timeout=5, close_timeout=2.5, max_message_size=1 << 20,
        max_frame_size=1 << 20, max_buffered_amount=1 << 24, read_chunk_size=4096,
        ping_interval=None, pong_timeout=3, deflate=False, deflate_threshold=0, deflate_level=6,
        binaryType="blob", onopen=None, onmessage=None, onerror=None, onclose=None)
    try:
        assert ws.wait_open(10)
        assert ws.extensions == ""
    finally:
        ws.close()
        ws.wait_closed(10)


def test_deflate_is_offered_by_default(server):
    ws = WebSocket(server.url("/deflate"))
    try:
        assert ws.wait_open(10)
        assert ws.extensions.startswith("permessage-deflate")
    finally:
        ws.close()
        ws.wait_closed(10)


def test_protocol_and_extensions_after_open(server):
    ws = WebSocket(server.url("/protocol?select=b"), ["a", "b"])
    seen = []
    ws.onopen = lambda e: seen.append((ws.protocol, ws.readyState))
    try:
        assert ws.wait_open(10)
        assert seen == [("b", ws.OPEN)]
    finally:
        ws.close()
        ws.wait_closed(10)


def test_expando_attributes_are_allowed(server):
    ws = WebSocket(server.url("/delay-handshake?ms=100"))
    ws.my_data = {"user": 1}
    assert ws.my_data == {"user": 1}
    ws.close()


def test_wait_timeout_arguments(server):
    ws = WebSocket(server.url("/never-handshake"))
    try:
        assert ws.wait_open(0) is False
        assert ws.wait_open(-1) is False
        assert ws.wait_open(0.05) is False
        with pytest.raises(ValueError):
            ws.wait_open(float("nan"))
        with pytest.raises(TypeError):
            ws.wait_open("1")
    finally:
        ws.close()
    assert ws.wait_closed(10)
    assert ws.wait_open(0) is False


def test_deflate_level_trades_cpu_for_bytes_on_the_wire(server):
    text = "".join(
        f'{{"id":{i * 7919 % 100003},"name":"user {i % 97}","score":{i * 31 % 1000}}},'
        for i in range(1000))

    def sent(**options):
        url = server.url(f"/deflate?level-{options.get('deflate_level', 'default')}")
        ws = WebSocket(url, **options)
        got = []
        ws.onopen = lambda e: ws.send(text)
        ws.onmessage = lambda e: (got.append(e.data), ws.close())
        assert ws.wait_closed(10)
        assert got == [text]
        frames = [f for f in server.observed(url)["frames"] if f["opcode"] == 1]
        assert frames[0]["rsv"] == 4, "compressed"
        return len(frames[0]["payload_hex"]) // 2

    fast, default, best = sent(deflate_level=1), sent(), sent(deflate_level=9)
    assert default * 5 < fast * 4 and best * 5 < fast * 4, (fast, default, best)
    for bad in (0, 10):
        with pytest.raises(ValueError, match="deflate_level"):
            WebSocket(server.url("/echo"), deflate_level=bad)
    with pytest.raises(TypeError):
        WebSocket(server.url("/echo"), deflate_level="fast")
