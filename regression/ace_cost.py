#!/usr/bin/env python3
"""What linking ACE costs while it is off (SPEC §2: nothing), from two
instruction-gate runs: release with ACE linked in, and release without it.

    bazel run //regression:gate -- --gate instr --json /tmp/with_ace.json
    bazel run //regression:gate_noace -- --gate instr --json /tmp/without_ace.json
    python3 regression/ace_cost.py /tmp/with_ace.json /tmp/without_ace.json

Prints instructions per operation inside the allocator for each program and
the difference; exits 1 if any differs by more than --limit percent
(default 1.0). Standard library only.
"""
import argparse
import json
import sys


def hakmem_counts(path):
    doc = json.load(open(path))
    return {r["name"]: r["now"] for r in doc["results"]
            if r.get("gate") == "instr" and r.get("allocator") == "hakmem"
            and isinstance(r.get("now"), (int, float))}


def main(argv):
    p = argparse.ArgumentParser(prog="ace_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("with_ace", help="gate JSON of //regression:gate (ACE linked)")
    p.add_argument("without_ace", help="gate JSON of //regression:gate_noace")
    p.add_argument("--limit", type=float, default=1.0, help="percent (default 1.0)")
    a = p.parse_args(argv)
    w, wo = hakmem_counts(a.with_ace), hakmem_counts(a.without_ace)
    names = [n for n in w if n in wo]
    if not names:
        print("ace_cost: no common hakmem instruction metrics", file=sys.stderr)
        return 2
    worst = 0.0
    print("%-16s %14s %14s %9s" % ("program", "ACE linked", "ACE not linked", "delta"))
    for n in names:
        d = 100.0 * (w[n] - wo[n]) / wo[n] if wo[n] else 0.0
        worst = max(worst, abs(d))
        print("%-16s %14.2f %14.2f %+8.2f%%" % (n, w[n], wo[n], d))
    print("largest difference %.2f%% (limit %.2f%%): %s" % (
        worst, a.limit, "pass" if worst <= a.limit else "FAIL"))
    return 0 if worst <= a.limit else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
