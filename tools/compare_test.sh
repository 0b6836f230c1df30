#!/usr/bin/env bash
# bazel test //tools:compare_test: compare.py's argument handling, result
# parsing, summary and output files (compare_test.py, on a fake workload).
set -euo pipefail
dir=${TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/hakmem/tools
[[ -f $dir/compare.py ]] || dir=$(cd "$(dirname "$0")" && pwd)
exec python3 "$dir/compare_test.py" -v
