/* The SuperSlab registry: one bit per 2 MiB of the 47-bit user address
 * space (8 MiB of zero-initialised bitmap in .bss, so paged in only where
 * segments live and usable before init), set before a segment's first block is handed out.  It
 * answers "is this address inside a live hakmem segment?" with one load,
 * for any address, including ones hakmem never mapped. */
#ifndef HAKMEM_REGISTRY_H
#define HAKMEM_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "types.h"

#define HAK_ADDRESS_BITS 47

#define HAK_REGISTRY_WORDS ((size_t)1 << (HAK_ADDRESS_BITS - HAK_SEGMENT_SHIFT - 6))

extern _Atomic uint64_t hak_registry_bits[HAK_REGISTRY_WORDS] HAK_INTERNAL;

void hak_registry_add(const struct hak_segment *seg) HAK_INTERNAL;

static inline int hak_registry_contains(const void *p) {
  uintptr_t granule = (uintptr_t)p >> HAK_SEGMENT_SHIFT;
  /* Same as p >> HAK_ADDRESS_BITS != 0, one instruction shorter. */
  if (HAK_UNLIKELY(granule >= (uintptr_t)1 << (HAK_ADDRESS_BITS - HAK_SEGMENT_SHIFT))) return 0;
  uint64_t word = atomic_load_explicit(&hak_registry_bits[granule >> 6],
                                       memory_order_acquire);
  return (int)((word >> (granule & 63)) & 1);
}

#endif
