/* sh8bench: a SmartHeap-style workload (SPEC §3).  Every thread, batch
 * after batch, allocates a batch of small blocks of varying sizes, fills
 * each with a pattern, then frees the batch in forward, reverse or random
 * order (the three in turn).  A share of every batch (--remote-percent) is
 * not freed by its thread but handed to another thread's mailbox; that
 * thread checks the pattern and frees the block - the cross-thread frees
 * that feed the allocator's remote-free queues.  Every block's pattern is
 * checked before it is freed, by whichever thread frees it, so a block the
 * allocator hands out twice or writes into while it is live shows up as a
 * pattern error.
 *
 * Sizes: half the blocks are 8..64 bytes, 35% 65..256 and 15% 257..max-size
 * (each range clipped to --max-size).
 *
 * With --verify-interval S each thread calls hak_tls_sll_verify() (through
 * wl_tls_sll_verify) every S seconds, right after freeing a batch when its
 * TLS free lists are fullest, and counts the bad nodes it reports.
 *
 * Soak mode - the run SPEC §1 asks for, long enough to reproduce the TLS
 * SLL header fault (seen after about a minute of sh8bench):
 *
 *   bazel run //stress:sh8bench_soak                      # 600 s, 4 threads
 *   bazel run //stress:sh8bench_soak -- --seconds 1800    # any flag overrides
 *
 * or by hand:
 *
 *   HAKMEM_FAULT_ACTION=report LD_PRELOAD=$PWD/bazel-bin/allocator/libhakmem_debug.so \
 *       bazel-bin/stress/sh8bench --threads 4 --seconds 600 --verify-interval 1
 *
 * It passes only with integrity_events == 0, verify_bad_nodes == 0 and
 * pattern_errors == 0 (stress/soak.sh checks all three).
 *
 * Exit status: 0; 1 when a pattern error, a bad TLS SLL node or an
 * integrity event was seen (the result line is printed first); 2 on a bad
 * argument. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

static const char synopsis[] =
    "[--threads N] [--seconds S] [--seed N] [--batch N] [--max-size N] "
    "[--remote-percent P] [--verify-interval S]";

static struct {
  uint64_t threads, seed, batch, max_size, remote_percent;
  double seconds, verify_interval;
} P = {
    .threads = 2,
    .seed = 1,
    .batch = 256,
    .max_size = 1024,
    .remote_percent = 25,
    .seconds = 10,
    .verify_interval = 0,
};

static const struct wl_option options[] = {
    {"threads", "worker threads", WL_U64, 1, 1024, &P.threads},
    {"seconds", "run time", WL_SECONDS, 0.01, 604800, &P.seconds},
    {"seed", "random seed (same seed, same sizes and orders per thread)", WL_U64, 0,
     1e15, &P.seed},
    {"batch", "blocks per batch (each batch takes batch/2..batch)", WL_U64, 1, 1000000,
     &P.batch},
    {"max-size", "largest block in bytes (most are 8..256)", WL_U64, 1, 64 << 20,
     &P.max_size},
    {"remote-percent", "share of each batch freed by another thread", WL_U64, 0, 100,
     &P.remote_percent},
    {"verify-interval", "call hak_tls_sll_verify() per thread every S s, 0 = never",
     WL_SECONDS, 0, 86400, &P.verify_interval},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static const char soak_help[] =
    "Soak mode (SPEC §1, TLS SLL header integrity): 10 minutes under the debug\n"
    "variant with a TLS SLL walk every second; must end with integrity_events 0,\n"
    "verify_bad_nodes 0 and pattern_errors 0:\n"
    "  bazel run //stress:sh8bench_soak [-- --seconds S ...]\n"
    "  HAKMEM_FAULT_ACTION=report LD_PRELOAD=bazel-bin/allocator/libhakmem_debug.so \\\n"
    "      sh8bench --threads 4 --seconds 600 --verify-interval 1\n"
    "Exit status 1 when a pattern error, a bad TLS SLL node or an integrity event\n"
    "was seen.\n";

/* A live block: where, how big, and the tag its pattern derives from. */
struct item {
  unsigned char *p;
  uint64_t tag;
  uint32_t size;
};

/* Blocks handed to a thread by the others, under a mutex.  Senders append a
 * whole batch's share at once, the receiver swaps the array out. */
struct mailbox {
  pthread_mutex_t lock;
  struct item *items;
  size_t n, cap;
};

struct vec {
  struct item *items;
  size_t n, cap;
};

struct lane {
  _Alignas(64) struct mailbox box;
  unsigned id;
  uint64_t rng;
  struct item *batch;
  uint32_t *order;
  struct vec *out;  /* per target thread */
  struct vec inbox; /* the receiver's side of the swap */
  uint64_t allocs, frees, remote_sent, remote_freed, mailbox_waits, batches;
  uint64_t pattern_errors, verify_calls, verify_bad_nodes;
};

/* A sender finding the target's mailbox past this many blocks waits
 * (draining its own mailbox meanwhile) until the receiver catches up, so a
 * slow or descheduled receiver cannot make memory grow without bound and
 * the remote share stays exact.  max(64 batches, 16384) blocks. */
static size_t mailbox_limit;

static struct lane *lanes;
static pthread_barrier_t done_barrier;
static _Atomic int stop;
static _Atomic uint64_t reported_errors;
static double deadline;
static int verify_available;

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "sh8bench: malloc(%zu) failed\n", n);
    exit(1);
  }
  return p;
}

static void vec_push(struct vec *v, const struct item *it) {
  if (v->n == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 64;
    v->items = realloc(v->items, v->cap * sizeof *v->items);
    if (!v->items) {
      fprintf(stderr, "sh8bench: out of memory\n");
      exit(1);
    }
  }
  v->items[v->n++] = *it;
}

/* ---- the pattern ---- */

static inline uint64_t pattern_word(uint64_t tag, size_t off) {
  return tag ^ ((uint64_t)off * 0x9e3779b97f4a7c15ull);
}

static void fill(unsigned char *p, size_t n, uint64_t tag) {
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t w = pattern_word(tag, k);
    memcpy(p + k, &w, 8);
  }
  if (k < n) {
    uint64_t w = pattern_word(tag, k);
    memcpy(p + k, &w, n - k);
  }
}

/* Offset of the first byte that differs from the pattern, or n. */
static size_t check(const unsigned char *p, size_t n, uint64_t tag) {
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t w = pattern_word(tag, k), got;
    memcpy(&got, p + k, 8);
    if (got != w) break;
  }
  for (; k < n; k++) {
    uint64_t w = pattern_word(tag, k & ~(size_t)7);
    if (p[k] != (unsigned char)(w >> (8 * (k & 7)))) return k;
  }
  return n;
}

/* Checks the block's pattern and frees it. */
static void check_and_free(struct lane *lane, const struct item *it, int remote) {
  size_t bad = check(it->p, it->size, it->tag);
  if (bad != it->size) {
    lane->pattern_errors++;
    if (atomic_fetch_add(&reported_errors, 1) < 20) {
      unsigned char want = (unsigned char)(pattern_word(it->tag, bad & ~(size_t)7) >>
                                           (8 * (bad & 7)));
      fprintf(stderr,
              "sh8bench: pattern error in block %p (%u bytes, %s free by thread %u) at "
              "offset %zu: found 0x%02x, want 0x%02x\n",
              (void *)it->p, it->size, remote ? "remote" : "local", lane->id, bad,
              it->p[bad], want);
    }
  }
  free(it->p);
  lane->frees++;
  if (remote) lane->remote_freed++;
}

/* ---- mailboxes ---- */

static void drain(struct lane *lane);

/* Moves the blocks of out to target's mailbox, first waiting while that
 * mailbox is full.  No wait once the run is stopping: the target may be at
 * the final barrier, after which every thread drains its mailbox anyway. */
static void post(struct lane *lane, unsigned target, struct vec *out) {
  if (!out->n) return;
  struct mailbox *box = &lanes[target].box;
  for (;;) {
    pthread_mutex_lock(&box->lock);
    if (box->n < mailbox_limit || atomic_load_explicit(&stop, memory_order_relaxed)) break;
    pthread_mutex_unlock(&box->lock);
    lane->mailbox_waits++;
    drain(lane); /* the target may be waiting for this thread's mailbox */
    sched_yield();
  }
  size_t take = out->n;
  if (box->n + take > box->cap) {
    size_t cap = box->cap ? box->cap : 256;
    while (cap < box->n + take) cap *= 2;
    struct item *grown = realloc(box->items, cap * sizeof *grown);
    if (!grown) {
      fprintf(stderr, "sh8bench: out of memory\n");
      exit(1);
    }
    box->items = grown;
    box->cap = cap;
  }
  memcpy(box->items + box->n, out->items, take * sizeof *out->items);
  box->n += take;
  pthread_mutex_unlock(&box->lock);
  lane->remote_sent += take;
  out->n = 0;
}

/* Checks and frees everything in the lane's own mailbox. */
static void drain(struct lane *lane) {
  struct mailbox *box = &lane->box;
  pthread_mutex_lock(&box->lock);
  struct item *items = box->items;
  size_t n = box->n, cap = box->cap;
  box->items = lane->inbox.items;
  box->cap = lane->inbox.cap;
  box->n = 0;
  pthread_mutex_unlock(&box->lock);
  for (size_t i = 0; i < n; i++) check_and_free(lane, &items[i], 1);
  lane->inbox.items = items;
  lane->inbox.cap = cap;
}

/* ---- the thread ---- */

static size_t pick_size(uint64_t *rng) {
  uint64_t x = wl_rand(rng);
  uint64_t r = x % 100, lo, hi;
  if (r < 50) lo = 8, hi = 64;
  else if (r < 85) lo = 65, hi = 256;
  else lo = 257, hi = P.max_size;
  if (hi > P.max_size) hi = P.max_size;
  if (lo > hi) lo = P.max_size < 8 ? 1 : 8;
  return (size_t)(lo + (x >> 32) % (hi - lo + 1));
}

static void verify_now(struct lane *lane) {
  int64_t bad = wl_tls_sll_verify();
  lane->verify_calls++;
  if (bad > 0) {
    lane->verify_bad_nodes += (uint64_t)bad;
    fprintf(stderr, "sh8bench: hak_tls_sll_verify found %lld bad node(s) in thread %u\n",
            (long long)bad, lane->id);
  }
}

static void *run(void *arg) {
  struct lane *lane = arg;
  uint64_t threads = P.threads;
  int verify = verify_available && P.verify_interval > 0;
  double next_verify = wl_now() + P.verify_interval;
  uint64_t lo = P.batch / 2 ? P.batch / 2 : 1;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    size_t n = (size_t)(lo + wl_rand(&lane->rng) % (P.batch - lo + 1));
    for (size_t i = 0; i < n; i++) {
      struct item *it = &lane->batch[i];
      it->size = (uint32_t)pick_size(&lane->rng);
      it->tag = wl_rand(&lane->rng);
      it->p = xmalloc(it->size);
      fill(it->p, it->size, it->tag);
      lane->order[i] = (uint32_t)i;
    }
    lane->allocs += n;

    unsigned mode = (unsigned)(lane->batches % 3); /* forward, reverse, random */
    if (mode == 2) {
      for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(wl_rand(&lane->rng) % (i + 1));
        uint32_t t = lane->order[i];
        lane->order[i] = lane->order[j];
        lane->order[j] = t;
      }
    }
    for (size_t k = 0; k < n; k++) {
      size_t i = mode == 1 ? n - 1 - k : lane->order[k];
      struct item *it = &lane->batch[i];
      uint64_t x = wl_rand(&lane->rng);
      if (threads > 1 && x % 100 < P.remote_percent) {
        unsigned target = (unsigned)((lane->id + 1 + (x >> 32) % (threads - 1)) % threads);
        vec_push(&lane->out[target], it);
      } else {
        check_and_free(lane, it, 0);
      }
    }
    for (unsigned t = 0; t < threads; t++) post(lane, t, &lane->out[t]);
    drain(lane);
    lane->batches++;

    double now = wl_now();
    if (verify && now >= next_verify) {
      verify_now(lane);
      next_verify = now + P.verify_interval;
    }
    if (now >= deadline) atomic_store(&stop, 1);
  }
  /* Nobody posts after the barrier: the last drain empties the mailbox. */
  pthread_barrier_wait(&done_barrier);
  drain(lane);
  if (verify) verify_now(lane);
  return NULL;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      wl_usage(stdout, "sh8bench", synopsis, options, NOPTIONS);
      fputs(soak_help, stdout);
      return 0;
    }
  }
  wl_parse(argc, argv, synopsis, options, NOPTIONS);

  /* hak_tls_sll_verify exists only when hakmem is the allocator. */
  verify_available = wl_tls_sll_verify() >= 0;
  if (P.verify_interval > 0 && !verify_available)
    fprintf(stderr, "sh8bench: --verify-interval ignored: the allocator is not hakmem\n");

  unsigned threads = (unsigned)P.threads;
  lanes = aligned_alloc(64, ((threads * sizeof *lanes) + 63) & ~(size_t)63);
  pthread_t *tids = xmalloc(threads * sizeof *tids);
  if (!lanes) return 1;
  memset(lanes, 0, threads * sizeof *lanes);
  for (unsigned t = 0; t < threads; t++) {
    struct lane *lane = &lanes[t];
    pthread_mutex_init(&lane->box.lock, NULL);
    lane->id = t;
    lane->rng = wl_seed(P.seed, t);
    lane->batch = xmalloc(P.batch * sizeof *lane->batch);
    lane->order = xmalloc(P.batch * sizeof *lane->order);
    lane->out = calloc(threads, sizeof *lane->out);
    if (!lane->out) return 1;
  }
  pthread_barrier_init(&done_barrier, NULL, threads);
  mailbox_limit = P.batch * 64 > 16384 ? (size_t)P.batch * 64 : 16384;

  double start = wl_phase_start();
  deadline = start + P.seconds;
  for (unsigned t = 0; t < threads; t++) {
    if (pthread_create(&tids[t], NULL, run, &lanes[t])) {
      fprintf(stderr, "sh8bench: pthread_create failed\n");
      return 1;
    }
  }
  for (unsigned t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  double seconds = wl_phase_end(start);

  uint64_t allocs = 0, frees = 0, remote = 0, waits = 0, batches = 0;
  uint64_t pattern_errors = 0, verify_calls = 0, verify_bad = 0;
  for (unsigned t = 0; t < threads; t++) {
    struct lane *l = &lanes[t];
    allocs += l->allocs;
    frees += l->frees;
    remote += l->remote_freed;
    waits += l->mailbox_waits;
    batches += l->batches;
    pattern_errors += l->pattern_errors;
    verify_calls += l->verify_calls;
    verify_bad += l->verify_bad_nodes;
  }
  if (allocs != frees)
    fprintf(stderr, "sh8bench: %llu blocks allocated but %llu freed\n",
            (unsigned long long)allocs, (unsigned long long)frees);
  int64_t events = wl_integrity_events();

  wl_result_begin("sh8bench", threads, allocs + frees, seconds);
  wl_result_u64("allocs", allocs);
  wl_result_u64("frees", frees);
  wl_result_u64("remote_frees", remote);
  wl_result_u64("mailbox_waits", waits);
  wl_result_u64("batches", batches);
  wl_result_u64("batch", P.batch);
  wl_result_u64("max_size", P.max_size);
  wl_result_u64("remote_percent", P.remote_percent);
  wl_result_u64("seed", P.seed);
  wl_result_double("verify_interval", P.verify_interval);
  wl_result_u64("verify_calls", verify_calls);
  wl_result_u64("verify_bad_nodes", verify_bad);
  wl_result_u64("pattern_errors", pattern_errors);
  wl_result_end();

  for (unsigned t = 0; t < threads; t++) {
    free(lanes[t].batch);
    free(lanes[t].order);
    for (unsigned u = 0; u < threads; u++) free(lanes[t].out[u].items);
    free(lanes[t].out);
    free(lanes[t].box.items);
    free(lanes[t].inbox.items);
    pthread_mutex_destroy(&lanes[t].box.lock);
  }
  free(lanes);
  free(tids);
  pthread_barrier_destroy(&done_barrier);
  return pattern_errors || verify_bad || events > 0 || allocs != frees ? 1 : 0;
}
