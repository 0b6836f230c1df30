#!/usr/bin/env bash
# Runs a microbenchmark binary for a trivially short time and checks that it
# exits 0 and writes Google Benchmark JSON naming the expected allocator and
# every benchmark family.  Measures nothing:
#   microbench_smoke_test.sh BINARY ALLOCATOR
set -uo pipefail
bin=$1 allocator=$2
out=$TEST_TMPDIR/microbench.json

fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" --benchmark_min_time=0.001 --benchmark_out="$out" --benchmark_out_format=json \
  >"$TEST_TMPDIR/console" 2>&1
status=$?
cat "$TEST_TMPDIR/console"
[[ $status -eq 0 ]] || fail "$bin exited $status"

python3 - "$out" "$allocator" <<'PY' || exit 1
import json, sys
path, allocator = sys.argv[1], sys.argv[2]
r = json.load(open(path))
problems = []
got = r.get("context", {}).get("allocator")
if got != allocator:
    problems.append("context.allocator is %r, want %r" % (got, allocator))
names = [b["name"] for b in r.get("benchmarks", [])]
for family, want in (("BM_MallocFree/", 46), ("BM_BatchAllocFree/", 7),
                     ("BM_CrossThreadFree/", 7), ("BM_ReallocGrowth", 1)):
    n = sum(1 for x in names if x.startswith(family))
    if n != want:
        problems.append("%d %s benchmarks, want %d" % (n, family, want))
for b in r.get("benchmarks", []):
    if not b.get("iterations", 0) > 0 or "error_message" in b:
        problems.append("%s: %r" % (b["name"], b.get("error_message", "no iterations")))
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print("ok:", allocator, len(names), "benchmarks")
PY
