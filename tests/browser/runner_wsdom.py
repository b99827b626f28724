#!/usr/bin/env python3
"""The wsdom side of the browser-parity runs: the same scenario runner as page/runner.js, over
the Python package (``--api python``) or the C library through ctypes (``--api c``).

Started by harness.mjs, one process per worker. It reads one plan (JSON) per line on stdin and
answers each with one JSON line on stdout: ``{"lines": [trace entries]}``. Both APIs run on one
asyncio loop, as a page runs on its event loop: the Python package delivers the events of a
socket created inside the running loop on that loop, and the C library's manual-dispatch
queue is drained by a reader on ``ws_event_fd()``. Handlers, timers and ``sleep_ms`` (which
blocks the loop, like a synchronous XHR in a page) therefore interleave exactly as in the
browser.

Keep this in step with page/runner.js: same triggers, actions and recorded fields.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import hashlib
import json
import os
import sys
import time

DATA_INLINE_MAX = 1024


# --- values (as page/runner.js) ----------------------------------------------------------

def text_of(v):
    if isinstance(v, str):
        return v
    if "repeat" in v:
        return v["repeat"] * v["count"]
    if "utf16" in v:
        return b"".join(u.to_bytes(2, "little") for u in v["utf16"]).decode("utf-16-le", "surrogatepass")
    raise ValueError("not a text value: %r" % (v,))


def is_text_spec(v):
    return isinstance(v, str) or "repeat" in v or "utf16" in v


_BYTES_CACHE = {}


def bytes_of(v):
    """The whole buffer of a BYTES value (a "view" is applied by the send); "times" repeats it."""
    key = json.dumps(v, sort_keys=True)
    b = _BYTES_CACHE.get(key)
    if b is None:
        b = _bytes_of(v) * v.get("times", 1)
        if len(_BYTES_CACHE) > 64:
            _BYTES_CACHE.clear()
        _BYTES_CACHE[key] = b
    return b


def _bytes_of(v):
    if "hex" in v:
        return bytes.fromhex(v["hex"])
    if "length" in v:
        n = v["length"]
        return (bytes(range(256)) * (n // 256 + 1))[:n]
    if "fill_hex" in v:
        return bytes.fromhex(v["fill_hex"]) * v["count"]
    if "lcg" in v:  # pseudo-random: x = (x * 1103515245 + 12345) mod 2^31 from x = 1, byte = x >> 16
        out, x = bytearray(v["lcg"]), 1
        for i in range(len(out)):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (x >> 16) & 0xFF
        return bytes(out)
    raise ValueError("not a bytes value: %r" % (v,))


def digest(b):
    return hashlib.sha256(b).hexdigest()[:16]


def clamp_code(code):
    """WebIDL [Clamp] unsigned short, as the browser applies to close(code)."""
    return min(max(int(code), 0), 65535)


# --- the Python package ------------------------------------------------------------------

class PyApi:
    name = "python"
    unsupported = []

    def __init__(self):
        import wsdom
        self.wsdom = wsdom

    def construct(self, plan, on_event):
        protocols = plan.get("protocols")
        args = [plan["url"]]
        if protocols is not None and protocols != []:
            args.append(protocols)
        ws = self.wsdom.WebSocket(*args)
        sock = PySock(self, ws)
        for t in ("open", "message", "error", "close"):
            ws.addEventListener(t, lambda ev, _t=t: on_event(sock, self.event_info(sock, ev)))
        return sock

    def event_info(self, sock, ev):
        ws = sock.ws
        info = {"type": ev.type, "target_ok": ev.target is ws and ev.currentTarget is ws}
        if ev.type == "message":
            data = ev.data
            if isinstance(data, str):
                info["text"] = data
            else:
                info["binary"] = bytes(data.bytes() if isinstance(data, self.wsdom.Blob) else data)
                info["binary_type"] = "blob" if isinstance(data, self.wsdom.Blob) else "arraybuffer"
            info["origin"] = ev.origin
        elif ev.type == "close":
            info.update(code=ev.code, reason=ev.reason, wasClean=ev.wasClean)
        elif ev.type == "error":
            info["detail"] = getattr(ev, "message", "")
        return info

    def version(self):
        return self.wsdom.__version__

    @staticmethod
    def error_name(e):
        return getattr(e, "name", None) or type(e).__name__


class PySock:
    def __init__(self, api, ws):
        self.api, self.ws = api, ws

    def attrs(self):
        ws = self.ws
        return {"readyState": ws.readyState, "bufferedAmount": ws.bufferedAmount,
                "protocol": ws.protocol, "extensions": ws.extensions}

    def url(self):
        return self.ws.url

    def binary_type(self):
        return self.ws.binaryType

    def send_text(self, text):
        self.ws.send(text)

    def send_binary(self, buf, view):
        self.ws.send(memoryview(buf)[view[0]:view[0] + view[1]] if view else buf)

    def send_blob(self, part):
        self.ws.send(self.api.wsdom.Blob([part]))

    def close(self, code, reason):
        if code is None and reason is None:
            self.ws.close()
        elif reason is None:
            self.ws.close(clamp_code(code))
        elif code is None:
            self.ws.close(reason=reason)
        else:
            self.ws.close(clamp_code(code), reason)

    def set_binary_type(self, value):
        self.ws.binaryType = value

    def constants(self):
        ws = self.ws
        return [ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED]

    def discard(self):
        try:
            self.ws.close()
        except Exception:
            pass


# --- the C library, through ctypes -------------------------------------------------------

class CError(Exception):
    NAMES = {1: "SyntaxError", 2: "InvalidStateError", 3: "InvalidAccessError"}

    def __init__(self, lib, code):
        self.code = code
        self.name = self.NAMES.get(code) or lib.ws_result_name(code).decode()
        super().__init__(lib.ws_last_error_message().decode("utf-8", "replace"))


OPEN_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
MESSAGE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32,
                              ctypes.POINTER(ctypes.c_char), ctypes.c_size_t)
ERROR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)
CLOSE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint16,
                            ctypes.POINTER(ctypes.c_char), ctypes.c_size_t, ctypes.c_bool)


class Callbacks(ctypes.Structure):
    _fields_ = [("onopen", OPEN_CB), ("onmessage", MESSAGE_CB), ("onerror", ERROR_CB),
                ("onclose", CLOSE_CB), ("userdata", ctypes.c_void_p)]


class CApi:
    name = "c"
    # No binaryType (binary messages are bytes) and no MessageEvent.origin in the C API.
    unsupported = ["binary_type", "origin"]

    def __init__(self, lib_path):
        lib = ctypes.CDLL(lib_path)
        P, S = ctypes.c_void_p, ctypes.c_size_t
        sigs = {
            "ws_result_name": (ctypes.c_char_p, [ctypes.c_int]),
            "ws_last_error_message": (ctypes.c_char_p, []),
            "ws_new_with_options": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), S, P,
                                                   ctypes.POINTER(Callbacks), ctypes.POINTER(P)]),
            "ws_send": (ctypes.c_int, [P, ctypes.c_uint32, ctypes.c_char_p, S]),
            "ws_close": (ctypes.c_int, [P, ctypes.c_int32, ctypes.c_char_p, S]),
            "ws_ready_state": (ctypes.c_int, [P]),
            "ws_buffered_amount": (ctypes.c_uint64, [P]),
            "ws_url": (ctypes.c_char_p, [P]),
            "ws_protocol": (ctypes.c_char_p, [P]),
            "ws_extensions": (ctypes.c_char_p, [P]),
            "ws_free": (ctypes.c_int, [P]),
            "ws_options_new": (ctypes.c_int, [ctypes.POINTER(P)]),
            "ws_options_set_manual_dispatch": (ctypes.c_int, [P, ctypes.c_bool]),
            "ws_event_fd": (ctypes.c_int, [ctypes.POINTER(ctypes.c_int)]),
            "ws_dispatch": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(S)]),
            "ws_version": (ctypes.c_char_p, []),
        }
        for name, (res, args) in sigs.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self.lib = lib
        opts = P()
        self.check(lib.ws_options_new(ctypes.byref(opts)))
        self.check(lib.ws_options_set_manual_dispatch(opts, True))
        self.opts = opts
        fd = ctypes.c_int(-1)
        self.check(lib.ws_event_fd(ctypes.byref(fd)))
        self.fd = fd.value
        self.socks = {}
        self.next_id = 1
        self.handler = None
        self.cbs = Callbacks(OPEN_CB(self._on_open), MESSAGE_CB(self._on_message),
                             ERROR_CB(self._on_error), CLOSE_CB(self._on_close), None)
        self.loop_attached = False

    def version(self):
        return self.lib.ws_version().decode()

    def check(self, r):
        if r != 0:
            raise CError(self.lib, r)

    def attach(self, loop):
        if not self.loop_attached:
            loop.add_reader(self.fd, lambda: self.lib.ws_dispatch(0, None))
            self.loop_attached = True

    def construct(self, plan, on_event):
        self.attach(asyncio.get_running_loop())
        protocols = plan.get("protocols")
        if isinstance(protocols, str):
            protocols = [protocols]
        protocols = protocols or []
        arr = (ctypes.c_char_p * max(len(protocols), 1))(*[p.encode("utf-8", "surrogatepass") for p in protocols])
        sid = self.next_id
        self.next_id += 1
        cbs = Callbacks(self.cbs.onopen, self.cbs.onmessage, self.cbs.onerror, self.cbs.onclose, sid)
        out = ctypes.c_void_p()
        self.check(self.lib.ws_new_with_options(plan["url"].encode("utf-8", "surrogatepass"),
                                                arr if protocols else None, len(protocols),
                                                self.opts, ctypes.byref(cbs), ctypes.byref(out)))
        sock = CSock(self, out.value, sid, on_event)
        self.socks[sid] = sock
        return sock

    def _event(self, handle, sid, info):
        sock = self.socks.get(sid)
        if sock is not None and sock.on_event is not None:
            info["target_ok"] = handle == sock.handle
            sock.on_event(sock, info)

    def _on_open(self, handle, userdata):
        self._event(handle, userdata, {"type": "open"})

    def _on_message(self, handle, userdata, mtype, data, length):
        raw = ctypes.string_at(data, length)
        if mtype == 1:
            self._event(handle, userdata, {"type": "message", "text": raw.decode("utf-8")})
        else:
            self._event(handle, userdata, {"type": "message", "binary": raw})

    def _on_error(self, handle, userdata, message):
        self._event(handle, userdata, {"type": "error", "detail": (message or b"").decode("utf-8", "replace")})

    def _on_close(self, handle, userdata, code, reason, reason_len, was_clean):
        self._event(handle, userdata, {"type": "close", "code": code,
                                       "reason": ctypes.string_at(reason, reason_len).decode("utf-8"),
                                       "wasClean": bool(was_clean)})

    @staticmethod
    def error_name(e):
        return getattr(e, "name", None) or type(e).__name__


class CSock:
    def __init__(self, api, handle, sid, on_event):
        self.api, self.handle, self.sid, self.on_event = api, handle, sid, on_event

    def attrs(self):
        lib = self.api.lib
        return {"readyState": lib.ws_ready_state(self.handle),
                "bufferedAmount": lib.ws_buffered_amount(self.handle),
                "protocol": lib.ws_protocol(self.handle).decode("utf-8"),
                "extensions": lib.ws_extensions(self.handle).decode("utf-8")}

    def url(self):
        return self.api.lib.ws_url(self.handle).decode("utf-8")

    def binary_type(self):
        return None

    def send_text(self, text):
        b = text.encode("utf-8", "surrogatepass")
        self.api.check(self.api.lib.ws_send(self.handle, 1, b, len(b)))

    def send_binary(self, buf, view):
        b = buf[view[0]:view[0] + view[1]] if view else buf
        self.api.check(self.api.lib.ws_send(self.handle, 2, b, len(b)))

    def send_blob(self, part):
        raise NotImplementedError("the C API has no Blob")

    def close(self, code, reason):
        r = None if reason is None else reason.encode("utf-8", "surrogatepass")
        c = -1 if code is None else clamp_code(code)
        self.api.check(self.api.lib.ws_close(self.handle, c, r, 0 if r is None else len(r)))

    def set_binary_type(self, value):
        raise NotImplementedError("the C API has no binaryType")

    def constants(self):
        return [0, 1, 2, 3]  # WS_CONNECTING .. WS_CLOSED, from wsdom.h

    def discard(self):
        self.on_event = None
        self.api.socks.pop(self.sid, None)
        self.api.lib.ws_free(self.handle)


# --- the runner (as page/runner.js) -------------------------------------------------------

class Run:
    def __init__(self, api, plan):
        self.api, self.plan = api, plan
        self.t0 = time.monotonic()
        self.socks = []
        self.finished = False
        self.closed = 0
        self.all_closed = asyncio.get_running_loop().create_future()

    def ms(self):
        return round((time.monotonic() - self.t0) * 1000)

    def record(self, s, entry):
        entry["ms"] = self.ms()
        entry["seq"] = len(s["lines"])
        s["lines"].append(entry)
        return entry

    def run_actions(self, s, actions):
        sock = s["sock"]
        for a in actions:
            (op, arg), = a.items()
            entry = {"t": "action", "op": "sleep" if op == "sleep_ms" else op}
            try:
                if op == "send_text":
                    sock.send_text(text_of(arg))
                elif op == "send_binary":
                    sock.send_binary(bytes_of(arg), arg.get("view"))
                elif op == "send_text_many":
                    t = text_of(arg["text"])
                    for _ in range(arg["count"]):
                        sock.send_text(t)
                elif op == "send_binary_many":
                    b = bytes_of(arg["bytes"])
                    for _ in range(arg["count"]):
                        sock.send_binary(b, None)
                elif op == "send_blob":
                    sock.send_blob(text_of(arg) if is_text_spec(arg) else bytes_of(arg))
                elif op == "close":
                    sock.close(arg.get("code"), text_of(arg["reason"]) if "reason" in arg else None)
                elif op == "sleep_ms":
                    time.sleep(arg / 1000)
                elif op == "snapshot":
                    a = sock.attrs()
                    entry.update(protocol=a["protocol"], extensions=a["extensions"], url=sock.url())
                    if sock.binary_type() is not None:
                        entry["binary_type"] = sock.binary_type()
                elif op == "set_binary_type":
                    sock.set_binary_type(arg)
                elif op == "constants":
                    entry["values"] = sock.constants()
                else:
                    raise ValueError("unknown action " + op)
                entry["result"] = "ok"
            except NotImplementedError as e:
                entry["result"] = "unsupported"
                entry["detail"] = str(e)
            except Exception as e:  # noqa: BLE001 - every exception is a result
                entry["result"] = self.api.error_name(e)
                entry["detail"] = str(e)
            a = sock.attrs()
            entry["readyState"], entry["bufferedAmount"] = a["readyState"], a["bufferedAmount"]
            self.record(s, entry)

    def trigger(self, s, on, n=None):
        for step in self.plan.get("script", []):
            if step["on"] != on:
                continue
            if on == "message" and step.get("n", 1) != n:
                continue
            self.run_actions(s, step["do"])

    def on_event(self, s, info):
        if self.finished:
            return
        entry = {"t": "event", "type": info["type"], **s["sock"].attrs(), "target_ok": info["target_ok"]}
        if info["type"] == "message":
            if "text" in info:
                b = info["text"].encode("utf-8")
                entry.update(data_type="text", length=len(b), digest=digest(b))
                if len(b) <= DATA_INLINE_MAX:
                    entry["data"] = info["text"]
            else:
                b = info["binary"]
                entry.update(data_type="binary", length=len(b), digest=digest(b))
                if len(b) <= DATA_INLINE_MAX:
                    entry["data"] = b.hex()
                if "binary_type" in info:
                    entry["binary_type"] = info["binary_type"]
            if "origin" in info:
                entry["origin"] = info["origin"]
        elif info["type"] == "close":
            entry.update(code=info["code"], reason=info["reason"], wasClean=info["wasClean"])
        elif info["type"] == "error" and info.get("detail"):
            entry["detail"] = info["detail"]
        self.record(s, entry)
        if info["type"] == "message":
            s["messages"] += 1
            self.trigger(s, "message", s["messages"])
        else:
            self.trigger(s, info["type"])
        if info["type"] == "close" and not s["closed"]:
            s["closed"] = True
            self.closed += 1
            if self.closed == len(self.socks) and not self.all_closed.done():
                self.all_closed.set_result(True)

    async def run(self):
        plan = self.plan
        for _ in range(plan.get("sockets", 1)):
            s = {"sock": None, "lines": [], "closed": False, "messages": 0}
            self.socks.append(s)
            entry = {"t": "construct"}
            try:
                s["sock"] = self.api.construct(plan, lambda sock, info, s=s: self.on_event(s, info))
                sock = s["sock"]
                entry.update(result="ok", url=sock.url(), **sock.attrs())
                if sock.binary_type() is not None:
                    entry["binary_type"] = sock.binary_type()
            except Exception as e:  # noqa: BLE001
                entry.update(result=self.api.error_name(e), detail=str(e))
            self.record(s, entry)
            if s["sock"] is not None:
                self.trigger(s, "construct")
            else:
                s["closed"] = True
                self.closed += 1
        if self.closed == len(self.socks) and not self.all_closed.done():
            self.all_closed.set_result(True)
        loop = asyncio.get_running_loop()
        timers = []
        for step in plan.get("script", []):
            if step["on"] == "timer":
                def fire(step=step):
                    if not self.finished:
                        for s in self.socks:
                            if s["sock"] is not None:
                                self.run_actions(s, step["do"])
                timers.append(loop.call_later(step["after_ms"] / 1000, fire))
        try:
            await asyncio.wait_for(asyncio.shield(self.all_closed), plan.get("timeout_ms", 10000) / 1000)
            await asyncio.sleep(plan.get("linger_ms", 100) / 1000)
        except asyncio.TimeoutError:
            pass
        self.finished = True
        for t in timers:
            t.cancel()
        leftovers = []
        for s in self.socks:
            if s["sock"] is None:
                continue
            if not s["closed"]:
                self.record(s, {"t": "timeout", **s["sock"].attrs()})
            leftovers.append(s["sock"])
        out = []
        for i, s in enumerate(self.socks):
            for line in s["lines"]:
                line["socket"] = i
                out.append(line)
        return out, leftovers


async def serve(api):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # nothing else may write to the protocol stream
    out.write(json.dumps({"ready": True, "api": api.name, "version": api.version(),
                          "unsupported": api.unsupported}) + "\n")
    out.flush()
    leftovers = []
    while True:
        line = await reader.readline()
        if not line:
            break
        plan = json.loads(line)
        # Sockets of the previous run that were still open: closed only now, after the
        # harness read /observed for that run.
        for sock in leftovers:
            sock.discard()
        lines, leftovers = await Run(api, plan).run()
        out.write(json.dumps({"lines": lines}, ensure_ascii=True) + "\n")
        out.flush()
    for sock in leftovers:
        sock.discard()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", choices=("python", "c"), required=True)
    ap.add_argument("--lib", help="path of libwsdom.so (for --api c)")
    args = ap.parse_args()
    api = PyApi() if args.api == "python" else CApi(args.lib)
    asyncio.run(serve(api))


if __name__ == "__main__":
    main()
