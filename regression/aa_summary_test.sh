#!/usr/bin/env bash
# bazel test //regression:aa_summary_test (aa_summary_test.py).
set -euo pipefail
dir=${TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/hakmem/regression
[[ -f $dir/aa_summary.py ]] || dir=$(cd "$(dirname "$0")" && pwd)
exec python3 "$dir/aa_summary_test.py"
