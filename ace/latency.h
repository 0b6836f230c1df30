/* The allocation-latency probe behind the p99 safety guard.
 *
 * The application's own allocation latency cannot be measured without
 * timing its allocations, which would put a clock read on the hot path.
 * So the ACE thread measures what a thread allocating at the same moment
 * sees: each tick it allocates HKM_ACE_PROBE_SAMPLES blocks, sizes cycling
 * over the classes the application used most, timing each malloc, then
 * frees them.  Its refills go through the same slabs, shared pool, locks
 * and page faults as the application's, so contention and knob settings
 * that make those slow show up; its fast-path pops are as fast as anyone's.
 * The p99 of 128 samples is the second-largest, so one preemption of the
 * probe thread does not move it. */
#ifndef HAKMEM_ACE_LATENCY_H
#define HAKMEM_ACE_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HKM_ACE_PROBE_SAMPLES 128

struct hkm_ace_latency_probe {
  void *blocks[HKM_ACE_PROBE_SAMPLES];
  uint64_t ns[HKM_ACE_PROBE_SAMPLES];
};

/* Runs the probe with request sizes sizes[0..n) (n >= 1), round robin, and
 * returns the p99 malloc latency in nanoseconds (0 if n == 0). */
uint64_t hkm_ace_latency_probe_p99(struct hkm_ace_latency_probe *p, const size_t *sizes,
                                   unsigned n);

/* The q-quantile (0 < q <= 1) of v[0..n), nearest rank; sorts v. */
uint64_t hkm_ace_quantile(uint64_t *v, unsigned n, double q);

#ifdef __cplusplus
}
#endif

#endif
