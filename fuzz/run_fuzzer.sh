#!/bin/bash
# Runs one hakmem fuzzer (fuzz/fuzz.bzl makes the targets).
#
#   run_fuzzer.sh --test BINARY CORPUS [NAME=VALUE...] [libFuzzer flags]   (sh_test)
#       every input of the checked-in corpus, then a bounded fuzzing run;
#       crashing inputs land in the test's undeclared outputs
#       (bazel-testlogs/fuzz/<test>/test.outputs/).
#   run_fuzzer.sh --long BINARY CORPUS [NAME=VALUE...] [libFuzzer flags]   (bazel run)
#       fuzzes until stopped, 10 minutes unless flags say otherwise
#       (-max_total_time=N, -jobs=N, ...), reading the workspace's corpus and
#       writing new inputs and crashes to $HAKMEM_FUZZ_OUT
#       (default /tmp/hakmem-fuzz-<harness>), never into the source tree.
set -euo pipefail

mode=$1 binary=$2 corpus=$3
shift 3
# Leading NAME=VALUE arguments are hakmem settings for the fuzzed process.
while [[ $# -gt 0 && "$1" =~ ^[A-Z_]+= ]]; do
  export "$1"
  shift
done
case "$mode" in
  --test)
    scratch="${TEST_TMPDIR:-$(mktemp -d)}/new"
    artifacts="${TEST_UNDECLARED_OUTPUTS_DIR:-$scratch}"
    mkdir -p "$scratch"
    seeds=()
    [[ -d "$corpus" ]] && seeds=("$corpus")
    exec "$binary" -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" \
      "$scratch" "${seeds[@]}"
    ;;
  --long)
    ws="${BUILD_WORKSPACE_DIRECTORY:?use bazel run}"
    out="${HAKMEM_FUZZ_OUT:-/tmp/hakmem-fuzz-$(basename "$corpus")}"
    mkdir -p "$out"
    [[ $# -eq 0 ]] && set -- -max_total_time=600
    echo "fuzz: new inputs and crashes in $out; minimise into the corpus with" >&2
    echo "  $binary -merge=1 $ws/$corpus $out" >&2
    exec "$binary" -artifact_prefix="$out/" -print_final_stats=1 "$@" "$out" "$ws/$corpus"
    ;;
  *)
    echo "usage: $0 --test|--long BINARY CORPUS [libFuzzer flags]" >&2
    exit 2
    ;;
esac
