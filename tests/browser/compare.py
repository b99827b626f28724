#!/usr/bin/env python3
"""Compares the browser-parity traces: Chromium's against each wsdom client's.

  compare.py [--dir target/browser] [--divergences tests/browser/divergences.json]
             [--clients python,c] [--report OUT.json] [--verbose]

Reads <dir>/chromium.jsonl and <dir>/<client>.jsonl (written by harness.mjs), normalises
ports and random keys, and compares per scenario:

* the trace of each socket: the sequence of entries (constructor, events, actions, timeout),
  then every field of the entries the two sequences have in common (aligned by their kind);
* what the scenario server saw: connections, request path and headers, the client's messages
  (reassembled, compressed ones inflated), their fragmentation and compression, control
  frames, and the client's Close frame (code and reason).

Every difference must be listed in divergences.json (with the section of the standard or RFC
that justifies it); any other difference fails the run. Prints one line per comparison, the
compressed sizes on the wire for the permessage-deflate scenarios, and last a line
"N passed, N failed". Exit status 1 if anything failed. Standard library only.
"""
from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import os
import re
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENTRY_KINDS = ("construct", "event", "action", "timeout")
DROP_KEYS = {"t", "type", "op", "ms", "seq", "socket", "id", "client", "detail"}
DATA_INLINE_MAX = 1024


# --- loading -------------------------------------------------------------------------------

def load(path):
    runs = collections.OrderedDict()
    driver = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            if d["t"] == "driver":
                driver = d
                continue
            runs.setdefault(d["id"], []).append(d)
    return driver, runs


# --- normalisation -------------------------------------------------------------------------

class Norm:
    """Replaces the run's random ports by placeholders."""

    def __init__(self, start):
        self.subs = []
        for key in ("port", "dead_port", "page_port"):
            if start.get(key):
                self.subs.append((re.compile(r"(?<=:)%d(?!\d)" % start[key]), "{%s}" % key))

    def s(self, v):
        if isinstance(v, str):
            for rx, rep in self.subs:
                v = rx.sub(rep, v)
            return v
        if isinstance(v, list):
            return [self.s(x) for x in v]
        if isinstance(v, dict):
            return {k: self.s(x) for k, x in v.items()}
        return v


def kind(e):
    if e["t"] == "construct":
        return "construct"
    if e["t"] == "timeout":
        return "timeout"
    return "%s:%s" % (e["t"], e.get("type") or e.get("op"))


def sockets_of(lines, norm, unsupported):
    socks = collections.defaultdict(list)
    for e in lines:
        if e["t"] not in ENTRY_KINDS:
            continue
        fields = {k: norm.s(v) for k, v in e.items() if k not in DROP_KEYS and k not in unsupported}
        socks[e.get("socket", 0)].append((kind(e), fields))
    return [socks[i] for i in sorted(socks)]


def key_ok(key):
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except Exception:
        return False


def inflate_messages(conn):
    """Inflates the compressed messages of one connection (one stream, context kept)."""
    d = zlib.decompressobj(-15)
    out = []
    for m in conn["messages"]:
        m = dict(m)
        if m.get("compressed"):
            wire = base64.b64decode(m.pop("wire_b64"))
            try:
                if d.eof:
                    d = zlib.decompressobj(-15)
                data = d.decompress(wire + b"\x00\x00\xff\xff")
                m["length"] = len(data)
                m["digest"] = hashlib.sha256(data).hexdigest()[:16]
                if len(data) <= DATA_INLINE_MAX:
                    if m["opcode"] == 1:
                        try:
                            m["data"] = data.decode("utf-8")
                        except UnicodeDecodeError:
                            m["data"] = "hex:" + data.hex()
                    else:
                        m["data"] = data.hex()
            except zlib.error as e:
                m["inflate_error"] = str(e)
        out.append(m)
    return out


def observed_of(lines, norm):
    obs = next((e for e in lines if e["t"] == "observed"), None)
    if obs is None:
        return None
    conns = []
    for c in obs["conns"]:
        headers = dict(c["headers"])
        if "sec-websocket-key" in headers:
            headers["sec-websocket-key"] = "<16 random bytes, base64>" if key_ok(headers["sec-websocket-key"]) \
                else "<invalid: %s>" % headers["sec-websocket-key"]
        msgs = inflate_messages(c)
        closes = [f for f in c["control"] if f["opcode"] == 8]
        close = None
        if closes:
            body = bytes.fromhex(closes[0].get("payload_hex") or "")
            close = {"code": int.from_bytes(body[:2], "big") if len(body) >= 2 else None,
                     "reason": body[2:].decode("utf-8", "replace")}
        conns.append({
            "path": c["path"],
            "headers": norm.s(headers),
            "messages": [{k: m.get(k) for k in ("opcode", "length", "digest", "data", "inflate_error", "incomplete",
                                                 "stray_continuation") if m.get(k) is not None} for m in msgs],
            "compressed": [bool(m.get("compressed")) for m in msgs],
            "fragmentation": [m.get("frames", 1) for m in msgs],
            "wire_len": [m.get("wire_len") for m in msgs],
            "masked": all(f["masked"] for f in c["frames"]),
            "control_rsv": sorted({f["rsv"] for f in c["frames"] if f["opcode"] >= 8 and f["rsv"]}),
            "control": [[f["opcode"], f.get("payload_hex")] for f in c["control"] if f["opcode"] != 8],
            "close_frames": len(closes),
            "close_code": close["code"] if close else "no Close frame",
            "close_reason": close["reason"] if close else "no Close frame",
        })
    return conns


# --- comparison ----------------------------------------------------------------------------

def lcs_pairs(a, b):
    """Index pairs of a longest common subsequence of two kind lists."""
    n, m = len(a), len(b)
    if n * m > 4_000_000:  # huge traces: fall back to position pairs of equal kinds
        return [(i, i) for i in range(min(n, m)) if a[i] == b[i]]
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            dp[i][j] = dp[i + 1][j + 1] + 1 if a[i] == b[j] else max(dp[i + 1][j], dp[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif dp[i + 1][j] >= dp[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def compress_kinds(kinds):
    """['event:message'] * 1000 -> ['event:message x1000'] for readable sequence diffs."""
    out = []
    for k in kinds:
        if out and out[-1][0] == k:
            out[-1][1] += 1
        else:
            out.append([k, 1])
    return [k if n == 1 else "%s x%d" % (k, n) for k, n in out]


def diff_traces(ca, wa, out):
    if len(ca) != len(wa):
        out.append({"field": "sockets", "chromium": len(ca), "wsdom": len(wa)})
    for si, (a, b) in enumerate(zip(ca, wa)):
        ka, kb = [k for k, _ in a], [k for k, _ in b]
        where = " (socket %d)" % si if len(ca) > 1 else ""
        if ka != kb:
            out.append({"field": "sequence", "chromium": compress_kinds(ka), "wsdom": compress_kinds(kb), "where": where})
        seen = set()
        for i, j in lcs_pairs(ka, kb):
            fa, fb = a[i][1], b[j][1]
            keys = sorted(set(fa) | set(fb))
            if ka[i] == "construct" and fa.get("result") != fb.get("result"):
                keys = ["result"]  # the attributes exist only on the side that constructed
            for key in keys:
                va, vb = fa.get(key, "(absent)"), fb.get(key, "(absent)")
                if va != vb:
                    field = "%s.%s" % (ka[i], key)
                    if (field, json.dumps(va), json.dumps(vb)) in seen:
                        continue  # the same difference on the next message of a long run
                    seen.add((field, json.dumps(va), json.dumps(vb)))
                    out.append({"field": field, "chromium": va, "wsdom": vb, "where": where + " #%d" % i})


def aborted_while_connecting(socks):
    """Every socket was closed by close() during CONNECTING: whether its TCP connection reached
    the server first is a race, in any client."""
    return bool(socks) and all(
        not any(k == "event:open" for k, _ in s)
        and any(k == "action:close" and f.get("result") == "ok" and f.get("readyState") == 2 for k, f in s)
        for s in socks if s and s[0][1].get("result") == "ok")


def diff_observed(ca, wa, out, racy_connections=False):
    if ca is None or wa is None:
        if (ca is None) != (wa is None):
            out.append({"field": "observed", "chromium": ca is not None, "wsdom": wa is not None})
        return
    if len(ca) != len(wa) and not racy_connections:
        out.append({"field": "observed.connections", "chromium": len(ca), "wsdom": len(wa)})
    keys = ("path", "messages", "compressed", "fragmentation", "masked", "control_rsv", "control",
            "close_frames", "close_code", "close_reason")
    if racy_connections:
        # How far the aborted handshake got (and whether a Close went out after a late 101)
        # is a race: only the request is compared.
        keys = ("path",)
    for ci, (a, b) in enumerate(zip(ca, wa)):
        where = " (connection %d)" % ci if len(ca) > 1 else ""
        for key in keys:
            if a[key] != b[key]:
                out.append({"field": "observed." + key, "chromium": a[key], "wsdom": b[key], "where": where})
        ha, hb = a["headers"], b["headers"]
        for name in sorted(set(ha) | set(hb)):
            va, vb = ha.get(name, "(absent)"), hb.get(name, "(absent)")
            if va != vb:
                out.append({"field": "observed.headers." + name, "chromium": va, "wsdom": vb, "where": where})


# --- divergences ---------------------------------------------------------------------------

def pattern_matches(pat, sid):
    base = sid.split("[", 1)[0]
    if "*" in pat:
        rx = re.compile("^" + ".*".join(re.escape(p) for p in pat.split("*")) + "$")
        return bool(rx.match(sid))
    return pat == sid or pat == base


def value_matches(spec, v):
    if isinstance(spec, dict) and "one_of" in spec:
        return any(value_matches(o, v) for o in spec["one_of"])
    if isinstance(spec, dict) and "contains" in spec:
        return isinstance(v, str) and spec["contains"] in v
    if isinstance(spec, dict) and "not" in spec:
        return not value_matches(spec["not"], v)
    return spec == v


def justify(diff, sid, client, divergences):
    """The id of the first entry (divergence or known bug) that lists this difference."""
    for d in divergences:
        if "clients" in d and client not in d["clients"]:
            continue
        if not any(pattern_matches(p, sid) for p in d["scenarios"]):
            continue
        for spec in d["diffs"]:
            if spec["field"] != diff["field"]:
                continue
            if "chromium" in spec and not value_matches(spec["chromium"], diff["chromium"]):
                continue
            if "wsdom" in spec and not value_matches(spec["wsdom"], diff["wsdom"]):
                continue
            if spec.get("relation") == "chromium>wsdom" and not (
                    isinstance(diff["chromium"], int) and isinstance(diff["wsdom"], int)
                    and diff["chromium"] > diff["wsdom"]):
                continue
            return d["id"]
    return None


def short(v, n=150):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[:n] + "…"


def write_markdown(src, out):
    doc = json.load(open(src, encoding="utf-8"))
    lines = [
        "# wsdom and Chromium: the deliberate differences",
        "",
        "<!-- Generated from divergences.json by `python3 tests/browser/compare.py --markdown "
        "tests/browser/DIVERGENCES.md`; edit the JSON, not this file. -->",
        "",
        "The browser-parity run (`tests/browser/run.sh`) runs the same scenarios in headless Chromium and",
        "through wsdom (Python package and C library) against the same scenario server and compares",
        "everything both clients did and sent. Every difference it may find is listed below with the",
        "section of the standard or RFC that justifies wsdom's side; `compare.py` reads the same list",
        "from `divergences.json`, and any difference not on it fails the run.",
        "",
        "| # | difference | Chromium | wsdom | justification | scenarios |",
        "|---|---|---|---|---|---|",
    ]
    cell = lambda t: t.replace("|", "\\|").replace("\n", " ")
    for n, d in enumerate(doc["divergences"], 1):
        lines.append("| %d | **%s** (`%s`) | %s | %s | %s | %s |" % (
            n, cell(d["title"]), d["id"], cell(d["chromium"]), cell(d["wsdom"]), cell(d["justification"]),
            "every scenario" if d.get("every_scenario") or d["scenarios"] == ["*"] else
            ", ".join("`%s`" % x for x in d["scenarios"])))
    if doc.get("known_bugs"):
        lines += ["", "## Known wsdom bugs", "",
                  "Differences where Chromium is right. The run reports them as BUG (not as failures) until",
                  "they are fixed; then the entry is reported unused and must be removed.", "",
                  "| difference | Chromium | wsdom | standard | scenarios |", "|---|---|---|---|---|"]
        for d in doc["known_bugs"]:
            lines.append("| **%s** (`%s`) | %s | %s | %s | %s |" % (
                cell(d["title"]), d["id"], cell(d["chromium"]), cell(d["wsdom"]), cell(d["justification"]),
                ", ".join("`%s`" % x for x in d["scenarios"])))
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# --- main ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(ROOT, "target/browser"))
    ap.add_argument("--divergences", default=os.path.join(HERE, "divergences.json"))
    ap.add_argument("--clients", default="python,c")
    ap.add_argument("--report", default=None)
    ap.add_argument("--verbose", action="store_true", help="also print the justified differences")
    ap.add_argument("--markdown", metavar="OUT", help="write DIVERGENCES.md from divergences.json and exit")
    args = ap.parse_args()
    if args.markdown:
        write_markdown(args.divergences, args.markdown)
        return 0

    doc = json.load(open(args.divergences, encoding="utf-8"))
    divergences = doc["divergences"]
    known_bugs = doc.get("known_bugs", [])
    bug_ids = {b["id"] for b in known_bugs}
    # Divergences that apply to every scenario (the request headers) are named once, not per line.
    quiet = {d["id"] for d in divergences if d.get("every_scenario")}
    ids = [d["id"] for d in divergences + known_bugs]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        sys.exit("divergences.json: duplicate ids %s" % sorted(dup))
    # Fields a scenario leaves unchecked because they race in every client (scenarios.json).
    unchecked = {}
    mine = json.load(open(os.path.join(HERE, "scenarios.json"), encoding="utf-8"))
    for item in mine["table"] + mine["scenarios"]:
        if isinstance(item, dict) and item.get("unchecked"):
            unchecked[item["id"]] = item["unchecked"]
    cdrv, chromium = load(os.path.join(args.dir, "chromium.jsonl"))
    clients = []
    for c in args.clients.split(","):
        p = os.path.join(args.dir, c + ".jsonl")
        if os.path.exists(p):
            clients.append((c,) + load(p))
        else:
            print("note: no %s trace (%s)" % (c, os.path.relpath(p, ROOT)))

    passed = failed = skipped = known = 0
    used = collections.Counter()
    report = {"chromium": cdrv.get("version"), "clients": {}, "scenarios": {}}
    wire = []
    lines_out = []
    for sid, clines in chromium.items():
        cstart = clines[0]
        cend = clines[-1]
        for client, wdrv, wruns in clients:
            wlines = wruns.get(sid)
            tag = "%-7s %s [%s]" % ("", sid, client)
            if wlines is None:
                failed += 1
                lines_out.append("FAIL    %s [%s]: no %s trace for this scenario" % (sid, client, client))
                continue
            wend = wlines[-1]
            if wend.get("result") == "skip":
                skipped += 1
                lines_out.append("SKIP    %s [%s]: %s" % (sid, client, wend.get("reason")))
                report["scenarios"].setdefault(sid, {})[client] = {"result": "skip", "reason": wend.get("reason")}
                continue
            if cend.get("result") == "error" or wend.get("result") == "error":
                failed += 1
                lines_out.append("FAIL    %s [%s]: runner error: %s" % (
                    sid, client, (cend if cend.get("result") == "error" else wend).get("reason", "")[:300]))
                report["scenarios"].setdefault(sid, {})[client] = {"result": "error"}
                continue
            unsupported = set(wdrv.get("unsupported_fields", [])) | set(cdrv.get("unsupported_fields", []))
            cn, wn = Norm(cstart), Norm(wlines[0])
            diffs = []
            csocks, wsocks = sockets_of(clines, cn, unsupported), sockets_of(wlines, wn, unsupported)
            diff_traces(csocks, wsocks, diffs)
            co, wo = observed_of(clines, cn), observed_of(wlines, wn)
            diff_observed(co, wo, diffs, aborted_while_connecting(csocks) and aborted_while_connecting(wsocks))
            if co and wo:
                for ci, (a, b) in enumerate(zip(co, wo)):
                    if any(a["compressed"]) or any(b["compressed"]):
                        wire.append((sid, client, a, b))
            skip_fields = unchecked.get(sid, unchecked.get(sid.split("[", 1)[0], {}))
            diffs = [d for d in diffs if d["field"] not in skip_fields]
            unjustified, justified = [], []
            for d in diffs:
                j = justify(d, sid, client, known_bugs + divergences)
                if j:
                    used[j] += 1
                    justified.append((d, j))
                else:
                    unjustified.append(d)
            entry = {"diffs": [dict(d, justified_by=j) for d, j in justified] + unjustified}
            if unjustified:
                failed += 1
                entry["result"] = "fail"
                lines_out.append("FAIL    %s [%s]: %d unlisted difference(s)" % (sid, client, len(unjustified)))
                for d in unjustified:
                    lines_out.append("          %s%s: chromium %s, %s %s" % (
                        d["field"], d.get("where", ""), short(d["chromium"]), client, short(d["wsdom"])))
                if cend.get("console"):
                    lines_out.append("          chromium console: %s" % short(cend["console"], 300))
            elif any(j in bug_ids for _, j in justified):
                known += 1
                entry["result"] = "known-bug"
                names = sorted({j for _, j in justified if j in bug_ids})
                lines_out.append("BUG     %s [%s]: known wsdom bug %s" % (sid, client, ", ".join(names)))
                for d, j in justified:
                    if j in bug_ids:
                        lines_out.append("          %s%s: chromium %s, %s %s" % (
                            d["field"], d.get("where", ""), short(d["chromium"]), client, short(d["wsdom"])))
            else:
                passed += 1
                if justified:
                    entry["result"] = "diverge"
                    names = sorted({j for _, j in justified if j not in quiet})
                    lines_out.append("DIVERGE %s [%s]: %s" % (sid, client, ", ".join(names)))
                else:
                    entry["result"] = "match"
                    lines_out.append("MATCH   %s [%s]" % (sid, client))
                if justified and not any(j not in quiet for _, j in justified):
                    entry["result"] = "match"
                    lines_out[-1] = "MATCH   %s [%s]" % (sid, client)
            if args.verbose and justified:
                for d, j in justified:
                    lines_out.append("          %s%s: chromium %s, %s %s  (%s)" % (
                        d["field"], d.get("where", ""), short(d["chromium"]), client, short(d["wsdom"]), j))
            report["scenarios"].setdefault(sid, {})[client] = entry
    for client, wdrv, wruns in clients:
        for sid in wruns:
            if sid not in chromium:
                failed += 1
                lines_out.append("FAIL    %s [%s]: no chromium trace for this scenario" % (sid, client))
        report["clients"][client] = wdrv.get("version") or ""

    print("browser parity: Chromium %s vs wsdom %s" % (
        cdrv.get("version", "?"), ", ".join("%s %s" % (c, d.get("version") or "") for c, d, _ in clients)))
    print("(MATCH: no difference apart from %s, which apply to every scenario; DIVERGE: only listed"
          " differences; BUG: a known wsdom bug; FAIL: a difference not in divergences.json)" % ", ".join(sorted(quiet)))
    for l in lines_out:
        print(l)

    if wire:
        print()
        print("permessage-deflate: the client's compressed messages on the wire (payload bytes, RSV1 set)")
        print("  %-44s %-6s %3s %9s %9s %9s" % ("scenario", "client", "msg", "plain", "chromium", "wsdom"))
        totals = collections.defaultdict(lambda: [0, 0, 0])
        for sid, client, a, b in wire:
            for i, (ma, mb) in enumerate(zip(a["messages"], b["messages"])):
                ca_len = a["wire_len"][i] if a["compressed"][i] else None
                cb_len = b["wire_len"][i] if b["compressed"][i] else None
                plain = ma.get("length") or 0
                larger = [n for n, v in (("chromium", ca_len), ("wsdom", cb_len)) if v is not None and v > plain * 1.01 + 8]
                print("  %-44s %-6s %3d %9s %9s %9s%s" % (sid[:44], client, i + 1, ma.get("length"),
                                                          "%d" % ca_len if ca_len is not None else "plain",
                                                          "%d" % cb_len if cb_len is not None else "plain",
                                                          "   larger than plain: " + ", ".join(larger) if larger else ""))
                t = totals[client]
                t[0] += ma.get("length") or 0
                t[1] += a["wire_len"][i] or 0
                t[2] += b["wire_len"][i] or 0
                report.setdefault("wire", []).append({"scenario": sid, "client": client, "message": i + 1,
                                                      "plain": ma.get("length"), "chromium": ca_len, "wsdom": cb_len})
        for client, (p, ca, cb) in totals.items():
            print("  %-44s %-6s %3s %9d %9d %9d   (chromium %.1f%%, wsdom %.1f%% of plain)" % (
                "total", client, "", p, ca, cb, 100.0 * ca / max(p, 1), 100.0 * cb / max(p, 1)))

    counts = collections.Counter(e.get("result") for sc in report["scenarios"].values() for e in sc.values())
    print()
    print("%d scenarios (%d runs with matrices expanded); per client: %s" % (
        len({sid.split("[")[0] for sid in chromium}), len(chromium),
        ", ".join("%s %d" % (c, sum(1 for sid in chromium if sid in w)) for c, _, w in clients)))
    print("comparisons: %d match, %d diverge as listed, %d known wsdom bug, %d fail, %d skipped" % (
        counts["match"], counts["diverge"], counts["known-bug"], counts["fail"] + counts["error"], counts["skip"]))
    print("divergences seen: %s" % ", ".join("%s (%d)" % (i, used[i]) for i in ids if used[i]))
    unused = [i for i in ids if not used[i]]
    if unused:
        print()
        print("note: divergences not seen in this run (stale, or their scenarios were not run): %s" % ", ".join(unused))
    print()
    if skipped:
        print("%d skipped (the client cannot express the scenario)" % skipped)
    if known:
        print("%d known wsdom bugs (divergences.json known_bugs: fix them, then remove the entries)" % known)
    print("%d passed, %d failed" % (passed, failed))
    report.update(passed=passed, failed=failed, skipped=skipped, known_bugs=known, used={k: used[k] for k in ids})
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
