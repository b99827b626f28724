#!/usr/bin/env python3
"""pywebsocket3 (the server WPT uses) with the wsdom conformance behaviours.

Listens on 127.0.0.1 with an ephemeral port, prints one line `LISTENING <port>`, and runs
until stdin reaches EOF (or SIGTERM). Handlers live in ./handlers (`/echo` -> echo_wsh.py);
the behaviours and their query parameters are described in tests/scenarios/README.md.
"""
import logging
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # handlers import _wsdom_common

from pywebsocket3 import standalone  # noqa: E402
from pywebsocket3.websocket_server import WebSocketServer  # noqa: E402


def main():
    handlers = os.path.join(HERE, "handlers")
    options, _ = standalone._parse_args_and_config(
        ["-H", "127.0.0.1", "-p", "0", "-w", handlers, "-d", handlers,
         "--log-level", "critical"])
    # The parts of standalone._main that apply (no CGI, no TLS, no chdir).
    options.cgi_directories = []
    options.is_executable_method = None
    options.scan_dir = options.websock_handlers
    logging.basicConfig(level=logging.CRITICAL)
    server = WebSocketServer(options)
    sys.stdout.write("LISTENING %d\n" % server.server_port)
    sys.stdout.flush()

    def stop_on_eof():
        try:
            while sys.stdin.read(4096):
                pass
        except Exception:
            pass
        os._exit(0)

    threading.Thread(target=stop_on_eof, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
