#include "latency.h"

#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t hkm_ace_quantile(uint64_t *v, unsigned n, double q) {
  if (n == 0) return 0;
  for (unsigned i = 1; i < n; i++) { /* insertion sort: n is small */
    uint64_t x = v[i];
    unsigned j = i;
    for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
    v[j] = x;
  }
  double rank = q * (double)n; /* nearest rank: ceil(q n) */
  unsigned k = (unsigned)rank;
  if ((double)k < rank) k++;
  if (k < 1) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

uint64_t hkm_ace_latency_probe_p99(struct hkm_ace_latency_probe *p, const size_t *sizes,
                                   unsigned n) {
  if (n == 0) return 0;
  unsigned got = 0;
  for (unsigned i = 0; i < HKM_ACE_PROBE_SAMPLES; i++) {
    uint64_t t0 = now_ns();
    void *b = malloc(sizes[i % n]);
    uint64_t t1 = now_ns();
    if (!b) break;
    /* Touch the block so the compiler cannot drop the pair. */
    *(volatile char *)b = 0;
    p->blocks[got] = b;
    p->ns[got++] = t1 - t0;
  }
  for (unsigned i = 0; i < got; i++) free(p->blocks[i]);
  return hkm_ace_quantile(p->ns, got, 0.99);
}
