#!/usr/bin/env python3
"""How close the A/A runs of regression/aa.sh came to a false alarm.

    python3 regression/aa_summary.py regression-results/aa-<stamp>-*.json

Per wall workload over the runs' JSON results: the runs judged, the median,
lowest and highest change of the ratio against the baseline, the limit, the
worst drop as a share of the limit (1.0 would have failed, if significant),
the verdicts, and the median per-rep CV.  Standard library only."""

import json
import statistics
import sys


def summarize(docs):
    """{workload: {"deltas": [...], "limits": [...], "verdicts": {...}, "cvs": [...]}}."""
    rows = {}
    for doc in docs:
        for r in doc.get("results", []):
            if r.get("gate") != "wall" or r.get("delta_percent") is None:
                continue
            row = rows.setdefault(r["name"], {"deltas": [], "limits": [], "verdicts": {},
                                              "cvs": []})
            row["deltas"].append(r["delta_percent"])
            row["limits"].append(r["limit_percent"])
            row["cvs"].append(r.get("cv") or 0.0)
            row["verdicts"][r["verdict"]] = row["verdicts"].get(r["verdict"], 0) + 1
    return rows


def worst_share(row):
    """The largest drop as a share of its run's limit (0 if nothing dropped)."""
    return max(max(0.0, -d / l) for d, l in zip(row["deltas"], row["limits"]))


def table(rows):
    out = ["%-14s %4s %8s %8s %8s %7s %7s  %s" % ("workload", "runs", "median", "lowest",
                                                  "highest", "limit", "worst", "verdicts")]
    for name, row in rows.items():
        d = row["deltas"]
        out.append("%-14s %4d %+7.1f%% %+7.1f%% %+7.1f%% %6.1f%% %7.2f  %s  (CV %.1f%%)" % (
            name, len(d), statistics.median(d), min(d), max(d), statistics.median(row["limits"]),
            worst_share(row), ", ".join("%s %d" % kv for kv in sorted(row["verdicts"].items())),
            100 * statistics.median(row["cvs"])))
    return "\n".join(out)


def main(paths):
    if not paths:
        print("usage: " + __doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    docs = []
    for p in paths:
        try:
            with open(p) as f:
                docs.append(json.load(f))
        except (OSError, ValueError) as e:
            print("aa_summary: %s: %s" % (p, e), file=sys.stderr)
            return 2
    rows = summarize(docs)
    if not rows:
        print("aa_summary: no wall results in %d files" % len(docs), file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
