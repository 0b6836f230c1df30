/* The large tier: blocks above HAK_MID_MAX, and aligned blocks no class can
 * serve, each in a span of pages: a run of a page arena (page_arena.h) up to
 * HAK_ARENA_MAX_SPAN, a mapping of its own beyond that or for alignments
 * above a page.  The block starts after a header inside its span; a sharded
 * hash table of live block addresses decides, under a per-shard lock,
 * whether a pointer handed to free is a live large block - so a foreign or
 * stale pointer is reported, never dereferenced.  A freed span goes back to
 * its arena; longer spans are kept in a cache bounded by
 * HAKMEM_LARGE_CACHE_MB, beyond which they are unmapped. */
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
 * contents: in place in its arena if the pages after it are free, else
 * moved (a copy below HAK_ARENA_MAX_SPAN, mremap above); NULL on failure
 * (p intact).  With a memory checker built in (HAK_TOOLS, tool_hooks.h)
 * only in place, NULL where it would move: realloc then moves the block
 * itself, through the hooks that tell the checker. */
void *hak_large_realloc(void *p, size_t n) HAK_INTERNAL;
/* Releases cached spans and arenas' free pages until deadline_ns (0 = all);
 * returns bytes. */
uint64_t hak_large_scavenge(uint64_t deadline_ns) HAK_INTERNAL;
/* Fork hooks: the table and cache locks. */
void hak_large_lock_all(void) HAK_INTERNAL;
void hak_large_unlock_all(void) HAK_INTERNAL;

struct hak_large_totals {
  uint64_t live_bytes, cached_bytes;
};
void hak_large_totals(struct hak_large_totals *out) HAK_INTERNAL;

#endif
