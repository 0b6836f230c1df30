#!/usr/bin/env bash
# Holds ThreadSanitizer to the truth about programs running on hakmem:
#
#   run_checkers.sh --tsan|--plain RACE_CHECKER HANDOFF_CHECKER
#
# --tsan (the binaries are instrumented): every race_checker scenario must
#   end in data race reports, each of them between the program's two racing
#   writes (write_block in race_checker.c, both stacks) - a report anywhere
#   else is a false one; handoff_checker must run without any report.
# --plain: no tool to judge, so both programs must simply run on hakmem:
#   every race scenario to completion, every hand-off with its bytes intact.
# Both modes require handoff_checker to see most of its blocks come back
# reused - a run where nothing is reused would prove nothing.
set -uo pipefail
mode=$1 race=$2 handoff=$3
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Every report of the log must be a race between two writes in write_block;
# prints the number of reports.
check_reports() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
reports = re.findall(r"WARNING: ThreadSanitizer: (.*?)\n(.*?)\nSUMMARY: ThreadSanitizer:[^\n]*", text, re.S)
bad = []
for kind, body in reports:
    # The access and the earlier one it raced with: each a stack whose
    # first frame is the racing function.
    tops = re.findall(r"(?:Write|Read|Previous write|Previous read|Atomic \w+|Previous atomic \w+) of size \d+ at \S+ by [^\n]*:\n\s*#0 (\S+) (\S+)", body)
    ok = (kind.startswith("data race") and len(tops) == 2 and
          all(fn == "write_block" and "race_checker.c" in loc for fn, loc in tops))
    if not ok:
        bad.append((kind, tops))
for kind, tops in bad:
    print("unexpected report: %s %s" % (kind, tops), file=sys.stderr)
print(len(reports))
sys.exit(1 if bad else 0)
PY
}

for scenario in tiny mid large after_handoff recycled; do
  before=$failures
  log=$tmp/race_$scenario.err
  # All reports, not just the first: each one must be the program's race.
  TSAN_OPTIONS="halt_on_error=0 exitcode=66 history_size=4" "$race" "$scenario" >"$tmp/out" 2>"$log"
  status=$?
  if [[ $mode == --tsan ]]; then
    [[ $status -eq 66 ]] || fail "race_checker $scenario exited $status, want 66 (a report)"
    n=$(check_reports "$log") || fail "race_checker $scenario: a report other than its race"
    [[ ${n:-0} -ge 1 ]] || fail "race_checker $scenario: the race went unreported"
    echo "race_checker $scenario: $n report(s), all of the program's race"
  else
    [[ $status -eq 0 ]] || fail "race_checker $scenario exited $status"
    echo "race_checker $scenario: ran to completion"
  fi
  [[ $failures -eq $before ]] || cat "$log" >&2
done

for channel in mutex oneway; do
  log=$tmp/handoff_$channel.err
  TSAN_OPTIONS="halt_on_error=1 exitcode=66 history_size=4" "$handoff" "$channel" >"$tmp/out" 2>"$log"
  status=$?
  cat "$tmp/out"
  [[ $status -eq 0 ]] || fail "handoff_checker $channel exited $status"
  if grep -q ThreadSanitizer "$log"; then
    fail "handoff_checker $channel: a report on a correct program"
    cat "$log" >&2
  fi
  # handoff_checker mutex: handed=4800 reused=... bad=0
  read -r handed reused < <(sed -n 's/.*handed=\([0-9]*\) reused=\([0-9]*\).*/\1 \2/p' "$tmp/out")
  [[ ${handed:-0} -gt 0 && $((2 * ${reused:-0})) -gt ${handed:-0} ]] ||
    fail "handoff_checker $channel: reused ${reused:-?} of ${handed:-?} addresses, want most"
done

[[ $failures -eq 0 ]] || exit 1
echo PASS
