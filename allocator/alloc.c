/* Slow paths behind alloc.h. */
#include "alloc.h"

#include <errno.h>

#include "init.h"
#include "large.h"
#include "remote.h"

void *hak_alloc_slow(unsigned cls) {
  struct hak_tcache *tc = &hak_tc;
  if (HAK_UNLIKELY(!tc->heap)) {
    hak_ensure_init();
    if (!hak_thread_attach()) {
      errno = ENOMEM;
      return NULL;
    }
  }
  /* A refilled list is checked like any other; a fault in it (report
   * mode) drops it and refills again. */
  struct hak_bin *bin = &tc->bins[cls];
  for (int attempt = 0; attempt < 4; attempt++) {
    if (!hak_refill(tc, cls)) break;
    enum hak_node_problem why = hak_pop_check(bin->head, cls);
    if (why == HAK_NODE_OK) return hak_bin_take(bin, bin->head);
    hak_drop_bin(bin, cls, why);
  }
  errno = ENOMEM;
  return NULL;
}

void hak_drop_bin(struct hak_bin *bin, unsigned cls, enum hak_node_problem why) {
  void *bad = bin->head;
  /* The bad node's link cannot be trusted: the whole list is dropped
   * (its blocks leak) rather than followed. */
  bin->head = NULL;
  HAK_COUNTER_SET(bin->count, 0);
  hak_fault(HAK_FAULT_SLL_CORRUPTION, bad, (int)cls, why);
}

void *hak_alloc_after_fault(unsigned cls, enum hak_node_problem why) {
  hak_drop_bin(&hak_tc.bins[cls], cls, why);
  return hak_alloc_slow(cls);
}

static void count_remote_free(struct hak_tcache *tc, unsigned cls) {
  if (tc->heap) {
    HAK_COUNTER_SET(tc->remote_frees[cls], tc->remote_frees[cls] + 1);
  } else {
    atomic_fetch_add_explicit(&hak_heaps.heapless_frees[cls], 1, memory_order_relaxed);
  }
}

void hak_free_slow(void *p, struct hak_slab *s) {
  unsigned cls = s->cls;
  if (s->magic != HAK_SLAB_MAGIC || cls >= HAK_NUM_CLASSES) {
    hak_fault(HAK_FAULT_INVALID_FREE, p, -1, HAK_NODE_NO_SPAN);
    return;
  }
  uint32_t idx = hak_block_index(s, p);
  if (s->start + (size_t)idx * s->block_size != (char *)p) {
    hak_fault(HAK_FAULT_INVALID_FREE, p, -1, HAK_NODE_OFF_BOUNDARY);
    return;
  }
  if (idx >= atomic_load_explicit(&s->carved, memory_order_relaxed)) {
    hak_fault(HAK_FAULT_INVALID_FREE, p, -1, HAK_NODE_NEVER_CARVED);
    return;
  }
  uintptr_t *b = p;
  if (hak_node_sealed(b, hak_free_tag(p, cls))) {
    hak_fault(HAK_FAULT_DOUBLE_FREE, p, (int)cls, HAK_NODE_OK);
    return;
  }
  struct hak_tcache *tc = &hak_tc;
  if (atomic_load_explicit(&s->owner, memory_order_acquire) == tc->heap) {
    hak_bin_push(tc, b, cls, hak_free_tag(p, cls));
    return;
  }
  hak_remote_free(s, p, cls);
  count_remote_free(tc, cls);
}

void hak_free_unregistered(void *p) {
  hak_large_free(p); /* reports p if it is not a live large block either */
}
