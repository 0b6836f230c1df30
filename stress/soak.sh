#!/usr/bin/env bash
# The TLS SLL integrity soak of SPEC §1: sh8bench under the debug variant
# (every TLS SLL push and pop checked) for 10 minutes, each thread walking
# its TLS SLLs with hak_tls_sll_verify() every second.
#
#   bazel run //stress:sh8bench_soak                          # 600 s, 4 threads
#   bazel run //stress:sh8bench_soak -- --seconds 60 --threads 8
#   bazel test //stress:sh8bench_soak                         # same, as a test
#
#   soak.sh SH8BENCH LIBHAKMEM_DEBUG_SO [sh8bench flags...]
#
# Flags after the two paths are passed to sh8bench after the defaults
# (--threads 4 --seconds 600 --verify-interval 1), so they override them.
# hakmem runs with HAKMEM_FAULT_ACTION=report (set it to abort to stop at
# the first fault with a core): every fault is counted and the run goes on,
# so the result shows how many there were.  Passes only if sh8bench exits 0
# and its result line shows integrity_events == 0, verify_bad_nodes == 0,
# pattern_errors == 0 and at least one TLS SLL walk.
set -uo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 SH8BENCH LIBHAKMEM_DEBUG_SO [flags...]" >&2; exit 2; }
bin=$(realpath "$1") so=$(realpath "$2")
shift 2

args=(--threads 4 --seconds 600 --verify-interval 1 "$@")
echo "soak: LD_PRELOAD=$so sh8bench ${args[*]}" >&2
result=$(HAKMEM_FAULT_ACTION=${HAKMEM_FAULT_ACTION:-report} LD_PRELOAD=$so "$bin" "${args[@]}")
status=$?
echo "$result"

python3 - "$result" "$status" <<'PY'
import json, sys
output, status = sys.argv[1], int(sys.argv[2])
lines = [l for l in output.splitlines() if l.startswith("{")]
if not lines:
    sys.exit("soak: FAIL: sh8bench exited %d without a result line" % status)
r = json.loads(lines[-1])
problems = []
if status != 0:
    problems.append("sh8bench exited %d" % status)
if r.get("allocator") != "hakmem-debug":
    problems.append("allocator is %r, not hakmem-debug" % r.get("allocator"))
for key in ("integrity_events", "verify_bad_nodes", "pattern_errors"):
    if r.get(key) != 0:
        problems.append("%s is %r" % (key, r.get(key)))
if not r.get("verify_calls"):
    problems.append("no TLS SLL walk was made")
if problems:
    sys.exit("soak: FAIL: " + "; ".join(problems))
print("soak: ok: %.0f s, %d threads, %d ops, %d TLS SLL walks, 0 integrity events"
      % (r["seconds"], r["threads"], r["ops"], r["verify_calls"]))
PY
