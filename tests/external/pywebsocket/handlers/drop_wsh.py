# /drop: close TCP right after the handshake without a Close frame; ?rst=1 resets it.
import _wsdom_common as c
from pywebsocket3.handshake import AbortedByUserException


def web_socket_do_extra_handshake(request):
    c.no_extensions(request)
    c.select_first_offered(request)


def web_socket_transfer_data(request):
    c.drop(request, c.flag(c.query(request), "rst"))
    raise AbortedByUserException("dropped on purpose")
