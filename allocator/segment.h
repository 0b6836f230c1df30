/* SuperSlabs and the shared pool.
 *
 * Spans come from, in order: the pool of spans abandoned by exited threads
 * (per class; adopted as they are, remote backlog and all), the pool of
 * empty spans (per span length, any class), and fresh slabs carved from
 * the current segment, a new segment being mapped when it runs out.  Both
 * pools are lock-free stacks; only carving and mapping take a lock. */
#ifndef HAKMEM_SEGMENT_H
#define HAKMEM_SEGMENT_H

#include <stdatomic.h>
#include <stdint.h>

#include "lock.h"
#include "types.h"

/* A lock-free stack of span heads: pointer in the low 48 bits, a counter
 * bumped by every push in the high 16 bits so a stale pop cannot succeed
 * (ABA). */
struct hak_span_stack {
  _Atomic uint64_t top;
};

struct hak_pool {
  struct hak_span_stack abandoned[HAK_NUM_CLASSES];
  struct hak_span_stack empty[4]; /* by log2(span slabs) */
  _Atomic uint64_t reserved_bytes[HAK_NUM_CLASSES];
  _Atomic uint64_t empty_spans, abandoned_spans;
  _Atomic uint64_t empty_committed_bytes, decommitted_bytes;
  _Atomic uint64_t released_pages; /* ever returned to the OS, all paths */
  _Atomic uint64_t segments;
  hak_lock_t carve_lock; /* current segment and the segment list */
  struct hak_segment *carve_segment, *all_segments;
};

extern struct hak_pool hak_pool HAK_INTERNAL;

/* A span of class cls owned by heap h, NULL when memory is exhausted.  An
 * adopted span may hold live blocks and a remote backlog. */
struct hak_slab *hak_span_acquire(unsigned cls, struct hak_heap *h) HAK_INTERNAL;
/* Gives an empty span (used == 0) back to the pool. */
void hak_span_release(struct hak_slab *s) HAK_INTERNAL;
/* Hands a span with live blocks to the pool for another heap to adopt. */
void hak_span_abandon(struct hak_slab *s) HAK_INTERNAL;
/* Address of the span's memory. */
char *hak_span_base(const struct hak_slab *s) HAK_INTERNAL;
/* Returns empty span memory to the OS, a span at a time, and frees
 * abandoned spans whose blocks all came back, until deadline_ns (0: no
 * limit) or until max_pages pages went back (0: no limit); returns the
 * pages released. */
uint64_t hak_pool_scavenge(uint64_t deadline_ns, uint64_t max_pages) HAK_INTERNAL;

#endif
