"""The scenario table through the wsdom Python package: one test per scenario run and server.

    cd tests/conformance && ../../.venv-test/bin/python -m pytest test_py_driver.py -ra

(`tests/conformance/run.sh` does this after installing the wheel.) The scenarios run in the
session fixture `outcomes` (conftest.py), four at a time on worker threads, each with its own
asyncio loop and servers; each test reports one of them. A scenario with a
`skip.python` entry in the table is skipped with its reason (see `-ra`); every other one runs
against the scenario server and, if marked portable, against pywebsocket3, websockets and
Node ws. `WSDOM_PY_SERVERS="wsdom ws"` restricts the servers; `-k` selects scenarios.
"""

from __future__ import annotations

import os

import pytest

import py_driver

SERVERS = os.environ.get("WSDOM_PY_SERVERS", "wsdom pywebsocket3 websockets ws").split()


def pytest_generate_tests(metafunc):
    if "scenario" not in metafunc.fixturenames:
        return
    table = py_driver.scenarios.load_table()
    params = []
    for server in SERVERS:
        for s in table:
            if server == "wsdom" or server in s.get("portable", []):
                params.append(pytest.param(server, s, id="%s::%s" % (server, s["id"])))
    metafunc.parametrize("server_name, scenario", params)


def test_scenario(server_name, scenario, outcomes):
    reason = scenario.get("skip", {}).get("python")
    if reason:
        py_driver.TRACES.setdefault(server_name, []).extend(py_driver.skip_lines(server_name, scenario, reason))
        pytest.skip(reason)
    outcome = outcomes[(server_name, scenario["id"])]
    if isinstance(outcome, Exception):
        raise outcome
    lines, mismatches = outcome
    py_driver.TRACES.setdefault(server_name, []).extend(lines)
    assert not mismatches, "%s on %s:\n    %s" % (scenario["id"], server_name, "\n    ".join(mismatches))
