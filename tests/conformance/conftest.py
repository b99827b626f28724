"""Session fixtures and reporting of the Python conformance driver (test_py_driver.py).

At the end of the session the traces are written to target/conformance/python-<server>.jsonl
and, for each server whose scenarios all ran, checked once more with `scenarios.py compare`
(the summary goes to python-<server>.summary.json, read by results.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import os
import threading
from typing import Dict, List

import pytest

import py_driver


class Worker:
    """One worker thread's asyncio loop and servers (one process per server, started on
    first use): the scenario server's observation log then belongs to one scenario at a time,
    and a handler that blocks (sleep_ms) holds up only its own worker, as in the Rust driver."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.running: Dict[str, py_driver.ServerProcess] = {}

    def server(self, name: str) -> py_driver.ServerProcess:
        if name not in self.running:
            self.running[name] = py_driver.ServerProcess(name)
        return self.running[name]

    def stop(self) -> None:
        for s in self.running.values():
            s.stop()
        self.loop.close()


def _weight(s: dict) -> float:
    timers = max([e.get("after_ms", 0) for e in s.get("script", [])] or [0])
    return max(timers, s.get("timeout_ms", 10000) / 4)


@pytest.fixture(scope="session")
def outcomes(request):
    """Runs every selected scenario once, WORKERS at a time (default 4, like the Rust driver),
    longest first; each test then reports its own. Maps (server, id) to (lines, mismatches),
    or to the exception that prevented the run."""
    jobs = []
    for item in request.session.items:
        cs = getattr(item, "callspec", None)
        if cs and "scenario" in cs.params and not cs.params["scenario"].get("skip", {}).get("python"):
            jobs.append((cs.params["server_name"], cs.params["scenario"]))
    jobs.sort(key=lambda j: -_weight(j[1]))
    local = threading.local()
    workers: List[Worker] = []
    lock = threading.Lock()

    def run(job):
        if not hasattr(local, "worker"):
            local.worker = Worker()
            with lock:
                workers.append(local.worker)
        w = local.worker
        server, s = job
        try:
            return py_driver.run_one(w.loop, w.server(server), s)
        except Exception as exc:  # noqa: BLE001  (reported by the test)
            return exc

    n = int(os.environ.get("WSDOM_CONFORMANCE_WORKERS", "4"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(n, 1)) as pool:
        results = dict(zip([(srv, s["id"]) for srv, s in jobs], pool.map(run, jobs)))
    for w in workers:
        w.stop()
    return results


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tr = terminalreporter
    for server, lines in sorted(py_driver.TRACES.items()):
        path = py_driver.write_trace(server, lines)
        ran = {line["id"] for line in lines}
        want = {s["id"] for s in py_driver.scenarios.load_table()
                if server == "wsdom" or server in s.get("portable", [])}
        if want - ran:
            tr.write_line("conformance[python vs %s]: partial run (%d of %d scenarios), trace in %s, no summary"
                          % (server, len(ran & want), len(want), path))
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            py_driver.scenarios.compare(str(path), str(path.with_name("python-%s.summary.json" % server)))
        for line in out.getvalue().splitlines():
            tr.write_line(line)
