#!/usr/bin/env python3
"""ACE off against ACE on, side by side (SPEC.md §2, "What ACE is for").

    bazel run //benchmarks:ab_ace -- [--workloads a,b] [--reps N] [--threads N]
                                     [--seconds S] [--quick] [--out DIR]
                                     [--ace-env NAME=VALUE ...] [--sweep]

Every workload (a //stress binary, linked to the system allocator) runs
under hakmem's shared object, preloaded, once with HAKMEM_ACE_ENABLED=0 and
once with HAKMEM_ACE_ENABLED=1, rep after rep.  By default the two arms of
a rep run at the same time, every thread of both pinned to one CPU
(--cpu), and are compared by ops per CPU-second of the process (ACE's
thread included): sharing a core, they share whatever the machine does
meanwhile, which on these shared VMs moves a process's own throughput by
5-25% from run to run but the ratio of two such processes by 1-5%
(regression/README.md).  Per workload it reports the median of the
per-pair ratios (on / off), the exact two-sided Wilcoxon signed-rank
p-value of those ratios, the median peak RSS of each arm, the resident set after the fragmentation
workload's free phase (rss_after_free_kb), ACE's own CPU time as a share of
a core (its thread's CPU clock, from its exit log line), what ACE did (knob
moves, scavenges, guard trips, from its log) and the knob values it left
behind.

--sweep adds the oracle: every workload also runs under each static setting
of a grid - TLS capacity scale (HAKMEM_TLS_CAP_SCALE, percent of the
per-class defaults) x drain threshold (HAKMEM_DRAIN_THRESHOLD) - in the
same interleaved reps; then, because the best of twelve noisy medians is
biased upwards, ACE on meets each workload's best static setting again in
fresh interleaved runs (the confirmation pass), and that ratio, ACE on /
best, is the one judged (goal >= 0.95). The default setting is one point of
the grid and is ACE off itself. Defaults for a sweep: 3 reps of 2 s (about
10 minutes for the five workloads on 2 cores).

The ACE arm runs with shortened loops (fast 100 ms, slow 500 ms) so that runs
of seconds see the slow loop too; --ace-env changes or adds settings.
--sequential runs the arms one after the other instead, on every CPU, the
order alternating (off,on / on,off), and compares median ops/s with the
Mann-Whitney U test: the true-parallel figures, with the machine's noise
in them.  Timings are a measurement, never a test.

Writes results.json (every run and the summary) and results.md to --out and
prints the Markdown table. Exit status: 0, 1 if a run failed (reported, left
out of the medians), 2 for bad arguments. Standard library only.
"""

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys

# Each workload's arguments; {threads} and {seconds} are filled in. The four
# ACE was planned for (SPEC §2), and larson (cross-thread frees: the drain
# threshold rule).
WORKLOADS = {
    # A fixed number of phases (4 per second asked for), not a time limit:
    # the resident set after the free phase is compared between arms, and
    # it depends on how many phases ran.
    "fragmentation": ["--threads", "{threads}", "--live", "{live}", "--phases", "{phases}"],
    "large_ws": ["--threads", "{threads}", "--seconds", "{seconds}", "--objects", "{objects}"],
    "realloc": ["--threads", "{threads}", "--seconds", "{seconds}"],
    "mid_mt": ["--threads", "{threads}", "--seconds", "{seconds}"],
    # seconds min-size max-size chunks-per-thread rounds seed threads
    "larson": ["{iseconds}", "8", "1000", "5000", "100", "4141", "{threads}"],
}
SIZES = {"normal": {"live": "200000", "objects": "2000000"},
         "quick": {"live": "50000", "objects": "500000"}}
DEFAULTS = {"normal": {"reps": 5, "seconds": 5.0}, "quick": {"reps": 3, "seconds": 1.0}}
SWEEP_DEFAULTS = {"normal": {"reps": 3, "seconds": 2.0}, "quick": {"reps": 1, "seconds": 1.0}}
# The oracle grid: TLS capacity scale (percent) x drain threshold.  Scale
# 100 and drain 64 are the allocator's defaults, i.e. ACE off.
SWEEP_TLS_SCALES = [25, 50, 100, 200]
SWEEP_DRAINS = [32, 64, 256]
DEFAULT_STATIC = "tls100_drain64"
# Goals (issue 4): ACE on within 5% of the best static setting, not slower
# than ACE off beyond noise, 30% less RSS after fragmentation's free phase,
# at most 0.5% of a core for ACE's thread.
GOAL_VS_BEST = 0.95
GOAL_RSS_DROP = 0.30
GOAL_CPU_PERCENT = 0.5
NOISE_P = 0.05
ACE_ON = ["HAKMEM_ACE_ENABLED=1", "HAKMEM_ACE_LOG_LEVEL=1",
          "HAKMEM_ACE_FAST_INTERVAL_MS=100", "HAKMEM_ACE_SLOW_INTERVAL_MS=500"]
ACE_OFF = ["HAKMEM_ACE_ENABLED=0"]
ARMS = ("off", "on")


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------
def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % v)
    return v


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text)
    if not v > 0:
        raise argparse.ArgumentTypeError("must be positive, got %r" % text)
    return v


def setting(text):
    if not re.fullmatch(r"HAKMEM_[A-Z0-9_]+=.*", text):
        raise argparse.ArgumentTypeError("expected HAKMEM_NAME=VALUE, got %r" % text)
    return text


def build_parser():
    p = argparse.ArgumentParser(
        prog="ab_ace", description="ACE off against ACE on, interleaved, per workload.",
        epilog="Workloads: " + ", ".join(WORKLOADS) + ". Needs a quiet machine.")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated subset (default: all)")
    p.add_argument("--reps", type=positive_int, help="runs per arm (default 5; --quick 3)")
    p.add_argument("--threads", type=positive_int, default=2, help="worker threads (default 2)")
    p.add_argument("--seconds", type=positive_float,
                   help="seconds per run (default 5; --quick 1)")
    p.add_argument("--quick", action="store_true", help="short runs, smaller working sets")
    p.add_argument("--out", help="directory for results.json and results.md "
                   "(default: ab_ace_results/<time> in the workspace)")
    p.add_argument("--ace-env", type=setting, action="append", default=[],
                   metavar="NAME=VALUE", help="extra setting for the ACE-on arm (repeatable)")
    p.add_argument("--sweep", action="store_true",
                   help="also run every static TLS-capacity-scale x drain-threshold setting "
                   "and compare ACE on with the best (default 3 reps of 2 s; --quick: 1 of 1 s)")
    p.add_argument("--sequential", action="store_true",
                   help="run the arms one after the other on every CPU, not together on one")
    p.add_argument("--cpu", type=int, help="the CPU each pair shares (default: the last one "
                   "this process may use)")
    p.add_argument("--hakmem", help=argparse.SUPPRESS)  # from the BUILD file
    p.add_argument("--bin", action="append", default=[], help=argparse.SUPPRESS)
    return p


def runfiles_path(path):
    root = os.environ.get("AB_ACE_RUNFILES")
    if root and not os.path.isabs(path):
        return os.path.join(root, path)
    return path


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------
def mann_whitney_u(x, y):
    """U of x against y and the two-sided p-value: exact (every split of the
    pooled sample, ties by mid-rank) up to 20 values, else the normal
    approximation with tie correction."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return None, None
    pooled = sorted(x + y)
    ranks = {}
    i = 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j] == pooled[i]:
            j += 1
        ranks[pooled[i]] = (i + j + 1) / 2.0  # mid-rank, 1-based
        i = j
    r = [ranks[v] for v in x + y]
    u = sum(r[:n1]) - n1 * (n1 + 1) / 2.0
    mean = n1 * n2 / 2.0
    if n1 + n2 <= 20:
        observed = abs(u - mean)
        extreme = total = 0
        for pick in itertools.combinations(range(n1 + n2), n1):
            uu = sum(r[k] for k in pick) - n1 * (n1 + 1) / 2.0
            total += 1
            if abs(uu - mean) >= observed - 1e-9:
                extreme += 1
        return u, extreme / total
    n = n1 + n2
    ties = sum(c ** 3 - c for c in (list(x + y).count(v) for v in set(x + y)))
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return u, 1.0
    z = (abs(u - mean) - 0.5) / math.sqrt(var)
    return u, min(1.0, math.erfc(max(z, 0) / math.sqrt(2)))


def signed_rank_p(ratios):
    """Exact two-sided Wilcoxon signed-rank p-value of paired ratios against
    1 (their logarithms against 0); None for no pairs."""
    d = [math.log(r) for r in ratios if r and r > 0 and r != 1.0]
    if not d:
        return None if not ratios else 1.0
    order = sorted(range(len(d)), key=lambda i: abs(d[i]))
    rank = [0.0] * len(d)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and abs(d[order[j]]) == abs(d[order[i]]):
            j += 1
        for k in range(i, j):
            rank[order[k]] = (i + j + 1) / 2.0
        i = j
    observed = sum(r for r, x in zip(rank, d) if x > 0)
    mean = sum(rank) / 2.0
    if len(d) > 20:  # normal approximation
        var = sum(r * r for r in rank) / 4.0
        z = (abs(observed - mean) - 0.5) / math.sqrt(var)
        return min(1.0, math.erfc(max(z, 0) / math.sqrt(2)))
    extreme = 0
    for signs in itertools.product((0, 1), repeat=len(d)):
        w = sum(r for r, sgn in zip(rank, signs) if sgn)
        extreme += abs(w - mean) >= abs(observed - mean) - 1e-9
    return extreme / 2.0 ** len(d)


def pair_ratios(runs, a, b):
    """b's ops per CPU-second over a's, one per pair that ran arms a and b
    together (run["pair"])."""
    by_pair = {}
    for r in runs:
        if r.get("ok") and r.get("pair") is not None and r.get("ops_per_cpu_sec"):
            by_pair.setdefault(r["pair"], {})[r["arm"]] = r["ops_per_cpu_sec"]
    return [p[b] / p[a] for _, p in sorted(by_pair.items()) if a in p and b in p]


def median(v):
    return statistics.median(v) if v else None


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------
ACE_LINE = re.compile(r"^\[ACE\] (.*)$", re.M)
FINAL = re.compile(r"^Final (TLS cap|drain threshold|bundle width)\[(\d+)\]: (\d+) "
                   r"\(default (\d+)\)$")
FINAL_GLOBAL = re.compile(r"^Final (page release): (\d+) \(default (\d+)\)$")
CPU_LINE = re.compile(r"^Thread CPU: ([\d.]+) ms in ([\d.]+) s \(([\d.]+)% of a core\)$")


def ace_summary(stderr):
    """What ACE's log says it did."""
    lines = ACE_LINE.findall(stderr)
    final = {}
    cpu = None
    for l in lines:
        m = FINAL.match(l)
        if m:
            final["%s[%s]" % (m.group(1), m.group(2))] = {"value": int(m.group(3)),
                                                           "default": int(m.group(4))}
        m = FINAL_GLOBAL.match(l)
        if m:
            final[m.group(1)] = {"value": int(m.group(2)), "default": int(m.group(3))}
        m = CPU_LINE.match(l)
        if m:
            cpu = {"cpu_ms": float(m.group(1)), "wall_s": float(m.group(2)),
                   "percent_of_core": float(m.group(3))}
    return {
        "adjustments": sum(l.startswith("Adjusting") for l in lines),
        "restores": sum(l.startswith("Restoring") for l in lines),
        "scavenges": sum(l.startswith("Scavenging") or l.startswith("Partial release")
                         for l in lines),
        "guard": next((l for l in lines if l.startswith("Safety guard")), None),
        "final_knobs": final,
        "stopped": any(l.startswith("Stopped after") for l in lines),
        "thread_cpu": cpu,
    }


def arm_settings(arm, ace_env):
    """The HAKMEM_* settings of an arm: "off", "on", or a static grid point
    "tls<scale>_drain<n>" (ACE off)."""
    if arm == "on":
        return ACE_ON + ace_env
    if arm == "off":
        return list(ACE_OFF)
    m = re.fullmatch(r"tls(\d+)_drain(\d+)", arm)
    return ACE_OFF + ["HAKMEM_TLS_CAP_SCALE=" + m.group(1), "HAKMEM_DRAIN_THRESHOLD=" + m.group(2)]


def start_once(name, binary, argv, preload, arm, ace_env, cpu=None):
    """Starts one run of an arm (pinned to CPU cpu, if given); finish_once
    waits for it."""
    # Every HAKMEM_ setting comes from the arm, none from the caller's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_")}
    env["LD_PRELOAD"] = preload
    for s in arm_settings(arm, ace_env):
        k, _, v = s.partition("=")
        env[k] = v
    rec = {"workload": name, "arm": arm, "argv": argv, "ok": False}
    try:
        proc = subprocess.Popen(
            [binary] + argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None)
    except OSError as e:
        rec["error"] = str(e)
        proc = None
    return rec, proc


def finish_once(started, timeout):
    rec, p = started
    if p is None:
        return rec
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        rec["error"] = "timed out after %g s" % timeout
        return rec
    rec["exit"] = p.returncode
    lines = [l for l in stdout.splitlines() if l.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if p.returncode != 0 or not isinstance(result, dict) or \
            not isinstance(result.get("ops_per_sec"), (int, float)):
        rec["error"] = "exit %d, no result line; stderr: %s" % (
            p.returncode, "\n".join(stderr.splitlines()[-8:]))
        return rec
    # The workload's own CPU clock over its measured phase: the whole
    # process, ACE's thread included.
    eff = result.get("ops_per_cpu_sec")
    rec.update(ok=True, ops_per_sec=float(result["ops_per_sec"]),
               cpu_seconds=result.get("cpu_seconds"),
               ops_per_cpu_sec=float(eff) if isinstance(eff, (int, float)) and eff > 0
               else None,
               peak_rss_kb=result.get("peak_rss_kb"),
               integrity_events=result.get("integrity_events"),
               allocator=result.get("allocator"))
    for key in ("rss_after_free_kb", "rss_after_all_free_kb", "live_after_free_kb"):
        if isinstance(result.get(key), (int, float)):
            rec[key] = result[key]
    if rec["arm"] == "on":
        rec["ace"] = ace_summary(stderr)
    return rec


def summarize(name, runs, paired):
    """One workload's off/on comparison.  paired: the arms ran together on
    one CPU, and the ratio is the median of the pairs' ratios of ops per
    CPU-second, tested with the signed-rank test; else the ratio of the
    arms' median ops/s, tested with Mann-Whitney U."""
    arm = {a: [r for r in runs if r["arm"] == a and r["ok"]] for a in ARMS}
    ops = {a: [r["ops_per_sec"] for r in arm[a]] for a in ARMS}
    # Operations per CPU second of the whole process (ACE's thread included):
    # less sensitive than wall time to other load on a shared machine.
    eff = {a: [r["ops_per_cpu_sec"] for r in arm[a] if r.get("ops_per_cpu_sec")] for a in ARMS}
    eff_med = {a: median(eff[a]) for a in ARMS}
    rss = {a: [r["peak_rss_kb"] for r in arm[a] if isinstance(r.get("peak_rss_kb"), (int, float))]
           for a in ARMS}
    med = {a: median(ops[a]) for a in ARMS}
    last_on = arm["on"][-1]["ace"] if arm["on"] else {}
    after = {a: median([r["rss_after_free_kb"] for r in arm[a] if "rss_after_free_kb" in r])
             for a in ARMS}
    cpu = [r["ace"]["thread_cpu"]["percent_of_core"] for r in arm["on"]
           if r["ace"].get("thread_cpu")]
    if paired:
        ratios = pair_ratios(runs, "off", "on")
        ratio = cpu_ratio = median(ratios)
        u, p = None, signed_rank_p(ratios)
        eff_p = p
    else:
        ratios = []
        ratio = med["on"] / med["off"] if med["on"] and med["off"] else None
        cpu_ratio = eff_med["on"] / eff_med["off"] if eff_med["on"] and eff_med["off"] else None
        u, p = mann_whitney_u(ops["on"], ops["off"])
        _, eff_p = mann_whitney_u(eff["on"], eff["off"])
    return {
        "workload": name,
        "pair_ratios": ratios,
        "runs": {a: len(arm[a]) for a in ARMS},
        "failed": sum(not r["ok"] for r in runs),
        "median_ops_per_sec": med,
        "ratio_on_off": ratio,
        "mann_whitney_u": u,
        "p_value": p,
        # "slower": ACE on below ACE off and the difference is significant.
        "on_slower_than_off": bool(ratio is not None and ratio < 1 and p is not None
                                   and p < NOISE_P),
        "median_ops_per_cpu_sec": eff_med,
        "cpu_ratio_on_off": cpu_ratio,
        "cpu_p_value": eff_p,
        "median_peak_rss_kb": {a: median(rss[a]) for a in ARMS},
        "median_rss_after_free_kb": after,
        "rss_after_free_drop": (1 - after["on"] / after["off"]
                                if after["on"] is not None and after["off"] else None),
        "ace_cpu_percent_of_core": {"median": median(cpu), "max": max(cpu) if cpu else None},
        "integrity_events": sum(r.get("integrity_events") or 0 for r in runs if r["ok"]),
        "ace_adjustments": sum(r["ace"]["adjustments"] for r in arm["on"]),
        "ace_restores": sum(r["ace"]["restores"] for r in arm["on"]),
        "ace_scavenges": sum(r["ace"]["scavenges"] for r in arm["on"]),
        "ace_guard_trips": [r["ace"]["guard"] for r in arm["on"] if r["ace"]["guard"]],
        "final_knobs": last_on.get("final_knobs", {}),
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def oracle_markdown(sweep, paired):
    """The sweep's tables: ACE on against the best static setting, then every
    static setting - against the default's ops per CPU-second when paired,
    as median ops/s when sequential."""
    out = ["", "## Oracle: ACE on against the best static setting", "",
           "Static settings: HAKMEM_TLS_CAP_SCALE (%% of the per-class TLS capacities) x "
           "HAKMEM_DRAIN_THRESHOLD; %s is the default (= ACE off).%s" % (
               DEFAULT_STATIC, " Each static setting ran paired with the default; the "
               "confirmation pairs ACE on with the best." if paired else ""), ""]
    if paired:
        cols = ["best / default", "ACE on / default", "on / best", "confirmed on / best (p)"]
    else:
        cols = ["its ops/s", "default ops/s", "ACE on ops/s", "on / best", "default / best",
                "best static by ops per CPU-s", "on / best by CPU", "confirmed on / best (p)",
                "confirmed by CPU (p)"]
    out += ["| workload | best static | %s | goal on/best >= %.2f |" % (" | ".join(cols),
                                                                       GOAL_VS_BEST),
            "|---|---|" + "---:|" * len(cols) + "---|"]
    for w in sweep["workloads"]:
        c = w.get("confirm") or {}
        confirmed = "%s (%s)" % (fmt(c.get("on_vs_best"), ".3f"), fmt(c.get("p_value"), ".3f"))
        if paired:
            cells = [fmt(w["best_vs_default"], ".3f"), fmt(w["ace_on_vs_default"], ".3f"),
                     fmt(w["on_vs_best"], ".3f"), confirmed]
        else:
            cells = [fmt(w["best_ops_per_sec"], ",.0f"), fmt(w["default_ops_per_sec"], ",.0f"),
                     fmt(w["ace_on_ops_per_sec"], ",.0f"), fmt(w["on_vs_best"], ".3f"),
                     fmt(w["default_vs_best"], ".3f"), w["best_static_by_cpu"] or "-",
                     fmt(w["on_vs_best_by_cpu"], ".3f"), confirmed,
                     "%s (%s)" % (fmt(c.get("on_vs_best_by_cpu"), ".3f"),
                                  fmt(c.get("cpu_p_value"), ".3f"))]
        judged = c.get("on_vs_best", w["on_vs_best"])
        out.append("| %s | %s | %s | %s |" % (
            w["workload"], w["best_static"] or "-", " | ".join(cells),
            "-" if judged is None else ("pass" if judged >= GOAL_VS_BEST else "FAIL")))
    key, spec = ("static_vs_default", ".3f") if paired else ("static_ops_per_sec", ",.0f")
    out += ["", "Ops per CPU-second of every static setting against the default's:" if paired
            else "Median ops/s of every static setting:", "",
            "| workload | " + " | ".join(sweep["grid"]) + " |",
            "|---|" + "---:|" * len(sweep["grid"])]
    for w in sweep["workloads"]:
        out.append("| %s | %s |" % (w["workload"], " | ".join(
            fmt(w[key].get(g), spec) for g in sweep["grid"])))
    return out


def markdown(doc):
    paired = doc.get("paired")
    out = ["# ACE off vs on", "",
           "%s, %d reps per arm, %d threads, %g s per run; ACE arm: %s" % (
               doc["date"], doc["reps"], doc["threads"], doc["seconds"],
               " ".join(doc["ace_env"])), ""]
    if paired:
        out += ["The two arms of each rep ran together, every thread pinned to CPU %d; "
                "on/off is the median of the pairs' ratios of ops per CPU-second, p the "
                "Wilcoxon signed-rank test of those ratios." % doc["cpu"], ""]
    if doc.get("note"):
        out += ["**%s**" % doc["note"], ""]
    # Paired runs shared a core, so their ops/s is half the story: their
    # throughput columns are ops per CPU-second.
    unit = "ops per CPU-s" if paired else "ops/s"
    col = "median_ops_per_cpu_sec" if paired else "median_ops_per_sec"
    out += ["| workload | %s off | %s on | on/off | p (%s) " % (
        unit, unit, "signed-rank" if paired else "Mann-Whitney") +
            "| ops per CPU-s on/off (p) | peak RSS off KiB "
            "| peak RSS on KiB | RSS after free off / on KiB | ACE CPU % of a core "
            "| ACE moves / restores / scavenges | final knobs off default |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for s in doc["summary"]:
        knobs = ", ".join("%s=%d (%d)" % (k, v["value"], v["default"])
                          for k, v in sorted(s["final_knobs"].items())) or "none"
        if s["ace_guard_trips"]:
            knobs += "; guard: " + s["ace_guard_trips"][0]
        after = s["median_rss_after_free_kb"]
        after_txt = "-" if after["off"] is None else "%s / %s (%s)" % (
            fmt(after["off"], ",.0f"), fmt(after["on"], ",.0f"),
            fmt(None if s["rss_after_free_drop"] is None else -100 * s["rss_after_free_drop"],
                "+.0f") + "%")
        out.append("| %s | %s | %s | %s%s | %s | %s (%s) | %s | %s | %s | %s | %d / %d / %d | %s |" % (
            s["workload"], fmt(s[col]["off"], ",.0f"),
            fmt(s[col]["on"], ",.0f"), fmt(s["ratio_on_off"], ".3f"),
            " (slower)" if s["on_slower_than_off"] else "",
            fmt(s["p_value"], ".3f"), fmt(s["cpu_ratio_on_off"], ".3f"),
            fmt(s["cpu_p_value"], ".3f"), fmt(s["median_peak_rss_kb"]["off"], ",.0f"),
            fmt(s["median_peak_rss_kb"]["on"], ",.0f"), after_txt,
            fmt(s["ace_cpu_percent_of_core"]["median"], ".3f"), s["ace_adjustments"],
            s["ace_restores"], s["ace_scavenges"], knobs))
    if doc.get("sweep"):
        out += oracle_markdown(doc["sweep"], paired)
    g = doc.get("goals")
    if g:
        out += ["", "## Goals", ""]
        out += ["- %s: %s (%s)" % (k, "pass" if v["pass"] else ("-" if v["pass"] is None
                                                                   else "FAIL"), v["detail"])
                for k, v in g.items()]
    failed = [r for r in doc["runs"] if not r["ok"]]
    if failed:
        out += ["", "Failed runs (left out of the medians):"]
        out += ["- %s (ACE %s): %s" % (r["workload"], r["arm"], r.get("error", "?"))
                for r in failed]
    return "\n".join(out) + "\n"


def sweep_summary(names, runs, grid):
    """Per workload: the median ops/s of each static setting, the best one,
    and ACE on against it."""
    out = {"grid": grid, "workloads": []}
    for n in names:
        ok = [r for r in runs if r["workload"] == n and r["ok"]]
        med = {}
        for g in grid:
            arm = "off" if g == DEFAULT_STATIC else g
            v = median([r["ops_per_sec"] for r in ok if r["arm"] == arm])
            if v is not None:
                med[g] = v
        on = median([r["ops_per_sec"] for r in ok if r["arm"] == "on"])
        eff = {}
        for g in grid:
            arm = "off" if g == DEFAULT_STATIC else g
            v = median([r["ops_per_cpu_sec"] for r in ok
                        if r["arm"] == arm and r.get("ops_per_cpu_sec")])
            if v is not None:
                eff[g] = v
        eff_on = median([r["ops_per_cpu_sec"] for r in ok
                         if r["arm"] == "on" and r.get("ops_per_cpu_sec")])
        eff_best = max(eff, key=eff.get) if eff else None
        best = max(med, key=med.get) if med else None
        bv = med.get(best) if best else None
        out["workloads"].append({
            "workload": n, "static_ops_per_sec": med, "best_static": best,
            "best_ops_per_sec": bv, "default_ops_per_sec": med.get(DEFAULT_STATIC),
            "ace_on_ops_per_sec": on,
            "on_vs_best": on / bv if on and bv else None,
            "default_vs_best": med.get(DEFAULT_STATIC) / bv if bv and DEFAULT_STATIC in med
            else None,
            "static_ops_per_cpu_sec": eff, "best_static_by_cpu": eff_best,
            "ace_on_ops_per_cpu_sec": eff_on,
            "on_vs_best_by_cpu": eff_on / eff[eff_best] if eff_on and eff_best else None,
        })
    return out


def sweep_summary_paired(names, runs, grid):
    """Per workload: each static setting's ops per CPU-second against the
    default's, from the pairs they ran in, the best one, and ACE on against
    it (ACE on / default over best / default)."""
    out = {"grid": grid, "workloads": []}
    for n in names:
        mine = [r for r in runs if r["workload"] == n]
        vs = {DEFAULT_STATIC: 1.0}
        for g in grid:
            if g != DEFAULT_STATIC:
                v = median(pair_ratios(mine, "off", g))
                if v is not None:
                    vs[g] = v
        on = median(pair_ratios(mine, "off", "on"))
        best = max(vs, key=vs.get)
        out["workloads"].append({
            "workload": n, "static_vs_default": vs, "best_static": best,
            "best_vs_default": vs[best], "ace_on_vs_default": on,
            "on_vs_best": on / vs[best] if on else None, "default_vs_best": 1.0 / vs[best]})
    return out


def confirm_summary(sweep, runs, paired):
    """Adds the confirmation pass to each workload of the sweep."""
    for w in sweep["workloads"]:
        b = w["best_static"]
        if not b:
            continue
        arm = "off" if b == DEFAULT_STATIC else b
        mine = [r for r in runs if r["workload"] == w["workload"] and r["ok"]]
        if paired:
            ratios = pair_ratios(mine, arm, "on")
            p = signed_rank_p(ratios)
            w["confirm"] = {"best_static": b, "runs": {"pairs": len(ratios)},
                            "pair_ratios": ratios, "on_vs_best": median(ratios),
                            "p_value": p, "on_vs_best_by_cpu": median(ratios),
                            "cpu_p_value": p}
            continue
        ops = {a: [r["ops_per_sec"] for r in mine if r["arm"] == a] for a in (arm, "on")}
        eff = {a: [r["ops_per_cpu_sec"] for r in mine if r["arm"] == a and r.get("ops_per_cpu_sec")]
               for a in (arm, "on")}
        mb, mo = median(ops[arm]), median(ops["on"])
        eb, eo = median(eff[arm]), median(eff["on"])
        w["confirm"] = {
            "best_static": b, "runs": {a: len(v) for a, v in ops.items()},
            "best_ops_per_sec": mb, "ace_on_ops_per_sec": mo,
            "on_vs_best": mo / mb if mo and mb else None,
            "p_value": mann_whitney_u(ops["on"], ops[arm])[1],
            "on_vs_best_by_cpu": eo / eb if eo and eb else None,
            "cpu_p_value": mann_whitney_u(eff["on"], eff[arm])[1],
        }


def goals(doc):
    """The issue's goals, judged on this run (preliminary on a loaded machine)."""
    g = {}
    slower = [s["workload"] for s in doc["summary"] if s["on_slower_than_off"]]
    # Five pairs cannot reach p < 0.05 (the least two-sided signed-rank p
    # of n pairs is 2 / 2^n), so a workload where every pair is slower
    # counts as slower too.
    every = ["%s (all %d pairs)" % (s["workload"], len(s["pair_ratios"]))
             for s in doc["summary"] if not s["on_slower_than_off"] and s.get("pair_ratios")
             and all(r < 1 for r in s["pair_ratios"]) and 2.0 / 2 ** len(s["pair_ratios"])
             >= NOISE_P]
    g["ace_on_not_slower_than_off"] = {
        "pass": not slower and not every,
        "detail": "slower (p < %g, or in every pair when there are too few pairs to reach "
                  "it): %s" % (NOISE_P, ", ".join(slower + every) or "none")}
    frag = next((s for s in doc["summary"] if s["workload"] == "fragmentation"), None)
    drop = frag and frag["rss_after_free_drop"]
    g["fragmentation_rss_after_free_drop"] = {
        "pass": None if drop is None else drop >= GOAL_RSS_DROP,
        "detail": "-" if drop is None else "%.1f%% below ACE off (goal %d%%)" % (
            100 * drop, 100 * GOAL_RSS_DROP)}
    cpus = [s["ace_cpu_percent_of_core"]["max"] for s in doc["summary"]
            if s["ace_cpu_percent_of_core"]["max"] is not None]
    g["ace_thread_cpu"] = {
        "pass": None if not cpus else max(cpus) <= GOAL_CPU_PERCENT,
        "detail": "-" if not cpus else "max %.3f%% of a core over all ACE-on runs (goal <= %g%%)"
        % (max(cpus), GOAL_CPU_PERCENT)}
    if doc.get("sweep"):
        vs = [(w["workload"], (w.get("confirm") or w)["on_vs_best"])
              for w in doc["sweep"]["workloads"]]
        bad = ["%s %.3f" % (n, v) for n, v in vs if v is not None and v < GOAL_VS_BEST]
        g["ace_on_vs_best_static"] = {
            "pass": not bad and any(v is not None for _, v in vs),
            "detail": "confirmed ACE on / best static below %.2f: %s" % (
                GOAL_VS_BEST, ", ".join(bad) or "none")}
    return g


def main(argv):
    args = build_parser().parse_args(argv)
    mode = "quick" if args.quick else "normal"
    defaults = (SWEEP_DEFAULTS if args.sweep else DEFAULTS)[mode]
    reps = args.reps or defaults["reps"]
    seconds = args.seconds or defaults["seconds"]
    grid = ["tls%d_drain%d" % (t, d) for t in SWEEP_TLS_SCALES for d in SWEEP_DRAINS]
    # off is the default static point: in a sweep it runs once per rep as
    # "off" and stands for tls100_drain64 too.
    statics = [g for g in grid if g != DEFAULT_STATIC] if args.sweep else []
    names = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown or not names:
        build_parser().error("unknown workload(s): %s (known: %s)" % (
            ",".join(unknown) or "none given", ",".join(WORKLOADS)))
    bins = dict(b.split("=", 1) for b in args.bin if "=" in b)
    missing = [w for w in names if w not in bins or not os.path.exists(runfiles_path(bins[w]))]
    if missing:
        build_parser().error("no binary for %s (run it with bazel run //benchmarks:ab_ace)"
                             % ",".join(missing))
    if not args.hakmem or not os.path.exists(runfiles_path(args.hakmem)):
        build_parser().error("no hakmem shared object (run it with bazel run //benchmarks:ab_ace)")
    preload = os.path.abspath(runfiles_path(args.hakmem))
    paired = not args.sequential
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if args.cpu is None else args.cpu
    if cpu not in allowed:
        build_parser().error("--cpu %d is not one this process may run on (%s)"
                             % (cpu, ",".join(map(str, allowed))))

    fill = dict(SIZES[mode], threads=str(args.threads), seconds="%g" % seconds,
                iseconds=str(max(1, int(round(seconds)))),
                phases=str(max(4, int(round(4 * seconds)))))
    runs = []
    timeout = seconds * 20 + 60
    def run(name, arms, rep, phase, total):
        """Runs the arms - together on one CPU when paired, else in turn."""
        wargv = [a.format(**fill) for a in WORKLOADS[name]]
        binary = os.path.abspath(runfiles_path(bins[name]))
        pair = len(runs) if paired else None
        if paired:
            started = [start_once(name, binary, wargv, preload, arm, args.ace_env, cpu)
                       for arm in arms]
            done = [finish_once(st, timeout) for st in started]
        else:
            done = [finish_once(start_once(name, binary, wargv, preload, arm, args.ace_env),
                                timeout) for arm in arms]
        for r in done:
            r.update(rep=rep, phase=phase, pair=pair)
            runs.append(r)
            print("%s %d/%d %-13s ACE %-3s %s" % (
                phase, rep + 1, total, name, r["arm"],
                ("%.0f ops/CPU-s" % r["ops_per_cpu_sec"] if paired and r.get("ops_per_cpu_sec")
                 else "%.0f ops/s" % r["ops_per_sec"]) if r["ok"] else "FAILED: " + r["error"]),
                file=sys.stderr, flush=True)

    for rep in range(reps):
        order = ARMS if rep % 2 == 0 else ARMS[::-1]
        if paired:
            # Each static point shares a CPU with the default (off), which
            # of the two starts first alternating.
            for name in names:
                run(name, order, rep, "rep", reps)
                for g in statics:
                    run(name, ("off", g) if rep % 2 == 0 else (g, "off"), rep, "rep", reps)
            continue
        if statics:
            # Rotate the static points each rep, ACE's arms among them, so no
            # setting always runs first or last.
            k = rep % (len(statics) + 1)
            order = list(order) + statics
            order = order[k:] + order[:k]
        for name in names:
            for arm in order:
                run(name, (arm,), rep, "rep", reps)

    screen = [r for r in runs if r["phase"] == "rep"]
    sweep = None
    if args.sweep:
        sweep = (sweep_summary_paired if paired else sweep_summary)(names, screen, grid)
    if sweep:
        # The best of twelve noisy medians is biased upwards (the winner's
        # curse), so ACE on meets each workload's best static setting again
        # in fresh interleaved runs, and that ratio is the one judged.
        best = {w["workload"]: w["best_static"] for w in sweep["workloads"]}
        for rep in range(reps):
            for name in names:
                if not best[name]:
                    continue
                b = "off" if best[name] == DEFAULT_STATIC else best[name]
                arms = (b, "on") if rep % 2 == 0 else ("on", b)
                if paired:
                    run(name, arms, rep, "confirm", reps)
                else:
                    for arm in arms:
                        run(name, (arm,), rep, "confirm", reps)
        confirm_summary(sweep, [r for r in runs if r["phase"] == "confirm"], paired)

    doc = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(),
                    "kernel": platform.release()},
        "reps": reps, "threads": args.threads, "seconds": seconds, "mode": mode,
        "ace_env": ACE_ON + args.ace_env, "hakmem": preload,
        "paired": paired, "cpu": cpu if paired else None,
        "summary": [summarize(n, [r for r in screen if r["workload"] == n], paired)
                    for n in names],
        "runs": runs,
    }
    if os.cpu_count() and os.cpu_count() <= 2:
        doc["note"] = ("Taken on %d CPUs; on a shared or loaded machine these timings are "
                       "preliminary." % os.cpu_count())
    if sweep:
        doc["sweep"] = sweep
    doc["goals"] = goals(doc)
    out = args.out
    if not out:
        base = os.environ.get("BUILD_WORKSPACE_DIRECTORY", os.getcwd())
        out = os.path.join(base, "ab_ace_results",
                           datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    md = markdown(doc)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    print(md)
    print("wrote %s/results.json and results.md" % out)
    return 1 if any(not r["ok"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
