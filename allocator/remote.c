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
  uintptr_t old = atomic_load_explicit(&s->remote_head, memory_order_relaxed);
  do {
    hak_node_link(block, old, tag);
  } while (!atomic_compare_exchange_weak_explicit(&s->remote_head, &old,
                                                  (uintptr_t)p, memory_order_release,
                                                  memory_order_relaxed));
  int32_t backlog =
      atomic_fetch_add_explicit(&s->remote_count, 1, memory_order_relaxed) + 1;
  /* At or past the threshold: the threshold may have been lowered below a
   * backlog that had already built up. */
  if (backlog >= (int32_t)atomic_load_explicit(&hak_knobs.drain_threshold[cls],
                                               memory_order_relaxed))
    announce(s);
}

uint32_t hak_remote_collect(struct hak_slab *s) {
  uintptr_t list = atomic_exchange_explicit(&s->remote_head, 0, memory_order_acquire);
  if (!list) return 0;
  uint32_t n = 1;
  uintptr_t *tail = (uintptr_t *)list;
  for (uintptr_t *next; (next = hak_node_next(tail)) != NULL; n++) tail = next;
  hak_node_link(tail, (uintptr_t)s->free, hak_free_tag(tail, s->cls));
  s->free = (void *)list;
  s->used -= n;
  atomic_fetch_sub_explicit(&s->remote_count, (int32_t)n, memory_order_relaxed);
  return n;
}
