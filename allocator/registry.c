#include "registry.h"

#include <sys/mman.h>

_Atomic uint64_t *hak_registry_bits;

#define REGISTRY_BYTES (((size_t)1 << (HAK_ADDRESS_BITS - HAK_SEGMENT_SHIFT)) / 8)

int hak_registry_init(void) {
  void *p = mmap(NULL, REGISTRY_BYTES, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return -1;
  hak_registry_bits = p;
  return 0;
}

void hak_registry_add(const struct hak_segment *seg) {
  uintptr_t granule = (uintptr_t)seg >> HAK_SEGMENT_SHIFT;
  atomic_fetch_or_explicit(&hak_registry_bits[granule >> 6],
                           (uint64_t)1 << (granule & 63), memory_order_release);
}

void *hak_super_lookup(const void *p) {
  if (!hak_registry_contains(p)) return NULL;
  return hak_segment_of(p);
}
