"""Shared fixtures of the wsdom Python tests: the scenario server (plain and TLS), spawned
once per session, and helpers to record events and read what the server observed."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from typing import Any, Callable, List, Optional

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _server_binary() -> str:
    env = os.environ.get("WSDOM_TESTSERVER")
    if env:
        return env
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "wsdom-testserver"
        if candidate.exists():
            return str(candidate)
    pytest.exit("wsdom-testserver not found: run `cargo build -p wsdom-testserver` "
                "or set WSDOM_TESTSERVER", returncode=2)
    raise AssertionError("unreachable")


def _start(args: List[str]) -> "tuple[subprocess.Popen, int]":
    """Starts `wsdom-testserver` with `args`; returns the process and its port. It runs until
    its stdin is closed."""
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("LISTENING "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the test server did not start ({args}): {line!r}")
    return proc, int(line.split()[1])


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=5)
        except Exception:
            proc.kill()
            proc.wait()


class Server:
    """A running `wsdom-testserver` process."""

    _ids = itertools.count(1)

    def __init__(self, tls: bool, workdir: pathlib.Path, ipv6: bool = False) -> None:
        self.tls = tls
        self.ipv6 = ipv6
        self.ca_file: Optional[str] = None
        args = [_server_binary()]
        if tls:
            self.ca_file = str(workdir / "ca.pem")
            args += ["--tls", "--ca-out", self.ca_file]
        if ipv6:
            args.append("--ipv6")
        self.proc, self.port = _start(args)
        host = "[::1]" if ipv6 else "localhost" if tls else "127.0.0.1"
        self.base = f"{'wss' if tls else 'ws'}://{host}:{self.port}"

    def url(self, path: str) -> str:
        """The URL of `path` (e.g. "/echo"), made unique with an `id` parameter so that
        `observed()` can find the connection."""
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}id={next(self._ids)}"

    @property
    def ca_pem(self) -> str:
        assert self.ca_file
        return pathlib.Path(self.ca_file).read_text()

    def observed_all(self) -> List[dict]:
        """What the server saw on every connection (`GET /observed`)."""
        if self.tls:
            import ssl

            ctx = ssl.create_default_context(cafile=self.ca_file)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "localhost", self.port, context=ctx, timeout=10)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/observed")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def observed(self, url: str, finished: bool = True, timeout: float = 10) -> dict:
        """The observation of the connection to `url` (waits until it finished)."""
        path = url[len(self.base):]
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.observed_all():
                if entry["path"] == path and (entry["finished"] or not finished):
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not observe {path} in time")
            time.sleep(0.02)

    def stop(self) -> None:
        _stop(self.proc)


class Proxy:
    """A running `wsdom-testserver --proxy KIND` process: an HTTP CONNECT (`http`), HTTPS
    CONNECT (`https`) or SOCKS5 (`socks5`) proxy on loopback that tunnels to loopback only."""

    def __init__(self, kind: str, workdir: pathlib.Path, auth: Optional[tuple] = None,
                 ipv6: bool = False) -> None:
        self.kind = kind
        self.auth = auth
        self.ca_file: Optional[str] = None
        args = [_server_binary(), "--proxy", kind]
        if auth:
            args += ["--proxy-auth", f"{auth[0]}:{auth[1]}"]
        if ipv6:
            args.append("--ipv6")
        if kind == "https":
            self.ca_file = str(workdir / "proxy-ca.pem")
            args += ["--ca-out", self.ca_file]
        self.proc, self.port = _start(args)
        self.host = "[::1]" if ipv6 else "localhost" if kind == "https" else "127.0.0.1"

    def url(self, scheme: Optional[str] = None, user: Optional[str] = None,
            password: Optional[str] = None) -> str:
        """`scheme://[user:password@]host:port`; `scheme` defaults to the proxy's kind (pass
        "socks5h" for a SOCKS5 proxy that resolves host names). The user name and password
        are percent-encoded."""
        from urllib.parse import quote

        creds = ""
        if user is not None:
            creds = quote(user, safe="") + ":" + quote(password or "", safe="") + "@"
        return f"{scheme or self.kind}://{creds}{self.host}:{self.port}"

    def display(self, scheme: Optional[str] = None) -> str:
        """The proxy as error messages name it: no credentials."""
        return self.url(scheme)

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="session")
def proxies(tmp_path_factory: pytest.TempPathFactory):
    """`proxies(kind, auth=None, ipv6=False)`: a proxy started once per session for each
    combination."""
    started: dict = {}

    def get(kind: str, auth: Optional[tuple] = None, ipv6: bool = False) -> Proxy:
        key = (kind, auth, ipv6)
        if key not in started:
            started[key] = Proxy(kind, tmp_path_factory.mktemp(f"proxy-{kind}"), auth, ipv6)
        return started[key]

    yield get
    for p in started.values():
        p.stop()


def ipv6_loopback() -> bool:
    """True if this machine can listen on ::1."""
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(False, tmp_path_factory.mktemp("plain"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server6(tmp_path_factory: pytest.TempPathFactory):
    """The scenario server on [::1] (skips where IPv6 loopback is not available)."""
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    srv = Server(False, tmp_path_factory.mktemp("plain6"), ipv6=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(True, tmp_path_factory.mktemp("tls"))
    yield srv
    srv.stop()


def close_frames(observation: dict) -> List[bytes]:
    """The payloads of the Close frames the client sent."""
    return [bytes.fromhex(f["payload_hex"]) for f in observation["frames"] if f["opcode"] == 8]


def data_frames(observation: dict) -> List[dict]:
    return [f for f in observation["frames"] if f["opcode"] in (0, 1, 2)]


class Recorder:
    """Records the events of a socket as tuples, with the thread each ran on."""

    def __init__(self, ws: Any, close_on: Optional[str] = None) -> None:
        self.ws = ws
        self.events: List[tuple] = []
        self.threads: set = set()
        self.closed = threading.Event()
        self.close_on = close_on
        for kind in ("open", "message", "error", "close"):
            ws.addEventListener(kind, self.on_event)

    def on_event(self, event: Any) -> None:
        self.threads.add(threading.get_ident())
        assert event.target is self.ws and event.currentTarget is self.ws
        kind = event.type
        if kind == "message":
            data = event.data
            if not isinstance(data, str):
                data = bytes(data)
            self.events.append(("message", data))
            if self.close_on is not None and data == self.close_on:
                self.ws.close()
        elif kind == "close":
            self.events.append(("close", event.code, event.reason, event.wasClean))
            self.closed.set()
        elif kind == "error":
            self.events.append(("error",))
        else:
            self.events.append((kind,))

    def types(self) -> List[str]:
        return [e[0] for e in self.events]

    def wait(self, timeout: float = 10) -> "Recorder":
        assert self.ws.wait_closed(timeout), f"no close event within {timeout}s: {self.events}"
        return self


def wait_until(pred: Callable[[], Any], timeout: float = 10, interval: float = 0.01) -> Any:
    """Polls `pred` until it returns a true value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def run_python(code: str, timeout: float = 30, env: Optional[dict] = None,
               ) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (the test's own, with wsdom installed)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def tcp_peer_ports() -> set:
    """The remote ports of this process's established TCP connections (Linux /proc): shows
    whether a socket went to the server directly or to a proxy."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "01" and fields[9] in inodes:
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch):
    """Collects what is reported to `sys.unraisablehook` during the test."""
    seen: List[Any] = []
    lock = threading.Lock()

    def hook(info: Any) -> None:
        with lock:
            seen.append((info.exc_type, str(info.exc_value), info.object))

    monkeypatch.setattr(sys, "unraisablehook", hook)
    return seen
