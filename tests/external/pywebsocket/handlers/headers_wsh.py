# /headers: send the request headers as one JSON text message (lowercase names), then echo.
import _wsdom_common as c
from pywebsocket3 import msgutil


def web_socket_do_extra_handshake(request):
    c.no_extensions(request)
    c.select_first_offered(request)


def web_socket_transfer_data(request):
    msgutil.send_message(request, c.headers_json(request))
    c.echo_loop(request)


def web_socket_passive_closing_handshake(request):
    return c.echo_close(request)
