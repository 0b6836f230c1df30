/* Remote free: a block freed by a thread that does not own its span goes on
 * the span's remote queue, a lock-free stack.  When the queue reaches the
 * class's drain threshold the span is announced on its owner's pending
 * stack, so the owner drains it on its next slow path without searching. */
#ifndef HAKMEM_REMOTE_H
#define HAKMEM_REMOTE_H

#include <stdint.h>

#include "types.h"

/* Queues block p (already validated) of span s, class cls. */
void hak_remote_free(struct hak_slab *s, void *p, unsigned cls) HAK_INTERNAL;
/* By whoever holds s exclusively (its owner, or the pool while it sits
 * there): moves the remote queue to the local free list; returns the
 * number of blocks moved. */
uint32_t hak_remote_collect(struct hak_slab *s) HAK_INTERNAL;

#endif
