/* Settings read once from the environment at init.  A value that does not
 * parse or is out of range is reported and replaced by the default. */
#ifndef HAKMEM_CONFIG_H
#define HAKMEM_CONFIG_H

#include <stdint.h>

#include "types.h"

struct hak_config {
  uint64_t tls_cap;            /* HAKMEM_TLS_CAP: 0 = per-class defaults */
  uint64_t tls_cap_scale;      /* HAKMEM_TLS_CAP_SCALE: percent of the
                                  per-class defaults (100) */
  uint64_t bundle_width;       /* HAKMEM_BUNDLE_WIDTH: blocks per refill,
                                  0 = half the TLS capacity */
  uint64_t release_pages;      /* HAKMEM_RELEASE_PAGES: page release in
                                  spans in use (release.h), 0 = off */
  uint64_t drain_threshold;    /* HAKMEM_DRAIN_THRESHOLD */
  uint64_t fault_action;       /* HAKMEM_FAULT_ACTION: abort | report */
  uint64_t crash_handler;      /* HAKMEM_CRASH_HANDLER: 0 | 1 */
  uint64_t large_cache_bytes;  /* HAKMEM_LARGE_CACHE_MB */
  uint64_t empty_retain_bytes; /* HAKMEM_EMPTY_RETAIN_MB: empty slab memory
                                  kept committed before returning more */
  uint64_t redzone;            /* HAKMEM_REDZONE: 0 | 1, debug variant only */
};

extern struct hak_config hak_config HAK_INTERNAL;

/* Fills hak_config from the environment; returns the number of bad values. */
int hak_config_load(void) HAK_INTERNAL;

#endif
