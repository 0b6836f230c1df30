#!/usr/bin/env bash
# The security runner must be able to fail: the release build passed off as
# debug (no redzones) must fail the overflow expectations (exit 1), the same
# build under its own name must pass them (exit 0), and an unknown case is
# a usage error (exit 2).
set -uo pipefail
runner=$1 release=$2
fails=0
expect() {  # expect STATUS DESCRIPTION -- args...
  local want=$1 what=$2; shift 3
  "$runner" "$@" >"${TEST_TMPDIR:-/tmp}/selftest.out" 2>&1
  local rc=$?
  if [[ $rc -eq $want ]]; then
    echo "ok: $what (exit $rc)"
  else
    echo "FAIL: $what: exit $rc, want $want"; tail -20 "${TEST_TMPDIR:-/tmp}/selftest.out" | sed 's/^/  | /'
    fails=$((fails + 1))
  fi
}
expect 1 "release passed off as debug misses overflows" -- --variant "debug=$release" --check --cases overflow_1
expect 0 "release meets its own expectations" -- --variant "release=$release" --check --cases overflow_1,double_free
expect 2 "unknown case" -- --variant "release=$release" --check --cases no_such_case
[[ $fails -eq 0 ]]
