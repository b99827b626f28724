"""The `proxy=` option and the proxy environment variables: ws and wss through HTTP CONNECT,
HTTPS CONNECT, SOCKS5 and SOCKS5h proxies (wsdom-testserver --proxy), with and without
authentication; refusals that name the proxy and never show the password; curl-style
`http_proxy`/`https_proxy`/`all_proxy`/`no_proxy` in a fresh interpreter; IPv6."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import List, Optional

import pytest

import wsdom
from wsdom import WebSocket

from conftest import Recorder, tcp_peer_ports

USER = "alice"
PASSWORD = "s3cret-Pa55"

#: (proxy server kind, URL scheme the client uses).
KINDS = [("http", "http"), ("https", "https"), ("socks5", "socks5"), ("socks5", "socks5h")]
KIND_IDS = [scheme for _, scheme in KINDS]


def proxied_echo(url: str, proxy_port: int, server_port: int, **options) -> None:
    """Opens `url` with `options`, checks that the connection goes to the proxy and not to
    the server, and echoes a text and a binary message through it."""
    ws = WebSocket(url, binaryType="arraybuffer", **options)
    errors: List[str] = []
    ws.onerror = lambda e: errors.append(e.message)
    try:
        assert ws.wait_open(15), f"did not open: {errors}"
        peers = tcp_peer_ports()
        assert proxy_port in peers, f"no connection to the proxy :{proxy_port}: {peers}"
        assert server_port not in peers, "connected to the server directly"
        got: List[object] = []
        both = threading.Event()

        def on_message(e):
            got.append(e.data if isinstance(e.data, str) else bytes(e.data))
            if len(got) == 2:
                both.set()

        ws.onmessage = on_message
        ws.send("through the proxy")
        ws.send(b"\x00\x01binary\xff")
        assert both.wait(10), got
        assert got == ["through the proxy", b"\x00\x01binary\xff"]
    finally:
        ws.close()
    assert ws.wait_closed(10)
    assert errors == []


@pytest.mark.parametrize("auth", [False, True], ids=["noauth", "auth"])
@pytest.mark.parametrize("kind, scheme", KINDS, ids=KIND_IDS)
def test_ws_through_proxy(server, proxies, kind, scheme, auth):
    proxy = proxies(kind, (USER, PASSWORD) if auth else None)
    url = proxy.url(scheme, USER, PASSWORD) if auth else proxy.url(scheme)
    ca = [proxy.ca_file] if proxy.ca_file else None
    proxied_echo(server.url("/echo"), proxy.port, server.port, proxy=url, ca_file=ca)


@pytest.mark.parametrize("auth", [False, True], ids=["noauth", "auth"])
@pytest.mark.parametrize("kind, scheme", KINDS, ids=KIND_IDS)
def test_wss_through_proxy(tls_server, proxies, kind, scheme, auth):
    proxy = proxies(kind, (USER, PASSWORD) if auth else None)
    url = proxy.url(scheme, USER, PASSWORD) if auth else proxy.url(scheme)
    # The server's CA, and for an HTTPS proxy the proxy's CA too (the same TLS settings).
    ca = [tls_server.ca_file] + ([proxy.ca_file] if proxy.ca_file else [])
    proxied_echo(tls_server.url("/echo"), proxy.port, tls_server.port, proxy=url, ca_file=ca,
                 default_roots=False)


def test_percent_encoded_credentials(server, proxies):
    user, password = "us@er", "p:ss w/rd%"
    for kind in ("http", "socks5"):
        proxy = proxies(kind, (user, password))
        proxied_echo(server.url("/echo"), proxy.port, server.port,
                     proxy=proxy.url(None, user, password))


def refusal(url: str, **options) -> str:
    """Opens `url`, expecting `error` then `close` 1006; returns the error message."""
    ws = WebSocket(url, **options)
    messages: List[str] = []
    ws.onerror = lambda e: messages.append(e.message)
    rec = Recorder(ws).wait(15)
    assert rec.events == [("error",), ("close", 1006, "", False)]
    assert ws.readyState == ws.CLOSED
    return messages[0]


@pytest.mark.parametrize("kind, scheme", KINDS, ids=KIND_IDS)
def test_wrong_password_is_refused_without_showing_it(server, proxies, kind, scheme):
    proxy = proxies(kind, (USER, PASSWORD))
    wrong = "Wr0ng-hunter2"
    ca = [proxy.ca_file] if proxy.ca_file else None
    message = refusal(server.url("/echo"), proxy=proxy.url(scheme, USER, wrong), ca_file=ca)
    assert proxy.display(scheme) in message, message
    assert "authentication" in message or "password" in message, message
    assert wrong not in message and PASSWORD not in message
    assert "hunter2" not in message


@pytest.mark.parametrize("kind, scheme", KINDS, ids=KIND_IDS)
def test_missing_credentials_are_refused(server, proxies, kind, scheme):
    proxy = proxies(kind, (USER, PASSWORD))
    ca = [proxy.ca_file] if proxy.ca_file else None
    message = refusal(server.url("/echo"), proxy=proxy.url(scheme), ca_file=ca)
    assert proxy.display(scheme) in message, message


def test_unreachable_proxy_is_named(server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    message = refusal(server.url("/echo"), proxy=f"http://{USER}:{PASSWORD}@127.0.0.1:{port}")
    assert f"cannot reach proxy http://127.0.0.1:{port}" in message, message
    assert PASSWORD not in message


def test_https_proxy_needs_its_ca(server, proxies):
    proxy = proxies("https")
    message = refusal(server.url("/echo"), proxy=proxy.url())
    assert proxy.display() in message, message


def test_the_proxy_refuses_a_target(proxies):
    # The test proxy tunnels to loopback only: a refused tunnel is reported with its reason.
    proxy = proxies("http")
    message = refusal("ws://wsdom-test.invalid/", proxy=proxy.url())
    assert f"proxy {proxy.display()} refused the tunnel to wsdom-test.invalid:80" in message


@pytest.mark.parametrize("value", [
    "ftp://proxy.example:21",
    "http://" + USER + ":" + PASSWORD + "@",
    "not a url",
    "socks4://127.0.0.1:1080",
])
def test_invalid_proxy_urls_are_syntax_errors(value):
    with pytest.raises(wsdom.DOMSyntaxError) as info:
        WebSocket("ws://127.0.0.1:1/", proxy=value)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("value", [True, 1, b"http://127.0.0.1:1", ["http://127.0.0.1:1"]])
def test_wrong_proxy_types_are_type_errors(value):
    with pytest.raises(TypeError):
        WebSocket("ws://127.0.0.1:1/", proxy=value)


def test_direct_and_environment_spellings(server):
    # None (the default: environment; loopback is always direct), False and "" (direct).
    for value in (None, False, ""):
        ws = WebSocket(server.url("/echo"), proxy=value)
        assert ws.wait_open(10), value
        ws.close()
        assert ws.wait_closed(10)


def test_explicit_proxy_is_used_for_loopback_too(server, proxies):
    # Only the environment's proxies skip loopback hosts; an explicit one is always used.
    proxy = proxies("socks5")
    proxied_echo(server.url("/echo").replace("127.0.0.1", "localhost"), proxy.port,
                 server.port, proxy=proxy.url("socks5h"))


# IPv6 ------------------------------------------------------------------------------------

def test_ipv6_literal_direct(server6):
    assert server6.base.startswith("ws://[::1]:")
    for value in (None, False):
        ws = WebSocket(server6.url("/echo"), proxy=value)
        got: List[str] = []
        ws.onopen = lambda e: ws.send("v6")
        ws.onmessage = lambda e: (got.append(e.data), ws.close())
        assert ws.wait_closed(10)
        assert got == ["v6"]
        assert ws.url.startswith("ws://[::1]:")


@pytest.mark.parametrize("kind, scheme", [("http", "http"), ("socks5", "socks5")])
def test_ipv6_target_and_ipv6_proxy(server, server6, proxies, kind, scheme):
    # An IPv6 target through an IPv4 proxy, and an IPv4 target through an IPv6 proxy.
    proxy = proxies(kind)
    proxied_echo(server6.url("/echo"), proxy.port, server6.port, proxy=proxy.url(scheme))
    proxy6 = proxies(kind, ipv6=True)
    assert proxy6.url().startswith(f"{kind}://[::1]:")
    proxied_echo(server.url("/echo"), proxy6.port, server.port, proxy=proxy6.url(scheme))


# The environment -------------------------------------------------------------------------

OUTCOME = r"""
import json, sys
from wsdom import WebSocket
url, options = sys.argv[1], json.loads(sys.argv[2])
ws = WebSocket(url, **options)
out = {"opened": False, "errors": []}
ws.onerror = lambda e: out["errors"].append(e.message)
def opened(e):
    out["opened"] = True
    ws.close()
ws.onopen = opened
out["closed"] = ws.wait_closed(20)
print(json.dumps(out))
"""

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def outcome(url: str, env: dict, **options) -> dict:
    """Opens `url` in a fresh interpreter whose only proxy variables are `env`."""
    full = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    full.update(env)
    done = subprocess.run([sys.executable, "-c", OUTCOME, url, json.dumps(options)],
                          capture_output=True, text=True, timeout=60, env=full)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["closed"], result
    return result


def loopback_alias() -> Optional[str]:
    """A name other than localhost that /etc/hosts maps to 127.0.0.1 (so that resolving it
    sends no DNS query), or None."""
    try:
        with open("/etc/hosts") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "127.0.0.1":
            for name in fields[1:]:
                lower = name.lower().rstrip(".")
                if lower != "localhost" and not lower.endswith(".localhost"):
                    return name
    return None


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_env_loopback_is_always_direct(server):
    dead = f"http://127.0.0.1:{closed_port()}"
    for url in (server.url("/echo"), server.url("/echo").replace("127.0.0.1", "localhost")):
        for var in ("http_proxy", "HTTP_PROXY", "all_proxy"):
            got = outcome(url, {var: dead})
            assert got["opened"] and got["errors"] == [], (url, var, got)


def test_env_proxy_is_read(proxies):
    # A non-loopback host goes to the environment's proxy, which refuses it (it tunnels to
    # loopback only): its refusal proves that the variable was read. No DNS query is made.
    http = proxies("http")
    refused = f"proxy {http.display()} refused the tunnel to wsdom-test.invalid:80"
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        got = outcome("ws://wsdom-test.invalid/", {var: http.url()})
        assert not got["opened"] and refused in got["errors"][0], (var, got)
    # A bare host:port is an HTTP proxy, as curl reads it.
    got = outcome("ws://wsdom-test.invalid/", {"http_proxy": f"127.0.0.1:{http.port}"})
    assert refused in got["errors"][0], got
    # wss reads https_proxy (not http_proxy), then all_proxy.
    socks = proxies("socks5")
    env = {"http_proxy": f"http://127.0.0.1:{closed_port()}",
           "https_proxy": socks.url("socks5h")}
    got = outcome("wss://wsdom-test.invalid/", env)
    assert f"SOCKS5 proxy {socks.display('socks5h')} could not connect" in got["errors"][0], got
    got = outcome("wss://wsdom-test.invalid/", {"all_proxy": socks.url("socks5h")})
    assert f"SOCKS5 proxy {socks.display('socks5h')}" in got["errors"][0], got
    # Credentials in the variable are used and never shown.
    auth = proxies("http", (USER, PASSWORD))
    got = outcome("ws://wsdom-test.invalid/", {"http_proxy": auth.url(None, USER, PASSWORD)})
    assert f"proxy {auth.display()} refused the tunnel" in got["errors"][0], got
    got = outcome("ws://wsdom-test.invalid/", {"http_proxy": auth.url(None, USER, "bad-pw")})
    assert "407" in got["errors"][0] and "bad-pw" not in got["errors"][0], got


def test_env_no_proxy_and_explicit_direct(server, proxies):
    alias = loopback_alias()
    if alias is None:
        pytest.skip("/etc/hosts maps no other name than localhost to 127.0.0.1")
    http = proxies("http")
    url = server.url("/echo").replace("127.0.0.1", alias)
    # Not a loopback name for the exemption: the environment's proxy gets it, and refuses.
    got = outcome(url, {"http_proxy": http.url()})
    assert not got["opened"], got
    assert f"proxy {http.display()} refused the tunnel to {alias}:" in got["errors"][0], got
    # no_proxy (a list; either case) sends it directly.
    for var in ("no_proxy", "NO_PROXY"):
        got = outcome(url, {"http_proxy": http.url(), var: f"other.example, {alias}"})
        assert got["opened"] and got["errors"] == [], (var, got)
    got = outcome(url, {"http_proxy": http.url(), "no_proxy": "*"})
    assert got["opened"], got
    # proxy=False (and "", as in C) ignores the environment.
    for direct in (False, ""):
        got = outcome(url, {"http_proxy": http.url()}, proxy=direct)
        assert got["opened"] and got["errors"] == [], (direct, got)
    # An explicit proxy wins over no_proxy.
    socks = proxies("socks5")
    got = outcome(url, {"no_proxy": alias}, proxy=socks.url("socks5h"))
    assert not got["opened"] and socks.display("socks5h") in got["errors"][0], got
