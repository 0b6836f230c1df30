/* Page arenas: where large spans up to HAK_ARENA_MAX_SPAN live.
 *
 * A span freed to its own mapping costs an munmap, and the next one a fresh
 * mapping whose every page faults in again; a buffer that grows by realloc
 * pays that at every step.  Instead, spans are runs of pages carved from
 * 64 MiB regions: a freed run coalesces with free neighbours and keeps its
 * pages, and a run can grow in place into a free right neighbour, so a
 * growing buffer often moves no bytes at all.
 *
 * A region is reserved aligned to its size, so a span's region is found by
 * masking its address.  Its first pages hold the region's record: per page
 * of the region, boundary tags (the run's length at its first page, the
 * run's first page at its last page) and, for free runs, list links; free
 * runs sit in lists binned by length (4 bins per power of two), with a
 * bitmap of non-empty bins.  Freed pages are "dirty" until returned to
 * the kernel (madvise), then "clean": they read as zeros, so a calloc
 * served from a run without dirty pages needs no memset.  An arena keeps
 * up to HAKMEM_LARGE_CACHE_MB of dirty free pages; past that, every 100 ms
 * at most, it returns those no allocation reused meanwhile (dirtiest runs
 * first, outside the lock), down to half of that; hak_scavenge returns
 * them all.  Threads use the arena of their heap id modulo
 * HAK_ARENAS, under that arena's lock; a free from another thread takes
 * the span's own arena's lock. */
#ifndef HAKMEM_PAGE_ARENA_H
#define HAKMEM_PAGE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define HAK_ARENA_REGION_SHIFT 26 /* 64 MiB regions */
#define HAK_ARENA_REGION_SIZE ((size_t)1 << HAK_ARENA_REGION_SHIFT)
#define HAK_ARENA_MAX_SPAN ((size_t)8 << 20)
#define HAK_ARENAS 4

/* A run of len bytes (a multiple of HAK_PAGE_SIZE, at most
 * HAK_ARENA_MAX_SPAN), page-aligned; NULL if no region can be mapped.
 * *zeroed tells whether its pages are known to read as zeros. */
void *hak_arena_alloc(size_t len, int *zeroed) HAK_INTERNAL;
/* 1 if p lies in an arena region. */
int hak_arena_owns(const void *p) HAK_INTERNAL;
/* Returns the run [base, base + len) to its arena; returns the bytes that
 * went back to the kernel on the way (a region left empty, a purge). */
uint64_t hak_arena_free(void *base, size_t len) HAK_INTERNAL;
/* Resizes the run at base from old_len to new_len bytes in place: growing
 * takes pages from a free right neighbour, shrinking frees the tail.
 * Returns 1 on success, 0 (run unchanged) if the neighbour is too short. */
int hak_arena_resize(void *base, size_t old_len, size_t new_len) HAK_INTERNAL;
/* Returns dirty free pages to the kernel until deadline_ns (0 = all);
 * returns the bytes released. */
uint64_t hak_arena_purge(uint64_t deadline_ns) HAK_INTERNAL;
/* Fork hooks. */
void hak_arena_lock_all(void) HAK_INTERNAL;
void hak_arena_unlock_all(void) HAK_INTERNAL;
/* Bytes of dirty free pages the arenas keep for reuse. */
uint64_t hak_arena_dirty_bytes(void) HAK_INTERNAL;

#endif
