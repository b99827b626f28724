# /close?code=N&reason=R: the server starts the closing handshake (default 1000, "");
# /close?empty=1 sends a Close frame with an empty body.
import _wsdom_common as c


def web_socket_do_extra_handshake(request):
    c.no_extensions(request)
    c.select_first_offered(request)


def web_socket_transfer_data(request):
    q = c.query(request)
    if c.flag(q, "empty"):
        code, reason = None, ""
    else:
        code, reason = int(q.get("code", "1000")), q.get("reason", "")
    request.ws_stream.close_connection(code, reason)


def web_socket_passive_closing_handshake(request):
    return c.echo_close(request)
