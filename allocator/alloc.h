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
void *hak_alloc_after_fault(unsigned cls, enum hak_node_problem why)
    HAK_INTERNAL __attribute__((cold, noinline));
void hak_drop_bin(struct hak_bin *bin, unsigned cls, enum hak_node_problem why)
    HAK_INTERNAL __attribute__((cold, noinline));
void hak_free_slow(void *p, struct hak_slab *s) HAK_INTERNAL __attribute__((noinline));
void hak_free_unregistered(void *p) HAK_INTERNAL __attribute__((noinline));

/* The check every pop makes: the sealed free tag in release (the link it
 * is about to follow included), everything in debug. */
static inline enum hak_node_problem hak_pop_check(const uintptr_t *b, unsigned cls) {
  if (HAK_FULL_CHECKS) return hak_node_check(b, cls);
  return HAK_LIKELY(hak_node_sealed(b, hak_free_tag(b, cls))) ? HAK_NODE_OK
                                                              : HAK_NODE_BAD_TAG;
}

/* Unlinks head block b (already checked) and hands it out. */
static inline void *hak_bin_take(struct hak_bin *bin, uintptr_t *b) {
  bin->head = hak_node_unlink(b);
  HAK_COUNTER_SET(bin->count, bin->count - 1);
  return b;
}

/* Tiny and mid malloc: pop the class's TLS SLL. */
static inline void *hak_alloc_class(unsigned cls) {
  struct hak_bin *bin = &hak_tc.bins[cls];
  uintptr_t *b = bin->head;
  if (HAK_UNLIKELY(!b)) return hak_alloc_slow(cls);
  enum hak_node_problem why = hak_pop_check(b, cls);
  if (HAK_UNLIKELY(why != HAK_NODE_OK)) return hak_alloc_after_fault(cls, why);
  return hak_bin_take(bin, b);
}

/* Pushes block b of class cls, owned by this thread and carrying no tag,
 * onto its TLS SLL. */
static inline void hak_bin_push(struct hak_tcache *tc, uintptr_t *b, unsigned cls,
                                uintptr_t tag) {
  struct hak_bin *bin = &tc->bins[cls];
  hak_node_link(b, (uintptr_t)bin->head, tag);
  bin->head = b;
  uint32_t count = bin->count + 1;
  HAK_COUNTER_SET(bin->count, count);
  HAK_COUNTER_SET(bin->frees, bin->frees + 1);
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
  uintptr_t tag = hak_free_tag(p, cls);
  uint32_t idx = hak_block_index(s, p);
  if (HAK_UNLIKELY(s->start + (size_t)idx * s->block_size != (char *)p ||
                   idx >= atomic_load_explicit(&s->carved, memory_order_relaxed) ||
                   hak_node_sealed(b, tag))) {
    hak_free_slow(p, s); /* interior pointer or double free: reported there */
    return;
  }
  hak_bin_push(tc, b, cls, tag);
}

#endif
