#!/usr/bin/env bash
# Sourced by asan_test.sh and memcheck_test.sh: counting failures, and
# checking that a tool's report names the error a faulty program made.

failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_in REPORT TOOL NAME MODE PATTERN...: every pattern (grep -E) is in
# the file REPORT, which TOOL wrote for program NAME run in MODE.
expect_in() {
  local report=$1 tool=$2 name=$3 mode=$4
  shift 4
  for pat in "$@"; do
    if ! grep -qE -- "$pat" "$report"; then
      fail "$name $mode: no '$pat' in $tool's report:"
      sed 's/^/    /' "$report" >&2
      return
    fi
  done
  echo "ok: $name $mode"
}

# finish TOOL: exits 1 if any check failed, else says all passed.
finish() {
  if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)" >&2
    exit 1
  fi
  echo "all $1 cases reported as expected"
}
