#!/usr/bin/env bash
# memcheck sees a program's heap errors through hakmem (tool_hooks.h): each
# faulty program (faults.c) runs as its own process under valgrind, and the
# report must name the error; the clean one must get none.
#
#   memcheck_test.sh NAME=PROGRAM[:PRELOAD] ...
#
# NAME ending in "-debug" also gets the redzone overflow case (release
# keeps a block's bytes up to its class size usable, so writing them is
# no error there).  Every block must be one hakmem made: its allocation
# stack goes through hak_tool_on_alloc, not valgrind's own malloc.
set -uo pipefail

source "$(dirname "$0")/expect_report.sh"

log=$(mktemp "${TEST_TMPDIR:-/tmp}/memcheck_test.XXXXXX")

# run NAME PROGRAM PRELOAD MODE: runs it under memcheck; sets rc, log.
run() {
  local prog=$2 preload=$3 mode=$4
  local env=()
  [[ -n "$preload" ]] && env=(env "LD_PRELOAD=$preload")
  # nouserintercepts: memcheck's own malloc would otherwise replace
  # hakmem's, linked in or preloaded alike (ci/memcheck.sh).
  "${env[@]}" valgrind --tool=memcheck --soname-synonyms=somalloc=nouserintercepts \
    --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --error-exitcode=97 --num-callers=20 \
    --log-file="$log" "$prog" "$mode" >/dev/null 2>&1
  rc=$?
}

# expect NAME MODE PATTERN...: every pattern (grep -E) is in the log.
expect() {
  local name=$1 mode=$2
  shift 2
  expect_in "$log" memcheck "$name" "$mode" "$@"
}

for spec in "$@"; do
  name=${spec%%=*}
  rest=${spec#*=}
  prog=${rest%%:*}
  preload=
  [[ "$rest" == *:* ]] && preload=$(realpath "${rest#*:}")

  run "$name" "$prog" "$preload" clean
  if [[ $rc -ne 0 ]] || ! grep -q "ERROR SUMMARY: 0 errors" "$log" || grep -q "definitely lost" "$log"; then
    fail "$name clean: exit $rc, or memcheck reported something:"
    sed 's/^/    /' "$log" >&2
  else
    echo "ok: $name clean"
  fi

  run "$name" "$prog" "$preload" leak
  [[ $rc -eq 97 ]] || fail "$name leak: exit $rc, expected memcheck's 97"
  expect "$name" leak "48 bytes in 1 blocks are definitely lost" "hak_tool_on_alloc" \
    "leak_block"

  run "$name" "$prog" "$preload" use_after_free
  [[ $rc -eq 97 ]] || fail "$name use_after_free: exit $rc, expected memcheck's 97"
  expect "$name" use_after_free "Invalid read of size 4" "by 0x[0-9A-F]+: use_after_free|at 0x[0-9A-F]+: use_after_free" \
    "inside a block of size [0-9]+ free'd" "hak_tool_on_alloc"

  if [[ "$name" == *-debug ]]; then
    run "$name" "$prog" "$preload" overflow
    # memcheck reports the write; hakmem's free then finds the redzone
    # overwritten and aborts the program.
    [[ $rc -ne 0 ]] || fail "$name overflow: exit 0"
    expect "$name" overflow "Invalid write of size 1" "overflow" \
      "0 bytes after a block of size 20 alloc'd" "hak_tool_on_alloc"
  fi
done
rm -f "$log"
finish memcheck
