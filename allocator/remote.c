#include "remote.h"

#include "knobs.h"

static void announce(struct hak_slab *s) {
  /* A plain read first: above the threshold every push gets here. */
  if (atomic_load_explicit(&s->in_pending, memory_order_relaxed) ||
      atomic_exchange_explicit(&s->in_pending, 1, memory_order_acq_rel))
    return;
  struct hak_heap *h = atomic_load_explicit(&s->owner, memory_order_acquire);
  if (h == &hak_no_owner) {
    /* Pooled: whoever adopts the span drains it then. */
    atomic_store_explicit(&s->in_pending, 0, memory_order_release);
    return;
  }
  struct hak_slab *old = atomic_load_explicit(&h->pending, memory_order_relaxed);
  do {
    atomic_store_explicit(&s->pending_next, old, memory_order_relaxed);
  } while (!atomic_compare_exchange_weak_explicit(&h->pending, &old, s,
                                                  memory_order_release,
                                                  memory_order_relaxed));
}

void hak_remote_free(struct hak_slab *s, void *p, unsigned cls) {
  uintptr_t *block = p;
  uintptr_t tag = hak_free_tag(p, cls);
  uintptr_t old = atomic_load_explicit(&s->remote_head, memory_order_relaxed), head;
  do {
    hak_node_link(block, old & HAK_REMOTE_ADDR_MASK, tag);
    head = (uintptr_t)p + ((old & ~HAK_REMOTE_ADDR_MASK) + ((uintptr_t)1 << HAK_REMOTE_COUNT_SHIFT));
  } while (!atomic_compare_exchange_weak_explicit(&s->remote_head, &old, head,
                                                  memory_order_release,
                                                  memory_order_relaxed));
  uint32_t backlog = (uint32_t)(head >> HAK_REMOTE_COUNT_SHIFT);
  /* At or past the threshold: the threshold may have been lowered below a
   * backlog that had already built up. */
  if (backlog >= atomic_load_explicit(&hak_knobs.drain_threshold[cls], memory_order_relaxed))
    announce(s);
}

uint32_t hak_remote_collect(struct hak_slab *s) {
  uintptr_t head = atomic_exchange_explicit(&s->remote_head, 0, memory_order_acquire);
  if (!head) return 0;
  uint32_t n = (uint32_t)(head >> HAK_REMOTE_COUNT_SHIFT);
  uintptr_t *list = (uintptr_t *)(head & HAK_REMOTE_ADDR_MASK);
  if (!s->free) {
    s->free = list;
  } else {
    /* One list's tail links to the other's head: the shorter list is
     * walked to find it. */
    uint32_t local = atomic_load_explicit(&s->carved, memory_order_relaxed) - s->used - s->parked;
    uintptr_t *first = s->free, *second = list;
    if (local > n) first = list, second = s->free;
    uintptr_t *tail = first;
    for (uintptr_t *next; (next = hak_node_next(tail)) != NULL;) tail = next;
    hak_node_link(tail, (uintptr_t)second, hak_free_tag(tail, s->cls));
    s->free = first;
  }
  s->used -= n;
  return n;
}
