#!/usr/bin/env bash
# bazel run //benchmarks:ab_ace -- --help
# Runs ab_ace.py (Debian's python3, standard library only) from the runfiles
# tree; the paths benchmarks/BUILD.bazel passes are relative to its root
# (AB_ACE_RUNFILES). Run from the source tree, the workspace is that root.
set -euo pipefail
for root in "${RUNFILES_DIR:-}/hakmem" "$0.runfiles/hakmem" "$(cd "$(dirname "$0")/.." && pwd)"; do
  [[ -f $root/benchmarks/ab_ace.py ]] && break
done
export AB_ACE_RUNFILES=$root
command -v python3 >/dev/null || { echo "ab_ace: python3 not found (apt-get install python3)" >&2; exit 1; }
exec python3 "$AB_ACE_RUNFILES/benchmarks/ab_ace.py" "$@"
