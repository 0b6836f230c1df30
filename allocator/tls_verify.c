/* hak_tls_sll_verify and the test hooks of hakmem_testing.h. */
#include "alloc.h"
#include "hakmem_testing.h"
#include "heap.h"
#include "integrity.h"

size_t hak_tls_sll_verify(void) {
  struct hak_tcache *tc = &hak_tc;
  size_t bad = 0;
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    struct hak_bin *bin = &tc->bins[c];
    uint32_t count = bin->count;
    uint32_t seen = 0;
    /* Bounded by count: a cycle cannot make the walk run forever. */
    for (uintptr_t *node = bin->head; node && seen <= count; node = hak_node_next(node)) {
      enum hak_node_problem why = hak_node_check(node, c);
      if (why != HAK_NODE_OK) {
        bad++;
        hak_drop_bin(bin, c, why); /* reports; the list is dropped */
        break;
      }
      seen++;
    }
  }
  return bad;
}

/* Checks every node of one span's local free list, and that it holds as
 * many as the span's counters say (a list that reaches into another list
 * holds more); drops the list (its blocks leak) if not.  Returns 1 if it
 * was bad. */
static size_t verify_span_list(struct hak_slab *s) {
  uint32_t carved = atomic_load_explicit(&s->carved, memory_order_relaxed);
  uint32_t listed = carved - s->used - s->parked; /* parked: on released pages */
  uint32_t seen = 0;
  uintptr_t *node = s->free;
  enum hak_node_problem why = HAK_NODE_OK;
  for (; node; node = hak_node_next(node)) {
    why = hak_node_check(node, s->cls);
    /* A node of another span, or more nodes than blocks: a cycle. */
    if (why == HAK_NODE_OK && (hak_slab_of(node) != s || ++seen > listed))
      why = HAK_NODE_BAD_COUNT;
    if (why != HAK_NODE_OK) break;
  }
  if (why == HAK_NODE_OK && seen != listed) why = HAK_NODE_BAD_COUNT;
  if (why == HAK_NODE_OK) return 0;
  void *bad = node ? (void *)node : s->free;
  s->free = NULL; /* its blocks leak: none of them is on the list now */
  s->used = carved - s->parked;
  hak_fault(HAK_FAULT_SLL_CORRUPTION, bad, (int)s->cls, why);
  return 1;
}

size_t hak_testing_verify_heap(int cls) {
  struct hak_heap *h = hak_tc.heap;
  size_t bad = hak_tls_sll_verify();
  if (!h || cls >= HAK_NUM_CLASSES) return bad;
  unsigned lo = cls < 0 ? 0 : (unsigned)cls, hi = cls < 0 ? HAK_NUM_CLASSES : lo + 1;
  for (unsigned c = lo; c < hi; c++) {
    for (struct hak_slab *s = h->avail[c].head; s; s = s->next) bad += verify_span_list(s);
    for (struct hak_slab *s = h->full[c].head; s; s = s->next) bad += verify_span_list(s);
  }
  return bad;
}

void hak_testing_tls_sll_push_raw(int cls, void *node) {
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return;
  struct hak_bin *bin = &hak_tc.bins[cls];
  ((uintptr_t *)node)[0] = (uintptr_t)bin->head;
  bin->head = node;
  HAK_COUNTER_SET(bin->count, bin->count + 1);
}

uint32_t hak_testing_tls_sll_length(int cls) {
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return 0;
  return hak_tc.bins[cls].count;
}

void hak_testing_tls_flush(void) {
  struct hak_tcache *tc = &hak_tc;
  if (!tc->heap) return;
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) hak_flush(tc, c, 0);
}

void hak_testing_collect_remote(int cls) {
  struct hak_heap *h = hak_tc.heap;
  if (h && cls >= 0 && cls < HAK_NUM_CLASSES) hak_collect_class(h, (unsigned)cls);
}
