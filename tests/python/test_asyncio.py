"""asyncio: sockets created in a running loop dispatch on the loop's thread; awaitable
waits, `async with` and `async for`."""

from __future__ import annotations

import asyncio
import threading

import pytest

from wsdom import Blob, WebSocket

from conftest import Recorder


def run(coro, timeout=30):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


def test_handlers_run_on_the_loop_thread(server):
    async def main():
        ws = WebSocket(server.url("/echo"))
        assert ws._loop_mode
        threads = []
        done = asyncio.get_running_loop().create_future()
        ws.onopen = lambda e: (threads.append(threading.get_ident()), ws.send("hi"))
        ws.onmessage = lambda e: (threads.append(threading.get_ident()), ws.close())
        ws.onclose = lambda e: (threads.append(threading.get_ident()), done.set_result(e.code))
        assert await done == 1005
        return threads

    threads = run(main())
    assert threads == [threading.get_ident()] * 3


def test_socket_created_outside_a_loop_uses_the_dispatcher_thread(server):
    ws = WebSocket(server.url("/echo"))
    assert not ws._loop_mode
    ws.close()


def test_wait_open_and_closed_async(server):
    async def main():
        ws = WebSocket(server.url("/echo"))
        assert await ws.wait_open_async() is True
        assert ws.readyState == ws.OPEN
        assert await ws.wait_open_async() is True
        assert await ws.wait_closed_async(0.05) is False
        ws.close()
        assert await ws.wait_closed_async(10) is True
        assert await ws.wait_closed_async() is True
        failed = WebSocket(server.url("/raw?status=403"))
        assert await failed.wait_open_async(10) is False
        assert failed.readyState == failed.CLOSED
        hung = WebSocket(server.url("/never-handshake"))
        assert await hung.wait_open_async(0.05) is False
        hung.close()
        assert await hung.wait_closed_async(10)

    run(main())


def test_blocking_wait_in_the_loop_raises(server):
    async def main():
        ws = WebSocket(server.url("/echo"))
        with pytest.raises(RuntimeError, match="wait_open_async"):
            ws.wait_open(1)
        # From another thread it works, since the loop keeps dispatching.
        assert await asyncio.get_running_loop().run_in_executor(None, ws.wait_open, 10)
        ws.close()
        assert await ws.wait_closed_async(10)

    run(main())


def test_async_with_and_async_for(server):
    async def main():
        got = []
        async with WebSocket(server.url("/echo")) as ws:
            await ws.wait_open_async()
            for i in range(3):
                ws.send(f"m{i}")
            ws.send(b"bin")
            async for message in ws:
                got.append(message)
                if len(got) == 4:
                    break
        assert ws.readyState == ws.CLOSED
        return got

    got = run(main())
    assert got[:3] == ["m0", "m1", "m2"]
    assert isinstance(got[3], Blob) and got[3].bytes() == b"bin"


def test_async_for_ends_at_close(server):
    async def main():
        ws = WebSocket(server.url("/push?n=5&size=1&type=text"))
        got = []
        async for m in ws:
            got.append(m)
            if m == "done":
                ws.close()
        assert ws.readyState == ws.CLOSED
        return got

    assert run(main()) == ["x"] * 5 + ["done"]


def test_no_message_is_lost_before_async_for(server):
    async def main():
        async with WebSocket(server.url("/push?n=20&size=3&type=text")) as ws:
            assert await ws.wait_open_async()
            await asyncio.sleep(0.3)  # the messages arrive before iteration starts
            got = []
            async for message in ws:
                got.append(message)
                if message == "done":
                    break
            return got

    assert run(main()) == ["xxx"] * 20 + ["done"]


def test_async_for_and_onmessage_both_receive(server):
    async def main():
        ws = WebSocket(server.url("/push?n=3&size=1&type=text"))
        heard = []
        ws.onmessage = lambda e: heard.append(e.data)
        got = []
        async for m in ws:
            got.append(m)
            if m == "done":
                ws.close()
        return heard, got

    heard, got = run(main())
    assert heard == got == ["x", "x", "x", "done"]


def test_thread_mode_socket_iterated_in_asyncio(server):
    ws = WebSocket(server.url("/push?n=4&size=2&type=binary"), binaryType="arraybuffer")

    async def main():
        got = []
        async for m in ws:
            if isinstance(m, str):
                ws.close()
            else:
                got.append(bytes(m))
        assert await ws.wait_closed_async(5)
        return got

    assert run(main()) == [b"xx"] * 4
    assert not ws._loop_mode


def test_many_sockets_in_one_loop(server):
    async def one(i):
        async with WebSocket(server.url("/echo")) as ws:
            assert await ws.wait_open_async(10)
            ws.send(str(i))
            async for m in ws:
                return m

    async def main():
        return await asyncio.gather(*(one(i) for i in range(50)))

    assert run(main()) == [str(i) for i in range(50)]


def test_handler_that_raises_in_the_loop(server, unraisable):
    async def main():
        ws = WebSocket(server.url("/echo"))
        rec = Recorder(ws)

        def bad(e):
            raise ValueError("in loop")

        ws.onopen = bad
        ws.addEventListener("open", lambda e: ws.close())
        assert await ws.wait_closed_async(10)
        return rec.types()

    assert run(main()) == ["open", "close"]
    assert [u[:2] for u in unraisable] == [(ValueError, "in loop")]


def test_keyboard_interrupt_in_a_loop_handler_propagates(server):
    async def main():
        ws = WebSocket(server.url("/echo"))

        def interrupt(e):
            ws.close()
            raise KeyboardInterrupt

        ws.onopen = interrupt
        await asyncio.sleep(10)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())


def test_async_iteration_on_two_loops_is_an_error(server):
    ws = WebSocket(server.url("/echo"))

    async def first():
        await ws.wait_open_async(10)
        ws.__aiter__()

    async def second():
        with pytest.raises(RuntimeError, match="another event loop"):
            ws.__aiter__()

    run(first())
    run(second())
    ws.close()
    assert ws.wait_closed(10)


def test_sync_context_manager_in_the_loop_only_closes(server):
    async def main():
        with WebSocket(server.url("/echo")) as ws:
            assert await ws.wait_open_async(10)
        assert ws.readyState == ws.CLOSING
        assert await ws.wait_closed_async(10)

    run(main())


def test_socket_outlives_its_loop(server):
    async def main():
        ws = WebSocket(server.url("/echo"))
        assert await ws.wait_open_async(10)
        return ws

    ws = asyncio.run(main())
    got = []
    ws.onmessage = lambda e: (got.append(e.data), ws.close())
    ws.send("after the loop")
    # The loop is gone: waiting on its thread dispatches the socket's events here.
    assert ws.wait_closed(10)
    assert got == ["after the loop"]
