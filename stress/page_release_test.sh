#!/usr/bin/env bash
# Page release on the fragmentation workload (allocator/release.h): the same
# run (same seed, same phases) with HAKMEM_RELEASE_PAGES=0 and =1; the
# resident set after the free phase (rss_after_free_kb, 90% of the blocks
# freed, scattered) must be at least 30% lower with release on, with no
# data errors and no integrity events.  A relative drop of memory, never a
# time.
#   page_release_test.sh FRAGMENTATION LIBHAKMEM_SO
set -uo pipefail
frag=$1 so=$2
run() {
  HAKMEM_RELEASE_PAGES=$1 LD_PRELOAD=$so "$frag" --threads 2 --live 60000 --phases 6 --seed 7 \
    | tail -n 1
}
off=$(run 0) || { echo "FAIL: run with release off exited $?" >&2; exit 1; }
on=$(run 1) || { echo "FAIL: run with release on exited $?" >&2; exit 1; }
# Under ThreadSanitizer the resident set is mostly the tool's shadow of the
# heap, which hakmem's madvise does not return: the drop says nothing there,
# and only the runs' correctness is checked.
rss_bound=1
grep -q libtsan <<<"$(ldd "$frag" 2>/dev/null)" && rss_bound=0
python3 - "$off" "$on" "$rss_bound" <<'PY'
import json, sys
off, on = (json.loads(a) for a in sys.argv[1:3])
rss_bound = sys.argv[3] == "1"
for name, r in (("off", off), ("on", on)):
    assert r["integrity_events"] == 0, (name, r["integrity_events"])
    assert r["data_errors"] == 0, (name, r["data_errors"])
    assert r["rss_after_free_kb"] > 0, (name, r)
a, b = off["rss_after_free_kb"], on["rss_after_free_kb"]
drop = 1 - b / a
print("rss_after_free_kb: off %d, on %d (%.0f%% lower)" % (a, b, 100 * drop))
if rss_bound and drop < 0.30:
    sys.exit("FAIL: page release lowered the resident set after the free phase by only "
             "%.0f%% (want >= 30%%)" % (100 * drop))
PY
