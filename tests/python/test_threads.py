"""Thread-mode dispatch: the library's dispatcher thread, late handlers, concurrency,
lifetime (garbage collection, leaks) and Ctrl-C."""

from __future__ import annotations

import gc
import os
import signal
import struct
import threading
import time
import tracemalloc
import weakref

import pytest

from wsdom import Event, MessageEvent, WebSocket

from conftest import Recorder, close_frames, wait_until


def test_handlers_run_on_one_library_thread_shared_by_all_sockets(server):
    sockets = [WebSocket(server.url("/echo")) for _ in range(5)]
    threads = set()
    names = set()

    def on_open(e):
        threads.add(threading.get_ident())
        names.add(threading.current_thread().name)
        e.target.close()

    for ws in sockets:
        ws.onopen = on_open
    for ws in sockets:
        assert ws.wait_closed(10)
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_events_of_one_socket_are_in_order_one_at_a_time(server):
    ws = WebSocket(server.url("/push?n=300&size=4&type=text"))
    got = []
    running = []

    def on_message(e):
        running.append(1)
        assert len(running) == 1
        got.append(e.data)
        time.sleep(0)
        running.pop()
        if e.data == "done":
            ws.close()

    ws.onmessage = on_message
    assert ws.wait_closed(20)
    assert got == ["xxxx"] * 300 + ["done"]


def test_late_handlers_500_sockets(server):
    sockets = [WebSocket(server.url("/push?n=3&size=5&type=text")) for _ in range(500)]
    time.sleep(0.5)  # the server's messages arrive before any handler is attached
    logs = {}

    def attach(ws):
        log = logs[id(ws)] = []
        ws.onopen = lambda e: log.append("open")

        def on_message(e):
            log.append(e.data)
            if e.data == "done":
                ws.close()

        ws.onmessage = on_message
        ws.onclose = lambda e: log.append(("close", e.code, e.wasClean))

    for ws in sockets:
        attach(ws)
    for ws in sockets:
        assert ws.wait_closed(30)
    expected = ["open", "xxxxx", "xxxxx", "xxxxx", "done", ("close", 1005, True)]
    assert all(log == expected for log in logs.values()), [
        log for log in logs.values() if log != expected][:3]


def test_constructor_handlers_hear_everything(server):
    got = []
    ws = WebSocket(server.url("/push?n=2&size=1&type=text"),
                   onopen=lambda e: got.append("open"),
                   onmessage=lambda e: (got.append(e.data), e.data == "done" and ws.close()),
                   onerror=lambda e: got.append("error"),
                   onclose=lambda e: got.append("close"))
    assert ws.wait_closed(10)
    assert got == ["open", "x", "x", "done", "close"]


def test_events_wait_for_wait_open(server):
    ws = WebSocket(server.url("/echo"))
    time.sleep(0.2)
    assert ws.readyState == ws.CONNECTING  # nothing dispatched yet
    assert ws.wait_open(10) is True
    assert ws.readyState == ws.OPEN
    ws.close()
    assert ws.wait_closed(10) is True


def test_wait_open_returns_false_when_the_connection_fails(server):
    ws = WebSocket(server.url("/raw?status=500"))
    assert ws.wait_open(10) is False
    assert ws.readyState == ws.CLOSED


def test_wait_from_a_handler_raises(server):
    ws = WebSocket(server.url("/echo"))
    errors = []

    def on_open(e):
        for wait in (ws.wait_open, ws.wait_closed):
            try:
                wait(1)
            except RuntimeError as err:
                errors.append(str(err))
        ws.close()

    ws.onopen = on_open
    assert ws.wait_closed(10)
    assert len(errors) == 2 and "would block" in errors[0]


def test_handler_that_raises_does_not_stop_dispatch(server, unraisable):
    ws = WebSocket(server.url("/push?n=3&size=1&type=text"))
    got = []

    def on_message(e):
        got.append(e.data)
        if e.data == "done":
            ws.close()
        raise RuntimeError("handler failed")

    ws.onmessage = on_message
    ws.addEventListener("message", lambda e: got.append("second"))
    assert ws.wait_closed(10)
    assert got == ["x", "second"] * 3 + ["done", "second"]
    wait_until(lambda: len(unraisable) == 4)
    assert all(u[0] is RuntimeError and u[1] == "handler failed" for u in unraisable)


def test_handler_that_raises_keyboard_interrupt_on_the_dispatcher(server, unraisable):
    ws = WebSocket(server.url("/echo"))

    def on_open(e):
        ws.close()
        raise KeyboardInterrupt

    ws.onopen = on_open
    assert ws.wait_closed(10)
    assert unraisable and unraisable[0][0] is KeyboardInterrupt


def test_handlers_that_close_their_socket(server):
    url = server.url("/echo")
    ws = WebSocket(url)
    rec = Recorder(ws)
    ws.onopen = lambda e: (ws.send("one"), ws.close(4002, "enough"), ws.send("lost"))
    rec.wait()
    assert rec.events == [("open",), ("close", 4002, "enough", True)]
    seen = server.observed(url)
    assert [bytes.fromhex(f["payload_hex"]) for f in seen["frames"] if f["opcode"] == 1] == [
        b"one"]
    assert close_frames(seen) == [struct.pack("!H", 4002) + b"enough"]


def test_sends_from_many_threads(server):
    ws = WebSocket(server.url("/echo"))
    got = []
    done = threading.Event()

    def on_message(e):
        got.append(e.data)
        if len(got) == 8 * 200:
            done.set()

    ws.onmessage = on_message
    assert ws.wait_open(10)

    def sender(n):
        for i in range(200):
            ws.send(f"{n}:{i}")

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done.wait(20)
    for n in range(8):
        mine = [m for m in got if m.startswith(f"{n}:")]
        assert mine == [f"{n}:{i}" for i in range(200)]
    ws.close()
    assert ws.wait_closed(10)


def test_wait_from_many_threads(server):
    ws = WebSocket(server.url("/delay-handshake?ms=200"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(ws.wait_open(10)))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 5
    ws.close()
    assert ws.wait_closed(10)


def test_garbage_collected_open_socket_is_closed_without_code(server):
    url = server.url("/echo")
    ws = WebSocket(url)
    assert ws.wait_open(10)
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert ref() is None
    seen = server.observed(url)
    assert close_frames(seen) == [b""]


def test_socket_with_listeners_is_kept_alive_until_closed(server):
    got = []
    done = threading.Event()

    def start():
        ws = WebSocket(server.url("/push?n=3&size=2&type=text"))
        ws.onmessage = lambda e: (got.append(e.data), e.data == "done" and ws.close())
        ws.onclose = lambda e: done.set()
        return weakref.ref(ws)

    ref = start()
    gc.collect()
    assert done.wait(10)
    assert got == ["xx", "xx", "xx", "done"]
    # After close the socket is released (the handler's cycle is collectable).
    wait_until(lambda: (gc.collect(), ref() is None)[1])


def test_socket_without_listeners_is_collected_while_connecting(server):
    ws = WebSocket(server.url("/delay-handshake?ms=200"))
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert ref() is None


def test_no_leak_across_10000_messages(server):
    def run():
        ws = WebSocket(server.url("/push?n=10000&size=16&type=binary"),
                       binaryType="arraybuffer")
        count = [0]

        def on_message(e):
            count[0] += 1
            if isinstance(e.data, str):
                ws.close()

        ws.onmessage = on_message
        assert ws.wait_closed(30)
        assert count[0] == 10001
        ref = weakref.ref(ws)
        del ws, on_message
        gc.collect()
        assert ref() is None

    def live():
        return sum(isinstance(o, (Event, WebSocket)) for o in gc.get_objects())

    run()
    gc.collect()
    objects = live()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 100_000, f"{after - before} bytes still allocated"
    assert live() == objects


def test_events_are_released_after_dispatch(server):
    refs = []
    ws = WebSocket(server.url("/push?n=20&size=2&type=binary"))

    def on_message(e):
        refs.append(weakref.ref(e))
        if isinstance(e.data, str):
            ws.close()

    ws.onmessage = on_message
    assert ws.wait_closed(10)
    gc.collect()
    assert len(refs) == 21 and all(r() is None for r in refs)


def test_ctrl_c_interrupts_wait(server):
    ws = WebSocket(server.url("/never-handshake"))
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ws.wait_open()
    finally:
        timer.cancel()
        ws.close()
    assert time.monotonic() - start < 3


def test_context_manager_closes_and_waits(server):
    url = server.url("/echo")
    with WebSocket(url) as ws:
        assert ws.wait_open(10)
        ws.send("x")
    assert ws.readyState == ws.CLOSED
    assert close_frames(server.observed(url)) == [b""]


def test_context_manager_on_error(server):
    with pytest.raises(ZeroDivisionError):
        with WebSocket(server.url("/echo")) as ws:
            ws.wait_open(10)
            1 / 0
    assert ws.readyState == ws.CLOSED


def test_dispatch_event_from_another_thread_runs_there(server):
    ws = WebSocket(server.url("/never-handshake"))
    where = []
    ws.addEventListener("x", lambda e: where.append(threading.get_ident()))
    t = threading.Thread(target=ws.dispatchEvent, args=(Event("x"),))
    t.start()
    t.join()
    assert where == [t.ident]
    ws.dispatchEvent(MessageEvent("x"))
    assert where[-1] == threading.get_ident()
    ws.close()


def test_python_threads_keep_running_during_a_message_flood(server):
    ws = WebSocket(server.url("/push?n=2000000&size=8&type=binary"), binaryType="arraybuffer")
    count = [0]

    def on_message(e):
        count[0] += 1
        if isinstance(e.data, str):
            ws.close()

    ws.onmessage = on_message
    assert ws.wait_open(10)
    # The main thread samples the count while the flood runs. No timing is asserted: only
    # that it ran between messages (a dispatcher that kept the GIL for the whole flood would
    # let it run only before the first message and after the last).
    seen = []
    while ws.readyState != ws.CLOSED and len(seen) < 20000:
        time.sleep(0.002)
        seen.append(count[0])
    assert ws.wait_closed(30)
    assert count[0] == 2_000_001
    during = {c for c in seen if 0 < c < 2_000_001}
    assert len(during) >= 2, f"the main thread did not run during the flood: {seen[:10]}"


def test_python_threads_keep_running_while_a_c_function_handles_a_flood(server):
    # A handler written in C (here deque.append) runs no bytecode, so the interpreter never
    # offers the GIL from inside it: the dispatcher must give it back by itself.
    import collections

    ws = WebSocket(server.url("/push?n=1000000&size=8&type=binary"), binaryType="arraybuffer")
    last: collections.deque = collections.deque(maxlen=1)
    ws.onmessage = last.append
    assert ws.wait_open(10)
    # As above, no timing: the main thread must run while messages are still arriving.
    ran_during_flood = 0
    while not (last and isinstance(last[0].data, str)) and ran_during_flood < 20000:
        time.sleep(0.002)
        if last and not isinstance(last[0].data, str):
            ran_during_flood += 1
    assert last[0].data == "done"
    ws.close()
    assert ws.wait_closed(10)
    assert ran_during_flood >= 2, "the main thread did not run during the flood"
