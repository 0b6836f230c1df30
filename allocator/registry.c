#include "registry.h"

_Atomic uint64_t hak_registry_bits[HAK_REGISTRY_WORDS];

void hak_registry_add(const struct hak_segment *seg) {
  uintptr_t granule = (uintptr_t)seg >> HAK_SEGMENT_SHIFT;
  atomic_fetch_or_explicit(&hak_registry_bits[granule >> 6],
                           (uint64_t)1 << (granule & 63), memory_order_release);
}

void *hak_super_lookup(const void *p) {
  if (!hak_registry_contains(p)) return NULL;
  return hak_segment_of(p);
}
