/* Deterministic, single-threaded allocation patterns for the instruction
 * gate (regression/gate.py): a fixed number of operations on fixed inputs,
 * no clocks, no threads, so callgrind counts the same instructions on every
 * run.  The //stress workloads stop after a time, not an operation count;
 * these are their patterns cut down to one thread and a count:
 *
 *   det_driver <mode> <ops> [seed]
 *
 *   larson    1000 live blocks of 8..1000 bytes, each op frees a random
 *             one and allocates a new random size (larson's inner loop)
 *   sh8bench  batches of 128..256 blocks of 8..1024 bytes (mostly <= 256),
 *             freed forward, in reverse and in random order in turn;
 *             one op = one malloc or one free
 *   mid       256 live blocks of 1..64 KiB, random replacement (mid_mt)
 *   realloc   16 buffers grown by realloc x1.5 from 16 bytes past 128 KiB (into the large tier),
 *             then freed and restarted (realloc); one op = one call
 *   classes   malloc+free of one block per size class, cycling through
 *             hakmem's 44 class sizes and two large sizes
 *   calloc    ring of 64 blocks, calloc of 8..4096 bytes
 *
 * Linked to the system allocator; run under another by preloading it.
 * Prints one JSON line: {"workload":"det_<mode>","ops":N,
 * "integrity_events":E} (E null without hakmem). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static inline uint64_t next(void) {
  uint64_t x = rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng = x;
  return x * 0x2545f4914f6cdd1dull;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "det_driver: malloc(%zu) failed\n", n);
    exit(1);
  }
  *(volatile char *)p = 1;
  return p;
}

static uint64_t do_larson(uint64_t ops) {
  enum { LIVE = 1000 };
  static void *live[LIVE];
  for (int i = 0; i < LIVE; i++) live[i] = xmalloc(8 + next() % 993);
  for (uint64_t i = 0; i < ops; i++) {
    unsigned k = (unsigned)(next() % LIVE);
    free(live[k]);
    live[k] = xmalloc(8 + next() % 993);
  }
  for (int i = 0; i < LIVE; i++) free(live[i]);
  return ops;
}

static size_t sh8_size(void) {
  uint64_t r = next();
  return (r & 7) ? 8 + (r >> 8) % 249 : 8 + (r >> 8) % 1017;
}

static uint64_t do_sh8bench(uint64_t ops) {
  static void *batch[256];
  static unsigned order[256];
  uint64_t done = 0;
  for (unsigned turn = 0; done < ops; turn++) {
    unsigned n = 128 + (unsigned)(next() % 129);
    for (unsigned i = 0; i < n; i++) batch[i] = xmalloc(sh8_size());
    switch (turn % 3) {
      case 0:
        for (unsigned i = 0; i < n; i++) free(batch[i]);
        break;
      case 1:
        for (unsigned i = n; i-- > 0;) free(batch[i]);
        break;
      default:
        for (unsigned i = 0; i < n; i++) order[i] = i;
        for (unsigned i = n - 1; i > 0; i--) {
          unsigned j = (unsigned)(next() % (i + 1)), t = order[i];
          order[i] = order[j], order[j] = t;
        }
        for (unsigned i = 0; i < n; i++) free(batch[order[i]]);
    }
    done += 2 * n;
  }
  return done;
}

static uint64_t do_mid(uint64_t ops) {
  enum { LIVE = 256 };
  static void *live[LIVE];
  for (int i = 0; i < LIVE; i++) live[i] = xmalloc(1024 + next() % (65536 - 1024 + 1));
  for (uint64_t i = 0; i < ops; i++) {
    unsigned k = (unsigned)(next() % LIVE);
    free(live[k]);
    live[k] = xmalloc(1024 + next() % (65536 - 1024 + 1));
  }
  for (int i = 0; i < LIVE; i++) free(live[i]);
  return ops;
}

static uint64_t do_realloc(uint64_t ops) {
  enum { BUFS = 16 };
  static char *buf[BUFS];
  static size_t len[BUFS];
  for (uint64_t i = 0; i < ops; i++) {
    unsigned k = (unsigned)(next() % BUFS);
    if (len[k] >= (128u << 10)) {
      free(buf[k]);
      buf[k] = NULL, len[k] = 0;
      continue;
    }
    size_t n = len[k] ? len[k] + len[k] / 2 : 16;
    char *q = realloc(buf[k], n);
    if (!q) {
      fprintf(stderr, "det_driver: realloc(%zu) failed\n", n);
      exit(1);
    }
    q[n - 1] = 1;
    buf[k] = q, len[k] = n;
  }
  for (int k = 0; k < BUFS; k++) free(buf[k]);
  return ops;
}

static const size_t class_sizes[] = {
    16,    32,    48,    64,    80,    96,    112,   128,   160,   192,   224,    256,
    320,   384,   448,   512,   640,   768,   896,   1024,  1280,  1536,   1792,   2048,
    2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,  10240, 12288,  14336,  16384,
    20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536, 131072, 1048576,
};

static uint64_t do_classes(uint64_t ops) {
  const unsigned n = sizeof class_sizes / sizeof class_sizes[0];
  for (uint64_t i = 0; i < ops; i++) free(xmalloc(class_sizes[i % n]));
  return ops;
}

static uint64_t do_calloc(uint64_t ops) {
  enum { RING = 64 };
  static void *ring[RING];
  for (uint64_t i = 0; i < ops; i++) {
    unsigned k = (unsigned)(i % RING);
    free(ring[k]);
    ring[k] = calloc(1, 8 + next() % 4089);
    if (!ring[k]) exit(1);
  }
  for (int k = 0; k < RING; k++) free(ring[k]);
  return ops;
}

static const struct {
  const char *name;
  uint64_t (*run)(uint64_t);
} modes[] = {
    {"larson", do_larson},   {"sh8bench", do_sh8bench}, {"mid", do_mid},
    {"realloc", do_realloc}, {"classes", do_classes},   {"calloc", do_calloc},
};

int main(int argc, char **argv) {
  const unsigned nmodes = sizeof modes / sizeof modes[0];
  int m = -1;
  if (argc >= 3 && argc <= 4)
    for (unsigned i = 0; i < nmodes; i++)
      if (!strcmp(argv[1], modes[i].name)) m = (int)i;
  char *end = NULL;
  unsigned long long ops = argc >= 3 ? strtoull(argv[2], &end, 10) : 0;
  if (m < 0 || !end || *end || ops == 0) {
    fprintf(stderr, "usage: det_driver <larson|sh8bench|mid|realloc|classes|calloc> <ops> [seed]\n");
    return 2;
  }
  if (argc == 4) rng ^= strtoull(argv[3], NULL, 10) * 0xbf58476d1ce4e5b9ull;
  if (!rng) rng = 1;
  uint64_t done = modes[m].run(ops);
  uint64_t (*events)(void) = (uint64_t (*)(void))dlsym(RTLD_DEFAULT, "hak_integrity_events");
  char ev[32] = "null";
  if (events) snprintf(ev, sizeof ev, "%llu", (unsigned long long)events());
  printf("{\"workload\":\"det_%s\",\"ops\":%llu,\"integrity_events\":%s}\n", modes[m].name,
         (unsigned long long)done, ev);
  return 0;
}
