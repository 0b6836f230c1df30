/* large_ws: a large working set (SPEC §3).  The process keeps far more live
 * small objects than the last-level cache holds (default 4 million of
 * 16..256 bytes, several hundred MiB, split evenly over the threads, each
 * thread owning its share) and, until the time is up, each thread either
 * reads-modifies-writes a random one of its objects (access) or replaces a
 * random one with a new object of random size (churn, --churn-percent of
 * the operations).  Both are dominated by cache and TLB misses, so the
 * figure measures how well the allocator packs objects and how much it
 * touches besides them.
 *
 * Every object carries a cookie derived from its slot and size in its first
 * word, its size and an access counter in the second and the cookie's
 * complement in its last eight bytes (objects of 24 bytes or more); the
 * bytes between are filled with a byte of the cookie.  Every access and
 * every churn checks the cookie words; a mismatch is a cookie error.  At the
 * end each thread walks all its objects, checks them whole and sums the
 * counters: the checksum must equal the accesses made minus the counts of
 * the objects churn replaced.  cookie_errors must be 0 and the checksum
 * must match (exit status 1 otherwise).
 *
 * ops = access_ops + churn_ops, timed after the fill (fill_seconds). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

static const char synopsis[] =
    "[--threads N] [--seconds S] [--seed N] [--objects N] [--churn-percent P] "
    "[--min-size N] [--max-size N]";

static struct {
  uint64_t threads, seed, objects, churn_percent, min_size, max_size;
  double seconds;
} P = {
    .threads = 2,
    .seed = 1,
    .objects = 4000000,
    .churn_percent = 10,
    .min_size = 16,
    .max_size = 256,
    .seconds = 10,
};

static const struct wl_option options[] = {
    {"threads", "worker threads", WL_U64, 1, 1024, &P.threads},
    {"seconds", "run time after the fill", WL_SECONDS, 0.01, 604800, &P.seconds},
    {"seed", "random seed (same seed, same sizes and picks per thread)", WL_U64, 0, 1e15,
     &P.seed},
    {"objects", "live objects in the process, split over the threads", WL_U64, 1,
     1000000000, &P.objects},
    {"churn-percent", "share of operations that replace an object", WL_U64, 0, 100,
     &P.churn_percent},
    {"min-size", "smallest object in bytes", WL_U64, 16, 65536, &P.min_size},
    {"max-size", "largest object in bytes", WL_U64, 16, 65536, &P.max_size},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Second word of an object: size in the top 24 bits, access count below. */
#define COUNT_BITS 40
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)

struct lane {
  _Alignas(64) unsigned id;
  uint64_t rng;
  uint64_t first_slot; /* global index of slot 0 */
  uint64_t n;
  uint64_t **objs;
  uint64_t access_ops, churn_ops;
  uint64_t retired_counts; /* counters of the objects churn replaced */
  uint64_t cookie_errors;
  uint64_t checksum, live_bytes;
  double end; /* when this thread stopped operating */
};

static struct lane *lanes;
static pthread_barrier_t barrier;
static double deadline;
static uint64_t secret;
static _Atomic uint64_t reported_errors;

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static inline uint64_t cookie_of(uint64_t slot, uint64_t size) {
  return mix64(secret ^ slot ^ (size << 40));
}

static void report(struct lane *lane, const uint64_t *o, uint64_t slot, const char *what) {
  lane->cookie_errors++;
  if (atomic_fetch_add(&reported_errors, 1) < 20)
    fprintf(stderr, "large_ws: object %p (thread %u slot %llu): %s\n", (const void *)o,
            lane->id, (unsigned long long)slot, what);
}

/* Checks the cookie words of object o in slot; its size, or 0 if bad. */
static inline uint64_t check_head(struct lane *lane, const uint64_t *o, uint64_t slot) {
  uint64_t size = o[1] >> COUNT_BITS;
  if (size < P.min_size || size > P.max_size || o[0] != cookie_of(slot, size)) {
    report(lane, o, slot, "cookie or size word corrupted");
    return 0;
  }
  if (size >= 24) {
    uint64_t tail;
    memcpy(&tail, (const char *)o + size - 8, 8);
    if (tail != ~o[0]) {
      report(lane, o, slot, "tail cookie corrupted");
      return 0;
    }
  }
  return size;
}

static uint64_t *make(uint64_t slot, uint64_t size) {
  uint64_t *o = malloc(size);
  if (!o) {
    fprintf(stderr, "large_ws: malloc(%llu) failed\n", (unsigned long long)size);
    exit(1);
  }
  uint64_t cookie = cookie_of(slot, size);
  o[0] = cookie;
  o[1] = size << COUNT_BITS;
  if (size > 16) memset(o + 2, (unsigned char)cookie, size - 16);
  if (size >= 24) {
    uint64_t tail = ~cookie;
    memcpy((char *)o + size - 8, &tail, 8);
  }
  return o;
}

static inline uint64_t pick_size(uint64_t *rng) {
  return P.min_size + wl_rand(rng) % (P.max_size - P.min_size + 1);
}

static void *run(void *arg) {
  struct lane *lane = arg;
  uint64_t n = lane->n;
  lane->objs = malloc(n * sizeof *lane->objs);
  if (!lane->objs) {
    fprintf(stderr, "large_ws: out of memory for %llu slots\n", (unsigned long long)n);
    exit(1);
  }
  for (uint64_t i = 0; i < n; i++) lane->objs[i] = make(lane->first_slot + i, pick_size(&lane->rng));
  pthread_barrier_wait(&barrier); /* filled */
  pthread_barrier_wait(&barrier); /* go: deadline set */

  uint64_t churn = P.churn_percent, access = 0, churned = 0;
  for (;;) {
    for (int k = 0; k < 4096; k++) {
      uint64_t x = wl_rand(&lane->rng);
      /* Low 16 bits: churn or access (percent in 0..99); the rest: the slot. */
      uint64_t i = (x >> 16) % n, slot = lane->first_slot + i;
      uint64_t *o = lane->objs[i];
      if ((((x & 0xffff) * 100) >> 16) < churn) {
        if (check_head(lane, o, slot)) lane->retired_counts += o[1] & COUNT_MASK;
        free(o);
        lane->objs[i] = make(slot, pick_size(&lane->rng));
        churned++;
      } else {
        if (check_head(lane, o, slot)) o[1]++;
        access++;
      }
    }
    double now = wl_now();
    if (now >= deadline) {
      lane->end = now;
      break;
    }
  }
  lane->access_ops = access;
  lane->churn_ops = churned;
  pthread_barrier_wait(&barrier); /* timed phase over: the walk is not timed */

  /* The walk: every object checked whole, counters summed. */
  uint64_t sum = 0, bytes = 0;
  for (uint64_t i = 0; i < n; i++) {
    const uint64_t *o = lane->objs[i];
    uint64_t slot = lane->first_slot + i;
    uint64_t size = check_head(lane, o, slot);
    if (!size) continue;
    unsigned char fillb = (unsigned char)o[0];
    const unsigned char *b = (const unsigned char *)o;
    size_t end = size >= 24 ? size - 8 : size;
    for (size_t k = 16; k < end; k++) {
      if (b[k] != fillb) {
        report(lane, o, slot, "payload corrupted");
        break;
      }
    }
    sum += o[1] & COUNT_MASK;
    bytes += size;
  }
  lane->checksum = sum;
  lane->live_bytes = bytes;
  pthread_barrier_wait(&barrier); /* walked: peak RSS is in */
  for (uint64_t i = 0; i < n; i++) free(lane->objs[i]);
  free(lane->objs);
  return NULL;
}

int main(int argc, char **argv) {
  wl_parse(argc, argv, synopsis, options, NOPTIONS);
  unsigned threads = (unsigned)P.threads;
  const char *bad = P.min_size > P.max_size ? "--min-size is above --max-size"
                    : P.objects < threads    ? "--objects is below --threads"
                                             : NULL;
  if (bad) {
    wl_usage(stderr, "large_ws", synopsis, options, NOPTIONS);
    wl_die_usage("large_ws", bad);
  }
  secret = mix64(P.seed + 0x6c617267655f7773ull);
  lanes = aligned_alloc(64, threads * sizeof *lanes);
  pthread_t *tids = malloc(threads * sizeof *tids);
  if (!lanes || !tids) return 1;
  memset(lanes, 0, threads * sizeof *lanes);
  pthread_barrier_init(&barrier, NULL, threads + 1);
  uint64_t first = 0;
  double f0 = wl_now();
  for (unsigned t = 0; t < threads; t++) {
    lanes[t].id = t;
    lanes[t].rng = wl_seed(P.seed, t);
    lanes[t].n = P.objects / threads + (t < P.objects % threads);
    lanes[t].first_slot = first;
    first += lanes[t].n;
    if (pthread_create(&tids[t], NULL, run, &lanes[t])) {
      fprintf(stderr, "large_ws: pthread_create failed\n");
      return 1;
    }
  }
  pthread_barrier_wait(&barrier); /* filled */
  double fill_seconds = wl_now() - f0;
  uint64_t rss_after_fill = wl_rss_kb();
  double start = wl_phase_start();
  deadline = start + P.seconds;
  pthread_barrier_wait(&barrier); /* go */
  pthread_barrier_wait(&barrier); /* timed phase over */
  /* The CPU time, up to here: the walk after it would count in CPU time
   * but not in the wall time, which is the last lane's end. */
  wl_phase_end(start);
  pthread_barrier_wait(&barrier); /* walked */
  for (unsigned t = 0; t < threads; t++) pthread_join(tids[t], NULL);

  uint64_t access = 0, churn = 0, retired = 0, errors = 0, sum = 0, bytes = 0;
  double seconds = 0;
  for (unsigned t = 0; t < threads; t++) {
    if (lanes[t].end - start > seconds) seconds = lanes[t].end - start;
    access += lanes[t].access_ops;
    churn += lanes[t].churn_ops;
    retired += lanes[t].retired_counts;
    errors += lanes[t].cookie_errors;
    sum += lanes[t].checksum;
    bytes += lanes[t].live_bytes;
  }
  /* Each access that found a good cookie added one to a counter; a bad
   * object's accesses are counted as cookie errors instead, so the
   * checksum is checked only on a clean run. */
  int checksum_ok = errors == 0 && sum + retired == access;
  if (!checksum_ok && errors == 0)
    fprintf(stderr, "large_ws: checksum %llu + retired %llu != accesses %llu\n",
            (unsigned long long)sum, (unsigned long long)retired, (unsigned long long)access);
  int64_t events = wl_integrity_events();
  wl_result_begin("large_ws", threads, access + churn, seconds);
  wl_result_u64("objects", P.objects);
  wl_result_u64("access_ops", access);
  wl_result_u64("churn_ops", churn);
  wl_result_u64("churn_percent", P.churn_percent);
  wl_result_u64("min_size", P.min_size);
  wl_result_u64("max_size", P.max_size);
  wl_result_u64("seed", P.seed);
  wl_result_double("fill_seconds", fill_seconds);
  wl_result_u64("live_kb", bytes / 1024);
  wl_result_u64("rss_after_fill_kb", rss_after_fill);
  wl_result_u64("checksum", sum);
  wl_result_raw("checksum_ok", checksum_ok ? "true" : "false");
  wl_result_u64("cookie_errors", errors);
  wl_result_end();
  pthread_barrier_destroy(&barrier);
  free(lanes);
  free(tids);
  return errors || !checksum_ok || events > 0 ? 1 : 0;
}
