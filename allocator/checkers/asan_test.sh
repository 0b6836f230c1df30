#!/usr/bin/env bash
# AddressSanitizer sees a program's heap errors through hakmem
# (tool_hooks.h): each faulty program (faults.c, built with
# -fsanitize=address against an ASan build of hakmem) runs as its own
# process; ASan must stop it with a report naming the error, and must
# let the clean one finish.
#
#   asan_test.sh NAME=PROGRAM ...
#
# NAME ending in "-debug" also gets the redzone overflow case.  A leak is
# not among the cases: LeakSanitizer knows only the blocks of ASan's own
# malloc, which hakmem replaces.
set -uo pipefail

source "$(dirname "$0")/expect_report.sh"

export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1
out=$(mktemp "${TEST_TMPDIR:-/tmp}/asan_test.XXXXXX")

# check NAME PROGRAM MODE PATTERN...: the run fails and stderr has every pattern.
check() {
  local name=$1 prog=$2 mode=$3
  shift 3
  "$prog" "$mode" >/dev/null 2>"$out"
  local rc=$?
  if [[ $rc -eq 0 ]]; then
    fail "$name $mode: exit 0, ASan reported nothing"
    sed 's/^/    /' "$out" >&2
    return
  fi
  expect_in "$out" ASan "$name" "$mode" "$@"
}

for spec in "$@"; do
  name=${spec%%=*}
  prog=${spec#*=}

  "$prog" clean >/dev/null 2>"$out"
  rc=$?
  if [[ $rc -ne 0 ]] || grep -q "ERROR: AddressSanitizer" "$out"; then
    fail "$name clean: exit $rc:"
    sed 's/^/    /' "$out" >&2
  else
    echo "ok: $name clean"
  fi

  check "$name" "$prog" use_after_free "ERROR: AddressSanitizer: use-after-poison" \
    "READ of size 4" "in use_after_free"
  if [[ "$name" == *-debug ]]; then
    check "$name" "$prog" overflow "ERROR: AddressSanitizer: use-after-poison" \
      "WRITE of size 1" "in overflow"
  fi
done
rm -f "$out"
finish ASan
