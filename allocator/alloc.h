/* The fast paths: tiny and mid malloc and free on the owning thread.  They
 * take no lock, touch no shared atomic and make no system call; everything
 * else (refill, flush, remote free, large blocks, faults) is a call out. */
#ifndef HAKMEM_ALLOC_H
#define HAKMEM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "integrity.h"
#include "registry.h"
#include "size_class.h"
#include "types.h"

/* Slow paths, in alloc.c. */
void *hak_alloc_slow(unsigned cls) HAK_INTERNAL __attribute__((noinline));
void *hak_pop_fault(struct hak_bin *bin, unsigned cls, enum hak_node_problem why)
    HAK_INTERNAL __attribute__((cold, noinline));
void hak_free_slow(void *p, struct hak_slab *s) HAK_INTERNAL __attribute__((noinline));
void hak_free_unregistered(void *p) HAK_INTERNAL __attribute__((noinline));

static inline void hak_relaxed_add32(_Atomic uint32_t *x, int32_t d) {
  atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + (uint32_t)d,
                        memory_order_relaxed);
}

static inline void hak_relaxed_inc64(_Atomic uint64_t *x) {
  atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

/* Pops a block from a TLS SLL, NULL if the list is empty (or was found
 * corrupt and dropped).  Release checks the free tag, debug everything. */
static inline void *hak_bin_pop(struct hak_bin *bin, unsigned cls) {
  uintptr_t *b = bin->head;
  if (HAK_UNLIKELY(!b)) return NULL;
  if (HAK_FULL_CHECKS) {
    enum hak_node_problem why = hak_node_check(b, cls);
    if (why != HAK_NODE_OK) return hak_pop_fault(bin, cls, why);
  } else if (HAK_UNLIKELY(b[1] != hak_free_tag(b, cls))) {
    return hak_pop_fault(bin, cls, HAK_NODE_BAD_TAG);
  }
  bin->head = (void *)b[0];
  b[1] = 0;
  hak_relaxed_add32(&bin->count, -1);
  hak_relaxed_inc64(&bin->allocs);
  return b;
}

static inline void *hak_alloc_class(unsigned cls) {
  void *p = hak_bin_pop(&hak_tc.bins[cls], cls);
  if (HAK_LIKELY(p != NULL)) return p;
  return hak_alloc_slow(cls);
}

/* Pushes block b of class cls, owned by this thread, onto its TLS SLL. */
static inline void hak_bin_push(struct hak_tcache *tc, uintptr_t *b, unsigned cls) {
  struct hak_bin *bin = &tc->bins[cls];
  b[0] = (uintptr_t)bin->head;
  b[1] = hak_free_tag(b, cls);
  bin->head = b;
  uint32_t count = atomic_load_explicit(&bin->count, memory_order_relaxed) + 1;
  atomic_store_explicit(&bin->count, count, memory_order_relaxed);
  hak_relaxed_inc64(&bin->frees);
  if (HAK_UNLIKELY(count > bin->cap)) hak_flush(tc, cls, bin->cap / 2);
}

static inline void hak_free_block(void *p) {
  if (HAK_UNLIKELY(!hak_registry_contains(p))) {
    hak_free_unregistered(p);
    return;
  }
  struct hak_slab *s = hak_slab_of(p);
  struct hak_tcache *tc = &hak_tc;
  if (HAK_UNLIKELY(atomic_load_explicit(&s->owner, memory_order_relaxed) != tc->heap)) {
    hak_free_slow(p, s); /* another thread's block, or not a live block */
    return;
  }
  unsigned cls = s->cls;
  uintptr_t *b = p;
  uint32_t idx = hak_block_index(s, p);
  if (HAK_UNLIKELY(s->start + (size_t)idx * s->block_size != (char *)p ||
                   idx >= atomic_load_explicit(&s->carved, memory_order_relaxed) ||
                   b[1] == hak_free_tag(p, cls))) {
    hak_free_slow(p, s); /* interior pointer or double free: reported there */
    return;
  }
  hak_bin_push(tc, b, cls);
}

#endif
