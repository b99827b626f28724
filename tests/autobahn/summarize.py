#!/usr/bin/env python3
"""Summarises an Autobahn|Testsuite client report (reports/clients/index.json).

Prints, per agent, the number of cases by behaviour (OK, NON-STRICT, INFORMATIONAL,
UNIMPLEMENTED, FAILED, and any other value the suite uses such as WRONG CODE or UNCLEAN),
lists the cases that are not OK, and exits 1 if any case FAILED (or is WRONG CODE / UNCLEAN,
which the suite also counts as failures).

  summarize.py [INDEX.json ...] [--agent NAME] [--json OUT.json]

Several index files (one per fuzzingserver, as run.sh writes them) are merged; a missing or
unreadable one is an error (its driver did not finish).
"""
import argparse
import collections
import json
import sys

ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
FAILING = {"FAILED", "WRONG CODE", "UNCLEAN"}


def case_key(cid):
    return [int(x) if x.isdigit() else x for x in cid.split(".")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", nargs="*", default=["reports/clients/index.json"])
    ap.add_argument("--agent", help="only this agent")
    ap.add_argument("--json", help="also write the counts as JSON here")
    a = ap.parse_args()
    report = {}
    status = 0
    for path in a.index:
        try:
            with open(path) as f:
                report.update(json.load(f))
        except (OSError, ValueError) as e:
            print("cannot read %s: %s" % (path, e))
            status = 1
    out = {}
    for agent in sorted(report):
        if a.agent and agent != a.agent:
            continue
        cases = report[agent]
        counts = collections.Counter(v["behavior"] for v in cases.values())
        close_counts = collections.Counter(v.get("behaviorClose", "?") for v in cases.values())
        names = ORDER + sorted(set(counts) - set(ORDER))
        print("%s: %d cases  %s" % (agent, len(cases), "  ".join("%s %d" % (n, counts.get(n, 0)) for n in names)))
        bad_close = {k: v for k, v in close_counts.items() if k not in ("OK", "INFORMATIONAL")}
        if bad_close:
            print("  closing behaviour not OK: %s" % dict(bad_close))
        by_behaviour = collections.defaultdict(list)
        for cid, v in cases.items():
            if v["behavior"] != "OK":
                by_behaviour[v["behavior"]].append(cid)
        for b in names:
            ids = sorted(by_behaviour.get(b, []), key=case_key)
            if not ids:
                continue
            if b == "UNIMPLEMENTED" and len(ids) > 12:
                groups = collections.Counter(".".join(i.split(".")[:1]) + ".*" for i in ids)
                print("  %-13s %s" % (b, ", ".join("%s (%d)" % g for g in sorted(groups.items()))))
            else:
                print("  %-13s %s" % (b, " ".join(ids)))
            if b in FAILING:
                for cid in ids:
                    v = cases[cid]
                    print("    %s: behavior %s, behaviorClose %s, remoteCloseCode %s, report %s"
                          % (cid, v["behavior"], v.get("behaviorClose"), v.get("remoteCloseCode"), v.get("reportfile")))
        failing = sum(counts.get(b, 0) for b in FAILING)
        if failing:
            status = 1
        out[agent] = {"total": len(cases), "counts": dict(counts), "failing": failing,
                      "not_ok": {b: sorted(v, key=case_key) for b, v in by_behaviour.items()}}
    if a.agent and not out:
        print("no agent %r in %s" % (a.agent, " ".join(a.index)))
        status = 1
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return status


if __name__ == "__main__":
    sys.exit(main())
