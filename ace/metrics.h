/* ACE's observations (SPEC §2 "Metrics").
 *
 * struct hkm_ace_sample is one observation interval - everything the
 * controller decides from, and nothing else, so the controller can be fed
 * synthetic samples in tests.  struct hkm_ace_metrics is the collector that
 * produces samples in the running process: it keeps the previous
 * hak_stats snapshot (rates are differences between two snapshots; the
 * allocator sums its per-thread counters on demand, so nothing is added to
 * any allocation path), the LLC counters, the latency probe and the ACE
 * thread's CPU clock readings.
 *
 * Sources:
 *   ops/s, per-class ops        hak_stats allocs + frees (all tiers), delta
 *   remote backlog per class    hak_stats remote_backlog (a level)
 *   TLS cached bytes per class  hak_stats tls_cached * block size
 *   fragmentation ratio         sum live_bytes / sum reserved_bytes of the
 *                               slab tiers (1.0 = nothing wasted, also when
 *                               nothing is reserved)
 *   RSS                         hak_stats rss_bytes (/proc)
 *   LLC miss rate               perf_event_open (llc.h), 0.0 where absent
 *   mutex waits                 hak_lock_waits(), delta: contended acquisitions
 *   mutex wait                  hak_lock_wait_ns(), delta: time threads
 *                               spent waiting for the allocator's (rare-path)
 *                               spin locks, counted only when one was held
 *   memory released             hak_released_pages(), delta (every path:
 *                               retain limit, page release, scavenge)
 *   p99 allocation latency      the probe (latency.h)
 *   ACE CPU                     CLOCK_THREAD_CPUTIME_ID of the collecting
 *                               thread over the last HKM_ACE_CPU_WINDOW
 *                               intervals, percent of one core; 0 until the
 *                               window is full */
#ifndef HAKMEM_ACE_METRICS_H
#define HAKMEM_ACE_METRICS_H

#include <stdint.h>

#include "hakmem.h"
#include "latency.h"
#include "llc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HKM_ACE_CPU_WINDOW 8
#define HKM_ACE_PAGE_BYTES 4096
#define HKM_ACE_PROBE_CLASSES 8

struct hkm_ace_sample {
  double interval_s;                          /* wall time covered */
  double ops_per_sec;                         /* mallocs + frees, all tiers */
  uint64_t class_ops[HAK_NUM_CLASSES];        /* mallocs + frees in the interval */
  uint64_t remote_backlog[HAK_NUM_CLASSES];   /* blocks awaiting their owner */
  uint64_t tls_cached_bytes[HAK_NUM_CLASSES]; /* bytes sitting in TLS lists */
  double llc_miss_rate;                       /* misses / references, 0..1 */
  double mutex_wait_ns_per_sec;               /* lock waiting, ns per second */
  double mutex_waits_per_sec;                 /* contended acquisitions a second */
  double fragmentation_ratio;                 /* live / reserved, 0..1 */
  uint64_t live_bytes, reserved_bytes;        /* slab tiers */
  uint64_t large_cached_bytes;                /* freed large spans kept */
  uint64_t rss_bytes;
  uint64_t p99_alloc_ns;    /* probe p99, 0 = not measured */
  double ace_cpu_percent;   /* collecting thread, % of one core */
  uint64_t released_bytes;  /* returned to the OS in the interval */
};

struct hkm_ace_metrics {
  struct hak_stats prev;  /* snapshot the next deltas start from */
  struct hak_stats cur;   /* scratch for the new snapshot */
  uint64_t prev_ns;       /* monotonic time of prev */
  uint64_t prev_lock_wait_ns, prev_lock_waits, prev_released_pages; /* counters outside
                                                                       hak_stats */
  uint64_t probe_ops[HAK_NUM_CLASSES]; /* the probe's own ops, subtracted
                                          from the next interval */
  struct hkm_ace_llc llc;
  struct hkm_ace_latency_probe probe;
  int probe_enabled;
  /* CPU of the collecting thread: the last readings and a window of
   * per-interval (cpu, wall) deltas. */
  int cpu_started;
  uint64_t cpu_prev_ns, cpu_wall_prev_ns;
  uint64_t cpu_delta[HKM_ACE_CPU_WINDOW], wall_delta[HKM_ACE_CPU_WINDOW];
  unsigned cpu_pos, cpu_count;
};

/* Takes the first snapshot and opens the LLC counters (from the thread
 * whose future threads should be counted).  When the counters are not
 * available, logs one info line per process.  Returns 0. */
int hkm_ace_metrics_init(struct hkm_ace_metrics *m);
/* Fills *out with the interval since the previous collect (or init).  CPU
 * is that of the calling thread; the first HKM_ACE_CPU_WINDOW collects
 * report 0.  Returns 0. */
int hkm_ace_metrics_collect(struct hkm_ace_metrics *m, struct hkm_ace_sample *out);
void hkm_ace_metrics_destroy(struct hkm_ace_metrics *m);

/* Monotonic clock, nanoseconds. */
uint64_t hkm_ace_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif
