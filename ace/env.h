/* ACE's settings, read once from the environment when the process starts
 * (README "Settings" rules: a value that does not parse or is out of range
 * is reported with one line on stderr and the default is used; nothing
 * ever aborts). */
#ifndef HAKMEM_ACE_ENV_H
#define HAKMEM_ACE_ENV_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hkm_ace_config {
  uint64_t enabled;          /* HAKMEM_ACE_ENABLED: 0 | 1, default 0 */
  uint64_t fast_interval_ms; /* HAKMEM_ACE_FAST_INTERVAL_MS, default 500 */
  uint64_t slow_interval_ms; /* HAKMEM_ACE_SLOW_INTERVAL_MS, default 30000, or
                                HAKMEM_ACE_SLOW_INTERVAL_S * 1000 (the _MS
                                setting wins when both are valid) */
  uint64_t max_p99_lat_ns;   /* HAKMEM_ACE_MAX_P99_LAT_NS, default 10 ms */
  uint64_t max_rss_mb;       /* HAKMEM_ACE_MAX_RSS_MB, default 16384 */
  uint64_t max_cpu_percent;  /* HAKMEM_ACE_MAX_CPU_PERCENT, default 5 */
  uint64_t log_level;        /* HAKMEM_ACE_LOG_LEVEL: 0 off (default), 1 info,
                                2 debug */
};

/* The defaults above. */
void hkm_ace_config_default(struct hkm_ace_config *c);

/* Fills *c from `get` (getenv in production; tests pass their own table).
 * HAKMEM_ACE_ENABLED is always read; the other settings only when ACE is
 * enabled, so they cost nothing and say nothing otherwise.  Each bad value
 * writes one line to warn_fd:
 *   hakmem: ignoring NAME=VALUE (expected RANGE); using the default
 * Returns the number of bad values. */
int hkm_ace_env_load(struct hkm_ace_config *c, const char *(*get)(const char *name),
                     int warn_fd);

#ifdef __cplusplus
}
#endif

#endif
