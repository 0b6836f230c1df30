#include "env.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "allocator/decimal.h"

void hkm_ace_config_default(struct hkm_ace_config *c) {
  *c = (struct hkm_ace_config){
      .enabled = 0,
      .fast_interval_ms = 500,
      .slow_interval_ms = 30000,
      .max_p99_lat_ns = 10000000,
      .max_rss_mb = 16384,
      .max_cpu_percent = 5,
      .log_level = 0,
  };
}

static void warn_bad(int fd, const char *name, const char *value, const char *expected) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "hakmem: ignoring %s=%.200s (expected %s); using the default\n",
                   name, value, expected);
  if (n <= 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  for (int off = 0; off < n;) {
    ssize_t w = write(fd, buf + off, (size_t)(n - off));
    if (w <= 0) break;
    off += (int)w;
  }
}

struct setting {
  const char *name;
  uint64_t lo, hi;
  const char *expected;
};

/* Reads one setting into *target; returns 1 if it was set but bad. */
static int load(const struct setting *s, uint64_t *target,
                const char *(*get)(const char *), int fd, int *present) {
  const char *v = get(s->name);
  if (present) *present = 0;
  if (!v) return 0;
  uint64_t x;
  if (!hak_parse_decimal(v, s->lo, s->hi, &x)) {
    warn_bad(fd, s->name, v, s->expected);
    return 1;
  }
  *target = x;
  if (present) *present = 1;
  return 0;
}

int hkm_ace_env_load(struct hkm_ace_config *c, const char *(*get)(const char *name),
                     int warn_fd) {
  static const struct setting
      enabled = {"HAKMEM_ACE_ENABLED", 0, 1, "0 or 1"},
      fast = {"HAKMEM_ACE_FAST_INTERVAL_MS", 1, 3600000, "1..3600000"},
      slow_ms = {"HAKMEM_ACE_SLOW_INTERVAL_MS", 1, 86400000, "1..86400000"},
      slow_s = {"HAKMEM_ACE_SLOW_INTERVAL_S", 1, 86400, "1..86400"},
      p99 = {"HAKMEM_ACE_MAX_P99_LAT_NS", 1, 3600000000000ull, "1..3600000000000"},
      rss = {"HAKMEM_ACE_MAX_RSS_MB", 1, 1u << 30, "1..1073741824"},
      cpu = {"HAKMEM_ACE_MAX_CPU_PERCENT", 1, 100, "1..100"},
      level = {"HAKMEM_ACE_LOG_LEVEL", 0, 2, "0, 1 or 2"};
  hkm_ace_config_default(c);
  int bad = load(&enabled, &c->enabled, get, warn_fd, NULL);
  if (!c->enabled) return bad;
  bad += load(&fast, &c->fast_interval_ms, get, warn_fd, NULL);
  int have_ms = 0;
  bad += load(&slow_ms, &c->slow_interval_ms, get, warn_fd, &have_ms);
  uint64_t seconds = 0;
  int have_s = 0;
  bad += load(&slow_s, &seconds, get, warn_fd, &have_s);
  if (have_s && !have_ms) c->slow_interval_ms = seconds * 1000;
  bad += load(&p99, &c->max_p99_lat_ns, get, warn_fd, NULL);
  bad += load(&rss, &c->max_rss_mb, get, warn_fd, NULL);
  bad += load(&cpu, &c->max_cpu_percent, get, warn_fd, NULL);
  bad += load(&level, &c->log_level, get, warn_fd, NULL);
  return bad;
}
