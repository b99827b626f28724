# /push?n=N&size=S&type=text|binary: N messages of S bytes "x", then the text "done", then echo.
import _wsdom_common as c
from pywebsocket3 import msgutil


def web_socket_do_extra_handshake(request):
    c.no_extensions(request)
    c.select_first_offered(request)


def web_socket_transfer_data(request):
    q = c.query(request)
    n, size = int(q.get("n", "1")), int(q.get("size", "1"))
    text = q.get("type") == "text"
    payload = "x" * size if text else b"x" * size
    for _ in range(n):
        msgutil.send_message(request, payload, binary=not text)
    msgutil.send_message(request, "done")
    c.echo_loop(request)


def web_socket_passive_closing_handshake(request):
    return c.echo_close(request)
