"""The examples in examples/python run against the test server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("script, expected", [
    ("echo.py", ["open (protocol ''", "message: 'one'", "message: 'two'",
                 "close: code 1000, reason 'all echoed', clean True", "bye"]),
    ("echo_asyncio.py", ["open: ws://", "message: 'one'", "message: 'two'",
                         "closed (readyState 3)"]),
])
def test_example(server, script, expected):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / script), server.url("/echo"),
         "one", "two"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    for line in expected:
        assert line in result.stdout, result.stdout


def test_echo_reports_connection_errors(server):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "echo.py"),
         server.url("/raw?status=404")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "error: " in result.stdout and "close: code 1006" in result.stdout
