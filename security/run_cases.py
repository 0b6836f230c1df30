#!/usr/bin/env python3
"""Runs every security case (security/cases.c) at every size under every
hakmem variant, each in its own process, and prints the outcome table in
Markdown.  With --check it also compares each outcome with EXPECTED below
and exits 1 if any differs (the bazel test), 2 on a usage or setup error.

  run_cases.py --variant release=BIN --variant debug=BIN
               --variant release-preload=BIN:SO --variant debug-preload=BIN:SO
               [--reference glibc=BIN] [--check] [--out FILE] [--cases a,b]

A variant's name starts with "release" or "debug": that picks its column
and its expectations.  BIN:SO runs BIN with LD_PRELOAD=SO.  A reference
(the system allocator) is run and tabulated but never checked.
Standard library only (Debian's python3).
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile

SIZES = [24, 4096, 20480, 204800]
SIZE_NAMES = {24: "24 B", 4096: "4 KiB", 20480: "20 KiB", 204800: "200 KiB"}

DETECTED, SURVIVES, LIVE_AGAIN = "detected", "survives", "live again"

# The goal (issue 6): release detects every double free and invalid free;
# debug also overflow, underflow and any wrong size; correct programs are
# never reported; impossible sizes fail with ENOMEM.  Where a cell says
# SURVIVES for a mistake, that is a known limit, explained in NOTES.
ALL = {s: DETECTED for s in SIZES}
NONE = {s: SURVIVES for s in SIZES}
LARGE_ONLY = {s: DETECTED if s > 65536 else SURVIVES for s in SIZES}
SMALL_ONLY = {s: DETECTED if s <= 65536 else SURVIVES for s in SIZES}

EXPECTED = {
    #  case                         release     debug
    "legit": (NONE, NONE),
    "double_free": (ALL, ALL),
    "double_free_after_1000_ops": (ALL, ALL),
    "double_free_interleaved": (ALL, ALL),
    "double_free_reused": ({s: LIVE_AGAIN for s in SIZES}, {s: LIVE_AGAIN for s in SIZES}),
    "double_free_other_thread": (ALL, ALL),
    "free_global": (ALL, ALL),
    "free_stack": (ALL, ALL),
    "free_plus_1": (ALL, ALL),
    "free_plus_8": (ALL, ALL),
    "free_plus_4k": (ALL, ALL),
    "free_plus_1g": (ALL, ALL),
    "overflow_1": (NONE, ALL),
    "overflow_32": (NONE, ALL),
    "underflow_1": (LARGE_ONLY, ALL),
    "underflow_32": (LARGE_ONLY, ALL),
    "free_sized_bigger": (ALL, ALL),
    "free_sized_smaller": (NONE, ALL),
    "sized_delete_bigger": (ALL, ALL),
    "sized_delete_smaller": (SMALL_ONLY, ALL),
    "malloc_huge": (NONE, NONE),
    "calloc_overflow": (NONE, NONE),
    "realloc_huge": (NONE, NONE),
}

NOTES = {
    "legit": "correct use of every call at this size (malloc, realloc grow/shrink, "
    "free_sized with realloc's size, calloc, new/sized delete, malloc(0) and an "
    "over-aligned block resized, a cross-thread free, churn in all tiers): must never "
    "be reported",
    "double_free_reused": "free(p); q = malloc(n) returns p's address; free(p) frees q's "
    "live block. Not detectable: the pointer is live again (the case checks q == p)",
    "free_plus_4k": "at 4 KiB, p + 4 KiB is the start of the next block, which is free: "
    "reported as a double free of that block; had it been live, the free would be "
    "indistinguishable from a correct one",
    "overflow_1": "release keeps no per-block size, so a write past the end is not "
    "seen at free; debug checks a tail canary (redzone)",
    "overflow_32": "as overflow_1; in release a 32-byte overflow of a tiny block "
    "corrupts the next block's free-list node, which the next pop of that list reports",
    "underflow_1": "release: a large block's header ends in a keyed canary (checked at "
    "free); tiny/mid blocks have no in-band header to damage; debug: a 16-byte header "
    "canary in front of every block",
    "underflow_32": "as underflow_1",
    "free_sized_smaller": "C23 free_sized accepts a smaller size in release because "
    "realloc may shrink a block in place by up to four classes; debug knows the exact size",
    "sized_delete_smaller": "C++ objects are never reallocated, so release checks the "
    "class exactly; a large block only knows its span, which holds the smaller size too",
    "malloc_huge": "malloc(SIZE_MAX - n), malloc(PTRDIFF_MAX + 1), malloc(2^62): NULL, ENOMEM",
    "calloc_overflow": "calloc(n, SIZE_MAX / n + 1), calloc(SIZE_MAX / 2, n): NULL, ENOMEM",
    "realloc_huge": "realloc(p, SIZE_MAX - n): NULL, ENOMEM, p intact",
}

HAKMEM_REPORT = re.compile(r"^hakmem: (double free|invalid free|TLS SLL corruption|"
                           r"sized free with the wrong size|heap overflow|heap underflow)",
                           re.M)
SHORT_KIND = {
    "double free": "double free",
    "invalid free": "invalid free",
    "TLS SLL corruption": "list corruption",
    "sized free with the wrong size": "wrong size",
    "heap overflow": "overflow",
    "heap underflow": "underflow",
}


def run_one(binary, preload, case, size, hakmem, tmp):
    env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LC_ALL": "C"}
    if preload:
        env["LD_PRELOAD"] = preload
    try:
        r = subprocess.run([binary, case, str(size)], env=env, cwd=tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except subprocess.TimeoutExpired:
        return ("hung", "hung (60 s)", "")
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    if r.returncode == 0 and f"survived {case} {size}" in out:
        return (LIVE_AGAIN if case == "double_free_reused" else SURVIVES, "not detected", err)
    if r.returncode == -signal.SIGABRT:
        m = HAKMEM_REPORT.search(err)
        if m:
            return (DETECTED, "detected: " + SHORT_KIND[m.group(1)], err)
        if not hakmem:
            first = err.strip().splitlines()[0] if err.strip() else "abort"
            return (DETECTED, "detected: " + first[:40], err)
        return ("aborted", "aborted without a hakmem report", err)
    if r.returncode < 0:
        return ("crashed", "crashed: " + signal.Signals(-r.returncode).name, err)
    if r.returncode == 3:
        return ("setup", "case not set up (exit 3)", err)
    return ("failed", f"failed (exit {r.returncode})", err)


# Cases that make no mistake: surviving is the correct outcome.
CORRECT_USE = {"legit", "malloc_huge", "calloc_overflow", "realloc_huge"}


def cell_text(case, outcome, text, expected, check):
    if outcome == LIVE_AGAIN:
        text = "not detectable: live again"
    elif outcome == SURVIVES and case in CORRECT_USE:
        text = "survives correctly"
    if check and expected is not None and outcome != expected:
        text += f" **(expected {expected})**"
    return text


def parse_variants(specs):
    variants = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        binary, _, preload = rest.partition(":")
        if not name or not binary:
            sys.exit(f"run_cases: bad variant {spec!r} (want NAME=BIN[:SO])")
        for path in filter(None, [binary, preload]):
            if not os.path.exists(path):
                print(f"run_cases: {path} not found", file=sys.stderr)
                sys.exit(2)
        variants.append((name, os.path.abspath(binary),
                         os.path.abspath(preload) if preload else ""))
    return variants


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", action="append", default=[], help="NAME=BIN[:SO]")
    ap.add_argument("--reference", action="append", default=[], help="NAME=BIN[:SO], unchecked")
    ap.add_argument("--check", action="store_true", help="exit 1 unless every outcome is expected")
    ap.add_argument("--out", help="also write the Markdown table to this file")
    ap.add_argument("--cases", help="comma-separated subset of cases")
    ap.add_argument("--verbose", action="store_true", help="print stderr of unexpected outcomes")
    args = ap.parse_args()
    variants = parse_variants(args.variant)
    references = parse_variants(args.reference)
    if not variants:
        ap.error("at least one --variant")
    for name, _, _ in variants:
        if not name.startswith(("release", "debug")):
            ap.error(f"variant {name!r} must start with release or debug")
    cases = list(EXPECTED)
    if args.cases:
        cases = args.cases.split(",")
        for c in cases:
            if c not in EXPECTED:
                ap.error(f"unknown case {c!r}")
    listed = subprocess.run([variants[0][1], "--list"], stdout=subprocess.PIPE,
                            check=True).stdout.decode().split()
    if sorted(listed) != sorted(EXPECTED):
        print("run_cases: cases.c and EXPECTED list different cases", file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="hakmem-security-")
    results = {}  # (case, size, variant) -> (outcome, text)
    mismatches = []
    for case in cases:
        for size in SIZES:
            for name, binary, preload in variants + references:
                outcome, text, err = run_one(binary, preload, case, size,
                                             hakmem=(name, binary, preload) in variants, tmp=tmp)
                results[(case, size, name)] = (outcome, text)
                if (name, binary, preload) not in variants:
                    continue
                rel_dbg = EXPECTED[case][0 if name.startswith("release") else 1]
                if outcome != rel_dbg[size]:
                    mismatches.append((case, size, name, outcome, rel_dbg[size], err))

    lines = ["# hakmem security cases", "",
             "Generated by `bazel run //security:table -- --out security/TABLE.md`. "
             "Each cell is one process per link mode (`cases <case> <size>`, security/cases.c): "
             "*detected* = hakmem printed its report and aborted; *not detected* = the "
             "program ran on and exited normally; *survives correctly* = a case that makes "
             "no mistake did what it should. Release and debug were each run linked in and "
             "preloaded; a cell shows both only when they differ, and an outcome other than "
             "the expected one (run_cases.py EXPECTED) is marked in bold.", ""]
    groups = [("release", [v for v in variants if v[0].startswith("release")]),
              ("debug", [v for v in variants if v[0].startswith("debug")])]
    groups = [g for g in groups if g[1]]
    header = ["case"] + [f"{SIZE_NAMES[s]} {g}" for s in SIZES for g, _ in groups]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for case in cases:
        row = [f"`{case}`"]
        for size in SIZES:
            for g, members in groups:
                exp = EXPECTED[case][0 if g == "release" else 1][size]
                texts = []
                for name, _, _ in members:
                    outcome, text = results[(case, size, name)]
                    t = cell_text(case, outcome, text, exp, True)
                    if t not in [x for _, x in texts]:
                        texts.append((name, t))
                if len(texts) == 1:
                    row.append(texts[0][1])
                else:
                    row.append("; ".join(f"{n}: {t}" for n, t in texts))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Notes:", ""]
    lines += [f"- `{c}`: {NOTES[c]}" for c in cases if c in NOTES]
    for name, _, _ in references:
        lines += ["", f"Reference, not checked: the same cases under {name} (its outcomes "
                  "vary between runs with address randomisation; \"case not set up\": "
                  "glibc before 2.39 has no free_sized).", ""]
        lines.append("| case | " + " | ".join(SIZE_NAMES[s] for s in SIZES) + " |")
        lines.append("|---|" + "---|" * len(SIZES))
        for case in cases:
            lines.append(f"| `{case}` | " +
                         " | ".join(cell_text(case, *results[(case, s, name)], None, False)
                                    for s in SIZES) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    if args.check:
        for case, size, name, got, want, err in mismatches:
            print(f"UNEXPECTED: {case} {size} under {name}: {got}, expected {want}",
                  file=sys.stderr)
            if args.verbose and err.strip():
                print("  | " + "\n  | ".join(err.strip().splitlines()[-5:]), file=sys.stderr)
        total = len(cases) * len(SIZES) * len(variants)
        print(f"{total - len(mismatches)} of {total} outcomes as expected", file=sys.stderr)
        return 1 if mismatches else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
