#!/usr/bin/env python3
"""Compares allocators on the //stress workloads (SPEC.md §3).

    bazel run //tools:compare -- [--workloads a,b] [--allocators x,y] [--runs N]
                                 [--threads N] [--quick] [--shared-core] [--out DIR]

Every workload binary is linked to the system allocator and run under each
allocator by preloading it (glibc: no preload). Runs are interleaved, so
drift on a shared machine hits every allocator alike:

    for run in 1..N: for workload: for allocator: run once

With --shared-core each run instead shares one CPU with a glibc run of the
same workload, started together, and is measured by its ops per CPU-second
over the glibc run's (METRICS below).

Each run's last stdout line is its JSON result (DESIGN.md "Results"). A run
that exits non-zero, times out or ends without a valid result is reported
with the tail of its stderr and left out of the medians, never dropped
silently. The tool prints a table per workload, and writes results.json
(every run, raw, and the summary), results.md and a grouped bar chart
(chart.svg, chart.png; gnuplot) to --out.

Standard library only (Debian's python3). The BUILD file passes the built
binaries and shared objects with --bin and --hakmem-*; see tools/BUILD.bazel.
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
import sysconfig
import time

# ---------------------------------------------------------------------------
# The workload table, in one place: each //stress workload's arguments for a
# normal run (about SECONDS["normal"] s) and a --quick one (about
# SECONDS["quick"] s); {threads} is filled in. "extra": result fields shown
# as additional columns (median over the runs): (field, header, format).
# ---------------------------------------------------------------------------
WORKLOADS = {
    # seconds min-size max-size chunks-per-thread rounds seed threads (the
    # classic "larson 5 8 1000 5000 100 4141 N" of mimalloc-bench, shorter).
    "larson": {
        "normal": ["2", "8", "1000", "5000", "100", "4141", "{threads}"],
        "quick": ["1", "8", "1000", "5000", "100", "4141", "{threads}"],
    },
    # Batches of 128..256 blocks of 8..1024 bytes, freed forward, reverse and
    # at random, 25% by the other thread; no TLS SLL walks (they would cost
    # hakmem alone).
    "sh8bench": {
        "normal": ["--threads", "{threads}", "--seconds", "2"],
        "quick": ["--threads", "{threads}", "--seconds", "1"],
    },
    # A fixed amount of work (fill + 12 phases), not a time: ~1-2 s here.
    "fragmentation": {
        "normal": ["--threads", "{threads}", "--live", "100000", "--phases", "12"],
        "quick": ["--threads", "{threads}", "--live", "50000", "--phases", "12"],
        "extra": [("worst_frag_ratio", "worst frag ratio", "%.3f"),
                  ("rss_after_free_kb", "RSS after free KiB", "{:,.0f}")],
    },
    # 2M live objects of 16..256 bytes (~270 MB, ~8x a 32 MiB LLC); the fill
    # (~0.3-0.6 s) comes on top of --seconds.
    "large_ws": {
        "normal": ["--threads", "{threads}", "--seconds", "2", "--objects", "2000000"],
        "quick": ["--threads", "{threads}", "--seconds", "1", "--objects", "1000000"],
    },
    "realloc": {
        "normal": ["--threads", "{threads}", "--seconds", "2"],
        "quick": ["--threads", "{threads}", "--seconds", "1"],
        "extra": [("p50_ns", "p50 ns", "{:,.0f}"), ("p99_ns", "p99 ns", "{:,.0f}")],
    },
    # 1..64 KiB blocks, 256 live per thread, 10% freed by another thread.
    "mid_mt": {
        "normal": ["--threads", "{threads}", "--seconds", "2"],
        "quick": ["--threads", "{threads}", "--seconds", "1"],
    },
}
SECONDS = {"normal": 2, "quick": 1}
DEFAULT_RUNS = {"normal": 5, "quick": 3}
DEFAULT_THREADS = 2
# --shared-core runs a pair on every CPU, but on at most this many: a pair
# of large_ws holds ~600 MB.
MAX_SHARED_CPUS = 8

# Allocators, in table order. Peers are Debian's shared objects, preloaded;
# hakmem's come from the build (--hakmem-release, --hakmem-debug).
ALLOCATORS = ["glibc", "mimalloc", "jemalloc", "tcmalloc", "hakmem-release", "hakmem-debug"]
PEERS = {
    "mimalloc": ("libmimalloc.so.2", "libmimalloc-dev"),
    "jemalloc": ("libjemalloc.so.2", "libjemalloc-dev"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libgoogle-perftools-dev"),
}
HAKMEM = {"hakmem-release": "//allocator:libhakmem.so",
          "hakmem-debug": "//allocator:libhakmem_debug.so"}

STDERR_TAIL_LINES = 12
REQUIRED_NUMBERS = ("threads", "seconds", "ops_per_sec", "peak_rss_kb")


class ResultError(Exception):
    """A run's output holds no usable result."""


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------
def _positive(text, lo=1, hi=None):
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a whole number" % text)
    if v < lo or (hi is not None and v > hi):
        raise argparse.ArgumentTypeError("'%s' must be %s" % (
            text, "%d..%d" % (lo, hi) if hi is not None else "at least %d" % lo))
    return v


def _name_list(known, what):
    def parse(text):
        names = []
        for n in text.split(","):
            n = n.strip()
            if not n:
                raise argparse.ArgumentTypeError("empty %s name in '%s'" % (what, text))
            if n not in known:
                raise argparse.ArgumentTypeError(
                    "unknown %s '%s' (known: %s)" % (what, n, ", ".join(known)))
            if n not in names:
                names.append(n)
        return names
    return parse


def _bin_spec(text):
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError("--bin wants NAME=PATH, got '%s'" % text)
    return name, path


def build_parser():
    p = argparse.ArgumentParser(
        prog="compare",
        usage="bazel run //tools:compare -- [--workloads a,b,...] [--allocators x,y,...]\n"
              "                                   [--runs N] [--threads N] [--quick] [--shared-core]\n"
              "                                   [--out DIR]",
        description="""\
Runs the //stress workloads under glibc, mimalloc, jemalloc, tcmalloc and both
hakmem variants (peers preloaded from Debian's packages), interleaved:
for run in 1..N: for workload: for allocator: run once. Prints per workload the
median ops/s, the ratio to the best, the median peak RSS and hakmem's integrity
events; runs that fail or print no valid JSON result are reported and left out.""",
        epilog="""\
Writes results.json (every run and the summary), results.md and chart.svg /
chart.png (gnuplot) to --out; default $BUILD_WORKSPACE_DIRECTORY/compare-results/
<time> under `bazel run`, else /tmp/hakmem-compare-results/<time>.

Exit status: 0 when every run gave a result with zero integrity events, 1 when
a run failed, a workload is not built or hakmem counted integrity events, 2 on
bad arguments. HAKMEM_* settings in the environment reach the hakmem runs
(HAKMEM_FAULT_ACTION=report counts faults instead of aborting the run).""",
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(
            prog, max_help_position=26, width=88))
    p.add_argument("--workloads", type=_name_list(list(WORKLOADS), "workload"),
                   metavar="a,b,...", help="workloads to run (default: all: %s)"
                   % ",".join(WORKLOADS))
    p.add_argument("--allocators", type=_name_list(ALLOCATORS, "allocator"),
                   metavar="x,y,...", help="allocators to compare (default: all: %s)"
                   % ",".join(ALLOCATORS))
    p.add_argument("--runs", type=_positive, metavar="N",
                   help="interleaved runs of each workload per allocator (default %d; %d with "
                   "--quick)" % (DEFAULT_RUNS["normal"], DEFAULT_RUNS["quick"]))
    p.add_argument("--threads", type=lambda t: _positive(t, 1, 1024), metavar="N",
                   default=DEFAULT_THREADS, help="threads per workload (default %d)"
                   % DEFAULT_THREADS)
    p.add_argument("--quick", action="store_true",
                   help="%d s per run instead of %d, and %d runs unless --runs is given"
                   % (SECONDS["quick"], SECONDS["normal"], DEFAULT_RUNS["quick"]))
    p.add_argument("--shared-core", action="store_true",
                   help="measure each run against a glibc run sharing its CPU at the same "
                   "time (ops per CPU-second over glibc's; one pair per CPU at once): "
                   "robust to a busy machine, but a run's threads never run in parallel")
    p.add_argument("--out", metavar="DIR", help="output directory (created)")
    p.add_argument("--timeout", type=_positive, metavar="S", default=None,
                   help="seconds before a run is killed and counted as failed "
                        "(default 30 + 10 x run length)")
    wiring = p.add_argument_group("wiring (set by tools/BUILD.bazel)")
    wiring.add_argument("--bin", type=_bin_spec, action="append", default=[],
                        metavar="NAME=PATH", help="a workload binary")
    wiring.add_argument("--hakmem-release", metavar="PATH", help=HAKMEM["hakmem-release"])
    wiring.add_argument("--hakmem-debug", metavar="PATH", help=HAKMEM["hakmem-debug"])
    return p


def parse_args(argv):
    """Parses argv; bad arguments print usage to stderr and exit 2 (argparse)."""
    p = build_parser()
    a = p.parse_args(argv)
    for name, _ in a.bin:
        if name not in WORKLOADS:
            p.error("--bin names unknown workload '%s' (add it to WORKLOADS in "
                    "tools/compare.py)" % name)
    mode = a.mode = "quick" if a.quick else "normal"
    a.seconds = SECONDS[mode]
    if a.runs is None:
        a.runs = DEFAULT_RUNS[mode]
    if a.timeout is None:
        a.timeout = 30 + 10 * a.seconds
    a.workloads = a.workloads or list(WORKLOADS)
    a.allocators = a.allocators or list(ALLOCATORS)
    a.metric = "shared" if a.shared_core else "ops"
    return a


# ---------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------
def runfiles_path(path):
    """A path from the BUILD file (relative to the runfiles root) made absolute."""
    if os.path.isabs(path):
        return path
    base = os.environ.get("COMPARE_RUNFILES")
    if base and os.path.exists(os.path.join(base, path)):
        return os.path.abspath(os.path.join(base, path))
    return os.path.abspath(path)


def library_dirs():
    """Where Debian puts shared libraries (HAKMEM_COMPARE_LIBDIR overrides, for tests)."""
    if os.environ.get("HAKMEM_COMPARE_LIBDIR"):
        return os.environ["HAKMEM_COMPARE_LIBDIR"].split(":")
    dirs = []
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs.append("/usr/lib/" + multiarch)
    dirs += ["/usr/lib/%s-linux-gnu" % platform.machine(), "/usr/lib64", "/usr/lib"]
    return list(dict.fromkeys(dirs))


def find_allocators(names, hakmem_paths):
    """Returns ([(name, preload or "")], [(name, reason)]) for the names asked."""
    found, skipped = [], []
    for name in names:
        if name == "glibc":
            found.append((name, ""))
        elif name in PEERS:
            lib, pkg = PEERS[name]
            hits = [os.path.join(d, lib) for d in library_dirs()
                    if os.path.isfile(os.path.join(d, lib))]
            if hits:
                found.append((name, hits[0]))
            else:
                skipped.append((name, "%s not found in %s: install %s (apt-get install %s)"
                                % (lib, ":".join(library_dirs()), pkg, pkg)))
        else:
            path = hakmem_paths.get(name)
            if path and os.path.isfile(runfiles_path(path)):
                found.append((name, runfiles_path(path)))
            else:
                skipped.append((name, "%s not built or not passed (--%s): build %s"
                                % (name, name, HAKMEM[name])))
    return found, skipped


def find_workloads(names, bins):
    """Returns ([(name, binary)], [(name, reason)]) for the names asked."""
    bins = dict(bins)
    found, missing = [], []
    for name in names:
        path = bins.get(name)
        if path is None:
            missing.append((name, "//stress:%s is not built into //tools:compare (not in "
                                  "stress/BUILD.bazel yet, or not in WIRED_WORKLOADS of "
                                  "tools/BUILD.bazel)" % name))
        elif not os.access(runfiles_path(path), os.X_OK):
            missing.append((name, "binary %s is missing or not executable" % path))
        else:
            found.append((name, runfiles_path(path)))
    return found, missing


def workload_argv(name, mode, threads):
    return [a.format(threads=threads) for a in WORKLOADS[name][mode]]


# ---------------------------------------------------------------------------
# One run and its result
# ---------------------------------------------------------------------------
def parse_result(stdout):
    """The JSON object on the last non-empty line of stdout; ResultError if none."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    if not lines:
        raise ResultError("printed nothing on stdout")
    last = lines[-1].strip()
    try:
        r = json.loads(last)
    except ValueError as e:
        raise ResultError("last line is not JSON (%s): %s" % (e, last[:200]))
    if not isinstance(r, dict):
        raise ResultError("last line is JSON but not an object: %s" % last[:200])
    if "ops" not in r and "operations" in r:  # SPEC.md §3 says "operations"
        r["ops"] = r["operations"]
    problems = []
    for key in ("ops",) + REQUIRED_NUMBERS:
        v = r.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            problems.append("%s is %r" % (key, v))
    if problems:
        raise ResultError("result line lacks " + ", ".join(problems) + ": " + last[:200])
    ie = r.get("integrity_events")
    if ie is not None and (isinstance(ie, bool) or not isinstance(ie, int)):
        raise ResultError("integrity_events is %r" % ie)
    return r


def tail(text, n=STDERR_TAIL_LINES):
    return "\n".join(text.rstrip("\n").splitlines()[-n:])


def judge(run, stdout, stderr, exit_code, timed_out):
    """Fills run['status'] ("ok"/"failed"), 'reason', 'result', 'warnings'."""
    run["stderr_tail"] = tail(stderr)
    run["warnings"] = []
    if timed_out:
        run.update(status="failed", reason="timed out after %s s" % run["timeout"])
        return run
    if exit_code != 0:
        sig = " (signal %d)" % -exit_code if exit_code < 0 else ""
        run.update(status="failed", reason="exit status %d%s" % (exit_code, sig))
        return run
    try:
        r = parse_result(stdout)
    except ResultError as e:
        run.update(status="failed", reason=str(e))
        return run
    run["result"] = r
    if r.get("allocator") != run["allocator"]:
        run.update(status="failed",
                   reason="reports allocator %r, expected %r (preload not in effect?)"
                   % (r.get("allocator"), run["allocator"]))
        return run
    if r.get("workload") != run["workload"]:
        run["warnings"].append("reports workload %r" % r.get("workload"))
    run["status"] = "ok"
    return run


def launcher(preload, timeout):
    """The command put before a workload: coreutils' timeout, then env.

    timeout is a small process that forks the workload, kills its process
    group when the time is up (exit 124) and passes on a death by signal.
    Starting the workload from it, not from this Python process, keeps the
    workload's peak RSS its own: Linux carries a process's RSS high-water mark
    (getrusage's ru_maxrss) across fork and exec, so a workload started
    straight from here would report at least this interpreter's RSS. env sets
    LD_PRELOAD for the workload alone (not for timeout)."""
    cmd = ["timeout", "--kill-after=5", str(timeout), "env", "-u", "LD_PRELOAD"]
    if preload:
        cmd.append("LD_PRELOAD=" + preload)
    return cmd


def start_run(run_no, workload, binary, allocator, preload, args, cpus=None):
    """Starts one run of workload (pinned to the CPU set cpus, if given);
    finish_run waits for it and judges it."""
    argv = [binary] + workload_argv(workload, args.mode, args.threads)
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    run = {"run": run_no, "workload": workload, "allocator": allocator, "preload": preload,
           "argv": argv, "timeout": args.timeout}
    if cpus is not None:
        run["cpus"] = sorted(cpus)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            launcher(preload, args.timeout) + argv, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None)
    except OSError as e:
        proc = e
    return run, proc, t0


def finish_run(started, timeout):
    run, proc, t0 = started
    timed_out = False
    if isinstance(proc, OSError):
        stdout, stderr, code = b"", str(proc).encode(), 127
    else:
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, timeout + 30 -
                                                          (time.monotonic() - t0)))
            code = proc.returncode
            timed_out = code in (124, 137) and time.monotonic() - t0 >= timeout
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            code, timed_out = None, True
    run["wall_seconds"] = round(time.monotonic() - t0, 3)
    run["exit_code"] = code
    return judge(run, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
                 code, timed_out)


def run_once(run_no, workload, binary, allocator, preload, args):
    return finish_run(start_run(run_no, workload, binary, allocator, preload, args),
                      args.timeout)


def run_pairs(first_run, workload, binary, pairs, args, cpus):
    """Runs the workload under the two allocators of each pair at the same
    time, pair i pinned to cpus[i] (its run numbers first_run + i); which
    of a pair starts first alternates with i and first_run.  Returns the
    finished [(run of the first, run of the second)]."""
    started = []
    for i, pair in enumerate(pairs):
        order = [0, 1] if (first_run + i) % 2 else [1, 0]
        runs = [None, None]
        for k in order:
            name, preload = pair[k]
            runs[k] = start_run(first_run + i, workload, binary, name, preload, args,
                                cpus={cpus[i]})
        started.append(runs)
    return [tuple(finish_run(r, args.timeout) for r in runs) for runs in started]


def shared_core_ratio(reference, result):
    """result's ops per CPU-second over reference's, two results of runs that
    shared a CPU (CPU time, not wall time: each got only part of it); None
    if either gave no result or no CPU figure."""
    if not reference or not result:
        return None
    ref, mine = reference.get("ops_per_cpu_sec") or 0, result.get("ops_per_cpu_sec") or 0
    return mine / ref if ref > 0 and mine > 0 else None


def run_shared(run_no, workload, binary, allocators, args, cpus):
    """--shared-core: runs the workload under each allocator at the same time
    as under glibc, the two pinned to one CPU, one such pair per CPU at a
    time.  Returns the allocators' runs, each with its glibc partner's
    figures ("partner") and "vs_glibc"; a run whose partner failed has
    failed too."""
    done = []
    for at in range(0, len(allocators), len(cpus)):
        chunk = allocators[at:at + len(cpus)]
        # A CPU left over runs glibc against glibc, unreported: what the
        # other cores run moves the ratio measured on one (realloc's by
        # about -6% with the neighbour busy), so every pair gets one.
        filler = len(cpus) - len(chunk)
        pairs = [(a, ("glibc", "")) for a in chunk] + [(("glibc", ""), ("glibc", ""))] * filler
        finished = run_pairs(run_no + at, workload, binary, pairs, args, cpus)
        for run, partner in finished[:len(chunk)]:
            run["run"] = run_no
            run["partner"] = {k: partner.get(k) for k in ("status", "reason", "argv")}
            if partner["status"] == "ok":
                run["partner"]["ops_per_cpu_sec"] = partner["result"].get("ops_per_cpu_sec")
            if run["status"] == "ok" and partner["status"] != "ok":
                run.update(status="failed", reason="its glibc partner failed: %s"
                           % partner["reason"])
            elif run["status"] == "ok":
                run["vs_glibc"] = shared_core_ratio(partner["result"], run["result"])
                if run["vs_glibc"] is None:
                    run.update(status="failed", reason="no ops_per_cpu_sec in a result")
            done.append(run)
    return done


# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
# What a run is measured by.  "ops": its own ops/s (runs one at a time, the
# workload's threads on every CPU).  "shared": --shared-core, its ops per
# CPU-second over those of a glibc run sharing its CPU at the same time
# (the run's "vs_glibc"): the machine's drift falls on both, so the ratio
# varies 1-5% where ops/s varies 5-25% (regression/README.md, "Gate 2"),
# but the threads of a run never run in parallel.
METRICS = {
    "ops": {"field": "ops_per_sec", "header": "median ops/s", "fmt": "{:,.0f}",
            "chart": "ops/s"},
    "shared": {"field": "vs_glibc", "header": "median x glibc", "fmt": "%.3f",
               "chart": "ops/CPU-s over glibc's, sharing a core,"},
}


def run_value(run, metric):
    """The run's measurement (None if it has none)."""
    if run["status"] != "ok":
        return None
    v = run.get("vs_glibc") if metric == "shared" else run["result"].get("ops_per_sec")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def summarize(runs, workloads, allocators, metric="ops"):
    """Per workload, per allocator: medians over the ok runs, ratio to the best median."""
    key = METRICS[metric]["field"]
    summary = {}
    for w in workloads:
        rows = []
        for a in allocators:
            mine = [r for r in runs if r["workload"] == w and r["allocator"] == a]
            values = [run_value(r, metric) for r in mine]
            ok = [r["result"] for r, v in zip(mine, values) if v is not None]
            values = [v for v in values if v is not None]
            row = {"allocator": a, "runs_ok": len(ok), "runs_failed": len(mine) - len(ok),
                   "median_" + key: None, "min_" + key: None,
                   "max_" + key: None, "ratio_to_best": None,
                   "median_peak_rss_kb": None, "integrity_events": None}
            if ok:
                row["median_" + key] = statistics.median(values)
                row["min_" + key] = min(values)
                row["max_" + key] = max(values)
                row["median_peak_rss_kb"] = statistics.median(
                    float(r["peak_rss_kb"]) for r in ok)
                events = [r.get("integrity_events") for r in ok]
                if any(e is not None for e in events):
                    row["integrity_events"] = sum(e for e in events if e is not None)
            extra = {}
            for field, _, _ in WORKLOADS.get(w, {}).get("extra", []):
                vals = [float(r[field]) for r in ok if isinstance(r.get(field), (int, float))
                        and not isinstance(r.get(field), bool)]
                extra[field] = statistics.median(vals) if vals else None
            if extra:
                row["extra"] = extra
            rows.append(row)
        best = max((r["median_" + key] for r in rows
                    if r["median_" + key] is not None), default=None)
        for r in rows:
            if best and r["median_" + key] is not None:
                r["ratio_to_best"] = r["median_" + key] / best
        summary[w] = rows
    return summary


def extras(workload):
    return WORKLOADS.get(workload, {}).get("extra", [])


COLUMNS = ["allocator", "median ops/s", "ratio to best", "range", "peak RSS KiB (median)",
           "integrity events", "runs ok"]


def _fmt(fmt, v):
    if v is None:
        return "-"
    return fmt.format(v) if "{" in fmt else fmt % v


def columns(extra=(), metric="ops"):
    return ([COLUMNS[0], METRICS[metric]["header"]] + COLUMNS[2:-1] +
            [header for _, header, _ in extra] + COLUMNS[-1:])


def row_cells(r, extra=(), metric="ops"):
    field = METRICS[metric]["field"]
    m = r["median_" + field]
    if m is None:
        cells = [r["allocator"], "no valid run", "-", "-", "-", "-"] + ["-"] * len(extra)
    else:
        half = (r["max_" + field] - r["min_" + field]) / 2 / m * 100 if m else 0.0
        cells = [r["allocator"], _fmt(METRICS[metric]["fmt"], m), "%.2f" % r["ratio_to_best"],
                 "±%.1f%%" % half, "{:,.0f}".format(r["median_peak_rss_kb"]),
                 "-" if r["integrity_events"] is None else str(r["integrity_events"])]
        cells += [_fmt(fmt, r.get("extra", {}).get(field)) for field, _, fmt in extra]
    cells.append("%d/%d" % (r["runs_ok"], r["runs_ok"] + r["runs_failed"]))
    return cells


def text_table(rows, extra=(), metric="ops"):
    head = columns(extra, metric)
    cells = [head] + [row_cells(r, extra, metric) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    out = []
    for k, c in enumerate(cells):
        out.append("  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i])
                             for i, v in enumerate(c)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows, extra=(), metric="ops"):
    head = columns(extra, metric)
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(row_cells(r, extra, metric)) + " |")
    return "\n".join(out)


def render_markdown(doc):
    s = doc["settings"]
    metric = s.get("metric", "ops")
    lines = ["# Allocator comparison", "",
             "%s, commit %s%s, %s (%d CPUs, load average %s before, %s after), %d "
             "interleaved runs of about %d s, %d threads%s."
             % (doc["started"], doc["git"].get("commit", "?"),
                " (with local changes)" if doc["git"].get("dirty") else "",
                doc["machine"].get("cpu", "?"), doc["machine"].get("cpus", 0),
                doc["machine"].get("load_before", "?"), doc["machine"].get("load_after", "?"),
                s["runs"], s["seconds"], s["threads"],
                ", each sharing one CPU with a glibc run (--shared-core)"
                if metric == "shared" else ""), "",
             ("Median ops/s over the runs that gave a result" if metric == "ops" else
              "Median over the runs of the run's ops per CPU-second over those of the glibc "
              "run that shared its CPU (glibc's row: glibc against glibc, the noise floor)") +
             "; ratio to the best median of the workload (1.00 = fastest); range = half of "
             "(max - min) over the median; integrity events summed over the runs (hakmem "
             "only, `-` for peers).", ""]
    for w in doc["workloads"]:
        lines += ["## %s" % w["name"], "", "`%s`" % " ".join(w["argv"]), "",
                  markdown_table(doc["summary"][w["name"]], extras(w["name"]), metric), ""]
    notes = problems_text(doc)
    if notes:
        lines += ["## Problems", ""] + ["- " + n.replace("\n", "\n  ") for n in notes] + [""]
    return "\n".join(lines)


def problems_text(doc):
    """Skipped allocators, missing workloads, failed runs and integrity events, one
    line per allocator and workload (and reason)."""
    notes = []
    for a in doc["skipped_allocators"]:
        notes.append("skipped %s: %s" % (a["name"], a["reason"]))
    for w in doc["missing_workloads"]:
        notes.append("workload %s not run: %s" % (w["name"], w["reason"]))
    total = doc["settings"]["runs"]
    groups = {}
    for r in doc["runs"]:
        if r["status"] != "ok":
            key = (r["workload"], r["allocator"], "failed: " + r["reason"])
        elif (r["result"].get("integrity_events") or 0) > 0:
            key = (r["workload"], r["allocator"], "%d integrity events"
                   % r["result"]["integrity_events"])
        else:
            continue
        groups.setdefault(key, []).append(r["run"])
    for (w, a, what), nums in groups.items():
        notes.append("%s under %s, run%s %s of %d: %s" % (
            w, a, "s" if len(nums) > 1 else "", ",".join(map(str, nums)), total, what))
    return notes


# ---------------------------------------------------------------------------
# Chart (gnuplot)
# ---------------------------------------------------------------------------
def gnuplot_terminals(gnuplot):
    p = subprocess.run([gnuplot, "-e", "print GPVAL_TERMINALS"], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    return set((p.stdout + p.stderr).split())


COLORS = {"glibc": "#7f7f7f", "mimalloc": "#1f77b4", "jemalloc": "#2ca02c",
          "tcmalloc": "#9467bd", "hakmem-release": "#d62728", "hakmem-debug": "#ff9896"}


def charted(summary, workloads, allocators):
    """The allocators with a result in at least one workload."""
    return [a for a in allocators
            if any(r["allocator"] == a and r["ratio_to_best"] is not None
                   for w in workloads for r in summary[w])]


def chart_data(summary, workloads, allocators):
    head = "workload " + " ".join('"%s"' % a for a in allocators)
    lines = [head]
    for w in workloads:
        by = {r["allocator"]: r for r in summary[w]}
        vals = ["%.4f" % by[a]["ratio_to_best"] if by.get(a) and
                by[a]["ratio_to_best"] is not None else "?" for a in allocators]
        lines.append('"%s" %s' % (w, " ".join(vals)))
    return "\n".join(lines) + "\n"


def chart_script(title, allocators, n_workloads):
    """gnuplot: clustered bars of chart.dat, one colour per allocator, value on each bar."""
    n = len(allocators)
    width = max(800, 130 * n_workloads + 40 * n + 160)
    bar = 1.0 / (n + 1)  # clustered histogram, gap 1: n bars + 1 gap per unit
    bars = ['"chart.dat" using %d:xtic(1) title columnheader(%d) lc rgb "%s"'
            % (i + 2, i + 2, COLORS.get(a, "#000000")) for i, a in enumerate(allocators)]
    labels = ['"chart.dat" using ($0 + %.4f):%d:(sprintf("%%.2f", column(%d))) '
              'with labels rotate left font ",8" offset 0,0.25 notitle'
              % ((i - (n - 1) / 2) * bar, i + 2, i + 2) for i in range(n)]
    return """\
# Regenerate: gnuplot -e 'TERMINAL="pngcairo"; OUT="chart.png"' chart.gp
set title "{title}" noenhanced
set datafile missing "?"
set key autotitle columnheader
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set ylabel "ratio to the best (1.0 = fastest)"
set yrange [0:1.2]
set ytics 0.2 nomirror
set grid ytics
set key outside right top vertical noenhanced
set xtics noenhanced nomirror
set border 3
set tics out
if (!exists("TERMINAL")) TERMINAL = "svg"
if (!exists("OUT")) OUT = "chart.svg"
set terminal @TERMINAL size {width},500
set output OUT
plot {plots}
""".format(title=title, width=width, plots=", \\\n     ".join(bars + labels))


def make_chart(outdir, summary, workloads, allocators, title):
    """Writes chart.dat, chart.gp, chart.svg and chart.png; returns (files, problems)."""
    problems = []
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return [], ["no chart: gnuplot not found (apt-get install gnuplot-nox)"]
    allocators = charted(summary, workloads, allocators)
    if not allocators:
        return [], ["no chart: no run gave a result"]
    with open(os.path.join(outdir, "chart.dat"), "w") as f:
        f.write(chart_data(summary, workloads, allocators))
    with open(os.path.join(outdir, "chart.gp"), "w") as f:
        f.write(chart_script(title, allocators, len(workloads)))
    terms = gnuplot_terminals(gnuplot)
    outputs = [("svg", "svg dynamic background rgb 'white' font 'sans,12'", "chart.svg")]
    if "pngcairo" in terms:
        outputs.append(("png", "pngcairo font 'sans,11'", "chart.png"))
    elif "png" in terms:
        outputs.append(("png", "png", "chart.png"))
    else:
        problems.append("no PNG terminal in gnuplot (%s): chart.svg only"
                        % " ".join(sorted(terms)))
    files = []
    for kind, term, name in outputs:
        if kind == "svg" and "svg" not in terms:
            problems.append("no SVG terminal in gnuplot")
            continue
        p = subprocess.run([gnuplot, "-e", 'TERMINAL="%s"; OUT="%s"' % (term.replace('"', "'"),
                                                                      name), "chart.gp"],
                           cwd=outdir, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if p.returncode != 0 or not os.path.isfile(os.path.join(outdir, name)):
            problems.append("gnuplot failed on %s: %s" % (name, tail(p.stderr, 5)))
        else:
            files.append(name)
    return files, problems


# ---------------------------------------------------------------------------
# Where, what machine
# ---------------------------------------------------------------------------
def default_outdir(now):
    stamp = now.strftime("%Y%m%d-%H%M%S")
    ws = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if ws:
        return os.path.join(ws, "compare-results", stamp)
    return os.path.join("/tmp", "hakmem-compare-results", stamp)


def resolve_out(path):
    """--out relative to where `bazel run` was started, not the runfiles tree."""
    if os.path.isabs(path):
        return path
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd()), path)


def machine_info():
    info = {"host": platform.node(), "kernel": platform.release(), "arch": platform.machine(),
            "cpus": os.cpu_count() or 0}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def git_info():
    ws = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not ws or not shutil.which("git"):
        return {}
    def git(*a):
        p = subprocess.run(["git", "-C", ws] + list(a), capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else None
    info = {"commit": git("rev-parse", "--short=12", "HEAD")}
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is not None:
        info["dirty"] = bool(status)
    return {k: v for k, v in info.items() if v is not None}


def package_of(path):
    """Debian package and version that ship path, or {}."""
    if not path or not shutil.which("dpkg-query"):
        return {}
    p = subprocess.run(["dpkg-query", "-S", os.path.realpath(path)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        p = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    if p.returncode != 0:
        return {}
    pkg = p.stdout.split(":")[0].strip()
    if p.stdout.count(":") >= 2:  # "libfoo:amd64: /usr/lib/..."
        pkg = ":".join(p.stdout.split(":")[:2]).strip()
    v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                       text=True)
    return {"package": pkg, "version": v.stdout.strip()} if v.returncode == 0 else \
        {"package": pkg}


def fmt_duration(s):
    return "%d min %02d s" % (s // 60, s % 60) if s >= 60 else "%d s" % s


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
def main(argv):
    args = parse_args(argv)
    now = datetime.datetime.now()
    outdir = resolve_out(args.out) if args.out else default_outdir(now)

    hakmem_paths = {"hakmem-release": args.hakmem_release, "hakmem-debug": args.hakmem_debug}
    allocators, skipped = find_allocators(args.allocators, hakmem_paths)
    workloads, missing = find_workloads(args.workloads, args.bin)
    for name, reason in skipped:
        print("skipping allocator %s: %s" % (name, reason))
    for name, reason in missing:
        print("skipping workload %s: %s" % (name, reason))
    if not allocators or not workloads:
        print("compare: nothing to run", file=sys.stderr)
        return 1
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        print("compare: cannot create %s: %s" % (outdir, e), file=sys.stderr)
        return 1

    load_before = os.getloadavg()[0]
    if load_before > 0.5 * (os.cpu_count() or 1):
        print("note: load average %.1f on %d CPUs before the first run: other work on the "
              "machine will make the timings noisy" % (load_before, os.cpu_count() or 1))
    total = args.runs * len(workloads) * len(allocators)
    # --shared-core: a pair on each CPU, at most MAX_SHARED_CPUS of them.
    cpus = sorted(os.sched_getaffinity(0))[-MAX_SHARED_CPUS:]
    rounds = total if not args.shared_core else args.runs * len(workloads) * -(
        -len(allocators) // len(cpus))
    print("%d runs: %d x (%s) x (%s), about %d s each, %d threads%s: about %s"
          % (total, args.runs, ",".join(w for w, _ in workloads),
             ",".join(a for a, _ in allocators), args.seconds, args.threads,
             ", each with a glibc run on its CPU (CPUs %s)" % ",".join(map(str, cpus))
             if args.shared_core else "", fmt_duration(rounds * args.seconds * 1.3)))
    sys.stdout.flush()

    t0 = time.monotonic()
    runs = []
    for run_no in range(1, args.runs + 1):
        for w, binary in workloads:
            parts = []
            mine = (run_shared(run_no, w, binary, allocators, args, cpus) if args.shared_core
                    else [run_once(run_no, w, binary, a, preload, args)
                          for a, preload in allocators])
            for r in mine:
                runs.append(r)
                if r["status"] == "ok":
                    ie = r["result"].get("integrity_events")
                    value = ("x%.3f" % r["vs_glibc"] if args.shared_core else
                             "%.3gM" % (r["result"]["ops_per_sec"] / 1e6))
                    parts.append("%s %s%s" % (r["allocator"], value,
                                              " (%d integrity events!)" % ie if ie else ""))
                else:
                    parts.append("%s FAILED" % r["allocator"])
            print("run %d/%d %-13s %s" % (run_no, args.runs, w, "  ".join(parts)))
            for r in runs[-len(allocators):]:
                if r["status"] != "ok":
                    print("  FAILED: %s under %s: %s\n  command: %s%s\n  stderr (tail):\n%s"
                          % (w, r["allocator"], r["reason"],
                             "LD_PRELOAD=%s " % r["preload"] if r["preload"] else "",
                             " ".join(r["argv"]),
                             "\n".join("    | " + l for l in
                                       (r["stderr_tail"] or "(empty)").splitlines())))
                for warning in r.get("warnings", []):
                    print("  warning: %s under %s: %s" % (w, r["allocator"], warning))
            sys.stdout.flush()

    names_w = [w for w, _ in workloads]
    names_a = [a for a, _ in allocators]
    summary = summarize(runs, names_w, names_a, args.metric)
    doc = {
        "tool": "hakmem //tools:compare", "format": 1,
        "started": now.isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - t0, 1),
        "machine": dict(machine_info(), load_before=round(load_before, 2),
                        load_after=round(os.getloadavg()[0], 2)),
        "git": git_info(),
        "settings": {"runs": args.runs, "threads": args.threads, "seconds": args.seconds,
                     "quick": args.quick, "timeout": args.timeout, "metric": args.metric,
                     "cpus": cpus if args.shared_core else None},
        "allocators": [dict({"name": a, "preload": p}, **package_of(p)) for a, p in allocators],
        "skipped_allocators": [{"name": a, "reason": r} for a, r in skipped],
        "workloads": [{"name": w, "binary": b,
                       "argv": [os.path.basename(b)] + workload_argv(w, args.mode,
                                                                     args.threads)}
                      for w, b in workloads],
        "missing_workloads": [{"name": w, "reason": r} for w, r in missing],
        "runs": runs,
        "summary": summary,
    }

    print()
    for w in names_w:
        print("%s (%d threads, median of %d runs)" % (w, args.threads, args.runs))
        print(text_table(summary[w], extras(w), args.metric))
        print()

    title = "%s ratio to the best per workload (%d threads, median of %d runs)" % (
        METRICS[args.metric]["chart"], args.threads, args.runs)
    files, chart_problems = make_chart(outdir, summary, names_w, names_a, title)
    doc["chart_problems"] = chart_problems
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(render_markdown(doc))
        if files:
            f.write("\n![ops/s ratio to best](chart.svg)\n")

    problems = problems_text(doc)
    if problems:
        print("Problems:")
        for n in problems:
            print("  " + n)
    for n in chart_problems:
        print("  " + n)
    print("wrote %s: results.json results.md %s" % (outdir, " ".join(files)))
    failed = [r for r in runs if r["status"] != "ok"]
    events = [r for r in runs if r["status"] == "ok" and
              (r["result"].get("integrity_events") or 0) > 0]
    return 1 if failed or events or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
