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


class Server:
    """A running `wsdom-testserver` process."""

    _ids = itertools.count(1)

    def __init__(self, tls: bool, workdir: pathlib.Path) -> None:
        self.tls = tls
        self.ca_file: Optional[str] = None
        args = [_server_binary()]
        if tls:
            self.ca_file = str(workdir / "ca.pem")
            args += ["--tls", "--ca-out", self.ca_file]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"the test server did not start: {line!r}")
        self.port = int(line.split()[1])
        host = "localhost" if tls else "127.0.0.1"
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
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(False, tmp_path_factory.mktemp("plain"))
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
