/* The large tier: blocks above HAK_MID_MAX, and aligned blocks no class can
 * serve, each in its own mapping (a "span" of pages).  The block starts
 * after a header inside its span; a sharded hash table of live block
 * addresses decides, under a per-shard lock, whether a pointer handed to
 * free is a live large block - so a foreign or stale pointer is reported,
 * never dereferenced.  Freed spans are kept for reuse, first in a small
 * per-heap cache, then in a global cache bounded by HAKMEM_LARGE_CACHE_MB;
 * beyond that they are unmapped. */
#ifndef HAKMEM_LARGE_H
#define HAKMEM_LARGE_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* n bytes aligned to align (a power of two >= 16); NULL with ENOMEM. */
void *hak_large_alloc(size_t n, size_t align, int zero) HAK_INTERNAL;
/* 1 if p was a live large block (now freed), 0 if it is none. */
int hak_large_free(void *p) HAK_INTERNAL;
/* 1 if p is a live large block (intact or not) or one freed recently. */
int hak_large_known(const void *p) HAK_INTERNAL;
/* Usable bytes of live large block p, 0 if p is none (or its header was
 * overwritten). */
size_t hak_large_usable(const void *p) HAK_INTERNAL;
/* Resizes live large block p to n bytes (n > HAK_MID_MAX) keeping its
 * contents, moving it with mremap if needed; NULL on failure (p intact). */
void *hak_large_realloc(void *p, size_t n) HAK_INTERNAL;
/* Moves a retiring heap's cached spans to the global cache. */
void hak_large_heap_flush(struct hak_heap *h) HAK_INTERNAL;
/* Unmaps cached spans until deadline_ns (0 = all); returns bytes. */
uint64_t hak_large_scavenge(uint64_t deadline_ns) HAK_INTERNAL;
/* Fork hooks: the table and cache locks. */
void hak_large_lock_all(void) HAK_INTERNAL;
void hak_large_unlock_all(void) HAK_INTERNAL;

struct hak_large_totals {
  uint64_t live_bytes, cached_bytes;
};
void hak_large_totals(struct hak_large_totals *out) HAK_INTERNAL;

#endif
