#!/usr/bin/env bash
# A short run of one workload under one hakmem shared object:
#   short_run_test.sh BINARY LIBHAKMEM_SO WORKLOAD BAD,ARGS ARGS...
# Asserts the usage contract (--help exits 0, the comma-separated BAD,ARGS
# exit 2 with usage on stderr) and that the run ends with one valid JSON result line naming the
# workload and hakmem, with positive counts (CPU time of the measured phase included) and zero
# integrity events.
set -uo pipefail
bin=$1 so=$(realpath "$2") workload=$3
IFS=, read -r -a bad <<<"$4"
shift 4

fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" --help >/dev/null || fail "--help exited $?"
"$bin" "${bad[@]}" >/dev/null 2>"$TEST_TMPDIR/usage.err"
status=$?
[[ $status -eq 2 ]] || fail "bad arguments '${bad[*]}' exited $status, want 2"
grep -q usage "$TEST_TMPDIR/usage.err" || fail "bad arguments printed no usage"

LD_PRELOAD=$so "$bin" "$@" >"$TEST_TMPDIR/out" 2>"$TEST_TMPDIR/err"
status=$?
cat "$TEST_TMPDIR/err" >&2
[[ $status -eq 0 ]] || fail "$workload $* exited $status"
tail -n 1 "$TEST_TMPDIR/out" >"$TEST_TMPDIR/result.json"
cat "$TEST_TMPDIR/result.json"

# Under ThreadSanitizer the CPU time of the phase bounds nothing: the tool's
# background thread adds to it, and so does the lanes' exit (the tool's
# thread teardown is slow), which the phase's wall time - up to the last
# lane's end - does not cover.  Only its upper bound is skipped.
cpu_bound=1
grep -q libtsan <<<"$(ldd "$bin" 2>/dev/null)" && cpu_bound=0

python3 - "$workload" "$TEST_TMPDIR/result.json" "$cpu_bound" <<'PY' || exit 1
import json, sys
workload, path, cpu_bound = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
r = json.load(open(path))
problems = []
def need(cond, what):
    if not cond: problems.append(what)
need(r.get("workload") == workload, "workload is %r" % r.get("workload"))
need(str(r.get("allocator", "")).startswith("hakmem-"), "allocator is %r" % r.get("allocator"))
for key in ("threads", "ops", "seconds", "ops_per_sec", "peak_rss_kb", "cpu_seconds",
            "ops_per_cpu_sec"):
    need(isinstance(r.get(key), (int, float)) and r[key] > 0, "%s is %r" % (key, r.get(key)))
# The phase's CPU time: positive, and no more than its threads could use in
# its wall time (plus clock granularity).
if cpu_bound and all(isinstance(r.get(k), (int, float)) for k in ("cpu_seconds", "seconds", "threads")):
    need(r["cpu_seconds"] <= r["seconds"] * r["threads"] * 1.05 + 0.01,
         "cpu_seconds %r exceeds %r threads x %r s" % (r["cpu_seconds"], r["threads"],
                                                      r["seconds"]))
need(r.get("integrity_events") == 0, "integrity_events is %r" % r.get("integrity_events"))
need(isinstance(r.get("classes"), list) and r["classes"], "no per-class figures")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print("ok:", workload, r["allocator"], r["ops_per_sec"], "ops/s")
PY
