#!/usr/bin/env python3
"""Unit tests of gate.py's decisions on synthetic numbers (times nothing):
instruction thresholds, the wall verdict (drop, significance, CV, foreign
machine, report-only, RSS, integrity), and a simulated A/A false-alarm rate
of the wall rule: 1000 pairs of 9-rep samples from one distribution."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gate  # noqa: E402

failures = 0


def check(name, got, want):
    global failures
    ok = got == want
    failures += not ok
    print("%s: %s (got %r, want %r)" % ("ok" if ok else "FAIL", name, got, want))


check("instr +0.5%", gate.instr_verdict(0.5), "pass")
check("instr +1.0%", gate.instr_verdict(1.0), "warn")
check("instr +2.99%", gate.instr_verdict(2.99), "warn")
check("instr +3.0%", gate.instr_verdict(3.0), "FAIL")
check("instr -10%", gate.instr_verdict(-10), "pass")



def excused(h_verdict, h_delta, g_delta, why=""):
    pair = [dict(gate="instr", allocator="hakmem", verdict=h_verdict, delta_percent=h_delta,
                 why=why),
            dict(gate="instr", allocator="glibc", verdict="ref", delta_percent=g_delta)]
    gate.excuse_environment(pair)
    return pair[0]["verdict"]


check("instr FAIL, glibc steady", excused("FAIL", 5.0, 0.2), "FAIL")
check("instr FAIL, glibc moved too", excused("FAIL", 5.0, -4.0), "warn")
check("instr integrity FAIL stays", excused("FAIL", 0.0, 4.0, "2 integrity events"), "FAIL")
check("instr pass stays", excused("pass", 0.5, 4.0), "pass")

rng = random.Random(1)


def sample(median, cv, n=9):
    return [rng.gauss(median, median * cv) for _ in range(n)]


def base(ratios, rss=100000):
    return {"ratios": ratios, "median_ratio": sorted(ratios)[len(ratios) // 2],
            "cv": gate.cv(ratios), "peak_rss_kb": rss}


def verdict(now, b, rss=100000, events=0, foreign="", report_only=False):
    return gate.judge_wall({}, now, rss, events, b, foreign, report_only)["verdict"]


quiet = base([1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00, 1.01, 0.99])
check("wall same", verdict([1.00, 1.01, 0.99, 1.00, 1.00, 0.99, 1.01, 1.00, 1.00], quiet),
      "pass")
drop10 = [0.90, 0.91, 0.89, 0.90, 0.92, 0.88, 0.90, 0.91, 0.89]
check("wall -10%", verdict(drop10, quiet), "FAIL")
check("wall -10% foreign machine", verdict(drop10, quiet, foreign="cpu 'X'"), "warn")
check("wall -10% report-only", verdict(drop10, quiet, report_only=True), "warn")
check("wall -3% significant but under 5%",
      verdict([0.97, 0.975, 0.965, 0.97, 0.97, 0.968, 0.972, 0.97, 0.971], quiet), "pass")
noisy = base([1.0, 0.5, 1.6, 0.8, 1.3, 0.6, 1.1, 1.5, 0.7])
check("wall noisy baseline", verdict([0.98, 1.0, 1.02] * 3, noisy), "NOISY")
check("wall RSS +20%", verdict([1.0] * 9, quiet, rss=120000), "FAIL")
check("wall RSS +8%", verdict([1.0] * 9, quiet, rss=108000), "pass")
check("wall RSS +2 MiB on a small workload", verdict([1.0] * 9, base([1.0] * 9, rss=10000),
                                                    rss=12048), "pass")
jumpy_rss = dict(quiet, peak_rss_kb=16000, peak_rss_kb_reps=[16000, 21000, 15000, 20000, 16500,
                                                            22000, 15500, 19000, 16000])
check("wall RSS +30% within 3 x the baseline's RSS spread", verdict([1.0] * 9, jumpy_rss,
                                                                 rss=21000), "pass")
check("wall RSS beyond 3 x the baseline's RSS spread", verdict([1.0] * 9, jumpy_rss,
                                                            rss=30000), "FAIL")
check("wall RSS +20% on a workload too noisy to judge", verdict([0.98, 1.0, 1.02] * 3, noisy,
                                                               rss=120000), "NOISY")
check("wall RSS +20% foreign", verdict([1.0] * 9, quiet, rss=120000, foreign="cpus 4"), "warn")
check("wall integrity events", verdict([1.0] * 9, quiet, events=1, report_only=True), "FAIL")
check("wall no baseline", verdict([1.0] * 9, None), "new")

# A rep's ratio is of CPU-time throughput (the two shared a core), not wall.
check("shared-core ratio", gate.shared_core_ratio(
    {"ops_per_sec": 100.0, "ops_per_cpu_sec": 200.0},
    {"ops_per_sec": 300.0, "ops_per_cpu_sec": 300.0}), 1.5)
check("shared-core ratio, a run failed", gate.shared_core_ratio(None, {"ops_per_cpu_sec": 1.0}),
      None)
check("shared-core ratio, no CPU time", gate.shared_core_ratio({"ops_per_cpu_sec": 0},
                                                               {"ops_per_cpu_sec": 1.0}), None)


class Args:
    profile = "quick"
    cpus = [0, 1]


steady = [1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00, 1.01, 0.99]
entry = gate.wall_entry(dict(name="larson", ratios=steady, peak_rss_kb=1000), Args)
check("baseline entry: median of the reps", entry["median_ratio"], 1.00)
check("baseline entry: their CV", round(entry["cv"], 4), round(gate.cv(steady), 4))
check("baseline entry: what was measured", (entry["metric"], entry["threads"], entry["cpus"]),
      (gate.WALL_METRIC, gate.WALL_THREADS, [0, 1]))
check("same number of pairs at once: comparable", gate.same_pairs(Args, {"workloads": {"larson": entry}}), "")
one_cpu = type("OneCpu", (), {"cpus": [1]})
check("fewer pairs at once than the baseline: not comparable",
      "2 pair(s) at once, this run 1" in gate.same_pairs(one_cpu, {"workloads": {"larson": entry}}),
      True)
check("a baseline of one pair (older entries name one cpu) against two",
      "1 pair(s) at once, this run 2" in gate.same_pairs(Args, {"workloads": {
          "larson": dict(entry, cpus=None, cpu=1)}}), True)


def loads(doc):
    """None if load_baseline accepts doc as a wall baseline, else its complaint."""
    import json
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    try:
        gate.load_baseline(f.name, "wall")
        return None
    except gate.BaselineError as e:
        return str(e)
    finally:
        os.unlink(f.name)


wall_doc = {"format": gate.FORMAT, "gate": "wall", "machine": {}, "workloads": {"larson": entry}}
check("a current wall baseline loads", loads(wall_doc), None)
old = dict(entry, metric="cpu")
check("a baseline of sequential runs is refused",
      "older gate" in (loads(dict(wall_doc, workloads={"larson": old})) or ""), True)

# Simulated A/A: both samples from one distribution at CVs of 2..10%.
for c in (0.02, 0.05, 0.10):
    alarms = 0
    for _ in range(1000):
        b = base(sample(1.0, c))
        alarms += verdict(sample(1.0, c), b) == "FAIL"
    print("simulated A/A, CV %.0f%%: %d false alarms in 1000" % (c * 100, alarms))
    if alarms > 10:
        failures += 1
        print("FAIL: more than 1 in 100")

print("%d failure(s)" % failures)
sys.exit(1 if failures else 0)
