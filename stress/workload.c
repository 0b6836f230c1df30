#include "workload.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hakmem.h"

void wl_usage(FILE *f, const char *prog, const char *synopsis,
              const struct wl_option *options, size_t count) {
  fprintf(f, "usage: %s %s\n", prog, synopsis);
  for (size_t i = 0; i < count; i++) {
    const struct wl_option *o = &options[i];
    if (o->kind == WL_U64)
      fprintf(f, "  --%-14s %s (default %llu, %.0f..%.0f)\n", o->name, o->help,
              (unsigned long long)*(uint64_t *)o->value, o->min, o->max);
    else
      fprintf(f, "  --%-14s %s (default %g s, %g..%g)\n", o->name, o->help,
              *(double *)o->value, o->min, o->max);
  }
  fprintf(f, "  --%-14s %s\n", "help", "this text");
  fprintf(f, "Runs under any allocator: preload it (LD_PRELOAD=...). Ends with one JSON line.\n");
}

void wl_die_usage(const char *prog, const char *msg) {
  fprintf(stderr, "%s: %s\n(try --help)\n", prog, msg);
  exit(2);
}

static int parse_number(const char *text, const struct wl_option *o) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end || v < o->min || v > o->max) return -1;
  if (o->kind == WL_U64) {
    if (v != (double)(uint64_t)v) return -1;
    *(uint64_t *)o->value = (uint64_t)v;
  } else {
    *(double *)o->value = v;
  }
  return 0;
}

void wl_parse(int argc, char **argv, const char *synopsis, const struct wl_option *options,
              size_t count) {
  const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      wl_usage(stdout, prog, synopsis, options, count);
      exit(0);
    }
    const struct wl_option *o = NULL;
    if (!strncmp(arg, "--", 2))
      for (size_t k = 0; k < count; k++)
        if (!strcmp(arg + 2, options[k].name)) o = &options[k];
    char msg[256];
    if (!o) {
      snprintf(msg, sizeof msg, "unknown argument '%s'", arg);
      wl_usage(stderr, prog, synopsis, options, count);
      wl_die_usage(prog, msg);
    }
    if (i + 1 >= argc || parse_number(argv[i + 1], o) < 0) {
      snprintf(msg, sizeof msg, "--%s needs a value in %g..%g, got '%s'", o->name, o->min,
               o->max, i + 1 < argc ? argv[i + 1] : "");
      wl_usage(stderr, prog, synopsis, options, count);
      wl_die_usage(prog, msg);
    }
    i++;
  }
}

static void *hakmem_symbol(const char *name) { return dlsym(RTLD_DEFAULT, name); }

const char *wl_allocator_name(void) {
  const char *(*variant)(void) = (const char *(*)(void))hakmem_symbol("hak_variant");
  if (variant) return strcmp(variant(), "debug") ? "hakmem-release" : "hakmem-debug";
  static const struct { const char *symbol, *name; } peers[] = {
      {"mi_malloc", "mimalloc"},
      {"mallctl", "jemalloc"},
      {"tc_malloc", "tcmalloc"},
  };
  for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++)
    if (hakmem_symbol(peers[i].symbol)) return peers[i].name;
  return "glibc";
}

/* VmHWM rather than getrusage: ru_maxrss survives exec, so a workload
 * started by a big harness process would report the harness's peak. */
uint64_t wl_peak_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

uint64_t wl_rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

double wl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double process_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double phase_cpu_start, phase_cpu_seconds = -1;

double wl_phase_start(void) {
  phase_cpu_start = process_cpu_now();
  return wl_now();
}

double wl_phase_end(double start) {
  phase_cpu_seconds = process_cpu_now() - phase_cpu_start;
  return wl_now() - start;
}

int64_t wl_integrity_events(void) {
  uint64_t (*events)(void) = (uint64_t (*)(void))hakmem_symbol("hak_integrity_events");
  return events ? (int64_t)events() : -1;
}

int64_t wl_tls_sll_verify(void) {
  size_t (*verify)(void) = (size_t (*)(void))hakmem_symbol("hak_tls_sll_verify");
  return verify ? (int64_t)verify() : -1;
}

/* ---- the result line ---- */

static char result[65536];
static size_t result_len;

static void add(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(result + result_len, sizeof result - result_len, fmt, ap);
  va_end(ap);
  if (n > 0) result_len += (size_t)n < sizeof result - result_len ? (size_t)n : 0;
}

void wl_result_begin(const char *workload, unsigned threads, uint64_t ops, double seconds) {
  result_len = 0;
  add("{\"workload\":\"%s\",\"allocator\":\"%s\",\"threads\":%u,\"ops\":%llu,"
      "\"seconds\":%.6f,\"ops_per_sec\":%.1f,\"peak_rss_kb\":%llu",
      workload, wl_allocator_name(), threads, (unsigned long long)ops, seconds,
      seconds > 0 ? (double)ops / seconds : 0.0, (unsigned long long)wl_peak_rss_kb());
  if (phase_cpu_seconds >= 0)
    add(",\"cpu_seconds\":%.6f,\"ops_per_cpu_sec\":%.1f", phase_cpu_seconds,
        phase_cpu_seconds > 0 ? (double)ops / phase_cpu_seconds : 0.0);
}

void wl_result_u64(const char *key, uint64_t v) {
  add(",\"%s\":%llu", key, (unsigned long long)v);
}

void wl_result_double(const char *key, double v) { add(",\"%s\":%.6g", key, v); }

void wl_result_raw(const char *key, const char *json) { add(",\"%s\":%s", key, json); }

void wl_result_end(void) {
  int (*stats_get)(struct hak_stats *) =
      (int (*)(struct hak_stats *))hakmem_symbol("hak_stats_get");
  if (!stats_get) {
    add(",\"integrity_events\":null,\"classes\":null}");
  } else {
    static struct hak_stats st;
    stats_get(&st);
    add(",\"integrity_events\":%llu,\"classes\":[", (unsigned long long)st.integrity_events);
    int first = 1;
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
      const struct hak_class_stats *cs = &st.cls[c];
      if (!cs->allocs) continue;
      add("%s{\"size\":%llu,\"allocs\":%llu,\"frees\":%llu,\"remote_frees\":%llu,"
          "\"reserved_bytes\":%llu}",
          first ? "" : ",", (unsigned long long)cs->block_size,
          (unsigned long long)cs->allocs, (unsigned long long)cs->frees,
          (unsigned long long)cs->remote_frees, (unsigned long long)cs->reserved_bytes);
      first = 0;
    }
    add("]}");
  }
  printf("%s\n", result);
  fflush(stdout);
}
