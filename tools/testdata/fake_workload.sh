#!/usr/bin/env bash
# A stand-in for a //stress workload, for compare_test: prints a canned
# result line at once. The workload is the name it is called by (the test
# makes symlinks); the allocator is read from LD_PRELOAD. Environment:
#   FAKE_COUNTER   file counting the calls (varies ops_per_sec)
#   FAKE_CALLS     file each call appends its allocator's name to (safe
#                  when calls run at once, unlike the counter)
#   FAKE_FAIL      workload that exits 3 after a message on stderr
#   FAKE_FAIL_UNDER   ... only under this allocator (default: under any)
#   FAKE_NOJSON    workload whose last line is not JSON
#   FAKE_EVENTS    workload that reports 1 integrity event under hakmem
#   FAKE_SEGV      workload that dies of SIGSEGV
#   FAKE_SLEEP     workload that sleeps 30 s first (for --timeout)
set -u
name=$(basename "$0")
case ${LD_PRELOAD:-} in
  "") alloc=glibc base=1000000 ;;
  *mimalloc*) alloc=mimalloc base=3000000 ;;
  *hakmem_debug*) alloc=hakmem-debug base=500000 ;;
  *hakmem*) alloc=hakmem-release base=2000000 ;;
  *) alloc=unknown base=1 ;;
esac
n=0
if [[ -n ${FAKE_COUNTER:-} ]]; then
  n=$(($(cat "$FAKE_COUNTER" 2>/dev/null || echo 0) + 1))
  echo "$n" >"$FAKE_COUNTER"
fi
[[ -n ${FAKE_CALLS:-} ]] && echo "$alloc" >>"$FAKE_CALLS"
echo "fake $name starting: $*"
if [[ $name == "${FAKE_FAIL:-}" && ${FAKE_FAIL_UNDER:-$alloc} == "$alloc" ]]; then
  echo "fake $name: something broke" >&2
  echo "fake $name: giving up" >&2
  exit 3
fi
if [[ $name == "${FAKE_SEGV:-}" ]]; then
  echo "fake $name: about to crash" >&2
  kill -SEGV $$
fi
[[ $name == "${FAKE_SLEEP:-}" ]] && sleep 30
if [[ $name == "${FAKE_NOJSON:-}" ]]; then
  echo '{"workload":"'"$name"'", truncated'
  exit 0
fi
events=null
if [[ $alloc == hakmem-* ]]; then
  events=0
  [[ $name == "${FAKE_EVENTS:-}" ]] && events=1
fi
# ops_per_cpu_sec is twice the allocator's base, whatever the call count:
# --shared-core's ratios come out exact (hakmem-release 2.0 x glibc).
printf '{"workload":"%s","allocator":"%s","threads":2,"ops":%d,"seconds":1.0,"ops_per_sec":%d,"ops_per_cpu_sec":%d,"peak_rss_kb":%d,"integrity_events":%s}\n' \
  "$name" "$alloc" $((base + n)) $((base + n)) $((2 * base)) $((1000 + n)) "$events"
