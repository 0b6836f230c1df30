/* fragmentation: mixed sizes, a scattered subset freed, other sizes
 * allocated into the holes, phase after phase (SPEC §3).
 *
 * Each thread owns --live slots.  Phase 0 ("fill") gives every slot a block
 * from the whole size mix.  Each later phase frees a scattered subset of the
 * slots (every slot independently with probability --free-percent) and
 * refills those slots with sizes drawn mostly (70%) from the phase's own
 * size band, which rotates 16..64, 65..256, 257..1024, 1025..4096 - so the
 * holes the old sizes left are reusable only by an allocator that can put
 * other sizes in them or give the memory back.  After the last phase a
 * "free" phase frees all but a scattered --keep-percent of the blocks and
 * the resident set after it is reported (rss_after_free_kb): memory an
 * allocator could return but may not.  Finally every block is freed
 * (rss_after_all_free_kb, threads still alive with their caches).
 *
 * Between phases all threads wait at a barrier while the main thread
 * measures the resident set, so each phase's figures are those of a quiet
 * heap.  The fragmentation ratio of a phase is
 *     frag_ratio = live requested bytes / (RSS - base RSS)
 * where base RSS is measured once the program's own bookkeeping arrays are
 * resident and before the first block is allocated: 1.0 is a heap without
 * overhead, lower is worse.  It needs no allocator statistics, so it
 * compares any allocators.
 *
 * Blocks are written whole when allocated and spot-checked when freed
 * (data_errors, must be 0; exit status 1 otherwise). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

static const char synopsis[] =
    "[--threads N] [--phases N] [--live N] [--seed N] [--seconds S] [--free-percent P] "
    "[--keep-percent P]";

static struct {
  uint64_t threads, phases, live, seed, free_percent, keep_percent;
  double seconds;
} P = {
    .threads = 2,
    .phases = 12,
    .live = 200000,
    .seed = 1,
    .free_percent = 50,
    .keep_percent = 10,
    .seconds = 0,
};

static const struct wl_option options[] = {
    {"threads", "worker threads", WL_U64, 1, 1024, &P.threads},
    {"phases", "free-and-refill phases after the fill", WL_U64, 1, 200, &P.phases},
    {"live", "live blocks per thread", WL_U64, 1, 100000000, &P.live},
    {"seed", "random seed (same seed, same sizes and holes per thread)", WL_U64, 0, 1e15,
     &P.seed},
    {"seconds", "stop starting new phases after S s, 0 = run every phase", WL_SECONDS, 0,
     604800, &P.seconds},
    {"free-percent", "share of the slots freed and refilled per phase", WL_U64, 1, 100,
     &P.free_percent},
    {"keep-percent", "share of the blocks still live after the free phase", WL_U64, 0, 100,
     &P.keep_percent},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Size bands; a phase's band is phase % NBANDS. */
#define NBANDS 4
static const uint32_t band_lo[NBANDS] = {16, 65, 257, 1025};
static const uint32_t band_hi[NBANDS] = {64, 256, 1024, 4096};
/* The fill's mix, and the 30% of a phase outside its band: percent per band. */
static const unsigned mix_percent[NBANDS] = {40, 30, 20, 10};

enum command { CMD_FILL, CMD_CHURN, CMD_FREE_MOST, CMD_FREE_ALL, CMD_EXIT };

struct lane {
  _Alignas(64) unsigned id;
  uint64_t rng;
  unsigned char **blocks;
  uint32_t *sizes;
  uint64_t live_bytes;
  uint64_t ops;      /* this phase */
  uint64_t total_ops;
  uint64_t data_errors;
};

static struct lane *lanes;
static pthread_barrier_t barrier;
static enum command cmd; /* written by main before the start barrier */
static unsigned cmd_phase;
static _Atomic uint64_t reported_errors;

static uint32_t size_in_band(uint64_t *rng, unsigned band) {
  uint32_t lo = band_lo[band], hi = band_hi[band];
  return lo + (uint32_t)(wl_rand(rng) % (hi - lo + 1));
}

static uint32_t size_from_mix(uint64_t *rng) {
  unsigned r = (unsigned)(wl_rand(rng) % 100), band = 0;
  while (band + 1 < NBANDS && r >= mix_percent[band]) r -= mix_percent[band++];
  return size_in_band(rng, band);
}

static inline unsigned char slot_byte(size_t slot, uint32_t size) {
  return (unsigned char)((slot * 0x9e3779b1u) ^ size ^ 0x5a);
}

static void put(struct lane *lane, size_t slot, uint32_t size) {
  unsigned char *p = malloc(size);
  if (!p) {
    fprintf(stderr, "fragmentation: malloc(%u) failed\n", size);
    exit(1);
  }
  memset(p, slot_byte(slot, size), size);
  lane->blocks[slot] = p;
  lane->sizes[slot] = size;
  lane->live_bytes += size;
  lane->ops++;
}

static void take(struct lane *lane, size_t slot) {
  unsigned char *p = lane->blocks[slot];
  uint32_t size = lane->sizes[slot];
  if (!p) return;
  unsigned char want = slot_byte(slot, size);
  size_t at[3] = {0, size / 2, size - 1};
  for (int i = 0; i < 3; i++) {
    if (p[at[i]] != want) {
      lane->data_errors++;
      if (atomic_fetch_add(&reported_errors, 1) < 20)
        fprintf(stderr,
                "fragmentation: block %p (%u bytes, thread %u slot %zu) changed at offset "
                "%zu: found 0x%02x, want 0x%02x\n",
                (void *)p, size, lane->id, slot, at[i], p[at[i]], want);
      break;
    }
  }
  free(p);
  lane->blocks[slot] = NULL;
  lane->live_bytes -= size;
  lane->ops++;
}

static void *run(void *arg) {
  struct lane *lane = arg;
  size_t live = (size_t)P.live;
  lane->blocks = calloc(live, sizeof *lane->blocks);
  lane->sizes = calloc(live, sizeof *lane->sizes);
  if (!lane->blocks || !lane->sizes) {
    fprintf(stderr, "fragmentation: out of memory for %zu slots\n", live);
    exit(1);
  }
  /* Resident before the base RSS is measured. */
  memset(lane->blocks, 0, live * sizeof *lane->blocks);
  memset(lane->sizes, 0, live * sizeof *lane->sizes);
  pthread_barrier_wait(&barrier); /* ready */
  for (;;) {
    pthread_barrier_wait(&barrier); /* start */
    enum command c = cmd;
    if (c == CMD_EXIT) break;
    lane->ops = 0;
    unsigned band = cmd_phase % NBANDS;
    for (size_t s = 0; s < live; s++) {
      switch (c) {
        case CMD_FILL:
          put(lane, s, size_from_mix(&lane->rng));
          break;
        case CMD_CHURN: {
          uint64_t x = wl_rand(&lane->rng);
          if (x % 100 < P.free_percent) {
            take(lane, s);
            put(lane, s, (x >> 32) % 100 < 70 ? size_in_band(&lane->rng, band)
                                              : size_from_mix(&lane->rng));
          }
          break;
        }
        case CMD_FREE_MOST:
          if (wl_rand(&lane->rng) % 100 >= P.keep_percent) take(lane, s);
          break;
        case CMD_FREE_ALL:
          take(lane, s);
          break;
        case CMD_EXIT:
          break;
      }
    }
    lane->total_ops += lane->ops;
    pthread_barrier_wait(&barrier); /* end */
  }
  free(lane->blocks);
  free(lane->sizes);
  return NULL;
}

struct measure {
  uint64_t ops, live_bytes, rss_kb;
  double seconds;
};

/* Runs one command on every thread and measures the quiet heap after it. */
static struct measure step(enum command c, unsigned phase) {
  struct measure m = {0};
  cmd = c;
  cmd_phase = phase;
  double t0 = wl_now();
  pthread_barrier_wait(&barrier); /* start */
  pthread_barrier_wait(&barrier); /* end */
  m.seconds = wl_now() - t0;
  m.rss_kb = wl_rss_kb();
  for (unsigned t = 0; t < P.threads; t++) {
    m.ops += lanes[t].ops;
    m.live_bytes += lanes[t].live_bytes;
  }
  return m;
}

static double ratio(uint64_t live_bytes, uint64_t rss_kb, uint64_t base_kb) {
  return rss_kb > base_kb ? (double)live_bytes / ((double)(rss_kb - base_kb) * 1024.0) : 0.0;
}

__attribute__((format(printf, 4, 5)))
static size_t append(char *buf, size_t len, size_t cap, const char *fmt, ...) {
  if (len >= cap) return len;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + len, cap - len, fmt, ap);
  va_end(ap);
  return n > 0 ? len + (size_t)n : len;
}

static size_t phase_json(char *buf, size_t len, size_t cap, unsigned phase, const char *name,
                         int band, const struct measure *m, uint64_t base_kb) {
  len = append(buf, len, cap, "%s{\"phase\":%u,\"name\":\"%s\",", phase ? "," : "", phase,
               name);
  if (band >= 0)
    len = append(buf, len, cap, "\"band\":[%u,%u],", band_lo[band], band_hi[band]);
  return append(buf, len, cap,
                "\"ops\":%llu,\"seconds\":%.6f,\"ops_per_sec\":%.1f,\"live_kb\":%llu,"
                "\"rss_kb\":%llu,\"frag_ratio\":%.4f}",
                (unsigned long long)m->ops, m->seconds,
                m->seconds > 0 ? (double)m->ops / m->seconds : 0.0,
                (unsigned long long)(m->live_bytes / 1024), (unsigned long long)m->rss_kb,
                ratio(m->live_bytes, m->rss_kb, base_kb));
}

int main(int argc, char **argv) {
  wl_parse(argc, argv, synopsis, options, NOPTIONS);
  unsigned threads = (unsigned)P.threads;
  lanes = aligned_alloc(64, threads * sizeof *lanes);
  pthread_t *tids = malloc(threads * sizeof *tids);
  if (!lanes || !tids) return 1;
  memset(lanes, 0, threads * sizeof *lanes);
  pthread_barrier_init(&barrier, NULL, threads + 1);
  for (unsigned t = 0; t < threads; t++) {
    lanes[t].id = t;
    lanes[t].rng = wl_seed(P.seed, t);
    if (pthread_create(&tids[t], NULL, run, &lanes[t])) {
      fprintf(stderr, "fragmentation: pthread_create failed\n");
      return 1;
    }
  }
  pthread_barrier_wait(&barrier); /* ready */
  uint64_t base_kb = wl_rss_kb();

  static char phases[48 * 1024];
  size_t len = append(phases, 0, sizeof phases, "[");
  double start = wl_phase_start();
  struct measure m = step(CMD_FILL, 0);
  len = phase_json(phases, len, sizeof phases, 0, "fill", -1, &m, base_kb);
  unsigned done = 0;
  double worst = ratio(m.live_bytes, m.rss_kb, base_kb), last = worst;
  for (unsigned p = 1; p <= P.phases; p++) {
    if (P.seconds > 0 && wl_now() - start >= P.seconds) break;
    m = step(CMD_CHURN, p);
    len = phase_json(phases, len, sizeof phases, p, "churn", (int)(p % NBANDS), &m, base_kb);
    last = ratio(m.live_bytes, m.rss_kb, base_kb);
    if (last < worst) worst = last;
    done++;
  }
  struct measure most = step(CMD_FREE_MOST, 0);
  struct measure all = step(CMD_FREE_ALL, 0);
  double seconds = wl_phase_end(start);
  len = append(phases, len, sizeof phases, "]");
  if (len >= sizeof phases) {
    fprintf(stderr, "fragmentation: phase table too long\n");
    return 1;
  }
  cmd = CMD_EXIT;
  pthread_barrier_wait(&barrier);
  for (unsigned t = 0; t < threads; t++) pthread_join(tids[t], NULL);

  uint64_t ops = 0, data_errors = 0;
  for (unsigned t = 0; t < threads; t++) {
    ops += lanes[t].total_ops;
    data_errors += lanes[t].data_errors;
  }
  int64_t events = wl_integrity_events();
  wl_result_begin("fragmentation", threads, ops, seconds);
  wl_result_u64("live_per_thread", P.live);
  wl_result_u64("phases_run", done);
  wl_result_u64("free_percent", P.free_percent);
  wl_result_u64("keep_percent", P.keep_percent);
  wl_result_u64("seed", P.seed);
  wl_result_u64("base_rss_kb", base_kb);
  wl_result_double("final_frag_ratio", last);
  wl_result_double("worst_frag_ratio", worst);
  wl_result_u64("live_after_free_kb", most.live_bytes / 1024);
  wl_result_u64("rss_after_free_kb", most.rss_kb);
  wl_result_u64("rss_after_all_free_kb", all.rss_kb);
  wl_result_u64("data_errors", data_errors);
  wl_result_raw("phases", phases);
  wl_result_end();
  pthread_barrier_destroy(&barrier);
  free(lanes);
  free(tids);
  return data_errors || events > 0 ? 1 : 0;
}
