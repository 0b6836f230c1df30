/* Size classes: 16-byte steps up to 128 bytes, then four classes per power
 * of two up to 64 KiB (20 tiny classes up to 1 KiB, 24 mid classes above).
 * Every class size is a multiple of 16, so every block is 16-byte aligned;
 * the worst-case internal waste above 128 bytes is 25%. */
#ifndef HAKMEM_SIZE_CLASS_H
#define HAKMEM_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

extern const uint8_t hak_small_class[HAK_TINY_MAX / 16 + 1] HAK_INTERNAL;
extern const uint32_t hak_class_bytes[HAK_NUM_CLASSES] HAK_INTERNAL;

/* Class of a request of n bytes, n <= HAK_MID_MAX. */
static inline unsigned hak_class_of(size_t n) {
  if (HAK_LIKELY(n <= HAK_TINY_MAX)) return hak_small_class[(n + 15) >> 4];
  size_t s = n - 1;
  unsigned log2 = 63u - (unsigned)__builtin_clzl(s);
  return 8u + (log2 - 7u) * 4u + (unsigned)((s >> (log2 - 2u)) & 3u);
}

/* Slabs per span of a class: enough that a span holds at least 8 blocks. */
unsigned hak_class_span_slabs(unsigned cls) HAK_INTERNAL;
/* Default TLS SLL capacity of a class. */
uint32_t hak_class_default_tls_cap(unsigned cls) HAK_INTERNAL;

#endif
