/* What every stress workload shares: argument parsing, the allocator's
 * name, peak RSS, hakmem's statistics when hakmem is the allocator, and
 * the one-line JSON result of DESIGN.md.
 *
 * Workloads are linked to the system allocator and run under any other by
 * preloading it, so the same binary measures every allocator.  hakmem's
 * hak_stats_get is looked up at run time: present when libhakmem.so is
 * preloaded, absent (figures reported as null) under a peer. */
#ifndef HAKMEM_STRESS_WORKLOAD_H
#define HAKMEM_STRESS_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A command-line option: --name VALUE, parsed as an unsigned integer in
 * [min, max] or a duration in seconds (a double in [min, max]). */
struct wl_option {
  const char *name;
  const char *help;
  enum { WL_U64, WL_SECONDS } kind;
  double min, max;
  void *value; /* uint64_t * or double * */
};

/* Parses argv against options; on --help prints usage and exits 0, on a bad
 * argument prints the problem and usage to stderr and exits 2. */
void wl_parse(int argc, char **argv, const char *synopsis, const struct wl_option *options,
              size_t count);
/* Prints usage for the options to f. */
void wl_usage(FILE *f, const char *prog, const char *synopsis,
              const struct wl_option *options, size_t count);
/* Exits 2 after printing msg and a pointer to --help. */
void wl_die_usage(const char *prog, const char *msg) __attribute__((noreturn));

/* "glibc", "mimalloc", "jemalloc", "tcmalloc", "hakmem-release",
 * "hakmem-debug" or "unknown". */
const char *wl_allocator_name(void);
/* Peak resident set of the process in KiB. */
uint64_t wl_peak_rss_kb(void);
/* Current resident set in KiB. */
uint64_t wl_rss_kb(void);
/* Monotonic seconds. */
double wl_now(void);
/* The measured phase.  wl_phase_start returns wl_now() and notes the
 * process's CPU time; wl_phase_end returns the wall seconds since start and
 * notes the CPU seconds all threads spent meanwhile, which the result line
 * reports as cpu_seconds and ops_per_cpu_sec.  Throughput per CPU-second
 * does not count time the workload's threads spent preempted, so on a busy
 * machine it moves far less than ops per wall second. */
double wl_phase_start(void);
double wl_phase_end(double start);

/* hakmem's integrity events, or -1 when hakmem is not the allocator. */
int64_t wl_integrity_events(void);
/* Calls hak_tls_sll_verify on the calling thread; -1 without hakmem. */
int64_t wl_tls_sll_verify(void);

/* Deterministic per-thread random numbers (xorshift64*). */
static inline uint64_t wl_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}
static inline uint64_t wl_seed(uint64_t seed, uint64_t stream) {
  uint64_t s = (seed + 1) * 0x9e3779b97f4a7c15ull ^ (stream + 1) * 0xbf58476d1ce4e5b9ull;
  return s ? s : 1;
}

/* The result line.  wl_result_begin prints the common fields; workloads
 * append their own with wl_result_* and close with wl_result_end, which
 * adds integrity_events and hakmem's per-class figures (null elsewhere). */
void wl_result_begin(const char *workload, unsigned threads, uint64_t ops, double seconds);
void wl_result_u64(const char *key, uint64_t v);
void wl_result_double(const char *key, double v);
void wl_result_raw(const char *key, const char *json);
void wl_result_end(void);

#endif
