#!/usr/bin/env bash
# bazel test //regression:gate_test
# 1. usage errors and bad baselines exit 2 with a clear message and overwrite
#    nothing; --record writes atomically (temp file + rename)
# 2. proof: the instruction gate passes release and fails the injected build
#    (allocator/variants.bzl HAKMEM_PROOF_VARIANTS) against the checked-in
#    regression/baselines/instructions.json.
set -uo pipefail
gate=$1 release=$2 inject=$3 loop=$4 driver=$5
root=$PWD
base=$root/regression/baselines
tmp=${TEST_TMPDIR:-$(mktemp -d)}
wire=(--tier-loop "$loop" --driver "$driver")
fails=0
check() {  # check NAME EXPECTED-STATUS GREP-PATTERN -- command...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$tmp/out" 2>&1; local rc=$?
  if [[ $rc -ne $want ]] || ! grep -qE "$pat" "$tmp/out"; then
    echo "FAIL: $name: exit $rc (want $want), output /$pat/ expected:"; sed 's/^/  | /' "$tmp/out" | tail -40
    fails=$((fails + 1))
  else
    echo "ok: $name (exit $rc)"
  fi
}

# --- the decisions on synthetic numbers (gate_selftest.py) ---------------
check "decision self-test" 0 "0 failure" -- env GATE_RUNFILES="$root" python3 "$root/regression/gate_selftest.py"

# --- usage and bad input --------------------------------------------------
check "unknown flag" 2 "unrecognized arguments" -- "$gate" --hakmem "$release" "${wire[@]}" --bogus
check "reps below 9" 2 "at least 9" -- "$gate" --hakmem "$release" "${wire[@]}" --reps 3
check "missing hakmem" 2 "does not exist" -- "$gate" --hakmem /nonexistent.so "${wire[@]}"
check "a CPU not ours" 2 "may run on" -- "$gate" --hakmem "$release" "${wire[@]}" --cpus 99999
check "CPUs not numbers" 2 "CPU numbers separated by commas" -- \
  "$gate" --hakmem "$release" "${wire[@]}" --cpus 0,x
mkdir -p "$tmp/empty"
check "missing baseline" 2 "baseline .*instructions.json is missing" -- \
  "$gate" --hakmem "$release" "${wire[@]}" --gate instr --baselines "$tmp/empty" --json "$tmp/r.json"
mkdir -p "$tmp/corrupt"
echo '{"format": 1, "gate": "instr", "machine": {}, "metrics": {"x": {"hakmem": "no"' \
  >"$tmp/corrupt/instructions.json"
cp "$tmp/corrupt/instructions.json" "$tmp/corrupt.orig"
check "truncated baseline" 2 "not JSON" -- \
  "$gate" --hakmem "$release" "${wire[@]}" --gate instr --baselines "$tmp/corrupt" --json "$tmp/r.json"
cmp -s "$tmp/corrupt/instructions.json" "$tmp/corrupt.orig" || { echo "FAIL: corrupt baseline was overwritten"; fails=$((fails + 1)); }
echo '{"format": 1, "gate": "instr", "machine": {}, "metrics": {"x": {"hakmem": -1, "glibc": 3}}}' \
  >"$tmp/corrupt/instructions.json"
check "bad value in baseline" 2 "corrupt .*x.hakmem" -- \
  "$gate" --hakmem "$release" "${wire[@]}" --gate instr --baselines "$tmp/corrupt" --json "$tmp/r.json"

# --- --record: atomic, into a scratch directory --------------------------
mkdir -p "$tmp/rec"
check "record (one cheap metric is refused)" 2 "no --metrics" -- \
  "$gate" --hakmem "$release" "${wire[@]}" --gate instr --record --metrics tier_loop_pair --baselines "$tmp/rec"
[[ -z $(ls -A "$tmp/rec") ]] || { echo "FAIL: refused --record wrote files"; fails=$((fails + 1)); }

# --- proof: release passes, the injected build fails ----------------------
# On the malloc-heavy metrics (the injected work is in malloc); .ci/run
# runs the whole instruction gate on release anyway.  All ten metrics took
# this test past 250 s on a quiet machine.
proof=(--gate instr --repeat 1 --metrics tier_loop_pair,tier_loop_mid,det_larson,det_sh8bench,det_mid
       --baselines "$base")
check "release passes the instruction gate" 0 "^PASS" -- \
  "$gate" --hakmem "$release" "${wire[@]}" "${proof[@]}" --json "$tmp/release.json"
check "injected build fails the instruction gate" 1 "^REGRESSION" -- \
  "$gate" --hakmem "$inject" "${wire[@]}" "${proof[@]}" --json "$tmp/inject.json" --label hakmem-inject
grep -E "FAIL|pass|warn" "$tmp/out" | head -30

if [[ $fails -ne 0 ]]; then echo "$fails check(s) failed"; exit 1; fi
echo "all checks passed"
