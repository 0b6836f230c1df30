#!/usr/bin/env bash
# Compares allocators on tier_loop: throughput per tier as the median of
# interleaved rounds, with the ratio to glibc, and callgrind instructions
# per tiny malloc+free pair (the difference of two run lengths, so start-up
# cost cancels out).
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: tier_compare --loop PATH --hakmem PATH [--rounds N] [--ops N] [--threads N]
  --rounds N    interleaved rounds per allocator and tier (default 5)
  --ops N       operations per thread for tiny and mid (default 20000000;
                large uses a tenth)
  --threads N   threads (default 2)
USAGE
  exit 2
}

loop="" hakmem="" rounds=5 ops=20000000 threads=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --loop) loop=${2:-}; shift 2 || usage ;;
    --hakmem) hakmem=${2:-}; shift 2 || usage ;;
    --rounds) rounds=${2:-}; shift 2 || usage ;;
    --ops) ops=${2:-}; shift 2 || usage ;;
    --threads) threads=${2:-}; shift 2 || usage ;;
    -h|--help) usage ;;
    *) echo "tier_compare: unknown argument '$1'" >&2; usage ;;
  esac
done
for n in "$rounds" "$ops" "$threads"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "tier_compare: '$n' is not a positive number" >&2; usage; }
done
[[ -x $loop && -f $hakmem ]] || { echo "tier_compare: --loop and --hakmem must exist" >&2; usage; }
hakmem=$(realpath "$hakmem")

names=(glibc hakmem)
preloads=("" "$hakmem")
libdir=/usr/lib/x86_64-linux-gnu
for peer in mimalloc:libmimalloc.so.2:libmimalloc-dev jemalloc:libjemalloc.so.2:libjemalloc-dev \
            tcmalloc:libtcmalloc_minimal.so.4:libgoogle-perftools-dev; do
  IFS=: read -r name lib pkg <<<"$peer"
  if [[ -f $libdir/$lib ]]; then
    names+=("$name"); preloads+=("$libdir/$lib")
  else
    echo "skipping $name: install $pkg"
  fi
done

median() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

declare -A results
for tier in tiny mid large; do
  n=$ops; [[ $tier == large ]] && n=$((ops / 10))
  for ((r = 0; r < rounds; r++)); do
    for i in "${!names[@]}"; do
      out=$(LD_PRELOAD=${preloads[$i]} "$loop" "$tier" "$threads" "$n")
      v=$(grep -o '"ops_per_sec":[0-9]*' <<<"$out" | cut -d: -f2)
      results[$tier,$i]+="$v "
    done
  done
done

printf '\nThroughput, %s threads, median of %s interleaved rounds (Mops/s; ratio to glibc)\n' "$threads" "$rounds"
printf '%-6s' tier; for name in "${names[@]}"; do printf ' %18s' "$name"; done; echo
for tier in tiny mid large; do
  printf '%-6s' "$tier"
  base=$(tr ' ' '\n' <<<"${results[$tier,0]}" | grep . | median)
  for i in "${!names[@]}"; do
    m=$(tr ' ' '\n' <<<"${results[$tier,$i]}" | grep . | median)
    printf ' %10.1f (%4.2fx)' "$(awk -v m="$m" 'BEGIN{print m/1e6}')" "$(awk -v m="$m" -v b="$base" 'BEGIN{print m/b}')"
  done
  echo
done

if command -v valgrind >/dev/null; then
  printf '\nInstructions per tiny malloc+free pair (callgrind, including the loop and the call through the PLT)\n'
  for i in "${!names[@]}"; do
    counts=()
    for n in 200000 400000; do
      tmp=$(mktemp -d)
      valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/cg.%p" \
        env LD_PRELOAD="${preloads[$i]}" "$loop" pair 1 "$n" >/dev/null 2>"$tmp/err"
      counts+=("$(grep -o 'Collected : [0-9]*' "$tmp/err" | tail -1 | awk '{print $3}')")
      rm -rf "$tmp"
    done
    printf '%-10s %6.1f\n' "${names[$i]}" "$(awk -v a="${counts[0]}" -v b="${counts[1]}" 'BEGIN{print (b-a)/200000}')"
  done
fi
