#!/usr/bin/env bash
# Runs a test under Valgrind's memcheck: `bazel test --config=valgrind`
# passes every test executable here (--run_under=//ci:memcheck).
#
#   ci/memcheck.sh PROGRAM [ARGS...]
#
# hakmem stays the allocator: by default memcheck replaces malloc in every
# object, the executable and preloaded libraries included, with its own;
# --soname-synonyms=somalloc=nouserintercepts limits that to libc, so a
# program linked to hakmem (or preloading libhakmem*.so) runs on hakmem,
# whose client requests (allocator/tool_hooks.h) tell memcheck about its
# blocks.  A program on the system allocator gets memcheck's.
#
# The test and every program it starts from the build tree run under
# memcheck (--trace-children); system programs a script starts (bash's
# helpers, python3, gcc, valgrind itself) run natively: they are not
# hakmem's code and would only cost time.  Each process writes its own log;
# the run fails if the test fails or if any log reports an error or a
# definite leak, so a script that ignores a child's exit status cannot
# hide a memcheck report.  The logs of failing processes are printed.
set -uo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 PROGRAM [ARGS...]" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
supp="$here/valgrind.supp"
[[ -f "$supp" ]] || supp="${RUNFILES_DIR:-$0.runfiles}/__main__/ci/valgrind.supp"

logdir=$(mktemp -d "${TEST_TMPDIR:-/tmp}/memcheck.XXXXXX")
readonly ERROR_EXIT=97

valgrind \
  --tool=memcheck \
  --soname-synonyms=somalloc=nouserintercepts \
  --quiet \
  --error-exitcode="$ERROR_EXIT" \
  --leak-check=full \
  --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite \
  --num-callers=30 \
  --track-origins=no \
  --suppressions="$supp" \
  --trace-children=yes \
  --trace-children-skip='/usr/*,/bin/*,/sbin/*,/lib/*,/lib64/*,/etc/*' \
  --log-file="$logdir/%p.log" \
  "$@"
rc=$?

bad=0
for log in "$logdir"/*.log; do
  [[ -s "$log" ]] || continue
  # --quiet prints no summaries: a leak shows only as its loss record.
  if grep -qE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|definitely lost in loss record|^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and destination)' "$log"; then
    bad=1
    echo "---- memcheck: $log" >&2
    cat "$log" >&2
  fi
done
rm -rf "$logdir"

if [[ $rc -eq 0 && $bad -ne 0 ]]; then
  echo "memcheck: errors reported (logs above)" >&2
  exit "$ERROR_EXIT"
fi
exit "$rc"
