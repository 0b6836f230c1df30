/* larson: the classic server simulation.  Each thread owns an array of
 * chunks and, round after round, frees a random chunk and allocates a new
 * one of random size in its place.  After each round a thread hands its
 * array to a fresh thread and exits, so the new thread frees blocks another
 * thread allocated - the cross-thread traffic a server sees.  Runs until the
 * time is up.
 *
 *   larson <seconds> <min-size> <max-size> <chunks-per-thread> <rounds> <seed> <threads>
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

static const char synopsis[] =
    "<seconds> <min-size> <max-size> <chunks-per-thread> <rounds> <seed> <threads>";

struct params {
  double seconds;
  uint64_t min_size, max_size, chunks, rounds, seed, threads;
};

struct lane {
  void **chunks;
  uint64_t rng;
  uint64_t ops;
  uint64_t generation;
};

static struct params P;
static double deadline;
static _Atomic int stop;

static void *lane_round(void *arg) {
  struct lane *lane = arg;
  uint64_t span = P.max_size - P.min_size + 1;
  for (uint64_t r = 0; r < P.rounds && !atomic_load_explicit(&stop, memory_order_relaxed); r++) {
    for (uint64_t i = 0; i < P.chunks; i++) {
      uint64_t x = wl_rand(&lane->rng);
      uint64_t slot = x % P.chunks;
      free(lane->chunks[slot]);
      size_t n = P.min_size + (size_t)((x >> 32) % span);
      char *p = malloc(n);
      if (!p) {
        fprintf(stderr, "larson: malloc(%zu) failed\n", n);
        exit(1);
      }
      p[0] = (char)x;
      p[n - 1] = (char)x;
      lane->chunks[slot] = p;
    }
    lane->ops += 2 * P.chunks;
    if (wl_now() >= deadline) atomic_store(&stop, 1);
  }
  return NULL;
}

static uint64_t parse_u64(const char *prog, const char *what, const char *text, uint64_t min,
                          uint64_t max) {
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (*text == '-' || end == text || *end || v < min || v > max) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be %llu..%llu, got '%s'", what,
             (unsigned long long)min, (unsigned long long)max, text);
    fprintf(stderr, "usage: %s %s\n", prog, synopsis);
    wl_die_usage(prog, msg);
  }
  return v;
}

static void usage_exit(const char *prog) {
  printf("usage: %s %s\n"
         "  seconds            run time, 1..86400\n"
         "  min-size max-size  block sizes in bytes, 1..67108864, min <= max\n"
         "  chunks-per-thread  live blocks per thread, 1..10000000\n"
         "  rounds             rounds between thread hand-offs, 1..1000000000\n"
         "  seed               random seed (same seed, same sequence per thread)\n"
         "  threads            1..1024\n"
         "Runs under any allocator: preload it (LD_PRELOAD=...).\n"
         "Prints 'Throughput = N operations per second' and one JSON line.\n",
         prog, synopsis);
  exit(0);
}

int main(int argc, char **argv) {
  const char *prog = "larson";
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) usage_exit(prog);
  if (argc != 8) {
    fprintf(stderr, "usage: %s %s\n", prog, synopsis);
    wl_die_usage(prog, "expected 7 arguments");
  }
  P.seconds = (double)parse_u64(prog, "seconds", argv[1], 1, 86400);
  P.min_size = parse_u64(prog, "min-size", argv[2], 1, 64 << 20);
  P.max_size = parse_u64(prog, "max-size", argv[3], P.min_size, 64 << 20);
  P.chunks = parse_u64(prog, "chunks-per-thread", argv[4], 1, 10000000);
  P.rounds = parse_u64(prog, "rounds", argv[5], 1, 1000000000);
  P.seed = parse_u64(prog, "seed", argv[6], 0, UINT64_MAX);
  P.threads = parse_u64(prog, "threads", argv[7], 1, 1024);

  struct lane *lanes = calloc(P.threads, sizeof *lanes);
  pthread_t *tids = calloc(P.threads, sizeof *tids);
  for (uint64_t t = 0; t < P.threads; t++) {
    lanes[t].chunks = calloc(P.chunks, sizeof(void *));
    lanes[t].rng = wl_seed(P.seed, t);
  }
  double start = wl_phase_start();
  deadline = start + P.seconds;
  /* Each lane passes from thread to thread: a new thread per round batch. */
  while (!atomic_load(&stop)) {
    for (uint64_t t = 0; t < P.threads; t++) pthread_create(&tids[t], NULL, lane_round, &lanes[t]);
    for (uint64_t t = 0; t < P.threads; t++) pthread_join(tids[t], NULL);
  }
  double seconds = wl_phase_end(start);
  uint64_t ops = 0;
  for (uint64_t t = 0; t < P.threads; t++) ops += lanes[t].ops;
  printf("Throughput = %.0f operations per second\n", (double)ops / seconds);
  uint64_t peak = wl_peak_rss_kb();
  for (uint64_t t = 0; t < P.threads; t++) {
    for (uint64_t i = 0; i < P.chunks; i++) free(lanes[t].chunks[i]);
    free(lanes[t].chunks);
  }
  wl_result_begin("larson", (unsigned)P.threads, ops, seconds);
  (void)peak;
  wl_result_u64("chunks_per_thread", P.chunks);
  wl_result_u64("min_size", P.min_size);
  wl_result_u64("max_size", P.max_size);
  wl_result_u64("seed", P.seed);
  wl_result_end();
  free(lanes);
  free(tids);
  return 0;
}
