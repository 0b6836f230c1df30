/* Per-thread heaps: the slow paths behind the TLS SLL fast paths.
 *
 * A heap keeps, per class, a list of spans that still have blocks to give
 * (avail) and a list of spans with none left locally (full).  Refill moves
 * a batch of blocks from the first avail span into the TLS SLL; flush moves
 * blocks from the TLS SLL back to their spans' local free lists.  Remote
 * backlogs are drained when the owner runs dry, and a span whose blocks are
 * all home again goes back to the shared pool unless it is the class's last
 * avail span. */
#ifndef HAKMEM_HEAP_H
#define HAKMEM_HEAP_H

#include <stdint.h>

#include "lock.h"
#include "types.h"

/* Heaps of running threads, and what exited threads left in the counters. */
struct hak_heap_registry {
  hak_lock_t lock;
  struct hak_heap *live;
  struct hak_heap *free;
  uint32_t next_id;
  uint64_t live_count, retired_count;
  uint64_t retired_allocs[HAK_NUM_CLASSES];
  uint64_t retired_frees[HAK_NUM_CLASSES];
  uint64_t retired_remote_frees[HAK_NUM_CLASSES];
  uint64_t retired_large_allocs, retired_large_frees;
  /* Frees by threads without a heap (after their heap was retired). */
  _Atomic uint64_t heapless_frees[HAK_NUM_CLASSES];
};

extern struct hak_heap_registry hak_heaps HAK_INTERNAL;

/* Gives the calling thread a heap; NULL when out of memory. */
struct hak_heap *hak_thread_attach(void) HAK_INTERNAL;
/* Thread exit: returns every cached block and span, folds the counters. */
void hak_thread_detach(void) HAK_INTERNAL;
/* Fills the TLS SLL of cls with a batch; 0 when memory is exhausted. */
int hak_refill(struct hak_tcache *tc, unsigned cls) HAK_INTERNAL;
/* Returns blocks from the TLS SLL of cls until `keep` remain. */
void hak_flush(struct hak_tcache *tc, unsigned cls, uint32_t keep) HAK_INTERNAL;
/* Collects the remote queue of every span of cls that h owns (tests). */
void hak_collect_class(struct hak_heap *h, unsigned cls) HAK_INTERNAL;
/* Fork child: heaps of threads that no longer exist are forgotten. */
void hak_heaps_after_fork_child(void) HAK_INTERNAL;

#endif
