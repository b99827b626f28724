#!/usr/bin/env python3
"""A misbehaving WebSocket server for the fault-injection tests (tests/reliability).

Standard library only. Listens on 127.0.0.1, prints one line `LISTENING <port>`, and serves
until stdin reaches EOF. The request path picks the fault:

  /kill-mid-message     handshake, then a child process that owns the connection writes half
                        of a 1 MiB frame and is killed with SIGKILL
  /rst-mid-message      handshake, half of a 1 MiB frame, then a TCP RST (SO_LINGER 0)
  /stall                handshake, then never reads (the client's sends back up)
  /silent               handshake, then reads and discards everything, never answers a ping
  /huge-headers         a 101 status line followed by 1 MiB of header lines, never ending the head
  /many-headers?n=N     a valid 101 response with N extra headers
  /trickle-handshake    a valid 101 response, one byte every 5 ms
  /trickle-forever      a 101 status line, then header bytes one every 10 ms, forever
  /endless-fragments    handshake, then a fragmented message whose continuations never end
  /deflate-bomb?mib=N   permessage-deflate, then one compressed message of N MiB of zeros
  /giant-frame-header   handshake, then a 2 GiB binary frame header, then silence
  /echo                 a plain echo (no extensions), for sanity checks

Every connection ends after at most HOLD seconds.
"""
import base64
import hashlib
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import warnings
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOLD = 30.0
warnings.simplefilter("ignore")  # fork() in a threaded process is deliberate here


def read_head(conn):
    data = b""
    conn.settimeout(10)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None, None, b""
        data += chunk
        if len(data) > 65536:
            return None, None, b""
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    target = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return target, headers, rest


def accept_value(headers):
    key = headers.get("sec-websocket-key", "").encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def response(headers, extra=""):
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_value(headers)}\r\n{extra}\r\n"
    ).encode()


def frame(opcode, payload, fin=True, rsv1=False, length=None):
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload) if length is None else length
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def hold(conn, seconds=HOLD, read=True):
    end = time.time() + seconds
    conn.settimeout(0.5)
    while time.time() < end:
        if not read:
            time.sleep(0.2)
            continue
        try:
            if not conn.recv(65536):
                return
        except socket.timeout:
            continue
        except OSError:
            return


_BOMBS = {}
_BOMB_LOCK = threading.Lock()


def bomb(mib):
    with _BOMB_LOCK:
        if mib not in _BOMBS:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            block = bytes(1 << 20)
            out = [c.compress(block) for _ in range(mib)]
            out.append(c.flush(zlib.Z_SYNC_FLUSH))
            data = b"".join(out)
            assert data.endswith(b"\x00\x00\xff\xff")
            _BOMBS[mib] = data[:-4]
        return _BOMBS[mib]


def handle(conn):
    try:
        target, headers, _ = read_head(conn)
        if target is None:
            return
        url = urllib.parse.urlsplit(target)
        path, query = url.path, dict(urllib.parse.parse_qsl(url.query))
        half_frame = frame(2, b"", length=1 << 20) + b"x" * (512 << 10)
        if path == "/kill-mid-message":
            conn.sendall(response(headers))
            pid = os.fork()
            if pid == 0:  # the child owns the connection now
                try:
                    conn.sendall(half_frame)
                    time.sleep(0.3)
                finally:
                    os.kill(os.getpid(), signal.SIGKILL)
            conn.close()
            os.waitpid(pid, 0)
        elif path == "/rst-mid-message":
            conn.sendall(response(headers) + half_frame)
            time.sleep(0.3)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif path == "/stall":
            conn.sendall(response(headers))
            hold(conn, read=False)
        elif path == "/silent":
            conn.sendall(response(headers))
            hold(conn)
        elif path == "/huge-headers":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n")
            line = b"X-Filler: " + b"f" * 1000 + b"\r\n"
            try:
                for _ in range(1024):
                    conn.sendall(line)
            except OSError:
                return
            hold(conn)
        elif path == "/many-headers":
            n = int(query.get("n", "200"))
            extra = "".join(f"X-Header-{i}: {i}\r\n" for i in range(n))
            conn.sendall(response(headers, extra))
            hold(conn)
        elif path == "/trickle-handshake":
            for b in response(headers):
                conn.sendall(bytes([b]))
                time.sleep(0.005)
            hold(conn)
        elif path == "/trickle-forever":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ")
            end = time.time() + HOLD
            while time.time() < end:
                conn.sendall(b"s")
                time.sleep(0.01)
        elif path == "/endless-fragments":
            conn.sendall(response(headers) + frame(1, b"a" * 1024, fin=False))
            piece = frame(0, b"a" * 16384, fin=False)
            end = time.time() + HOLD
            while time.time() < end:
                conn.sendall(piece)
        elif path == "/deflate-bomb":
            offered = "permessage-deflate" in headers.get("sec-websocket-extensions", "")
            ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if offered else ""
            body = bomb(int(query.get("mib", "256")))
            conn.sendall(response(headers, ext) + frame(2, body, rsv1=offered))
            hold(conn)
        elif path == "/giant-frame-header":
            conn.sendall(response(headers) + frame(2, b"", length=2 << 30))
            hold(conn)
        elif path == "/echo":
            conn.sendall(response(headers))
            echo(conn)
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def recv_exact(conn, n):
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise OSError("eof")
        out += chunk
    return out


def echo(conn):
    conn.settimeout(HOLD)
    while True:
        b0, b1 = recv_exact(conn, 2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", recv_exact(conn, 2))
        elif n == 127:
            (n,) = struct.unpack("!Q", recv_exact(conn, 8))
        mask = recv_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytearray(recv_exact(conn, n))
        for i in range(n):
            data[i] ^= mask[i % 4]
        op = b0 & 0x0F
        if op == 8:
            conn.sendall(frame(8, bytes(data[:2])))
            return
        if op == 9:
            conn.sendall(frame(10, bytes(data)))
        elif op in (1, 2, 0):
            conn.sendall(frame(op, bytes(data), fin=bool(b0 & 0x80)))


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    print(f"LISTENING {listener.getsockname()[1]}", flush=True)

    def accept_loop():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    if "--ignore-stdin" in sys.argv:
        while True:
            time.sleep(3600)
    sys.stdin.read()


if __name__ == "__main__":
    main()
