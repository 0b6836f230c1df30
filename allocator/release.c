#include "release.h"

#include <stdatomic.h>
#include <string.h>

#include "os.h"
#include "segment.h"

#define MAX_BLOCKS (HAK_SLAB_SIZE / 16) /* 16-byte class, one slab: the most */
#define MAX_PAGES (HAK_MAX_SPAN_SLABS * (HAK_SLAB_SIZE / HAK_PAGE_SIZE))

_Static_assert(MAX_PAGES <= 128, "parked_pages holds 128 bits");

static int bit(const uint64_t *m, uint32_t i) { return (int)(m[i >> 6] >> (i & 63)) & 1; }
static void set_bit(uint64_t *m, uint32_t i) { m[i >> 6] |= (uint64_t)1 << (i & 63); }

/* Whether block idx of s overlaps a page marked in m. */
static int overlaps(const struct hak_slab *s, const uint64_t *m, uint32_t idx) {
  size_t lo = (size_t)idx * s->block_size, hi = lo + s->block_size - 1;
  for (size_t p = lo / HAK_PAGE_SIZE; p <= hi / HAK_PAGE_SIZE; p++)
    if (bit(m, (uint32_t)p)) return 1;
  return 0;
}

void hak_release_batch_flush(struct hak_release_batch *b) {
  if (!b->n) return;
  hak_os_decommit_batch(b->run, b->n);
  atomic_fetch_add_explicit(&hak_pool.released_pages, b->pages, memory_order_relaxed);
  b->n = b->pages = 0;
}

void hak_release_batch_flush_span(struct hak_release_batch *b, const struct hak_slab *s) {
  const char *lo = s->start, *hi = lo + (size_t)s->capacity * s->block_size;
  for (uint32_t i = 0; i < b->n; i++) {
    const char *p = b->run[i].iov_base;
    if (p >= lo && p < hi) {
      hak_release_batch_flush(b);
      return;
    }
  }
}

uint32_t hak_span_release_pages(struct hak_slab *s, uint32_t min_run,
                                struct hak_release_batch *batch) {
  uint32_t carved = atomic_load_explicit(&s->carved, memory_order_relaxed);
  if (!s->free || carved == 0 || s->capacity > MAX_BLOCKS) return 0;
  uint64_t free_map[MAX_BLOCKS / 64];
  memset(free_map, 0, sizeof free_map);
  /* The list's order is the order of the frees - all over the span, each
   * node a cache miss that only the previous one can name.  Asking for
   * every block's first line up front, in address order, lets the misses
   * overlap: in fragmentation's free phase (2 threads, 680,000 nodes
   * walked) the walks took 0.23-0.36 s before, 0.02-0.05 s with it. */
  for (uint32_t i = 0; i < carved; i++)
    __builtin_prefetch(s->start + (size_t)i * s->block_size);
  for (uintptr_t *b = s->free; b; b = hak_node_next(b)) {
    uint32_t i = hak_block_index(s, b);
    /* Not a list to trust (a link it would follow is not sealed, or the
     * block was never carved): left alone for the pops to report. */
    if (i >= carved || !hak_node_sealed(b, hak_free_tag(b, s->cls))) return 0;
    set_bit(free_map, i);
  }

  /* A page may go when every block overlapping it is free and carved (a
   * block carved later would be written into a page still marked). */
  size_t carved_end = (size_t)carved * s->block_size;
  uint32_t pages = (uint32_t)(carved_end / HAK_PAGE_SIZE);
  uint64_t fresh[2] = {0, 0};
  uint32_t run = 0, released = 0;
  for (uint32_t p = 0; p <= pages; p++) {
    int ok = p < pages && !bit(s->parked_pages, p);
    if (ok) {
      uint32_t first = (uint32_t)((size_t)p * HAK_PAGE_SIZE / s->block_size);
      uint32_t last = (uint32_t)(((size_t)p * HAK_PAGE_SIZE + HAK_PAGE_SIZE - 1) / s->block_size);
      for (uint32_t i = first; ok && i <= last; i++) ok = i < carved && bit(free_map, i);
    }
    if (ok) {
      run++;
      continue;
    }
    if (run >= min_run)
      for (uint32_t q = p - run; q < p; q++) set_bit(fresh, q);
    if (run >= min_run) released += run;
    run = 0;
  }
  if (!released) return 0;

  /* Off the list before the pages (and the links in them) are zeroed; the
   * blocks kept are relinked, each link sealed again. */
  uintptr_t *keep = NULL, *prev = NULL;
  uint32_t parked = 0;
  for (uintptr_t *b = s->free; b;) {
    uintptr_t *next = hak_node_next(b);
    if (overlaps(s, fresh, hak_block_index(s, b))) {
      parked++;
    } else {
      if (prev) hak_node_link(prev, (uintptr_t)b, hak_free_tag(prev, s->cls));
      else keep = b;
      prev = b;
    }
    b = next;
  }
  if (prev) hak_node_link(prev, 0, hak_free_tag(prev, s->cls));
  s->free = keep;
  s->parked = (uint16_t)(s->parked + parked);

  /* The pages go into the batch (the caller's, or one of this call's own
   * that is returned before it ends); a full batch goes out first. */
  struct hak_release_batch own;
  if (!batch) {
    own.n = own.pages = 0;
    batch = &own;
  }
  char *base = s->start;
  for (uint32_t p = 0; p < pages;) {
    if (!bit(fresh, p)) {
      p++;
      continue;
    }
    uint32_t q = p;
    while (q < pages && bit(fresh, q)) q++;
    if (batch->n == HAK_RELEASE_BATCH_RUNS) hak_release_batch_flush(batch);
    batch->run[batch->n].iov_base = base + (size_t)p * HAK_PAGE_SIZE;
    batch->run[batch->n].iov_len = (size_t)(q - p) * HAK_PAGE_SIZE;
    batch->n++;
    batch->pages += q - p;
    p = q;
  }
  s->parked_pages[0] |= fresh[0];
  s->parked_pages[1] |= fresh[1];
  if (batch == &own || batch->pages >= HAK_RELEASE_BATCH_PAGES) hak_release_batch_flush(batch);
  return released;
}

void hak_span_unpark(struct hak_slab *s) {
  if (!s->parked) return;
  uint32_t carved = atomic_load_explicit(&s->carved, memory_order_relaxed);
  void *head = s->free;
  /* From the top down, so the list hands the blocks out in address order. */
  for (uint32_t i = carved; i-- > 0;) {
    if (!overlaps(s, s->parked_pages, i)) continue;
    uintptr_t *b = (uintptr_t *)(s->start + (size_t)i * s->block_size);
    hak_node_link(b, (uintptr_t)head, hak_free_tag(b, s->cls));
    head = b;
  }
  s->free = head;
  s->parked = 0;
  s->parked_pages[0] = s->parked_pages[1] = 0;
}
