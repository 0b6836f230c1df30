/* A plain multi-threaded malloc/free loop per size tier, for measuring an
 * allocator from outside: run it as is (glibc) or with an allocator
 * preloaded.  Each thread keeps a small ring of live blocks so frees are
 * not simply the block just allocated; prints one JSON line per run.
 *
 *   tier_loop <tiny|mid|large|pair> <threads> <ops-per-thread>
 *
 * "pair" is the single-block malloc+free pair that callgrind counts. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 64

struct tier {
  const char *name;
  size_t min, max;
};

static const struct tier tiers[] = {
    {"tiny", 8, 1024},
    {"mid", 1025, 65536},
    {"large", 65537, 1 << 20},
    {"pair", 32, 32},
};

static const struct tier *tier;
static long ops_per_thread;

static void usage(void) {
  fprintf(stderr,
          "usage: tier_loop <tiny|mid|large|pair> <threads 1..256> <ops-per-thread>\n");
  exit(2);
}

static void *worker(void *arg) {
  uint64_t x = 0x9e3779b97f4a7c15ull * (uintptr_t)(arg);
  if (!x) x = 1;
  void *ring[RING] = {0};
  size_t span = tier->max - tier->min + 1;
  for (long i = 0; i < ops_per_thread; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    if (tier->min == tier->max) {
      void *p = malloc(tier->min);
      *(volatile char *)p = 1;
      free(p);
      continue;
    }
    unsigned slot = (unsigned)(x % RING);
    free(ring[slot]);
    size_t n = tier->min + (size_t)((x >> 16) % span);
    ring[slot] = malloc(n);
    *(volatile char *)ring[slot] = 1;
  }
  for (int i = 0; i < RING; i++) free(ring[i]);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) usage();
  for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++)
    if (!strcmp(argv[1], tiers[i].name)) tier = &tiers[i];
  char *end;
  long threads = strtol(argv[2], &end, 10);
  if (!tier || *end || threads < 1 || threads > 256) usage();
  errno = 0;
  ops_per_thread = strtol(argv[3], &end, 10);
  if (*end || errno || ops_per_thread < 1) usage();

  pthread_t tid[256];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long t = 0; t < threads; t++)
    pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)(t + 1));
  for (long t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double ops = (double)ops_per_thread * (double)threads;
  printf("{\"workload\":\"tier_loop_%s\",\"threads\":%ld,\"ops\":%.0f,\"seconds\":%.4f,"
         "\"ops_per_sec\":%.0f}\n",
         tier->name, threads, ops, secs, ops / secs);
  return 0;
}
