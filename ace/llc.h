/* Last-level-cache miss rate from the kernel's hardware counters
 * (perf_event_open: generic cache misses and cache references, user space
 * only).  The counters are opened with inherit=1 by the thread that starts
 * ACE - the main thread, from ACE's constructor - so they count it and every
 * thread it (or its threads) create afterwards; the kernel sums the
 * inherited counts into the values read here.
 *
 * Virtual machines usually offer no hardware counters (perf_event_open
 * fails with ENOENT or EOPNOTSUPP): the rate is then 0.0. */
#ifndef HAKMEM_ACE_LLC_H
#define HAKMEM_ACE_LLC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hkm_ace_llc {
  int miss_fd, ref_fd;          /* -1 when unavailable */
  uint64_t prev_miss, prev_ref; /* counter values at the previous reading */
  int error;                    /* errno of the failed open, 0 if available */
};

/* Opens the counters; 0 when available, -1 (and l->error set) otherwise. */
int hkm_ace_llc_open(struct hkm_ace_llc *l);
/* Misses / references since the previous call (0.0 when unavailable or
 * when nothing was referenced). */
double hkm_ace_llc_rate(struct hkm_ace_llc *l);
void hkm_ace_llc_close(struct hkm_ace_llc *l);

#ifdef __cplusplus
}
#endif

#endif
