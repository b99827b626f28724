# /echo: echo every message with its type; on the client's Close, echo its code and reason.
import _wsdom_common as c


def web_socket_do_extra_handshake(request):
    c.no_extensions(request)
    c.select_first_offered(request)


def web_socket_transfer_data(request):
    c.echo_loop(request)


def web_socket_passive_closing_handshake(request):
    return c.echo_close(request)
