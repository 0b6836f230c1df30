#!/usr/bin/env bash
# Installs what hakmem's build, tests, benchmarks and tools need, from
# Debian's apt only. Idempotent: packages already installed are skipped, and
# `apt-get update` runs only when something is missing. Root or sudo.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap          # Bazel 4.2.3 (offline WORKSPACE mode)
  bazel-rules-java         # @rules_java at /usr/share/bazel/rules/java
  libgtest-dev             # @com_google_googletest
  libbenchmark-dev         # @benchmark
  libbenchmark-tools       # compare.py
  hyperfine
  valgrind
  gnuplot-nox
  libmimalloc-dev          # peer allocators for comparisons
  libjemalloc-dev
  libgoogle-perftools-dev  # tcmalloc
  clang
  libclang-rt-dev          # libFuzzer for //fuzz (clang only recommends it)
  python3
  sqlite3                  # //security:real_programs_test runs the sqlite3 CLI under hakmem
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "ci/setup.sh: all packages present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "ci/setup.sh: missing ${missing[*]}; need root or sudo to install" >&2
  exit 1
fi

echo "ci/setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "ci/setup.sh: done"
