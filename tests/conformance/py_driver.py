"""The Python conformance driver: runs the scenario table through the installed `wsdom` wheel.

Used by `test_py_driver.py` (one pytest test per scenario run and server) and `conftest.py`
(writes the traces and summaries at the end of the session). The trace format and the
matching rules are those of tests/scenarios/README.md; the comparison is
`scenarios.check_scenario`, the same code as `scenarios.py compare`.

Sockets are created inside a running asyncio loop, so their events are dispatched on that
loop's thread, one at a time, like a browser's event loop; `timer` actions are
`loop.call_later` callbacks between events. The loop is shared by every scenario of the session.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import pathlib
import select
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "scenarios"))

import scenarios  # noqa: E402  (tests/scenarios/scenarios.py)

import wsdom  # noqa: E402
from wsdom import Blob, DOMException, WebSocket  # noqa: E402

LANG = "python"
#: Trace fields Python cannot produce (none: it has binaryType and MessageEvent.origin).
UNSUPPORTED_FIELDS: List[str] = []
DATA_INLINE_MAX = scenarios.DATA_INLINE_MAX
OUT = pathlib.Path(os.environ.get("WSDOM_CONFORMANCE_OUT", ROOT / "target" / "conformance"))

SERVER_COMMANDS = {
    "pywebsocket3": [str(ROOT / ".venv-ext/bin/python"), str(ROOT / "tests/external/pywebsocket/serve.py")],
    "websockets": [str(ROOT / ".venv-ext/bin/python"), str(ROOT / "tests/external/websockets/server.py")],
    "ws": ["node", str(ROOT / "tests/external/node/server.js")],
}


def testserver_binary() -> str:
    env = os.environ.get("WSDOM_TESTSERVER")
    if env:
        return env
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "wsdom-testserver"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("wsdom-testserver not found: cargo build -p wsdom-testserver, or set WSDOM_TESTSERVER")


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------

class ServerProcess:
    """A server that prints `LISTENING <port>` and stops at EOF on its stdin."""

    def __init__(self, name: str) -> None:
        self.name = name
        cmd = [testserver_binary()] if name == "wsdom" else SERVER_COMMANDS[name]
        if name != "wsdom" and not pathlib.Path(cmd[-1]).exists():
            raise RuntimeError("%s is missing: run tests/external/setup.sh" % cmd[-1])
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError("%s did not print LISTENING <port> (got %r)" % (cmd, line))
        self.port = int(line.split()[1])

    def observed(self) -> List[dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/observed")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def clear_observed(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/observed?clear=1")
            conn.getresponse().read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=3)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()


def dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------------------------
# Running one scenario
# ---------------------------------------------------------------------------------------------

def result_of(exc: BaseException) -> str:
    """The trace's name for what a call raised: the DOMException name, else the Python type."""
    if isinstance(exc, DOMException):
        return exc.name
    return type(exc).__name__


class Sock:
    def __init__(self, run: "Run", index: int) -> None:
        self.run = run
        self.index = index
        self.ws: Optional[WebSocket] = None
        self.trace: List[dict] = []
        self.messages = 0
        self.closed = False

    # -- recording ---------------------------------------------------------------------------

    def attrs(self, e: dict) -> dict:
        ws = self.ws
        assert ws is not None
        e["readyState"] = ws.readyState
        e["bufferedAmount"] = ws.bufferedAmount
        return e

    def on_event(self, event: Any) -> None:
        ws = self.ws
        if ws is None:  # an event before the constructor returned: impossible on the loop
            self.trace.append({"t": "event", "type": event.type, "target_ok": False,
                               "detail": "dispatched before the constructor returned", "ms": self.run.ms()})
            return
        e: Dict[str, Any] = {"t": "event", "type": event.type}
        self.attrs(e)
        e["protocol"] = ws.protocol
        e["extensions"] = ws.extensions
        e["target_ok"] = event.target is ws
        kind = event.type
        if kind == "message":
            data = event.data
            if isinstance(data, str):
                e["data_type"] = "text"
                raw = data.encode("utf-8", "surrogatepass")
                inline: Any = data
            else:
                e["data_type"] = "binary"
                if isinstance(data, Blob):
                    e["binary_type"] = "blob"
                    raw = data.bytes()
                elif isinstance(data, memoryview):
                    e["binary_type"] = "arraybuffer"
                    raw = bytes(data)
                else:
                    e["binary_type"] = type(data).__name__
                    raw = bytes(data)
                inline = raw.hex()
            e["length"] = len(raw)
            e["fnv1a64"] = scenarios.fnv1a64(raw)
            if len(raw) <= DATA_INLINE_MAX:
                e["data"] = inline
            e["origin"] = event.origin
        elif kind == "close":
            e["code"] = event.code
            e["reason"] = event.reason
            e["wasClean"] = event.wasClean
        elif kind == "error":
            e["detail"] = getattr(event, "message", "")
        e["ms"] = self.run.ms()
        self.trace.append(e)
        if kind == "message":
            self.messages += 1
            self.run.trigger(self, "message", self.messages)
        elif kind == "close":
            self.closed = True
            self.run.trigger(self, "close")
            self.run.wake()
        else:
            self.run.trigger(self, kind)

    # -- actions -----------------------------------------------------------------------------

    def act(self, action: dict) -> None:
        ws = self.ws
        assert ws is not None
        (op, arg), = action.items()
        e: Dict[str, Any] = {"t": "action"}
        result = "ok"
        try:
            if op == "send_text":
                ws.send(scenarios.text_of(arg))
            elif op == "send_binary":
                if "view" in arg:  # a typed-array view: only that slice of the buffer is passed
                    off, n = arg["view"]
                    whole = scenarios.bytes_of({k: v for k, v in arg.items() if k != "view"})
                    ws.send(memoryview(whole)[off:off + n])
                else:
                    ws.send(scenarios.bytes_of(arg))
            elif op == "close":
                kwargs = {}
                if "code" in arg:  # [Clamp] unsigned short, as the WebIDL binding does first
                    kwargs["code"] = min(max(int(arg["code"]), 0), 65535)
                if "reason" in arg:
                    kwargs["reason"] = scenarios.text_of(arg["reason"])
                ws.close(**kwargs)
            elif op == "sleep_ms":
                op = "sleep"
                time.sleep(arg / 1000)
            elif op == "snapshot":
                e["protocol"] = ws.protocol
                e["extensions"] = ws.extensions
                e["url"] = ws.url
                e["binary_type"] = ws.binaryType
            elif op == "set_binary_type":
                ws.binaryType = arg
            elif op == "constants":
                e["values"] = [ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED]
            else:
                raise AssertionError("unknown action %r" % op)
        except Exception as exc:  # noqa: BLE001  (recorded; the comparison judges it)
            result = result_of(exc)
            e["detail"] = str(exc)
        e["op"] = op
        e["result"] = result
        self.attrs(e)
        e["ms"] = self.run.ms()
        self.trace.append(e)


class Run:
    """One scenario run: its sockets, timers and the loop that waits for them."""

    def __init__(self, s: dict, env: scenarios.Env) -> None:
        self.s = s
        self.env = env
        self.start = time.monotonic()
        self.script = s.get("script", [])
        self.socks = [Sock(self, i) for i in range(s.get("sockets", 1))]
        self.changed: Optional[asyncio.Event] = None
        self.pending_timers = 0

    def ms(self) -> int:
        return int((time.monotonic() - self.start) * 1000)

    def wake(self) -> None:
        if self.changed is not None:
            self.changed.set()

    def trigger(self, sock: Sock, trigger: str, n: int = 0) -> None:
        for entry in self.script:
            if entry["on"] != trigger:
                continue
            if trigger == "message" and entry.get("n", 1) != n:
                continue
            for a in entry["do"]:
                sock.act(a)

    def fire_timer(self, actions: List[dict]) -> None:
        self.pending_timers -= 1
        for sock in self.socks:
            if sock.ws is not None:
                for a in actions:
                    sock.act(a)
        self.wake()

    def construct(self, sock: Sock) -> None:
        s = self.s
        url = self.env.subst(s["url"]) if "url" in s else "ws://%s:%d%s" % (
            self.env.host, self.env.port, s.get("server", "/"))
        protocols = list(s.get("protocols", []))
        kwargs: Dict[str, Any] = {"onopen": sock.on_event, "onmessage": sock.on_event,
                                  "onerror": sock.on_event, "onclose": sock.on_event}
        if "base_url" in s:
            kwargs["base_url"] = self.env.subst(s["base_url"])
        try:
            if s.get("option_bag"):  # the keyword form: WebSocket(url, protocols=[...])
                ws = WebSocket(url, protocols=protocols, **kwargs)
            else:
                ws = WebSocket(url, protocols, **kwargs)
        except Exception as exc:  # noqa: BLE001
            sock.trace.append({"t": "construct", "result": result_of(exc), "detail": str(exc), "ms": self.ms()})
            sock.closed = True
            return
        sock.ws = ws
        sock.trace.append({"t": "construct", "result": "ok", "url": ws.url, "readyState": ws.readyState,
                           "bufferedAmount": ws.bufferedAmount, "protocol": ws.protocol,
                           "extensions": ws.extensions, "ms": self.ms()})
        self.trigger(sock, "construct")

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        self.start = time.monotonic()
        for sock in self.socks:
            self.construct(sock)
        for entry in self.script:
            if entry["on"] == "timer":
                self.pending_timers += 1
                delay = self.start + entry["after_ms"] / 1000 - time.monotonic()
                loop.call_later(max(delay, 0), self.fire_timer, entry["do"])
        deadline = self.start + self.s.get("timeout_ms", 10000) / 1000
        linger = self.s.get("linger_ms", 100) / 1000
        done_at: Optional[float] = None
        while True:
            now = time.monotonic()
            if all(x.closed for x in self.socks) and self.pending_timers == 0:
                if done_at is None:
                    done_at = now + linger
                if now >= done_at:
                    break
            if now >= deadline:
                for x in self.socks:
                    if not x.closed:
                        x.trace.append({"t": "timeout", "ms": self.ms()})
                break
            wake = min(deadline, done_at if done_at is not None else deadline)
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(wake - now, 0))
            except asyncio.TimeoutError:
                pass
        # Leave nothing running: sockets still open lose their handlers and are closed.
        for x in self.socks:
            if x.ws is not None:
                for name in ("onopen", "onmessage", "onerror", "onclose"):
                    setattr(x.ws, name, None)
                if not x.closed:
                    x.ws.close()


def observed_entry(server: ServerProcess, count: int) -> dict:
    """What the scenario server saw, once `count` connections finished (at most 3 s)."""
    until = time.monotonic() + 3
    while True:
        seen = server.observed()
        if sum(1 for o in seen if o.get("finished")) >= count or time.monotonic() >= until:
            break
        time.sleep(0.02)
    first = seen[0] if seen else {}
    return {"t": "observed", "connections": len(seen), "path": first.get("path"),
            "headers": first.get("headers", {}), "frames": first.get("frames", []),
            "client_closed_tcp": first.get("client_closed_tcp"),
            "server_closed_tcp": first.get("server_closed_tcp")}


def run_one(loop: asyncio.AbstractEventLoop, server: ServerProcess, s: dict) -> Tuple[List[dict], List[str]]:
    """Runs scenario `s` on `server`; returns its trace lines and the mismatches."""
    sid = s["id"]

    def tag(e: dict, socket_index: int = 0) -> dict:
        e.update(id=sid, server=server.name, lang=LANG, socket=socket_index)
        return e

    env = scenarios.Env("127.0.0.1", server.port, dead_port())
    if server.name == "wsdom":
        server.clear_observed()
    run = Run(s, env)
    loop.run_until_complete(run.main())
    lines = [tag({"t": "start", "host": env.host, "port": env.port, "dead_port": env.dead_port})]
    for i, sock in enumerate(run.socks):
        for seq, e in enumerate(sock.trace):
            e["seq"] = seq
            lines.append(tag(e, i))
    if server.name == "wsdom" and "observe" in s:
        lines.append(tag(observed_entry(server, len(run.socks))))
    mismatches = scenarios.check_scenario(s, lines, UNSUPPORTED_FIELDS)
    lines.append(tag({"t": "end", "result": "fail" if mismatches else "pass", "mismatches": mismatches}))
    return lines, mismatches


def skip_lines(server: str, s: dict, reason: str) -> List[dict]:
    return [{"t": "end", "result": "skip", "reason": reason, "id": s["id"], "server": server,
             "lang": LANG, "socket": 0}]


def write_trace(server: str, lines: List[dict]) -> pathlib.Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("%s-%s.jsonl" % (LANG, server))
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"t": "driver", "lang": LANG, "server": server,
                            "unsupported_fields": UNSUPPORTED_FIELDS,
                            "wsdom": wsdom.__version__, "python": sys.version.split()[0]}) + "\n")
        for line in lines:
            f.write(json.dumps(line, default=str) + "\n")
    return path


#: The trace lines of the session, per server (written by conftest.py at the end).
TRACES: Dict[str, List[dict]] = {}
