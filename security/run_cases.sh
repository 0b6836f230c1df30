#!/usr/bin/env bash
# Runs run_cases.py (Debian's python3, standard library only) from the
# runfiles tree; BUILD.bazel passes paths relative to its root.
#   bazel run //security:table [-- --out FILE]   the Markdown table
#   bazel test //security:cases_test             the same, checked
set -euo pipefail
for root in "${RUNFILES_DIR:-}/hakmem" "$0.runfiles/hakmem" "$PWD"; do
  [[ -f $root/security/run_cases.py ]] && break
done
cd "$root"
command -v python3 >/dev/null || { echo "run_cases: python3 not found (apt-get install python3)" >&2; exit 2; }
# `bazel run` starts in the runfiles tree: a relative --out goes where the
# user ran bazel from.
args=()
for a in "$@"; do
  if [[ -n ${BUILD_WORKING_DIRECTORY:-} && ${prev:-} == --out && $a != /* ]]; then
    a=$BUILD_WORKING_DIRECTORY/$a
  fi
  args+=("$a"); prev=$a
done
exec python3 security/run_cases.py "${args[@]}"
