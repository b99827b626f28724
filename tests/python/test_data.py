"""send() with every data type, binaryType, Blob, and large messages."""

from __future__ import annotations

import array
import hashlib

import pytest

from wsdom import Blob, WebSocket

from conftest import Recorder, data_frames


def echo_all(server, items, binary_type="blob", **options):
    """Sends `items` to /echo once open; returns the MessageEvent data received."""
    url = server.url("/echo")
    ws = WebSocket(url, binaryType=binary_type, **options)
    got = []

    def on_open(e):
        for item in items:
            ws.send(item)

    def on_message(e):
        got.append(e.data)
        if len(got) == len(items):
            ws.close()

    ws.onopen = on_open
    ws.onmessage = on_message
    assert ws.wait_closed(20)
    assert len(got) == len(items)
    return got, server.observed(url)


def test_send_every_type(server):
    items = ["text", "", "ünïcødé ✓", b"bytes", b"", bytearray(b"ba"), memoryview(b"mv"),
             array.array("H", [1, 2]), Blob([b"bl", "ob"]), memoryview(b"abcdef")[::2]]
    got, seen = echo_all(server, items, "arraybuffer")
    frames = data_frames(seen)
    assert [f["opcode"] for f in frames] == [1, 1, 1] + [2] * 7
    assert got[:3] == ["text", "", "ünïcødé ✓"]
    assert [bytes(d) for d in got[3:]] == [
        b"bytes", b"", b"ba", b"mv", array.array("H", [1, 2]).tobytes(), b"blob", b"ace"]


def test_lone_surrogates_become_replacement_characters(server):
    got, _ = echo_all(server, ["a\ud800b"])
    assert got == ["a\ufffdb"]


def test_blob_data_by_default(server):
    got, _ = echo_all(server, [b"\x00\x01\x02"])
    blob = got[0]
    assert isinstance(blob, Blob)
    assert (blob.size, blob.type) == (3, "")
    assert blob.bytes() == b"\x00\x01\x02" and bytes(blob) == b"\x00\x01\x02"
    assert blob.arrayBuffer().tobytes() == b"\x00\x01\x02"
    assert blob.text() == "\x00\x01\x02"


def test_arraybuffer_data_is_a_read_only_memoryview(server):
    got, _ = echo_all(server, [b"xyz"], "arraybuffer")
    view = got[0]
    assert isinstance(view, memoryview)
    assert view.readonly and view == b"xyz" and view.tobytes() == b"xyz"
    with pytest.raises(TypeError):
        view[0] = 1
    assert bytes(view[1:]) == b"yz"


def test_binary_type_is_read_at_dispatch_time(server):
    ws = WebSocket(server.url("/push?n=4&size=3&type=binary"))
    got = []

    def on_message(e):
        got.append(type(e.data).__name__)
        ws.binaryType = "arraybuffer" if ws.binaryType == "blob" else "blob"
        if len(got) == 4:
            ws.close()

    ws.onmessage = on_message
    assert ws.wait_closed(10)
    assert got == ["Blob", "memoryview", "Blob", "memoryview"]


def test_one_mebibyte_both_ways(server):
    payload = bytes(range(256)) * 4096
    text = "é" * (1 << 19)
    got, seen = echo_all(server, [payload, text, bytearray(payload)], "arraybuffer")
    assert len(got[0]) == 1 << 20 and bytes(got[0]) == payload
    assert got[1] == text
    assert hashlib.sha256(got[2]).digest() == hashlib.sha256(payload).digest()
    assert [len(bytes.fromhex(f["payload_hex"])) for f in data_frames(seen)] == [
        1 << 20, 1 << 20, 1 << 20]


def test_large_messages_with_deflate(server):
    payload = b"abc" * 400_000
    url = server.url("/deflate")
    ws = WebSocket(url, binaryType="arraybuffer")
    got = []
    ws.onopen = lambda e: ws.send(payload)
    ws.onmessage = lambda e: (got.append(bytes(e.data)), ws.close())
    assert ws.wait_closed(20)
    assert got == [payload]


def test_blob_constructor_and_slice():
    b = Blob(["a", b"bc", bytearray(b"d"), memoryview(b"e"), Blob([b"f"])], type="Text/Plain")
    assert (b.size, b.type, b.bytes()) == (6, "text/plain", b"abcdef")
    assert Blob().size == 0 and Blob(None, {"type": "x/y"}).type == "x/y"
    assert Blob([], type="bad\u00e9type").type == ""
    assert b.slice(1, 3).bytes() == b"bc"
    assert b.slice(-2).bytes() == b"ef"
    assert b.slice(4, 2).bytes() == b""
    assert b.slice(0, 100, "A/B").type == "a/b"
    assert b.slice(-100, -4).bytes() == b"ab"
    assert Blob([b"\xff"]).text() == "\ufffd"
    assert "size=6" in repr(b)
    with pytest.raises(TypeError):
        Blob([1])
    with pytest.raises(TypeError):
        Blob("abc")
    with pytest.raises(AttributeError):
        b.size = 3


def test_blob_array_buffer_shares_memory():
    b = Blob([b"x" * 1000])
    v1, v2 = b.arrayBuffer(), b.slice(10, 20).arrayBuffer()
    assert v1.readonly and v1.nbytes == 1000 and v2.tobytes() == b"x" * 10
    assert v1.obj is not None


def test_large_send_from_a_thread_does_not_block_others(server):
    import threading

    ws = WebSocket(server.url("/echo"), binaryType="arraybuffer", deflate=True)
    sizes = []
    ws.onmessage = lambda e: sizes.append(len(e.data))
    assert ws.wait_open(10)
    big = b"q" * (8 << 20)
    threads = [threading.Thread(target=ws.send, args=(big,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from conftest import wait_until

    wait_until(lambda: len(sizes) == 2, 30)
    assert sizes == [8 << 20, 8 << 20]
    ws.close()
    assert ws.wait_closed(10)
