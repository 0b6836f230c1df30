/* Remote free: a block whose span another heap owns goes home on the span's
 * remote queue, a lock-free stack.  A thread with a heap first keeps such a
 * block in its own TLS list and reuses it, as it would one of its own; only
 * its flushes send blocks home, a run of one span's blocks in one push.  A
 * thread without a heap sends each block at once (its TLS capacity is 0).  When the queue reaches the
 * class's drain threshold the span is announced on its owner's pending
 * stack, so the owner drains it on its next slow path without searching. */
#ifndef HAKMEM_REMOTE_H
#define HAKMEM_REMOTE_H

#include <stdint.h>

#include "types.h"

/* Queues the n blocks of span s, class cls, linked (sealed) from first to
 * last; last's link is set here.  Already validated. */
void hak_remote_free_run(struct hak_slab *s, uintptr_t *first, uintptr_t *last,
                         uint32_t n, unsigned cls) HAK_INTERNAL;

/* By whoever holds s exclusively (its owner, or the pool while it sits
 * there): moves the remote queue to the local free list; returns the
 * number of blocks moved. */
uint32_t hak_remote_collect(struct hak_slab *s) HAK_INTERNAL;

#endif
