#!/usr/bin/env python3
"""hakmem's regression gate (SPEC.md §4).

    bazel run //regression:gate [-- --full] [--gate all|instr|wall]
                                [--wall-report-only] [--record] [--json FILE]

Two gates against the checked-in baselines in regression/baselines/:

1. instructions (deterministic): callgrind instruction counts per operation,
   counted inside the allocator only (--toggle-collect on malloc, free,
   calloc, realloc) and differenced between two run lengths so start-up and
   first-use costs cancel, of single-threaded programs on fixed inputs
   (tier_loop pair/tiny/mid/large, regression/det_driver patterns), under
   `setarch -R` (no address randomisation).  Each is measured twice; the two
   must agree within 0.1% or the gate cannot tell (exit 2).  hakmem fails at
   +3% over its baseline, warns at +1%; glibc is measured as the reference
   (a glibc change means the toolchain or libc changed: a note).
2. wall clock: the //stress workloads at 2 threads, hakmem-release and glibc
   (>= 9 reps).  In each rep the two run at the same time, every thread of
   both pinned to one CPU, and the rep's ratio is hakmem's ops per
   CPU-second over glibc's.  Every CPU (--cpus) runs such a pair at once,
   so each pair's neighbours are the same when recording and when gating.
   Interleaved by the scheduler every few milliseconds, the two share
   whatever the machine does meanwhile: on these shared 2-core machines a
   process's own throughput varies 5-25% from run to run, with the memory
   system's load, but the ratio of two sharing a core varies 1-5%
   (regression/README.md).  Fails only when the
   Mann-Whitney p (ratios now against the baseline's) < 0.01 AND the median
   ratio fell by more than max(5%, 3 x the baseline's coefficient of
   variation).  Against a baseline from another kind of machine (CPU model
   or core count differ) or one that ran another number of pairs at once,
   or with --wall-report-only, it only warns.
   Always: integrity_events == 0 in every run; hakmem's median peak RSS
   <= baseline + max(10%, 4 MiB) (not enforced against another kind of
   machine or with --wall-report-only).

Exit status: 0 pass (warnings allowed), 1 regression, 2 cannot tell (too
noisy, runs failed, missing or corrupt baseline, usage error).
--record re-measures and rewrites the baselines of the gates run, with the
machine (CPU, cores, kernel, compiler, libc, commit); each file is written to
a temporary file and renamed over the old one, only after every run worked.

Standard library only.  Reuses tools/compare.py (running a workload,
parsing its JSON result line, machine and git info) and
benchmarks/ab_ace.py (Mann-Whitney U), imported as modules.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.environ.get("GATE_RUNFILES") or os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))
os.environ.setdefault("COMPARE_RUNFILES", ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import compare  # noqa: E402  (tools/compare.py)
import ab_ace  # noqa: E402  (benchmarks/ab_ace.py)

FORMAT = 1
INSTR_FAIL, INSTR_WARN = 3.0, 1.0          # percent
AA_LIMIT = 0.1                             # percent, two runs of the same build
WALL_P, WALL_MIN_DROP, WALL_CV_FACTOR = 0.01, 5.0, 3.0
WALL_MAX_LIMIT = 25.0                      # percent: a wider limit means too noisy to tell
# Peak RSS may grow by 10%, but never less than 4 MiB: the small time-based
# workloads (larson, sh8bench: 7-13 MiB) move by 1-2 MiB between runs of the
# same build (measured: larson 10.8 -> 12.1 MiB).
# And never less than 3 x the standard deviation of the baseline's own reps:
# mid_mt's peak moves 16-22 MiB between runs of one build, with how far the
# remote-free backlog gets before its owner drains it.
RSS_FLOOR_KB = 4096
RSS_SLACK = 10.0                           # percent
RSS_SD_FACTOR = 3.0
MIN_REPS = 9
# The wall gate's default CPUs: all this process may use, but at most this
# many pairs at once - large_ws's two processes hold ~600 MB a pair.
MAX_DEFAULT_CPUS = 8
# Settings of every instruction-gate run.  The large-block page arena
# returns dirty pages past its budget at most once per 100 ms of wall time,
# so how often tier_loop_large purges - and its instruction count - would
# follow how fast the machine ran callgrind (two runs differed by 0.19%
# under load).  A budget no run reaches keeps the count to the code.
INSTR_ENV = ["HAKMEM_LARGE_CACHE_MB=1048576"]
TOGGLES = ["malloc", "free", "calloc", "realloc", "posix_memalign", "aligned_alloc",
           "memalign"]

# name -> (program, argv before the op count, argv after, ops of the short run);
# the long run does twice as many.  Program "tier_loop" or "driver".
INSTR_METRICS = {
    "tier_loop_pair": ("tier_loop", ["pair", "1"], [], 100000),
    "tier_loop_tiny": ("tier_loop", ["tiny", "1"], [], 50000),
    "tier_loop_mid": ("tier_loop", ["mid", "1"], [], 20000),
    "tier_loop_large": ("tier_loop", ["large", "1"], [], 2000),
    "det_larson": ("driver", ["larson"], [], 20000),
    "det_sh8bench": ("driver", ["sh8bench"], [], 20000),
    "det_mid": ("driver", ["mid"], [], 20000),
    "det_realloc": ("driver", ["realloc"], [], 5000),
    "det_classes": ("driver", ["classes"], [], 20000),
    "det_calloc": ("driver", ["calloc"], [], 5000),
}
WALL_WORKLOADS = ["larson", "sh8bench", "fragmentation", "large_ws", "realloc", "mid_mt"]
WALL_THREADS = 2
# Both profiles run the workloads' normal length (about 2 s, of which each
# allocator gets half the CPU): at half that, larson's ratio varied twice as
# much (CV 5.5% against 1.9%).
PROFILES = {"quick": {"reps": 9, "mode": "normal"}, "full": {"reps": 21, "mode": "normal"}}


class BaselineError(Exception):
    pass


class UsageError(Exception):
    pass


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(
        prog="gate",
        usage="bazel run //regression:gate -- [--full] [--gate all|instr|wall] "
              "[--wall-report-only] [--record] [--json FILE]",
        description="hakmem regression gate: callgrind instruction counts (deterministic) and the "
        "hakmem/glibc throughput ratio (sharing one core) against regression/baselines/*.json.",
        epilog="Exit status: 0 pass, 1 regression, 2 cannot tell (noisy, failed runs, "
               "missing/corrupt baseline, usage error).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true",
                   help="full profile: 21 wall reps (default quick: 9)")
    p.add_argument("--quick", action="store_true", help="the quick profile (default)")
    p.add_argument("--gate", choices=["all", "instr", "wall"], default="all")
    p.add_argument("--wall-report-only", action="store_true",
                   help="the wall gate reports but never fails (CI)")
    p.add_argument("--record", action="store_true",
                   help="re-measure and rewrite the baselines of the gates run")
    p.add_argument("--reps", type=int, help="wall reps (at least %d)" % MIN_REPS)
    p.add_argument("--cpus", help="CPUs for the wall gate, comma-separated: each runs one "
                   "glibc+hakmem pair at a time (default every CPU this process may use, "
                   "at most %d; the baseline's count must match)" % MAX_DEFAULT_CPUS)
    p.add_argument("--workloads", help="wall workloads, comma-separated (default all)")
    p.add_argument("--metrics", help="instruction metrics, comma-separated (default all)")
    p.add_argument("--repeat", type=int, default=2,
                   help="instruction measurements per metric (default 2: A/A check)")
    p.add_argument("--baselines", help="baseline directory (default regression/baselines "
                   "of the workspace under bazel run, else of the runfiles)")
    p.add_argument("--json", dest="json_out", help="write the results here "
                   "(default regression-results/gate-<time>.json in the workspace)")
    p.add_argument("--label", default="hakmem-release",
                   help="name of the hakmem build under test, for the report")
    w = p.add_argument_group("wiring (set by regression/BUILD.bazel)")
    w.add_argument("--hakmem", required=True, help="libhakmem.so under test")
    w.add_argument("--tier-loop", required=True)
    w.add_argument("--driver", required=True)
    w.add_argument("--bin", type=compare._bin_spec, action="append", default=[])
    return p


def parse_args(argv):
    p = build_parser()
    try:
        a = p.parse_args(argv)
    except SystemExit as e:
        raise SystemExit(0 if e.code == 0 else 2)
    if a.full and a.quick:
        p.error("--full and --quick exclude each other")
    a.profile = "full" if a.full else "quick"
    a.reps = a.reps or PROFILES[a.profile]["reps"]
    if a.reps < MIN_REPS:
        p.error("--reps must be at least %d" % MIN_REPS)
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    allowed = sorted(os.sched_getaffinity(0))
    try:
        a.cpus = (sorted({int(c) for c in a.cpus.split(",")}) if a.cpus
                  else allowed[-MAX_DEFAULT_CPUS:])
    except ValueError:
        p.error("--cpus takes CPU numbers separated by commas, not %r" % a.cpus)
    if not a.cpus or any(c not in allowed for c in a.cpus):
        p.error("--cpus %s: this process may run on %s only"
                % (",".join(map(str, a.cpus)), ",".join(map(str, allowed))))
    # Reps come in rounds, one pair per CPU, so every rep had the same neighbours.
    a.reps = -(-a.reps // len(a.cpus)) * len(a.cpus)
    a.metrics = _pick(p, a.metrics, list(INSTR_METRICS), "metric")
    a.workloads = _pick(p, a.workloads, WALL_WORKLOADS, "workload")
    if a.record and (a.metrics != list(INSTR_METRICS) or a.workloads != WALL_WORKLOADS):
        p.error("--record measures every metric and workload (no --metrics/--workloads)")
    a.hakmem = compare.runfiles_path(a.hakmem)
    a.tier_loop = compare.runfiles_path(a.tier_loop)
    a.driver = compare.runfiles_path(a.driver)
    for what, path in (("--hakmem", a.hakmem), ("--tier-loop", a.tier_loop),
                       ("--driver", a.driver)):
        if not os.path.isfile(path):
            p.error("%s %s does not exist" % (what, path))
    return a


def _pick(p, text, known, what):
    if not text:
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in known:
            p.error("unknown %s '%s' (known: %s)" % (what, n, ", ".join(known)))
    return names


# ---------------------------------------------------------------------------
# Machine and baselines
# ---------------------------------------------------------------------------
def _first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        out = (p.stdout or p.stderr).strip().splitlines()
        return out[0] if out else None
    except OSError:
        return None


def machine():
    m = compare.machine_info()
    m.pop("host", None)
    m["compiler"] = _first_line(["gcc", "--version"])
    m["libc"] = platform.libc_ver()[1] or _first_line(["ldd", "--version"])
    m["valgrind"] = _first_line(["valgrind", "--version"])
    return m


def same_kind(a, b):
    """'' if machines a and b are of one kind for timing, else why not."""
    why = []
    for k in ("cpu", "cpus", "arch"):
        if a.get(k) != b.get(k):
            why.append("%s %r, baseline %r" % (k, a.get(k), b.get(k)))
    return "; ".join(why)


def same_pairs(a, base):
    """'' if the wall baseline ran as many pairs at once as this run will,
    else why not: what the other cores run moves the ratio measured on one
    (realloc's by about -6%, fragmentation's +6%, with the other core busy)."""
    counts = {len(e.get("cpus") or [e.get("cpu")]) for e in base["workloads"].values()}
    if counts != {len(a.cpus)}:
        return "baseline ran %s pair(s) at once, this run %d (--cpus)" % (
            "/".join(map(str, sorted(counts))), len(a.cpus))
    return ""


def baseline_dir(a):
    if a.baselines:
        return compare.resolve_out(a.baselines)
    ws = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    return os.path.join(ws or ROOT, "regression", "baselines")


def baseline_path(a, gate):
    name = "instructions.json" if gate == "instr" else "wall-%s.json" % a.profile
    return os.path.join(baseline_dir(a), name)


def load_baseline(path, gate):
    if not os.path.exists(path):
        raise BaselineError("baseline %s is missing: record it with "
                            "`bazel run //regression:gate -- --record%s`"
                            % (path, "" if gate == "instr" else " --gate wall"))
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise BaselineError("baseline %s is unreadable or not JSON (%s): fix it or re-record "
                            "it with --record" % (path, e))
    problems = []
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        problems.append("format is not %d" % FORMAT)
    elif doc.get("gate") != gate:
        problems.append("gate is %r, expected %r" % (doc.get("gate"), gate))
    elif not isinstance(doc.get("machine"), dict):
        problems.append("no machine")
    else:
        key = "metrics" if gate == "instr" else "workloads"
        entries = doc.get(key)
        if not isinstance(entries, dict) or not entries:
            problems.append("no %s" % key)
        else:
            for name, e in entries.items():
                if gate == "wall" and isinstance(e, dict) and e.get("metric") != WALL_METRIC:
                    problems.append("%s.metric is %r, not %r: recorded by an older gate "
                                    "that ran the two allocators one after the other"
                                    % (name, e.get("metric"), WALL_METRIC))
                need = (["hakmem", "glibc"] if gate == "instr"
                        else ["ratios", "median_ratio", "cv", "peak_rss_kb"])
                for k in need:
                    v = e.get(k) if isinstance(e, dict) else None
                    ok = (isinstance(v, list) and len(v) >= 2 and all(
                        isinstance(x, (int, float)) and x > 0 for x in v)) if k == "ratios" \
                        else (isinstance(v, (int, float)) and not isinstance(v, bool)
                              and v >= 0)
                    if not ok:
                        problems.append("%s.%s is %r" % (name, k, v))
                reps = e.get("peak_rss_kb_reps") if isinstance(e, dict) else None
                if reps is not None and not (isinstance(reps, list) and all(
                        isinstance(x, (int, float)) and x >= 0 for x in reps)):
                    problems.append("%s.peak_rss_kb_reps is %r" % (name, reps))
    if problems:
        raise BaselineError("baseline %s is corrupt (%s): fix it or re-record it with --record"
                            % (path, "; ".join(problems[:5])))
    return doc


def write_atomic(path, doc):
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------
# Instruction gate
# ---------------------------------------------------------------------------
def callgrind(program, argv, preload):
    """(instructions collected inside the allocator, the run's JSON result)."""
    tmp = tempfile.mkdtemp(prefix="hakmem-gate-")
    try:
        cmd = (["setarch", platform.machine(), "-R"] if shutil.which("setarch") else []) + [
            "valgrind", "--tool=callgrind", "--trace-children=yes",
            "--callgrind-out-file=" + os.path.join(tmp, "cg.%p")] + [
            "--toggle-collect=" + t for t in TOGGLES] + [
            "env", "-u", "LD_PRELOAD"] + (["LD_PRELOAD=" + preload] if preload else []) + \
            INSTR_ENV + [
            program] + argv
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=900)
        if p.returncode != 0:
            raise RuntimeError("exit %d: %s\n%s" % (p.returncode, " ".join(cmd),
                                                    compare.tail(p.stderr, 8)))
        counts = [int(l.split("Collected :")[1]) for l in p.stderr.splitlines()
                  if "Collected :" in l]
        if not counts:
            raise RuntimeError("no callgrind total in the output of " + " ".join(cmd))
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        try:
            result = json.loads(lines[-1])
            float(result["ops"])
        except (IndexError, ValueError, KeyError, TypeError):
            raise RuntimeError("no JSON result with ops from " + " ".join(cmd))
        return counts[-1], result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure_metric(a, name, preload):
    prog, pre, post, n = INSTR_METRICS[name]
    binary = a.tier_loop if prog == "tier_loop" else a.driver
    per_op, events = [], []
    for _ in range(a.repeat):
        c1, r1 = callgrind(binary, pre + [str(n)] + post, preload)
        c2, r2 = callgrind(binary, pre + [str(2 * n)] + post, preload)
        ops = float(r2["ops"]) - float(r1["ops"])
        per_op.append((c2 - c1) / ops)
        events += [r.get("integrity_events") for r in (r1, r2)]
    return per_op, events


def instr_verdict(delta_percent):
    """hakmem's instruction-count verdict for a change of delta_percent."""
    if delta_percent >= INSTR_FAIL:
        return "FAIL"
    return "warn" if delta_percent >= INSTR_WARN else "pass"


def instr_gate(a, base, results, notes):
    rows = []
    kind = "instructions/op"
    for name in a.metrics:
        for alloc, preload in (("hakmem", a.hakmem), ("glibc", "")):
            t0 = time.monotonic()
            try:
                vals, events = measure_metric(a, name, preload)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
                rows.append(dict(gate="instr", name=name, allocator=alloc, verdict="ERROR",
                                 why=str(e)))
                print("  %-16s %-7s ERROR %s" % (name, alloc, e), flush=True)
                continue
            now = statistics.mean(vals)
            aa = (max(vals) - min(vals)) / now * 100 if now else 0.0
            row = dict(gate="instr", name=name, allocator=alloc, unit=kind, now=now,
                       runs=vals, aa_percent=aa, seconds=round(time.monotonic() - t0, 1))
            bad_events = [e for e in events if isinstance(e, int) and e > 0]
            b = base["metrics"].get(name, {}).get(alloc) if base else None
            row["baseline"] = b
            if b:
                row["delta_percent"] = (now - b) / b * 100
            if len(vals) > 1 and aa > AA_LIMIT:
                row.update(verdict="NOISY", why="two runs differ by %.3f%% (> %.1f%%)"
                           % (aa, AA_LIMIT))
            elif bad_events:
                row.update(verdict="FAIL", why="%d integrity events" % sum(bad_events))
            elif alloc == "glibc":
                row["verdict"] = "ref"
                if b and abs(row["delta_percent"]) > INSTR_WARN:
                    notes.append("glibc %s moved %+.1f%% from its baseline: libc or compiler "
                                 "changed since the baseline" % (name, row["delta_percent"]))
            elif b is None:
                row.update(verdict="new", why="no baseline for this metric")
            else:
                row["verdict"] = instr_verdict(row["delta_percent"])
            rows.append(row)
            print("  %-16s %-7s %10.1f instr/op%s  (%s, %.0f s)"
                  % (name, alloc, now, "" if len(vals) < 2 else "  A/A %.4f%%" % aa,
                     row["verdict"], row["seconds"]), flush=True)
        excuse_environment(rows[-2:])
    results += rows


def excuse_environment(pair):
    """hakmem's count includes what it calls in libc (memcpy in realloc,
    memset in calloc), whose variant glibc picks by CPU at load time.  When
    glibc's own count for the same program moved too, the libc or the CPU
    changed since the baseline, not hakmem: a FAIL becomes a warning that
    asks for a re-recorded baseline."""
    rows = {r["allocator"]: r for r in pair if r.get("gate") == "instr"}
    h, g = rows.get("hakmem"), rows.get("glibc")
    if not h or not g or h.get("verdict") != "FAIL" or "delta_percent" not in g:
        return
    if abs(g["delta_percent"]) > INSTR_WARN and "integrity" not in h.get("why", ""):
        h.update(verdict="warn", why="glibc's count moved %+.1f%% too: libc or CPU changed "
                 "since the baseline; re-record it (--record)" % g["delta_percent"])


# ---------------------------------------------------------------------------
# Wall gate
# ---------------------------------------------------------------------------
def cv(v):
    m = statistics.mean(v)
    return statistics.stdev(v) / m if len(v) > 1 and m else 0.0


# What a wall baseline's ratios are of; older baselines (sequential runs,
# per wall second or per CPU-second) do not compare and must be re-recorded.
WALL_METRIC = "shared-core"
WALL_UNIT = "ops/CPU-s, sharing a core"


def rss_allowance(b):
    """KiB hakmem's median peak RSS may exceed baseline entry b's."""
    reps = b.get("peak_rss_kb_reps") or []
    spread = statistics.stdev(reps) if len(reps) >= 2 else 0.0
    return max(b["peak_rss_kb"] * RSS_SLACK / 100, RSS_FLOOR_KB, RSS_SD_FACTOR * spread)


def judge_wall(row, ratios, rss, events, b, foreign, report_only):
    """Fills row (now, cv, baseline, delta, p, verdict, why) from this run's ratios
    hakmem/glibc (of the baseline's metric), hakmem's median peak RSS and
    integrity events, and baseline entry b (None: no baseline)."""
    row["metric"] = WALL_METRIC
    row["now"] = statistics.median(ratios)
    row["cv"] = cv(ratios)
    why, verdict = [], "pass"
    if b:
        row["baseline"] = b["median_ratio"]
        row["delta_percent"] = (row["now"] - b["median_ratio"]) / b["median_ratio"] * 100
        _, p = ab_ace.mann_whitney_u(ratios, list(b["ratios"]))
        row["p_value"] = p
        limit = max(WALL_MIN_DROP, WALL_CV_FACTOR * b["cv"] * 100)
        row["limit_percent"] = limit
        if p is not None and p < WALL_P and row["delta_percent"] < -limit:
            verdict = "FAIL"
            why.append("ratio fell %.1f%% (limit %.1f%%), p=%.2g"
                       % (-row["delta_percent"], limit, p))
        elif row["delta_percent"] < -limit:
            verdict = "warn"
            why.append("ratio fell %.1f%% but p=%.2g is not < %.2g"
                       % (-row["delta_percent"], p, WALL_P))
        noisy = limit > WALL_MAX_LIMIT or row["cv"] * 100 > WALL_MAX_LIMIT
        rss_limit = rss_allowance(b)
        if rss and b["peak_rss_kb"] and rss > b["peak_rss_kb"] + rss_limit:
            why.append("peak RSS %d KiB > baseline %d KiB + %d KiB (max(%d%%, %d KiB, "
                       "%g x its reps' SD))" % (rss, b["peak_rss_kb"], rss_limit, RSS_SLACK,
                                                RSS_FLOOR_KB, RSS_SD_FACTOR))
            # A workload too noisy to judge has a peak too noisy to judge as
            # well: mid_mt's grows with how long a preempted thread leaves
            # its remote frees undrained (A/A under load: 21.4 MiB against a
            # quiet 17.0), so there it is "cannot tell", not a regression.
            if foreign:
                verdict = "warn" if verdict == "pass" else verdict
            elif not noisy:
                verdict = "FAIL"
        if verdict != "FAIL" and noisy:
            verdict = "NOISY"
            why.append("too noisy to tell: %s > %.0f%% (run on a quiet machine%s)" % (
                "limit %.0f%% (baseline CV %.0f%%)" % (limit, b["cv"] * 100)
                if limit > WALL_MAX_LIMIT else "this run's CV %.0f%%" % (row["cv"] * 100),
                WALL_MAX_LIMIT, "; re-record the baseline" if limit > WALL_MAX_LIMIT
                else ""))
        if verdict == "FAIL" and (foreign or report_only):
            verdict = "warn"
            why.append("not enforced: " + (("baseline measured otherwise (%s)"
                                             % foreign) if foreign else
                                            "--wall-report-only"))
    else:
        verdict = "new"
        why.append("no baseline")
    if events:
        verdict = "FAIL"
        why.append("%d integrity events" % events)
    row["verdict"] = verdict
    if why:
        row["why"] = "; ".join(why)
    return row


def wall_gate(a, base, results, notes, foreign):
    bins = dict(a.bin)
    missing = [w for w in a.workloads if w not in bins]
    if missing:
        raise UsageError("no --bin for workload(s) %s" % ", ".join(missing))
    rargs = argparse.Namespace(mode=PROFILES[a.profile]["mode"], threads=WALL_THREADS,
                               timeout=30 + 20 * compare.SECONDS[PROFILES[a.profile]["mode"]])
    allocs = [("glibc", ""), ("hakmem-release", a.hakmem)]
    # Per workload, per rep: the pair's ratio and hakmem's result (None
    # where a run gave none).
    ratios = {w: [] for w in a.workloads}
    hakmem = {w: [] for w in a.workloads}
    failures = []
    for first in range(1, a.reps + 1, len(a.cpus)):
        line = []
        for w in a.workloads:
            shown = []
            # One glibc+hakmem pair on each CPU (compare.run_pairs).
            for i, pair in enumerate(compare.run_pairs(first, w, compare.runfiles_path(bins[w]),
                                                       [allocs] * len(a.cpus), rargs, a.cpus)):
                got = {}
                for r in pair:
                    got[r["allocator"]] = r.get("result") if r["status"] == "ok" else None
                    if r["status"] != "ok":
                        failures.append("%s under %s, rep %d: %s"
                                        % (w, r["allocator"], first + i, r["reason"]))
                ratio = shared_core_ratio(got["glibc"], got["hakmem-release"])
                ratios[w].append(ratio)
                hakmem[w].append(got["hakmem-release"])
                shown.append("%.3f" % ratio if ratio else "?")
            line.append("%s %s" % (w, "/".join(shown)))
        print("  reps %2d-%d/%d  %s" % (first, first + len(a.cpus) - 1, a.reps,
                                        "  ".join(line)), flush=True)
    rows = []
    for w in a.workloads:
        good = [x for x in ratios[w] if x]
        hs = [h for h in hakmem[w] if h]
        events = sum(h.get("integrity_events") or 0 for h in hs)
        rss_reps = [h["peak_rss_kb"] for h in hs]
        rss = statistics.median(rss_reps) if hs else None
        b = base["workloads"].get(w) if base else None
        row = dict(gate="wall", name=w, allocator="hakmem/glibc", unit="throughput ratio",
                   ratios=good, peak_rss_kb=rss, peak_rss_kb_reps=rss_reps,
                   integrity_events=events)
        if len(good) < MIN_REPS:
            row.update(verdict="NOISY", why="only %d of %d reps gave both results"
                       % (len(good), a.reps))
            rows.append(row)
            continue
        judge_wall(row, good, rss, events, b, foreign, a.wall_report_only)
        rows.append(row)
    for f in failures:
        notes.append("failed run: " + f)
    results += rows
    return failures


# hakmem's ops per CPU-second over glibc's, from two results of a pair
# (compare.py's, which --shared-core uses too).
shared_core_ratio = compare.shared_core_ratio


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def fmt_row(r):
    def num(v, spec):
        return "-" if v is None else spec % v
    if r["gate"] == "instr":
        name = "%s [%s]" % (r["name"], r["allocator"])
        spec = "%.1f"
    else:
        name = "%s [hakmem/glibc %s]" % (r["name"], WALL_UNIT)
        spec = "%.3f"
    return [r["gate"], name, num(r.get("baseline"), spec), num(r.get("now"), spec),
            num(r.get("delta_percent"), "%+.2f%%"), num(r.get("p_value"), "%.3g"),
            r.get("verdict", "?") + (" (%s)" % r["why"] if r.get("why") else "")]


def table(rows):
    head = ["gate", "workload", "baseline", "now", "delta", "p-value", "verdict"]
    cells = [head] + [fmt_row(r) for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(head) - 1)]
    return "\n".join("  ".join(c[i].ljust(w[i]) if i < len(w) else c[i]
                               for i in range(len(head))).rstrip() for c in cells)


def default_json(now):
    ws = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    base = os.path.join(ws, "regression-results") if ws else "/tmp/hakmem-regression-results"
    return os.path.join(base, "gate-%s.json" % now.strftime("%Y%m%d-%H%M%S"))


def record_docs(a, results, m, git):
    docs = {}
    common = {"format": FORMAT, "machine": m, "git": git,
              "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds")}
    instr = [r for r in results if r["gate"] == "instr"]
    if instr:
        metrics = {}
        for r in instr:
            metrics.setdefault(r["name"], {"argv": INSTR_METRICS[r["name"]][1],
                                           "ops": INSTR_METRICS[r["name"]][3]})
            metrics[r["name"]][r["allocator"]] = r["now"]
            metrics[r["name"]][r["allocator"] + "_aa_percent"] = r["aa_percent"]
        docs[baseline_path(a, "instr")] = dict(common, gate="instr", unit="instructions per "
                                               "op inside malloc/free/calloc/realloc",
                                               metrics=metrics)
    wall = [r for r in results if r["gate"] == "wall"]
    if wall:
        docs[baseline_path(a, "wall")] = dict(
            common, gate="wall", profile=a.profile, reps=a.reps,
            workloads={r["name"]: wall_entry(r, a) for r in wall})
    return docs


def wall_entry(r, a):
    """A workload's baseline: the ratios just measured, their median and CV."""
    return {"metric": WALL_METRIC, "ratios": r["ratios"],
            "median_ratio": statistics.median(r["ratios"]), "cv": cv(r["ratios"]),
            "peak_rss_kb": r["peak_rss_kb"], "peak_rss_kb_reps": r.get("peak_rss_kb_reps", []),
            "cpus": a.cpus, "threads": WALL_THREADS,
            "argv": compare.workload_argv(r["name"], PROFILES[a.profile]["mode"], WALL_THREADS)}


def main(argv):
    try:
        a = parse_args(argv)
    except SystemExit as e:
        return e.code
    started = datetime.datetime.now()
    gates = ["instr", "wall"] if a.gate == "all" else [a.gate]
    for tool in (["valgrind"] if "instr" in gates else []) + ["timeout", "env"]:
        if not shutil.which(tool):
            print("gate: %s not found (apt-get install %s)" % (
                tool, "valgrind" if tool == "valgrind" else "coreutils"), file=sys.stderr)
            return 2
    m = machine()
    git = compare.git_info()
    bases, foreign = {}, ""
    if not a.record:
        try:
            for g in gates:
                bases[g] = load_baseline(baseline_path(a, g), g)
        except BaselineError as e:
            print("gate: %s" % e, file=sys.stderr)
            return 2
        if "wall" in bases:
            foreign = "; ".join(x for x in (same_kind(m, bases["wall"]["machine"]),
                                            same_pairs(a, bases["wall"])) if x)
    results, notes = [], []
    if foreign:
        notes.append("wall gate only warns: baseline measured otherwise (%s)"
                     % foreign)
    load = os.getloadavg()[0]
    print("regression gate: %s profile, gates %s, hakmem %s (%s), load %.1f on %d CPUs%s"
          % (a.profile, "+".join(gates), a.hakmem, a.label, load, os.cpu_count() or 0,
             ", RECORDING" if a.record else ""), flush=True)
    t0 = time.monotonic()
    failures = []
    try:
        if "instr" in gates:
            print("instruction gate (callgrind, %d metrics x 2 allocators x %d)"
                  % (len(a.metrics), a.repeat), flush=True)
            instr_gate(a, bases.get("instr"), results, notes)
        if "wall" in gates:
            print("wall gate (%d reps x %d workloads: on each of CPUs %s at once, glibc and "
                  "hakmem sharing it)" % (a.reps, len(a.workloads),
                                         ",".join(map(str, a.cpus))), flush=True)
            failures = wall_gate(a, bases.get("wall"), results, notes, foreign)
    except UsageError as e:
        print("gate: %s" % e, file=sys.stderr)
        return 2
    duration = time.monotonic() - t0

    verdicts = [r.get("verdict") for r in results]
    if "FAIL" in verdicts:
        status, word = 1, "REGRESSION"
    elif any(v in ("NOISY", "ERROR") for v in verdicts) or failures:
        status, word = 2, "CANNOT TELL"
    else:
        status, word = 0, "PASS" + (" (with warnings)" if "warn" in verdicts else "")
    # Report-only: the wall gate's verdicts do not count, but integrity
    # events and hakmem runs that crashed still do.
    hakmem_crashed = [f for f in failures if " under hakmem" in f]
    if a.wall_report_only and status != 0 and all(
            r["gate"] == "wall" for r in results
            if r.get("verdict") in ("FAIL", "NOISY", "ERROR")) and not any(
            r.get("integrity_events") for r in results) and not hakmem_crashed:
        notes.append("wall gate is report-only: its %s does not count" % word)
        status, word = 0, "PASS (wall gate report-only)"
    print()
    print(table(results))
    for n in notes:
        print("note: " + n)
    if "instr" in gates:
        aa = [r["aa_percent"] for r in results if r["gate"] == "instr" and "aa_percent" in r]
        if aa and a.repeat > 1:
            print("A/A: two runs of the same build agree within %.4f%% (limit %.1f%%)"
                  % (max(aa), AA_LIMIT))

    doc = {"tool": "hakmem //regression:gate", "format": FORMAT,
           "started": started.isoformat(timespec="seconds"), "duration_seconds":
           round(duration, 1), "profile": a.profile, "gates": gates, "record": a.record,
           "hakmem": a.hakmem, "label": a.label, "machine": m, "git": git,
           "baselines": {g: baseline_path(a, g) for g in gates}, "foreign_machine": foreign,
           "wall_report_only": a.wall_report_only, "results": results, "notes": notes,
           "status": status, "verdict": word}
    out = compare.resolve_out(a.json_out) if a.json_out else default_json(started)
    try:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print("wrote %s" % out)
    except OSError as e:
        print("gate: cannot write %s: %s" % (out, e), file=sys.stderr)

    if a.record:
        if any(v in ("ERROR", "NOISY", "FAIL") for v in verdicts) or failures:
            print("gate: not recording: some measurements failed or were noisy (above); "
                  "the baselines are unchanged", file=sys.stderr)
            return 2
        for path, d in record_docs(a, results, m, git).items():
            write_atomic(path, d)
            print("recorded %s" % path)
        return 0
    print("%s (%.0f s)" % (word, duration))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
