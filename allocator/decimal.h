/* The one rule for numeric HAKMEM_* settings, shared by the allocator's
 * settings (config.c) and ACE's (ace/env.c): decimal digits only, no sign,
 * no spaces, no overflow, within [lo, hi].  Header-only, so ACE, which
 * otherwise sees only the public API, needs no allocator internals. */
#ifndef HAKMEM_DECIMAL_H
#define HAKMEM_DECIMAL_H

#include <stdint.h>

/* 1 and *out set if v is a valid value in [lo, hi], else 0. */
static inline int hak_parse_decimal(const char *v, uint64_t lo, uint64_t hi, uint64_t *out) {
  uint64_t x = 0;
  if (!*v) return 0;
  for (const char *c = v; *c; c++) {
    if (*c < '0' || *c > '9' || x > (UINT64_MAX - 9) / 10) return 0;
    x = x * 10 + (uint64_t)(*c - '0');
  }
  if (x < lo || x > hi) return 0;
  *out = x;
  return 1;
}

#endif
