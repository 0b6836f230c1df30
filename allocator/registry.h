/* The SuperSlab registry: one bit per 2 MiB of the 47-bit user address
 * space (8 MiB of bitmap, reserved at init and paged in only where
 * segments live), set before a segment's first block is handed out.  It
 * answers "is this address inside a live hakmem segment?" with one load,
 * for any address, including ones hakmem never mapped. */
#ifndef HAKMEM_REGISTRY_H
#define HAKMEM_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "types.h"

#define HAK_ADDRESS_BITS 47

extern _Atomic uint64_t *hak_registry_bits HAK_INTERNAL;

int hak_registry_init(void) HAK_INTERNAL;
void hak_registry_add(const struct hak_segment *seg) HAK_INTERNAL;

static inline int hak_registry_contains(const void *p) {
  uintptr_t granule = (uintptr_t)p >> HAK_SEGMENT_SHIFT;
  _Atomic uint64_t *bits = hak_registry_bits;
  /* bits is NULL only before init, when no address can be hakmem's. */
  if (HAK_UNLIKELY(((uintptr_t)p >> HAK_ADDRESS_BITS) || !bits)) return 0;
  uint64_t word = atomic_load_explicit(&bits[granule >> 6], memory_order_acquire);
  return (int)((word >> (granule & 63)) & 1);
}

#endif
