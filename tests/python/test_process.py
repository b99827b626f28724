"""Process-level behaviour: fork, and interpreter shutdown with open sockets."""

from __future__ import annotations

import os
import sys
import textwrap
import warnings

import pytest

from wsdom import InvalidStateError, WebSocket

from conftest import run_python


def test_fork_child_can_create_sockets(server):
    ws = WebSocket(server.url("/echo"))
    assert ws.wait_open(10)
    child_url = server.url("/echo")
    r, w = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that the process has threads (wsdom's dispatcher among them).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(r)
            try:
                ws.send("from the child")
            except InvalidStateError:
                pass
            else:
                raise AssertionError("the parent's socket must be inert in the child")
            got = []
            child = WebSocket(child_url)
            child.onopen = lambda e: child.send("child")
            child.onmessage = lambda e: (got.append(e.data), child.close())
            if child.wait_closed(10) and got == ["child"]:
                status = 0
            os.write(w, repr(got).encode())
        finally:
            os._exit(status)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    report = os.read(r, 1000).decode()
    os.close(r)
    assert os.WEXITSTATUS(status) == 0, report
    # The parent's socket still works.
    got = []
    ws.onmessage = lambda e: (got.append(e.data), ws.close())
    ws.send("parent")
    assert ws.wait_closed(10)
    assert got == ["parent"]
    frames = server.observed(child_url)["frames"]
    assert [bytes.fromhex(f["payload_hex"]) for f in frames if f["opcode"] == 1] == [b"child"]


SHUTDOWN_SCRIPTS = {
    "open sockets without handlers": """
        socks = [WebSocket(BASE + "/echo") for _ in range(20)]
        socks[0].wait_open(10)
    """,
    "busy handlers at exit": """
        import time
        socks = []
        for _ in range(10):
            ws = WebSocket(BASE + "/push?n=100000&size=100&type=binary")
            ws.onmessage = lambda e: time.sleep(0.001)
            socks.append(ws)
        socks[0].wait_open(10)
        time.sleep(0.2)
    """,
    "handlers without references": """
        import time
        for _ in range(10):
            ws = WebSocket(BASE + "/push?n=100000&size=10&type=text")
            ws.onmessage = lambda e: sum(range(100))
        time.sleep(0.2)
    """,
    "C-function handler flooded at exit": """
        import collections, time
        last = collections.deque(maxlen=1)
        ws = WebSocket(BASE + "/push?n=1000000&size=8&type=binary")
        ws.onmessage = last.append
        ws.wait_open(10)
        time.sleep(0.2)
    """,
    "daemon thread waiting": """
        import threading, time
        ws = WebSocket(BASE + "/never-handshake")
        threading.Thread(target=ws.wait_closed, daemon=True).start()
        time.sleep(0.2)
    """,
    "asyncio loop left with open sockets": """
        import asyncio
        async def main():
            socks = [WebSocket(BASE + "/push?n=100000&size=10&type=text") for _ in range(5)]
            for ws in socks:
                ws.onmessage = lambda e: None
            await socks[0].wait_open_async(10)
            await asyncio.sleep(0.2)
            return socks
        kept = asyncio.run(main())
    """,
    "sys.exit from a handler's thread": """
        import os
        ws = WebSocket(BASE + "/echo")
        ws.onopen = lambda e: ws.send("x")
        ws.onmessage = lambda e: print("got", e.data, flush=True)
        ws.wait_open(10)
        import time; time.sleep(0.2)
        raise SystemExit(0)
    """,
}


@pytest.mark.parametrize("name", list(SHUTDOWN_SCRIPTS))
def test_shutdown_with_open_sockets(server, name):
    code = "from wsdom import WebSocket\nBASE = %r\n" % server.base + textwrap.dedent(
        SHUTDOWN_SCRIPTS[name])
    result = run_python(code, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Fatal Python error" not in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_open_sockets_are_closed_with_1001_at_exit(server):
    url = server.url("/echo")
    code = textwrap.dedent(f"""
        from wsdom import WebSocket
        ws = WebSocket({url!r})
        assert ws.wait_open(10)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    frames = server.observed(url)["frames"]
    assert [bytes.fromhex(f["payload_hex"]) for f in frames if f["opcode"] == 8] == [
        b"\x03\xe9"]


def test_io_threads_option_via_environment(server):
    code = textwrap.dedent(f"""
        import threading
        from wsdom import WebSocket
        threads = set()
        socks = [WebSocket({server.base!r} + "/echo") for _ in range(4)]
        for ws in socks:
            ws.onopen = lambda e: (threads.add(threading.get_ident()), e.target.close())
        for ws in socks:
            assert ws.wait_closed(10)
        print(len(threads))
    """)
    result = run_python(code, env={"WSDOM_IO_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


@pytest.mark.skipif(sys.platform != "linux", reason="Linux only")
def test_import_in_a_fresh_interpreter():
    result = run_python("import wsdom, wsdom._wsdom as m; print(wsdom.__version__, m.__file__)")
    assert result.returncode == 0, result.stderr
    assert "abi3" in result.stdout
