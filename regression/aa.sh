#!/usr/bin/env bash
# A/A false-alarm check: runs the gate N times on the same build against the
# checked-in baselines and counts the exit statuses (a false alarm is exit 1).
#   regression/aa.sh [N] [gate args...]      e.g. regression/aa.sh 100 --gate wall
# From the workspace root; builds once, then runs bazel-bin/regression/gate
# directly (no Bazel server between runs). Writes regression-results/aa-*.json
# and ends with how close each workload came to its limit (aa_summary.py).
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}; shift || true
bazel build //regression:gate >/dev/null 2>&1 || { echo "aa: build failed" >&2; exit 2; }
export BUILD_WORKSPACE_DIRECTORY=$PWD
mkdir -p regression-results || exit 2
declare -A count=([0]=0 [1]=0 [2]=0 [other]=0)
args=(--tier-loop benchmarks/tier_loop --driver regression/det_driver
      --hakmem allocator/libhakmem.so)
for w in larson sh8bench fragmentation large_ws realloc mid_mt; do args+=(--bin "$w=stress/$w"); done
stamp=$(date +%Y%m%d-%H%M%S)
for ((i = 1; i <= n; i++)); do
  bazel-bin/regression/gate "${args[@]}" --json "regression-results/aa-$stamp-$i.json" "$@" \
    >"regression-results/aa-$stamp-$i.log" 2>&1
  rc=$?
  # Only the gate's own verdicts count as such; anything else (a crash, a
  # missing binary) is reported apart and fails the check.
  key=$rc; [[ $rc -le 2 ]] || key=other
  count[$key]=$(( count[$key] + 1 ))
  echo "run $i/$n: exit $rc"
done
echo "A/A over $n runs: pass ${count[0]}, regression (false alarm) ${count[1]}, cannot tell ${count[2]}, other exit ${count[other]}"
python3 regression/aa_summary.py regression-results/aa-"$stamp"-*.json
[[ ${count[other]} -eq 0 && ${count[1]} -le $(( (n + 99) / 100 )) ]]
