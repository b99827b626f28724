"""Helpers shared by the pywebsocket3 handlers (query parsing, echo loop, TCP drop)."""
import json
import socket
import struct
from urllib.parse import parse_qs, urlsplit

from pywebsocket3 import common, msgutil


def query(request):
    """The request's query parameters: name -> first value (str)."""
    q = urlsplit(request.ws_resource).query
    return {k: v[0] for k, v in parse_qs(q, keep_blank_values=True).items()}


def flag(params, name):
    return params.get(name) in ("1", "true", "yes", "")


def no_extensions(request):
    """Accept no extension (the scenarios expect `extensions == ""`)."""
    request.ws_extension_processors = []


def select_first_offered(request):
    """pywebsocket answers 400 unless the handler picks an offered protocol."""
    offered = request.ws_requested_protocols
    if offered:
        request.ws_protocol = offered[0]


def echo_loop(request):
    """Echoes text as text and binary as binary until the client closes."""
    while True:
        msg = request.ws_stream.receive_message()
        if msg is None:
            return
        msgutil.send_message(request, msg, binary=isinstance(msg, bytes))


def echo_close(request):
    """Passive close: echo the client's code and reason (empty body for none).

    pywebsocket reports an empty Close body as the pseudo code 1005, which must not go on the
    wire: answer with code None (an empty body), as WPT's echo handler does."""
    code, reason = request.ws_close_code, request.ws_close_reason
    if code == common.STATUS_NO_STATUS_RECEIVED:
        return None, ""
    return code, reason


def raw_socket(request):
    return request.connection._request_handler.connection


def drop(request, rst):
    """Closes TCP without a Close frame (FIN, or RST with SO_LINGER 0)."""
    sock = raw_socket(request)
    if rst:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    else:
        sock.shutdown(socket.SHUT_RDWR)


def headers_json(request):
    merged = {}
    for name, value in request.headers_in.items():
        name = name.lower()
        merged[name] = merged[name] + ", " + value if name in merged else value
    return json.dumps(merged, separators=(",", ":"))
