#!/usr/bin/env python3
"""The scenario table's tool: lint it, count it, plan it for a driver, compare traces.

  scenarios.py lint                       check the table and wpt-files.json (exit 1 on error)
  scenarios.py counts [--json]            scenario counts and WPT ported / portable / total
  scenarios.py plan --lang L [--server S] the expanded scenarios a driver runs, one JSON object
                                          per line, text and bytes materialised (see README.md)
  scenarios.py compare TRACE.jsonl [--summary OUT.json]
                                          compare a driver's trace with the expected traces; print
                                          every mismatch with the scenario id; exit 1 on any

The matching rules are the ones of core/tests/conformance.rs; README.md states them. Only the
standard library is used, so C and Python drivers can call this with any python3.
"""
import argparse
import collections
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "table")
WPT_FILES = os.path.join(HERE, "wpt-files.json")

LANGS = ("rust", "c", "python")
SERVERS = ("wsdom", "pywebsocket3", "websockets", "ws")
EXTERNAL = SERVERS[1:]
SCENARIO_KEYS = {"id", "from", "title", "server", "url", "base_url", "protocols", "option_bag",
                 "sockets", "matrix", "script", "expect", "expect_sockets", "observe", "portable",
                 "skip", "timeout_ms", "linger_ms", "notes"}
OVERRIDABLE = {"server", "url", "base_url", "protocols", "script", "expect", "observe", "sockets"}
TRIGGERS = {"construct", "open", "message", "error", "close", "timer"}
ACTIONS = {"send_text", "send_binary", "close", "sleep_ms", "snapshot", "set_binary_type", "constants"}
ACTION_OPS = {"send_text", "send_binary", "close", "sleep", "snapshot", "set_binary_type", "constants"}
ENTRY_KINDS = {"construct", "event", "action", "timeout"}
EVENT_TYPES = {"open", "message", "error", "close"}
EXPECT_ONLY = {"count", "ms_min", "ms_max", "data", "data_contains", "data_not_contains"}
OBSERVE_KEYS = {"connections", "path", "headers", "header_lengths", "frames", "frames_all", "close_code"}
DATA_INLINE_MAX = 1024
MAX_MISMATCHES = 12


# --------------------------------------------------------------------------------------------
# Loading and expanding
# --------------------------------------------------------------------------------------------

def load_files():
    out = []
    for path in sorted(glob.glob(os.path.join(TABLE, "*.json"))):
        with open(path, encoding="utf-8") as f:
            out.append((path, json.load(f)))
    return out


def subst_matrix(v, m):
    if isinstance(v, str):
        if v.startswith("{m.") and v.endswith("}") and v[3:-1] in m:
            return m[v[3:-1]]
        for k, val in m.items():
            v = v.replace("{m.%s}" % k, val if isinstance(val, str) else json.dumps(val))
        return v
    if isinstance(v, list):
        return [subst_matrix(x, m) for x in v]
    if isinstance(v, dict):
        return {k: subst_matrix(x, m) for k, x in v.items()}
    return v


def expand(s):
    """Applies `matrix`: one scenario per entry, id `id[i]`, fields overridden, {m.KEY} replaced."""
    if "matrix" not in s:
        return [s]
    out = []
    for i, m in enumerate(s["matrix"]):
        base = {k: v for k, v in s.items() if k != "matrix"}
        for k, v in m.items():
            if k in base or k in OVERRIDABLE:
                base[k] = v
        base["id"] = "%s[%d]" % (s["id"], i)
        out.append(subst_matrix(base, m))
    return out


def load_table():
    return [x for _, doc in load_files() for s in doc["scenarios"] for x in expand(s)]


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

def text_of(v):
    """A text value: a string, {"repeat": s, "count": n} or {"utf16": [units]} (may hold lone
    surrogates)."""
    if isinstance(v, str):
        return v
    if "repeat" in v:
        return v["repeat"] * v["count"]
    if "utf16" in v:
        return b"".join(u.to_bytes(2, "little") for u in v["utf16"]).decode("utf-16-le", "surrogatepass")
    raise ValueError("not a text value: %r" % (v,))


def is_text_spec(v):
    return isinstance(v, str) or "repeat" in v or "utf16" in v


def usv_bytes(text):
    """UTF-8 after the USVString conversion (lone surrogates become U+FFFD)."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text).encode("utf-8")


def bytes_of(v):
    """A byte value: {"hex"}, {"length": n} (byte i is i & 0xff) or {"fill_hex", "count"},
    optionally with "view": [offset, length]."""
    if "hex" in v:
        b = bytes.fromhex(v["hex"])
    elif "length" in v:
        b = bytes(i & 0xFF for i in range(v["length"]))
    elif "fill_hex" in v:
        b = bytes.fromhex(v["fill_hex"]) * v["count"]
    else:
        raise ValueError("not a bytes value: %r" % (v,))
    if "view" in v:
        off, n = v["view"]
        b = b[off:off + n]
    return b


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h ^= x
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


class Env:
    def __init__(self, host, port, dead_port=0):
        self.host, self.port, self.dead_port = host, int(port), int(dead_port)

    def subst(self, v):
        if isinstance(v, str):
            return (v.replace("{base}", "ws://%s:%d" % (self.host, self.port))
                     .replace("{host}", self.host).replace("{port}", str(self.port))
                     .replace("{dead_port}", str(self.dead_port)))
        if isinstance(v, list):
            return [self.subst(x) for x in v]
        if isinstance(v, dict):
            return {k: self.subst(x) for k, x in v.items()}
        return v


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------

def short(v):
    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= 160 else s[:160] + "…"


def value_matches(expected, actual, present=True):
    if isinstance(expected, dict) and "one_of" in expected:
        return any(value_matches(o, actual, present) for o in expected["one_of"])
    if not present:
        return expected is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


def kind(e):
    return "%s:%s" % (e.get("t", "?"), e.get("type", e.get("op", "")))


def compare_entry(exp, act, pos, unsupported, out):
    if kind(exp) != kind(act):
        out.append("#%d: expected %s got %s" % (pos, short(exp), short(act)))
        return
    for k, ev in exp.items():
        if k in EXPECT_ONLY or k in unsupported:
            continue
        if not value_matches(ev, act.get(k), k in act):
            out.append("#%d %s: %s expected %s got %s" % (pos, kind(exp), k, short(ev),
                                                         short(act[k]) if k in act else "(absent)"))
    ms = act.get("ms", 0)
    if "ms_min" in exp and ms < exp["ms_min"]:
        out.append("#%d %s: at %d ms, expected >= %d ms" % (pos, kind(exp), ms, exp["ms_min"]))
    if "ms_max" in exp and ms > exp["ms_max"]:
        out.append("#%d %s: at %d ms, expected <= %d ms" % (pos, kind(exp), ms, exp["ms_max"]))
    if "data" in exp:
        want = exp["data"]
        if act.get("data_type") == "binary" or (isinstance(want, dict) and not is_text_spec(want)):
            b = bytes_of(want)
        else:
            b = usv_bytes(text_of(want))
        if act.get("length") != len(b) or act.get("fnv1a64") != fnv1a64(b):
            got = short(act["data"]) if "data" in act else "%s bytes" % act.get("length")
            out.append("#%d %s: data differs: expected %d bytes (fnv %s), got %s"
                       % (pos, kind(exp), len(b), fnv1a64(b), got))
    data = act.get("data") if isinstance(act.get("data"), str) else ""
    if "data_contains" in exp and exp["data_contains"] not in data:
        out.append("#%d: data %s lacks %r" % (pos, short(act.get("data")), exp["data_contains"]))
    if "data_not_contains" in exp and exp["data_not_contains"] in data:
        out.append("#%d: data %s contains %r" % (pos, short(act.get("data")), exp["data_not_contains"]))


def compare_trace(expected, actual, unsupported, out):
    flat = [e for e in expected for _ in range(e.get("count", 1))]
    actual = [a for a in actual if a.get("t") in ENTRY_KINDS]
    for pos, (e, a) in enumerate(zip(flat, actual)):
        compare_entry(e, a, pos, unsupported, out)
    if len(actual) > len(flat):
        for pos in range(len(flat), min(len(actual), len(flat) + 3)):
            out.append("#%d: unexpected %s" % (pos, short(actual[pos])))
    elif len(flat) > len(actual):
        out.append("#%d: missing %s (trace ended after %d entries)"
                   % (len(actual), short(flat[len(actual)]), len(actual)))


def compare_observed(want, got, out):
    if "connections" in want and got.get("connections") != want["connections"]:
        out.append("observed: %s connections, expected %s" % (got.get("connections"), want["connections"]))
    if "path" in want and got.get("path") != want["path"]:
        out.append("observed: path %s expected %s" % (short(got.get("path")), short(want["path"])))
    headers = got.get("headers") or {}
    for name, v in want.get("headers", {}).items():
        if not value_matches(v, headers.get(name), name in headers):
            out.append("observed: header %s = %s expected %s"
                       % (name, short(headers[name]) if name in headers else "(absent)", short(v)))
    for name, n in want.get("header_lengths", {}).items():
        if len(headers.get(name, "")) != n or name not in headers:
            out.append("observed: header %s length %s expected %d"
                       % (name, len(headers[name]) if name in headers else None, n))
    frames = got.get("frames") or []
    if "frames" in want:
        if len(want["frames"]) != len(frames):
            out.append("observed: %d client frames %s expected %s"
                       % (len(frames), short(frames), short(want["frames"])))
        else:
            for i, (wf, gf) in enumerate(zip(want["frames"], frames)):
                for k, v in wf.items():
                    if gf.get(k) != v:
                        out.append("observed: frame %d %s = %s expected %s" % (i, k, short(gf.get(k)), short(v)))
    for i, gf in enumerate(frames if "frames_all" in want else []):
        for k, v in want["frames_all"].items():
            if gf.get(k) != v:
                out.append("observed: frame %d %s = %s expected %s" % (i, k, short(gf.get(k)), short(v)))
    if "close_code" in want:
        close = next((f for f in frames if f.get("opcode") == 8), None)
        if close is None:
            out.append("observed: the client sent no Close frame")
        else:
            body = bytes.fromhex(close.get("payload_hex", ""))
            code = int.from_bytes(body[:2], "big") if len(body) >= 2 else None
            if code != want["close_code"]:
                out.append("observed: client Close code %s expected %s" % (code, want["close_code"]))


def check_scenario(s, lines, unsupported=()):
    """Compares the trace lines of one scenario run (all sockets, one server) with the table.
    Returns the list of mismatches (empty: pass)."""
    problems = []
    first = next((x for x in lines if x.get("t") == "start"), lines[0] if lines else {})
    env = Env(first.get("host", "127.0.0.1"), first.get("port", 0), first.get("dead_port", 0))
    socks = collections.defaultdict(list)
    observed = None
    for line in lines:
        if line.get("t") == "observed":
            observed = line
        elif line.get("t") in ENTRY_KINDS:
            socks[line.get("socket", 0)].append(line)
    n = s.get("sockets", 1)
    for i in range(n):
        expected = s["expect_sockets"][i] if "expect_sockets" in s else s["expect"]
        out = []
        compare_trace(env.subst(expected), socks.get(i, []), set(unsupported), out)
        problems += [("socket %d: %s" % (i, d)) if n > 1 else d for d in out[:MAX_MISMATCHES]]
    if "observe" in s and first.get("server") == "wsdom":
        if observed is None:
            problems.append("observed: the driver recorded no 'observed' entry")
        else:
            compare_observed(env.subst(s["observe"]), observed, problems)
    return problems


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def lint():
    errors = []
    ids = set()
    wpt = json.load(open(WPT_FILES, encoding="utf-8"))
    wpt_names = {f["file"] for f in wpt["files"]}
    referenced = collections.defaultdict(list)
    for path, doc in load_files():
        name = os.path.basename(path)
        for key in ("group", "description", "scenarios"):
            if key not in doc:
                errors.append("%s: missing %r" % (name, key))
        for s in doc.get("scenarios", []):
            sid = s.get("id", "?")
            where = "%s %s" % (name, sid)
            unknown = set(s) - SCENARIO_KEYS
            if unknown:
                errors.append("%s: unknown keys %s" % (where, sorted(unknown)))
            for key in ("id", "from", "title"):
                if key not in s:
                    errors.append("%s: missing %r" % (where, key))
            if "expect" not in s and "expect_sockets" not in s:
                errors.append("%s: no expect" % where)
            if ("server" in s) == ("url" in s) and "matrix" not in s:
                if "server" in s:
                    errors.append("%s: give server or url, not both" % where)
            for f in s.get("from", []):
                if f.endswith((".js", ".html")):
                    if f not in wpt_names:
                        errors.append("%s: from %r is not in wpt-files.json" % (where, f))
                    referenced[f].append(sid)
                elif not (f.startswith("RFC 6455") or f.startswith("WHATWG") or f == "wsdom"):
                    errors.append("%s: from %r is neither a WPT file, 'RFC 6455 §x', 'WHATWG ...' nor 'wsdom'"
                                  % (where, f))
            for lang in s.get("skip", {}):
                if lang not in LANGS:
                    errors.append("%s: skip for unknown language %r" % (where, lang))
            for srv in s.get("portable", []):
                if srv not in EXTERNAL:
                    errors.append("%s: unknown external server %r" % (where, srv))
            if s.get("portable") and "url" in s and "{base}" not in s["url"] and "{port}" not in s["url"]:
                errors.append("%s: portable but its url does not use {base}/{port}" % where)
            for x in expand(s):
                xid = x["id"]
                if xid in ids:
                    errors.append("duplicate id %s" % xid)
                ids.add(xid)
                for e in x.get("script", []):
                    if e.get("on") not in TRIGGERS:
                        errors.append("%s: unknown trigger %r" % (xid, e.get("on")))
                    if e.get("on") == "timer" and "after_ms" not in e:
                        errors.append("%s: a timer needs after_ms" % xid)
                    for a in e.get("do", []):
                        if len(a) != 1 or next(iter(a)) not in ACTIONS:
                            errors.append("%s: bad action %s" % (xid, short(a)))
                for lst in (x.get("expect_sockets") or [x.get("expect", [])]):
                    for e in lst:
                        if e.get("t") not in ENTRY_KINDS:
                            errors.append("%s: bad expected entry %s" % (xid, short(e)))
                        elif e["t"] == "event" and e.get("type") not in EVENT_TYPES:
                            errors.append("%s: bad event type %s" % (xid, short(e)))
                        elif e["t"] == "action" and e.get("op") not in ACTION_OPS:
                            errors.append("%s: bad action op %s" % (xid, short(e)))
                        try:
                            if "data" in e:
                                bytes_of(e["data"]) if isinstance(e["data"], dict) and not is_text_spec(e["data"]) \
                                    else text_of(e["data"])
                        except Exception as ex:  # noqa: BLE001
                            errors.append("%s: bad data %s: %s" % (xid, short(e["data"]), ex))
                for k in x.get("observe", {}):
                    if k not in OBSERVE_KEYS:
                        errors.append("%s: unknown observe key %r" % (xid, k))
    seen = set()
    for f in wpt["files"]:
        if f["file"] in seen:
            errors.append("wpt-files.json: %s listed twice" % f["file"])
        seen.add(f["file"])
        st = f.get("status")
        if st == "ported":
            if sorted(f.get("scenarios", [])) != sorted(referenced.get(f["file"], [])):
                errors.append("wpt-files.json: %s scenarios %s but the table says %s"
                              % (f["file"], f.get("scenarios"), referenced.get(f["file"], [])))
        elif st in ("not-portable", "todo"):
            if not f.get("reason"):
                errors.append("wpt-files.json: %s is %s without a reason" % (f["file"], st))
            if f["file"] in referenced:
                errors.append("wpt-files.json: %s is %s but scenarios %s name it"
                              % (f["file"], st, referenced[f["file"]]))
        else:
            errors.append("wpt-files.json: %s has status %r" % (f["file"], st))
    for e in errors:
        print("lint:", e)
    print("lint: %d scenario runs, %d problems" % (len(ids), len(errors)))
    return 1 if errors else 0


def counts():
    files = load_files()
    table = [s for _, doc in files for s in doc["scenarios"]]
    expanded = [x for s in table for x in expand(s)]
    wpt = json.load(open(WPT_FILES, encoding="utf-8"))["files"]
    st = collections.Counter(f["status"] for f in wpt)
    return {
        "scenarios": len(table),
        "scenario_runs": len(expanded),
        "by_group": {doc["group"]: len(doc["scenarios"]) for _, doc in files},
        "portable_runs": {srv: sum(1 for x in expanded if srv in x.get("portable", [])) for srv in EXTERNAL},
        "skips": {lang: sum(1 for x in expanded if lang in x.get("skip", {})) for lang in LANGS},
        "wpt": {"ported": st["ported"], "portable": st["ported"] + st["todo"], "total": len(wpt),
                "todo": st["todo"], "not_portable": st["not-portable"]},
    }


def materialise(v):
    """Text and bytes values become {"text_hex"} / {"bytes_hex"} for drivers without JSON
    unicode handling (lone surrogates are kept as WTF-8)."""
    if isinstance(v, dict) and "do" in v:
        out = dict(v)
        out["do"] = []
        for a in v["do"]:
            (op, arg), = a.items()
            if op == "send_text":
                t = text_of(arg)
                out["do"].append({"op": op, "text_hex": t.encode("utf-8", "surrogatepass").hex(),
                                  "utf8_valid": not any(0xD800 <= ord(c) <= 0xDFFF for c in t)})
            elif op == "send_binary":
                out["do"].append({"op": op, "bytes_hex": bytes_of(arg).hex()})
            elif op == "close":
                c = {"op": op}
                if "code" in arg:
                    c["code"] = arg["code"]
                if "reason" in arg:
                    t = text_of(arg["reason"])
                    c["reason_hex"] = t.encode("utf-8", "surrogatepass").hex()
                    c["utf8_valid"] = not any(0xD800 <= ord(ch) <= 0xDFFF for ch in t)
                out["do"].append(c)
            else:
                out["do"].append({"op": op, "value": arg})
        return out
    return v


def plan(lang, server):
    for s in load_table():
        if server != "wsdom" and server not in s.get("portable", []):
            continue
        p = {"id": s["id"], "server": server, "skip": s.get("skip", {}).get(lang)}
        for k in ("url", "base_url", "protocols", "option_bag", "timeout_ms", "linger_ms", "sockets"):
            if k in s:
                p[k] = s[k]
        if "url" not in s:
            p["url"] = "{base}" + s.get("server", "/")
        p.setdefault("protocols", [])
        p.setdefault("timeout_ms", 10000)
        p.setdefault("linger_ms", 100)
        p.setdefault("sockets", 1)
        p["observe"] = "observe" in s and server == "wsdom"
        p["script"] = [materialise(e) for e in s.get("script", [])]
        print(json.dumps(p, ensure_ascii=True))


def compare(path, summary_path=None):
    table = {s["id"]: s for s in load_table()}
    runs = collections.OrderedDict()
    unsupported, lang = (), "?"
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            e = json.loads(line)
            if e.get("t") == "driver":
                unsupported, lang = e.get("unsupported_fields", []), e.get("lang", "?")
                continue
            runs.setdefault((e.get("server", "?"), e["id"]), []).append(e)
    by_server = collections.defaultdict(lambda: {"pass": 0, "fail": 0, "skip": 0, "failed": [], "skipped": []})
    for (server, sid), lines in runs.items():
        res = by_server[server]
        end = next((x for x in lines if x.get("t") == "end"), {})
        if end.get("result") == "skip":
            reason = end.get("reason") or ""
            want = table.get(sid, {}).get("skip", {}).get(lang)
            if not want:
                res["fail"] += 1
                res["failed"].append({"id": sid, "mismatches": ["skipped without a skip entry for %s: %s" % (lang, reason)]})
                continue
            res["skip"] += 1
            res["skipped"].append({"id": sid, "reason": reason})
            continue
        if sid not in table:
            res["fail"] += 1
            res["failed"].append({"id": sid, "mismatches": ["not in the table"]})
            continue
        problems = check_scenario(table[sid], lines, unsupported)
        if problems:
            res["fail"] += 1
            res["failed"].append({"id": sid, "mismatches": problems})
        else:
            res["pass"] += 1
    # Scenarios the driver did not run at all are failures too (never silently skipped).
    for server, res in by_server.items():
        ran = {sid for (srv, sid) in runs if srv == server}
        for sid, s in table.items():
            applies = server == "wsdom" or server in s.get("portable", [])
            if applies and sid not in ran:
                res["fail"] += 1
                res["failed"].append({"id": sid, "mismatches": ["not run (and no skip entry)"]})
    status = 0
    summaries = []
    for server, res in sorted(by_server.items()):
        for f in res["failed"]:
            print("FAIL %s %s:" % (server, f["id"]))
            for m in f["mismatches"]:
                print("    " + m)
        total = res["pass"] + res["fail"] + res["skip"]
        print("conformance[%s vs %s]: %d passed, %d failed, %d skipped" % (lang, server, res["pass"], res["fail"], res["skip"]))
        summaries.append(dict(lang=lang, server=server, unavailable=None, total=total, **res))
        status |= 1 if res["fail"] else 0
    if summary_path:
        with open(summary_path, "w") as f:
            json.dump(summaries if len(summaries) != 1 else summaries[0], f, indent=2)
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("lint")
    c = sub.add_parser("counts")
    c.add_argument("--json", action="store_true")
    p = sub.add_parser("plan")
    p.add_argument("--lang", required=True, choices=LANGS)
    p.add_argument("--server", default="wsdom", choices=SERVERS)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("trace")
    cmp_.add_argument("--summary")
    a = ap.parse_args()
    if a.cmd == "lint":
        return lint()
    if a.cmd == "counts":
        c = counts()
        if a.json:
            print(json.dumps(c, indent=2))
        else:
            print("scenarios: %d (%d runs with matrices expanded)" % (c["scenarios"], c["scenario_runs"]))
            for g, n in c["by_group"].items():
                print("  %-20s %d" % (g, n))
            print("portable runs per external server: %s" % c["portable_runs"])
            print("skips per language: %s" % c["skips"])
            w = c["wpt"]
            print("WPT files: %d ported / %d portable / %d total (%d not portable, %d todo)"
                  % (w["ported"], w["portable"], w["total"], w["not_portable"], w["todo"]))
        return 0
    if a.cmd == "plan":
        plan(a.lang, a.server)
        return 0
    if a.cmd == "compare":
        return compare(a.trace, a.summary)
    return 2


if __name__ == "__main__":
    sys.exit(main())
