# /protocol: select the first offered subprotocol (or ?select=P if offered);
# /protocol?none=1: answer without Sec-WebSocket-Protocol even if one was offered.
import _wsdom_common as c


def web_socket_do_extra_handshake(request):
    c.no_extensions(request)
    q = c.query(request)
    if c.flag(q, "none"):
        request.ws_requested_protocols = None  # pywebsocket then omits the header
        return
    offered = request.ws_requested_protocols or []
    select = q.get("select")
    if select is not None and select in offered:
        request.ws_protocol = select
    elif offered:
        request.ws_protocol = offered[0]


def web_socket_transfer_data(request):
    c.echo_loop(request)


def web_socket_passive_closing_handshake(request):
    return c.echo_close(request)
