/* Remote free: a block freed by a thread that does not own its span goes on
 * the span's remote queue, a lock-free stack.  When the queue reaches the
 * class's drain threshold the span is announced on its owner's pending
 * stack, so the owner drains it on its next slow path without searching.
 *
 * The queue's head word packs the top block's address (below
 * HAK_REMOTE_COUNT_SHIFT; segments are mapped below that bit, segment.c)
 * with the queue's length (above it).  A push updates both in one
 * compare-and-swap, and the owner's exchange takes the queue with its
 * length: it need not walk nodes that another core has just written, each
 * a cache miss, only to count them. */
#ifndef HAKMEM_REMOTE_H
#define HAKMEM_REMOTE_H

#include <stdint.h>

#include "types.h"

#define HAK_REMOTE_COUNT_SHIFT 48
#define HAK_REMOTE_ADDR_MASK (((uintptr_t)1 << HAK_REMOTE_COUNT_SHIFT) - 1)

/* Blocks on span s's remote queue, as of the load. */
static inline uint32_t hak_remote_backlog(const struct hak_slab *s) {
  uintptr_t head = atomic_load_explicit(&s->remote_head, memory_order_relaxed);
  return (uint32_t)(head >> HAK_REMOTE_COUNT_SHIFT);
}

/* Queues block p (already validated) of span s, class cls. */
void hak_remote_free(struct hak_slab *s, void *p, unsigned cls) HAK_INTERNAL;
/* By whoever holds s exclusively (its owner, or the pool while it sits
 * there): moves the remote queue to the local free list; returns the
 * number of blocks moved. */
uint32_t hak_remote_collect(struct hak_slab *s) HAK_INTERNAL;

#endif
