#!/usr/bin/env bash
# bazel run //regression:gate -- --help
# Runs gate.py (Debian's python3, standard library only) from the runfiles
# tree, like tools/compare.sh; the paths regression/BUILD.bazel passes are
# relative to its root (GATE_RUNFILES).
set -euo pipefail
for root in "${RUNFILES_DIR:-}/hakmem" "$0.runfiles/hakmem" "$(cd "$(dirname "$0")/.." && pwd)"; do
  [[ -f $root/regression/gate.py ]] && break
done
export GATE_RUNFILES=$root COMPARE_RUNFILES=$root
command -v python3 >/dev/null || { echo "gate: python3 not found (apt-get install python3)" >&2; exit 2; }
exec python3 "$GATE_RUNFILES/regression/gate.py" "$@"
