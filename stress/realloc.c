/* realloc: growing and shrinking buffers.  Each thread keeps --buffers
 * live buffers and, call after call, reallocs a random one to a new size:
 * mostly growth by 1/8..1x (16 bytes climb through tiny, mid and large to
 * --max-size in about a hundred steps), sometimes a shrink to 1/8..7/8, a
 * drop back to a tiny size once the buffer reaches --max-size, and now and
 * then a free followed by realloc(NULL, n).
 *
 * Every buffer carries a cookie pattern: 8-byte word w holds mix(cookie, w).
 * The first 256 bytes, one word every --check-stride bytes and the last
 * (partial) word are written; after each realloc the ones inside the kept
 * prefix min(old, new) are checked, then the new size's are written.  A
 * mismatch is a content error: reported on stderr, and the run exits 1.
 *
 * The latency of each realloc of a live buffer (every --sample-th call) is
 * timed with clock_gettime around the call alone and kept in a log-linear
 * histogram (exact below 64 ns, 1/32 of an octave above); the result gives
 * p50/p99/p99.9/max overall and per tier of the larger of the old and new
 * sizes (tiny <= 1 KiB < mid <= 64 KiB < large), and the cost of an empty
 * clock_gettime pair, which every sample includes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workload.h"

static const char synopsis[] =
    "[--threads N] [--seconds S] [--seed N] [--buffers N] [--max-size BYTES] "
    "[--sample K] [--check-stride BYTES]";

static struct {
  uint64_t threads, seed, buffers, max_size, sample, check_stride;
  double seconds;
} P = {2, 1, 64, 1 << 20, 1, 1024, 10.0};

/* ---- latency histogram ---- */

#define HIST_EXACT 64 /* values below are their own bucket */
#define HIST_SUB 32   /* buckets per octave above */
#define HIST_BUCKETS (HIST_EXACT + (64 - 6) * HIST_SUB)

struct hist {
  uint64_t count, max;
  uint64_t bucket[HIST_BUCKETS];
};

static unsigned hist_index(uint64_t v) {
  if (v < HIST_EXACT) return (unsigned)v;
  unsigned e = 63 - (unsigned)__builtin_clzll(v); /* >= 6 */
  unsigned sub = (unsigned)(v >> (e - 5)) & (HIST_SUB - 1);
  return HIST_EXACT + (e - 6) * HIST_SUB + sub;
}

/* Middle of bucket i. */
static uint64_t hist_value(unsigned i) {
  if (i < HIST_EXACT) return i;
  unsigned e = 6 + (i - HIST_EXACT) / HIST_SUB, sub = (i - HIST_EXACT) % HIST_SUB;
  uint64_t width = 1ull << (e - 5);
  return (HIST_SUB + sub) * width + width / 2;
}

static void hist_add(struct hist *h, uint64_t v) {
  h->bucket[hist_index(v)]++;
  h->count++;
  if (v > h->max) h->max = v;
}

static void hist_merge(struct hist *into, const struct hist *h) {
  for (unsigned i = 0; i < HIST_BUCKETS; i++) into->bucket[i] += h->bucket[i];
  into->count += h->count;
  if (h->max > into->max) into->max = h->max;
}

/* The q-quantile (0 < q <= 1), never above the maximum seen. */
static uint64_t hist_quantile(const struct hist *h, double q) {
  if (!h->count) return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= rank) {
      uint64_t v = hist_value(i);
      return v < h->max ? v : h->max;
    }
  }
  return h->max;
}

/* ---- the cookie pattern ---- */

static inline uint64_t pattern_word(uint64_t cookie, uint64_t w) {
  uint64_t z = cookie ^ (w + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#define HEAD_WORDS 32 /* the first 256 bytes are written in full */

/* The words of a buffer that carry the pattern, in increasing order: the
 * head, every stride/8-th word, and the last (partial) word. */
static inline uint64_t first_word(size_t size) { return size ? 0 : UINT64_MAX; }
static inline uint64_t next_word(uint64_t w, size_t size) {
  uint64_t last = (size + 7) / 8 - 1, step = P.check_stride / 8;
  if (w >= last) return UINT64_MAX;
  uint64_t n = w + 1 < HEAD_WORDS ? w + 1 : (w / step + 1) * step;
  return n < last ? n : last;
}

static void pattern_write(unsigned char *p, uint64_t cookie, size_t size) {
  for (uint64_t w = first_word(size); w != UINT64_MAX; w = next_word(w, size)) {
    uint64_t v = pattern_word(cookie, w);
    size_t off = (size_t)w * 8, n = size - off < 8 ? size - off : 8;
    memcpy(p + off, &v, n);
  }
}

static _Atomic uint64_t errors_printed;

/* Checks the pattern of a buffer of old bytes within its first keep bytes;
 * returns the number of bad words. */
static uint64_t pattern_check(const unsigned char *p, uint64_t cookie, size_t old, size_t keep,
                              unsigned thread, uint64_t buffer, const void *before) {
  uint64_t bad = 0;
  for (uint64_t w = first_word(old); w != UINT64_MAX && w * 8 < keep; w = next_word(w, old)) {
    size_t off = (size_t)w * 8, end = off + 8;
    if (end > old) end = old;
    if (end > keep) end = keep;
    uint64_t want = pattern_word(cookie, w), got = 0;
    memcpy(&got, p + off, end - off);
    if (end - off < 8) want &= (1ull << (8 * (end - off))) - 1;
    if (got != want) {
      bad++;
      if (atomic_fetch_add(&errors_printed, 1) < 20)
        fprintf(stderr,
                "realloc: content error: thread %u buffer %llu realloc(%p, ...) -> %p, "
                "%zu bytes, %zu kept: offset %zu holds %016llx, want %016llx\n",
                thread, (unsigned long long)buffer, before, (const void *)p, old, keep, off,
                (unsigned long long)got, (unsigned long long)want);
    }
  }
  return bad;
}

/* ---- the workload ---- */

enum { TINY, MID, LARGE, TIERS };
static const char *const tier_names[TIERS] = {"tiny", "mid", "large"};

static int tier_of(size_t n) { return n <= 1024 ? TINY : n <= 65536 ? MID : LARGE; }

struct buffer {
  unsigned char *p;
  size_t size;
  uint64_t cookie;
};

struct worker {
  pthread_t tid;
  unsigned id;
  uint64_t rng;
  uint64_t ops, grows, shrinks, drops, restarts, moved, errors;
  int64_t tls_bad;
  struct hist lat[TIERS];
};

static double deadline;
static _Atomic int stop;
static uint64_t cookie_salt;

static uint64_t new_cookie(struct worker *w, uint64_t buffer) {
  return pattern_word(cookie_salt ^ w->id, buffer) ^ wl_rand(&w->rng);
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The next size of a buffer of old bytes; *kind counts the step. */
static size_t next_size(struct worker *w, size_t old) {
  uint64_t x = wl_rand(&w->rng);
  size_t max = (size_t)P.max_size, n;
  if (old >= max) { /* at the top: back to tiny */
    n = 1 + (size_t)((x >> 16) % 256);
    w->drops++;
  } else if ((x & 3) != 0) { /* grow by 1/8..1x, and a few bytes */
    n = old + (old * (1 + (size_t)((x >> 8) % 8))) / 8 + 1 + (size_t)((x >> 16) % 16);
    if (n > max) n = max;
    w->grows++;
  } else { /* shrink to 1/8..7/8 */
    n = old * (1 + (size_t)((x >> 8) % 7)) / 8;
    if (n < 1) n = 1;
    w->shrinks++;
  }
  return n;
}

static void *run(void *arg) {
  struct worker *w = arg;
  struct buffer *bufs = calloc(P.buffers, sizeof *bufs);
  if (!bufs) {
    fprintf(stderr, "realloc: out of memory for the buffer table\n");
    exit(1);
  }
  for (uint64_t i = 0; i < P.buffers; i++) {
    size_t n = 1 + (size_t)(wl_rand(&w->rng) % 64);
    bufs[i].p = realloc(NULL, n);
    if (!bufs[i].p) {
      fprintf(stderr, "realloc: realloc(NULL, %zu) failed\n", n);
      exit(1);
    }
    bufs[i].size = n;
    bufs[i].cookie = new_cookie(w, i);
    pattern_write(bufs[i].p, bufs[i].cookie, n);
  }
  uint64_t calls = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int k = 0; k < 64; k++) {
      uint64_t x = wl_rand(&w->rng);
      uint64_t i = x % P.buffers;
      struct buffer *b = &bufs[i];
      if ((x >> 56) == 0) { /* 1 in 256: free it and start afresh */
        free(b->p);
        size_t n = 1 + (size_t)((x >> 32) % 64);
        b->p = realloc(NULL, n);
        if (!b->p) {
          fprintf(stderr, "realloc: realloc(NULL, %zu) failed\n", n);
          exit(1);
        }
        b->size = n;
        b->cookie = new_cookie(w, i);
        pattern_write(b->p, b->cookie, n);
        w->restarts++;
        w->ops++;
        continue;
      }
      size_t old = b->size, n = next_size(w, old);
      void *before = b->p;
      unsigned char *q;
      if (++calls % P.sample == 0) {
        uint64_t t0 = now_ns();
        q = realloc(before, n);
        uint64_t t1 = now_ns();
        hist_add(&w->lat[tier_of(old > n ? old : n)], t1 - t0);
      } else {
        q = realloc(before, n);
      }
      if (!q) {
        fprintf(stderr, "realloc: realloc(%p, %zu) of a %zu-byte buffer failed\n", before, n,
                old);
        exit(1);
      }
      w->ops++;
      if (q != before) w->moved++;
      w->errors +=
          pattern_check(q, b->cookie, old, old < n ? old : n, w->id, i, before);
      pattern_write(q, b->cookie, n);
      b->p = q;
      b->size = n;
    }
    if (wl_now() >= deadline) atomic_store(&stop, 1);
  }
  for (uint64_t i = 0; i < P.buffers; i++) {
    w->errors += pattern_check(bufs[i].p, bufs[i].cookie, bufs[i].size, bufs[i].size, w->id,
                               i, bufs[i].p);
    free(bufs[i].p);
  }
  free(bufs);
  w->tls_bad = wl_tls_sll_verify();
  return NULL;
}

/* Median cost of an empty clock_gettime pair, included in every sample. */
static uint64_t clock_overhead_ns(void) {
  static struct hist h;
  for (int i = 0; i < 10000; i++) {
    uint64_t t0 = now_ns();
    uint64_t t1 = now_ns();
    hist_add(&h, t1 - t0);
  }
  return hist_quantile(&h, 0.5);
}

static const struct wl_option options[] = {
    {"threads", "worker threads", WL_U64, 1, 1024, &P.threads},
    {"seconds", "run time", WL_SECONDS, 0.01, 86400, &P.seconds},
    {"seed", "random seed (same seed, same sequence per thread)", WL_U64, 0, 1e18, &P.seed},
    {"buffers", "live buffers per thread", WL_U64, 1, 1000000, &P.buffers},
    {"max-size", "largest buffer in bytes", WL_U64, 64, 1 << 30, &P.max_size},
    {"sample", "time every K-th realloc", WL_U64, 1, 1000000, &P.sample},
    {"check-stride", "pattern word every N bytes beyond the first 256 (multiple of 8)",
     WL_U64, 8, 1 << 30, &P.check_stride},
};
#define NOPTIONS (sizeof options / sizeof options[0])

int main(int argc, char **argv) {
  wl_parse(argc, argv, synopsis, options, NOPTIONS);
  if (P.check_stride % 8) {
    wl_usage(stderr, "realloc", synopsis, options, NOPTIONS);
    wl_die_usage("realloc", "--check-stride must be a multiple of 8");
  }
  cookie_salt = wl_seed(P.seed, 0xc00c1e);
  uint64_t overhead = clock_overhead_ns();

  struct worker *workers = calloc(P.threads, sizeof *workers);
  if (!workers) return 1;
  double start = wl_phase_start();
  deadline = start + P.seconds;
  for (uint64_t t = 0; t < P.threads; t++) {
    workers[t].id = (unsigned)t;
    workers[t].rng = wl_seed(P.seed, t);
    if (pthread_create(&workers[t].tid, NULL, run, &workers[t])) {
      fprintf(stderr, "realloc: pthread_create failed\n");
      return 1;
    }
  }
  for (uint64_t t = 0; t < P.threads; t++) pthread_join(workers[t].tid, NULL);
  double seconds = wl_phase_end(start);

  static struct hist tiers[TIERS], all;
  uint64_t ops = 0, grows = 0, shrinks = 0, drops = 0, restarts = 0, moved = 0, errors = 0;
  int64_t tls_bad = 0;
  for (uint64_t t = 0; t < P.threads; t++) {
    struct worker *w = &workers[t];
    ops += w->ops, grows += w->grows, shrinks += w->shrinks, drops += w->drops;
    restarts += w->restarts, moved += w->moved, errors += w->errors;
    tls_bad = w->tls_bad < 0 || tls_bad < 0 ? -1 : tls_bad + w->tls_bad;
    for (int k = 0; k < TIERS; k++) {
      hist_merge(&tiers[k], &w->lat[k]);
      hist_merge(&all, &w->lat[k]);
    }
  }

  wl_result_begin("realloc", (unsigned)P.threads, ops, seconds);
  wl_result_u64("buffers", P.buffers);
  wl_result_u64("max_size", P.max_size);
  wl_result_u64("seed", P.seed);
  wl_result_u64("sample", P.sample);
  wl_result_u64("check_stride", P.check_stride);
  wl_result_u64("grows", grows);
  wl_result_u64("shrinks", shrinks);
  wl_result_u64("drops", drops);
  wl_result_u64("restarts", restarts);
  wl_result_u64("moved", moved);
  wl_result_u64("samples", all.count);
  wl_result_u64("p50_ns", hist_quantile(&all, 0.50));
  wl_result_u64("p99_ns", hist_quantile(&all, 0.99));
  wl_result_u64("p999_ns", hist_quantile(&all, 0.999));
  wl_result_u64("max_ns", all.max);
  wl_result_u64("clock_overhead_ns", overhead);
  char by_tier[512];
  size_t len = 0;
  for (int k = 0; k < TIERS; k++)
    len += (size_t)snprintf(by_tier + len, sizeof by_tier - len,
                            "%s\"%s\":{\"samples\":%llu,\"p50_ns\":%llu,\"p99_ns\":%llu,"
                            "\"max_ns\":%llu}",
                            k ? "," : "{", tier_names[k], (unsigned long long)tiers[k].count,
                            (unsigned long long)hist_quantile(&tiers[k], 0.50),
                            (unsigned long long)hist_quantile(&tiers[k], 0.99),
                            (unsigned long long)tiers[k].max);
  snprintf(by_tier + len, sizeof by_tier - len, "}");
  wl_result_raw("latency_by_tier", by_tier);
  if (tls_bad < 0)
    wl_result_raw("tls_sll_bad", "null");
  else
    wl_result_u64("tls_sll_bad", (uint64_t)tls_bad);
  wl_result_u64("content_errors", errors);
  wl_result_end();
  free(workers);
  if (errors) {
    fprintf(stderr, "realloc: %llu content errors\n", (unsigned long long)errors);
    return 1;
  }
  return 0;
}
