/* mid_mt: mid-size blocks (1..64 KiB by default) on every core.  Each
 * thread keeps --live slots and, op after op, replaces the block of a
 * random slot: frees the old one - itself, or with --remote-percent
 * probability by handing it to another thread, which frees it - and
 * allocates a new one.  Sizes are log-uniform: an octave of [min, max] is
 * picked uniformly, then a size within it, so every size class of the
 * range gets its share.
 *
 * Every block is touched: its first 8 bytes get a tag of (address, size,
 * owner) and its last byte the tag's low byte, so the allocator's memory
 * is really used; the tag is checked before each free (and again by the
 * receiving thread of a hand-off).  A wrong tag is a content error:
 * reported on stderr, and the run exits 1.
 *
 * Hand-offs go through a per-thread inbox, a lock-free stack threaded
 * through the blocks themselves (next pointer, size and owner in the first
 * 24 bytes), which its owner empties every 256 ops.  An inbox holds at most
 * --live blocks: when its owner is not running (more threads than CPUs) a
 * sender frees the block itself rather than pile up memory the allocator
 * cannot reuse (counted as handoffs_full).  At the end the main thread
 * frees what is left, blocks of threads that have exited. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workload.h"

static const char synopsis[] =
    "[--threads N] [--seconds S] [--seed N] [--live N] [--remote-percent P] "
    "[--min-size BYTES] [--max-size BYTES]";

static struct {
  uint64_t threads, seed, live, remote_percent, min_size, max_size;
  double seconds;
} P = {0, 1, 256, 10, 1024, 65536, 10.0};

/* A handed-off block, as its receiver sees it. */
struct node {
  struct node *next;
  uint64_t size;
  uint64_t owner;
};
#define MIN_BLOCK 32 /* a node and the last byte beyond it */

struct slot {
  unsigned char *p;
  size_t size;
};

struct worker {
  pthread_t tid;
  unsigned id;
  uint64_t rng;
  struct slot *slots;
  _Alignas(64) _Atomic(struct node *) inbox;
  _Atomic uint64_t pending; /* blocks in the inbox, about */
  _Alignas(64) uint64_t mallocs, frees, handed, handoffs_full, remote_frees, max_inbox, errors;
  int64_t tls_bad;
};

static struct worker *workers;
static double deadline;
static _Atomic int stop;
static pthread_barrier_t start_line;
static uint64_t tag_salt;
static unsigned octave_lo, octave_hi; /* floor(log2) of min and (max - 1) */

static _Atomic uint64_t errors_printed;

static inline uint64_t tag_of(const void *p, uint64_t size, uint64_t owner) {
  uint64_t z = (uint64_t)(uintptr_t)p ^ size * 0x9e3779b97f4a7c15ull ^ owner ^ tag_salt;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#define MAIN_THREAD (-1) /* the main thread, freeing what is left */

static void content_error(const char *what, int thread, const void *p, uint64_t size,
                          uint64_t owner, uint64_t got, uint64_t want) {
  char who[32] = "main thread";
  if (thread != MAIN_THREAD) snprintf(who, sizeof who, "thread %d", thread);
  if (atomic_fetch_add(&errors_printed, 1) < 20)
    fprintf(stderr,
            "mid_mt: content error: %s, %s of block %p (%llu bytes, owner %llu): "
            "holds %016llx, want %016llx\n",
            who, what, p, (unsigned long long)size, (unsigned long long)owner,
            (unsigned long long)got, (unsigned long long)want);
}

static void touch(unsigned char *p, size_t size, uint64_t owner) {
  uint64_t tag = tag_of(p, size, owner);
  memcpy(p, &tag, sizeof tag);
  p[size - 1] = (unsigned char)tag;
}

/* Checks the head tag and the last byte; returns 1 if both hold. */
static int check(const unsigned char *p, size_t size, uint64_t owner, int thread) {
  uint64_t want = tag_of(p, size, owner), got;
  memcpy(&got, p, sizeof got);
  if (got != want) {
    content_error("head tag", thread, p, size, owner, got, want);
    return 0;
  }
  if (p[size - 1] != (unsigned char)want) {
    content_error("last byte", thread, p, size, owner, p[size - 1], want & 0xff);
    return 0;
  }
  return 1;
}

/* Frees a block received from another thread; returns 1 if intact. */
static int free_received(struct node *n, int thread) {
  const unsigned char *p = (const unsigned char *)n;
  uint64_t want = tag_of(p, n->size, n->owner) & 0xff;
  int ok = p[n->size - 1] == want;
  if (!ok) content_error("last byte after hand-off", thread, p, n->size, n->owner,
                         p[n->size - 1], want);
  free(n);
  return ok;
}

static uint64_t drain(struct worker *w) {
  struct node *n = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
  uint64_t freed = 0;
  while (n) {
    struct node *next = n->next;
    if (!free_received(n, (int)w->id)) w->errors++;
    freed++;
    n = next;
  }
  if (freed) atomic_fetch_sub_explicit(&w->pending, freed, memory_order_relaxed);
  if (freed > w->max_inbox) w->max_inbox = freed;
  return freed;
}

/* Returns 0, leaving p to the caller, when the inbox is full. */
static int hand_off(struct worker *to, unsigned char *p, size_t size, uint64_t owner) {
  if (atomic_load_explicit(&to->pending, memory_order_relaxed) >= P.live) return 0;
  atomic_fetch_add_explicit(&to->pending, 1, memory_order_relaxed);
  struct node *n = (struct node *)p;
  n->size = size;
  n->owner = owner;
  struct node *head = atomic_load_explicit(&to->inbox, memory_order_relaxed);
  do n->next = head;
  while (!atomic_compare_exchange_weak_explicit(&to->inbox, &head, n, memory_order_release,
                                                memory_order_relaxed));
  return 1;
}

static size_t draw_size(uint64_t x) {
  unsigned e = octave_lo + (unsigned)(x % (octave_hi - octave_lo + 1));
  uint64_t lo = 1ull << e, hi = 2ull << e;
  if (lo < P.min_size) lo = P.min_size;
  if (hi > P.max_size) hi = P.max_size;
  return (size_t)(lo + (x >> 8) % (hi - lo + 1));
}

static void *run(void *arg) {
  struct worker *w = arg;
  unsigned others = (unsigned)P.threads - 1;
  pthread_barrier_wait(&start_line);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int k = 0; k < 256; k++) {
      uint64_t x = wl_rand(&w->rng);
      struct slot *s = &w->slots[x % P.live];
      if (s->p) {
        if (!check(s->p, s->size, w->id, (int)w->id)) w->errors++;
        if (others && (x >> 32) % 100 < P.remote_percent) {
          unsigned to = (w->id + 1 + (unsigned)((x >> 40) % others)) % (unsigned)P.threads;
          if (hand_off(&workers[to], s->p, s->size, w->id)) {
            w->handed++;
          } else {
            free(s->p);
            w->frees++;
            w->handoffs_full++;
          }
        } else {
          free(s->p);
          w->frees++;
        }
      }
      size_t n = draw_size(wl_rand(&w->rng));
      unsigned char *p = malloc(n);
      if (!p) {
        fprintf(stderr, "mid_mt: malloc(%zu) failed\n", n);
        exit(1);
      }
      touch(p, n, w->id);
      s->p = p;
      s->size = n;
      w->mallocs++;
    }
    w->remote_frees += drain(w);
    if (wl_now() >= deadline) atomic_store(&stop, 1);
  }
  w->remote_frees += drain(w);
  w->tls_bad = wl_tls_sll_verify();
  return NULL;
}

static const struct wl_option options[] = {
    {"threads", "worker threads, one per online CPU unless given", WL_U64, 1, 1024, &P.threads},
    {"seconds", "run time", WL_SECONDS, 0.01, 86400, &P.seconds},
    {"seed", "random seed (same seed, same sequence per thread)", WL_U64, 0, 1e18, &P.seed},
    {"live", "live blocks per thread", WL_U64, 1, 10000000, &P.live},
    {"remote-percent", "share of frees handed to another thread", WL_U64, 0, 100,
     &P.remote_percent},
    {"min-size", "smallest block in bytes", WL_U64, MIN_BLOCK, 1 << 26, &P.min_size},
    {"max-size", "largest block in bytes", WL_U64, MIN_BLOCK, 1 << 26, &P.max_size},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static unsigned floor_log2(uint64_t v) { return 63 - (unsigned)__builtin_clzll(v); }

int main(int argc, char **argv) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  P.threads = cpus > 0 ? (uint64_t)cpus : 1;
  if (P.threads > 1024) P.threads = 1024;
  wl_parse(argc, argv, synopsis, options, NOPTIONS);
  if (P.min_size > P.max_size) {
    wl_usage(stderr, "mid_mt", synopsis, options, NOPTIONS);
    wl_die_usage("mid_mt", "--min-size must not exceed --max-size");
  }
  octave_lo = floor_log2(P.min_size);
  octave_hi = P.max_size > P.min_size ? floor_log2(P.max_size - 1) : octave_lo;
  tag_salt = wl_seed(P.seed, 0x7a9);

  workers = aligned_alloc(64, P.threads * sizeof *workers);
  if (!workers) return 1;
  memset(workers, 0, P.threads * sizeof *workers);
  pthread_barrier_init(&start_line, NULL, (unsigned)P.threads + 1);
  for (uint64_t t = 0; t < P.threads; t++) {
    struct worker *w = &workers[t];
    w->id = (unsigned)t;
    w->rng = wl_seed(P.seed, t);
    w->slots = calloc(P.live, sizeof *w->slots);
    if (!w->slots || pthread_create(&w->tid, NULL, run, w)) {
      fprintf(stderr, "mid_mt: cannot start thread %llu\n", (unsigned long long)t);
      return 1;
    }
  }
  double start = wl_phase_start();
  deadline = start + P.seconds;
  pthread_barrier_wait(&start_line);
  for (uint64_t t = 0; t < P.threads; t++) pthread_join(workers[t].tid, NULL);
  double seconds = wl_phase_end(start);

  uint64_t mallocs = 0, frees = 0, handed = 0, full = 0, remote_frees = 0, max_inbox = 0;
  uint64_t errors = 0;
  uint64_t ops_min = UINT64_MAX, ops_max = 0;
  int64_t tls_bad = 0;
  for (uint64_t t = 0; t < P.threads; t++) {
    struct worker *w = &workers[t];
    mallocs += w->mallocs, frees += w->frees, handed += w->handed, full += w->handoffs_full;
    if (w->max_inbox > max_inbox) max_inbox = w->max_inbox;
    remote_frees += w->remote_frees, errors += w->errors;
    uint64_t ops = w->mallocs + w->frees + w->remote_frees;
    if (ops < ops_min) ops_min = ops;
    if (ops > ops_max) ops_max = ops;
    tls_bad = w->tls_bad < 0 || tls_bad < 0 ? -1 : tls_bad + w->tls_bad;
  }
  /* What is left, freed from here: blocks of threads that have exited. */
  uint64_t leftover = 0;
  for (uint64_t t = 0; t < P.threads; t++) {
    struct worker *w = &workers[t];
    struct node *n = atomic_exchange(&w->inbox, NULL);
    for (struct node *next; n; n = next, leftover++) {
      next = n->next;
      if (!free_received(n, MAIN_THREAD)) errors++;
    }
    for (uint64_t i = 0; i < P.live; i++) {
      struct slot *s = &w->slots[i];
      if (!s->p) continue;
      if (!check(s->p, s->size, t, MAIN_THREAD)) errors++;
      free(s->p);
      leftover++;
    }
    free(w->slots);
  }

  wl_result_begin("mid_mt", (unsigned)P.threads, mallocs + frees + remote_frees, seconds);
  wl_result_u64("live_per_thread", P.live);
  wl_result_u64("min_size", P.min_size);
  wl_result_u64("max_size", P.max_size);
  wl_result_u64("remote_percent", P.remote_percent);
  wl_result_u64("seed", P.seed);
  wl_result_u64("mallocs", mallocs);
  wl_result_u64("frees", frees + remote_frees);
  wl_result_u64("remote_frees", remote_frees);
  wl_result_u64("handoffs", handed);
  wl_result_u64("handoffs_full", full);
  wl_result_u64("max_inbox", max_inbox);
  wl_result_u64("leftover_frees", leftover);
  wl_result_u64("thread_ops_min", ops_min);
  wl_result_u64("thread_ops_max", ops_max);
  if (tls_bad < 0)
    wl_result_raw("tls_sll_bad", "null");
  else
    wl_result_u64("tls_sll_bad", (uint64_t)tls_bad);
  wl_result_u64("content_errors", errors);
  wl_result_end();
  pthread_barrier_destroy(&start_line);
  free(workers);
  if (errors) {
    fprintf(stderr, "mid_mt: %llu content errors\n", (unsigned long long)errors);
    return 1;
  }
  return 0;
}
