/* Page release inside spans still in use.
 *
 * A span keeps its memory while any of its blocks is live, so after a
 * program frees most of its blocks, scattered, nearly every span is still
 * in use and hardly any memory can go back to the OS as whole spans.  Page
 * release returns the 4 KiB pages of a span that hold only free blocks.
 *
 * A free block keeps its list link and free tag in its first 16 bytes, and
 * madvise(MADV_DONTNEED) zeroes a page, so a released page must hold no
 * listed block: the blocks overlapping released pages are taken off the
 * span's local free list first and "parked" - on no list, counted in
 * slab->parked, their pages marked in slab->parked_pages.  When the span's
 * free list runs dry, hak_span_unpark puts every parked block back (the
 * writes bring the pages back in), before any fresh block is carved.
 *
 * Only the span's owner touches its free list, so only the owner releases
 * its pages: hak_flush does it when the knob is on (hkm_set_release_pages),
 * a span's use falls through 1/8 or 1/32 of its capacity, and the thread
 * has flushed at least HAK_RELEASE_QUIET_FLUSHES times since its last
 * refill - the thread is giving memory back, not churning.  A thread that
 * allocates as it frees would fault released pages straight back in (each
 * refault costs a page of zeroing), so it never releases; one in a long
 * run of frees will not want the memory soon.  Off by default; nothing
 * here is on a malloc or free fast path.
 *
 * The owner's released runs go out in batches (struct hak_release_batch,
 * one a heap; hak_os_decommit_batch): a run joins the heap's batch when
 * its blocks are parked, and the batch is returned to the OS when it
 * holds HAK_RELEASE_BATCH_RUNS runs or HAK_RELEASE_BATCH_PAGES pages, at
 * the thread's next refill, and before a span with a run in it leaves the
 * thread (to the pool; all of it when the thread exits).  A parked page holds nothing anyone
 * reads, so it may stay resident a while; what must not happen is a write
 * into it before its madvise - an unpark (only in a refill) or another
 * thread's carving (only after the span left) - and each of those comes
 * after the batch went out.  One call per batch instead of one per run:
 * page release in fragmentation's free phase made ~14,000 madvise calls of
 * 1-14 pages each, each a TLB shootdown of the other running thread.
 *
 * Limitation: a double free of a parked block is not detected (its tag was
 * in the zeroed page). */
#ifndef HAKMEM_RELEASE_H
#define HAKMEM_RELEASE_H

#include <stdint.h>

#include "types.h"

/* Parks the free blocks of owned span s that fill runs of at least min_run
 * whole free pages and returns those pages to the OS: through batch (the
 * owner's, release.h), or at once when batch is NULL.  Returns the pages
 * taken. */
uint32_t hak_span_release_pages(struct hak_slab *s, uint32_t min_run,
                                struct hak_release_batch *batch) HAK_INTERNAL;
/* Returns the batch's runs to the OS now (nothing to do when empty). */
void hak_release_batch_flush(struct hak_release_batch *b) HAK_INTERNAL;
/* The same, if a run of span s waits in it: what must happen before s
 * leaves its owner.  Otherwise the batch keeps filling - in a free phase
 * spans empty one after another, and flushing at each made batches of a
 * run or two. */
void hak_release_batch_flush_span(struct hak_release_batch *b,
                                  const struct hak_slab *s) HAK_INTERNAL;
/* Puts every parked block of owned span s back on its free list. */
void hak_span_unpark(struct hak_slab *s) HAK_INTERNAL;

/* Flushes without a refill between them before a thread releases pages:
 * a thread that allocates too refills every few flushes, so 32 in a row
 * is a run of frees. */
#define HAK_RELEASE_QUIET_FLUSHES 32

/* When hak_flush should try: use just fell to 1/8 or 1/32 of capacity
 * while the thread is only freeing, and at most two live blocks would sit
 * in a page if the live ones were spread evenly.  The scan walks the
 * span's whole free list (a cache miss a block), so small blocks - 16
 * bytes is 256 a page, where a page with no live block is rare - wait for
 * the deeper point or are left alone. */
static inline int hak_release_point(const struct hak_heap *h, const struct hak_slab *s) {
  uint32_t c = s->capacity;
  return h->flushes_since_refill >= HAK_RELEASE_QUIET_FLUSHES &&
         (s->used == (c >> 3) || s->used == (c >> 5)) &&
         (uint64_t)(HAK_PAGE_SIZE / s->block_size) * s->used <= 2ull * c;
}

#endif
