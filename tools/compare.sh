#!/usr/bin/env bash
# bazel run //tools:compare -- --help
# Runs compare.py (Debian's python3, standard library only) from the
# runfiles tree; the paths tools/BUILD.bazel passes are relative to its root
# (COMPARE_RUNFILES). Run from the source tree, the workspace is that root.
set -euo pipefail
for root in "${RUNFILES_DIR:-}/hakmem" "$0.runfiles/hakmem" "$(cd "$(dirname "$0")/.." && pwd)"; do
  [[ -f $root/tools/compare.py ]] && break
done
export COMPARE_RUNFILES=$root
command -v python3 >/dev/null || { echo "compare: python3 not found (apt-get install python3)" >&2; exit 1; }
exec python3 "$COMPARE_RUNFILES/tools/compare.py" "$@"
