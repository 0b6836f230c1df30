#include "large.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "config.h"
#include "heap.h"
#include "integrity.h"
#include "lock.h"
#include "os.h"

/* Sits right before the block. */
struct large_header {
  void *base;            /* start of the span */
  size_t len;            /* span length */
  struct hak_heap *heap; /* the allocating thread's heap, NULL if none */
  uintptr_t check;       /* header_check(p, base, len): whoever changes base or
                            len must rewrite it; an underflow changes it */
};

#define HEADER_ROOM 64 /* block = base + 64 unless a bigger alignment asks */
#define SHARDS 16
#define RECENT 32 /* recently freed blocks remembered per shard */

/* Open addressing with linear probing; 0 marks an empty slot; deletion
 * shifts the following run back so no tombstones accumulate. */
struct shard {
  hak_lock_t lock;
  uintptr_t *slots;
  size_t cap, count;
  uintptr_t recent[RECENT]; /* to tell a double free from a foreign pointer */
  unsigned recent_next;
  uint64_t live_bytes;
};

static struct shard shards[SHARDS];

/* The global cache: bins like a heap's but deeper, and a few slots for
 * spans too long for any bin; all under cache_lock. */
#define GLOBAL_BIN_DEPTH 8
#define GLOBAL_HUGE_SLOTS 16
static hak_lock_t cache_lock = HAK_LOCK_INIT;
static struct hak_large_span global_bins[HAK_LARGE_BINS][GLOBAL_BIN_DEPTH];
static unsigned global_bin_count[HAK_LARGE_BINS];
static struct hak_large_span global_huge[GLOBAL_HUGE_SLOTS];
static unsigned global_huge_count;
static uint64_t global_cached_bytes;

static size_t hash_ptr(uintptr_t p) { return (size_t)((p >> 6) * 0x9e3779b97f4a7c15ull); }

static struct shard *shard_of(uintptr_t p) { return &shards[(hash_ptr(p) >> 59) & (SHARDS - 1)]; }

static int table_grow(struct shard *sh) {
  size_t cap = sh->cap ? sh->cap * 2 : 512;
  uintptr_t *slots = hak_os_map(cap * sizeof *slots);
  if (!slots) return -1;
  for (size_t i = 0; i < sh->cap; i++) {
    uintptr_t p = sh->slots[i];
    if (!p) continue;
    size_t j = hash_ptr(p) & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = p;
  }
  if (sh->slots) hak_os_unmap(sh->slots, sh->cap * sizeof *slots);
  sh->slots = slots;
  sh->cap = cap;
  return 0;
}

static int table_insert(struct shard *sh, uintptr_t p) {
  if ((sh->count + 1) * 2 > sh->cap && table_grow(sh) < 0) return -1;
  size_t j = hash_ptr(p) & (sh->cap - 1);
  while (sh->slots[j]) j = (j + 1) & (sh->cap - 1);
  sh->slots[j] = p;
  sh->count++;
  for (unsigned i = 0; i < RECENT; i++)
    if (sh->recent[i] == p) sh->recent[i] = 0;
  return 0;
}

static size_t table_find(const struct shard *sh, uintptr_t p) {
  if (!sh->cap) return (size_t)-1;
  size_t j = hash_ptr(p) & (sh->cap - 1);
  while (sh->slots[j]) {
    if (sh->slots[j] == p) return j;
    j = (j + 1) & (sh->cap - 1);
  }
  return (size_t)-1;
}

static void table_remove_at(struct shard *sh, size_t hole) {
  size_t mask = sh->cap - 1;
  size_t j = hole;
  sh->slots[hole] = 0;
  for (;;) {
    j = (j + 1) & mask;
    uintptr_t p = sh->slots[j];
    if (!p) break;
    size_t home = hash_ptr(p) & mask;
    /* Move p into the hole unless its home lies between hole and j. */
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      sh->slots[hole] = p;
      sh->slots[j] = 0;
      hole = j;
    }
  }
  sh->count--;
}

static struct large_header *header_of(const void *p) {
  return (struct large_header *)((uintptr_t)p - sizeof(struct large_header));
}

/* A canary keyed with the per-process secret, the block address and the
 * span it claims: a write before the block (underflow) would otherwise hand
 * free a forged span to unmap or cache.  Underflows run backwards from the
 * block, so they reach `check` before any other field.  Checked on every
 * large free and size query; a few instructions, no extra memory touched. */
static inline uintptr_t header_check(const void *p, const void *base, size_t len) {
  return ((uintptr_t)p ^ hak_tag_secret) + ((uintptr_t)base ^ len);
}

/* Span lengths are rounded to 8 steps per power of two, so freed spans
 * fit later requests of about the same size. */
static size_t span_round(size_t len) {
  len = (len + HAK_PAGE_SIZE - 1) & ~(size_t)(HAK_PAGE_SIZE - 1);
  if (len <= 16 * HAK_PAGE_SIZE) return len;
  unsigned log2 = 63u - (unsigned)__builtin_clzl(len - 1);
  size_t step = (size_t)1 << (log2 - 3);
  return (len + step - 1) & ~(step - 1);
}

/* Heap bin of a rounded span length, or -1 if the heap does not cache it.
 * Spans are longer than HAK_MID_MAX, so log2 >= 16. */
static int heap_bin(size_t len) {
  unsigned log2 = 63u - (unsigned)__builtin_clzl(len - 1);
  if (log2 < 16) return -1;
  int bin = (int)((log2 - 16) * 8 + ((len - 1) >> (log2 - 3)) - 8);
  return bin < HAK_LARGE_BINS ? bin : -1;
}

/* Best fit among spans at most half again as long as needed. */
static int take_fit(struct hak_large_span *cache, unsigned *n, size_t need,
                    struct hak_large_span *out) {
  unsigned best = *n;
  for (unsigned i = 0; i < *n; i++) {
    if (cache[i].len >= need && cache[i].len <= need + need / 2 &&
        (best == *n || cache[i].len < cache[best].len))
      best = i;
  }
  if (best == *n) return 0;
  *out = cache[best];
  cache[best] = cache[--*n];
  return 1;
}

/* Takes a span from bin `bin` or the next `reach` - 1 (each bin is 1/8 of
 * a power of two longer than the last) of a binned cache. */
static int take_binned(struct hak_large_span (*bins)[], unsigned depth,
                       unsigned *counts, int bin, int reach,
                       struct hak_large_span *out) {
  struct hak_large_span *slots = (struct hak_large_span *)bins;
  for (int b = bin; b < bin + reach && b < HAK_LARGE_BINS; b++) {
    if (counts[b]) {
      *out = slots[(size_t)b * depth + --counts[b]];
      return 1;
    }
  }
  return 0;
}

static int cache_take(size_t need, struct hak_large_span *out) {
  struct hak_heap *h = hak_tc.heap;
  int bin = heap_bin(need);
  if (h && bin >= 0 &&
      take_binned(h->large_bins, HAK_LARGE_BIN_DEPTH, h->large_bin_count, bin, 3, out)) {
    h->large_cached_bytes -= out->len;
    return 1;
  }
  hak_lock(&cache_lock);
  int found = bin >= 0
                  ? take_binned(global_bins, GLOBAL_BIN_DEPTH, global_bin_count, bin, 4, out)
                  : take_fit(global_huge, &global_huge_count, need, out);
  if (found) global_cached_bytes -= out->len;
  hak_unlock(&cache_lock);
  return found;
}

static void global_cache_put(struct hak_large_span span) {
  int bin = heap_bin(span.len);
  hak_lock(&cache_lock);
  if (global_cached_bytes + span.len <= hak_config.large_cache_bytes) {
    if (bin >= 0 && global_bin_count[bin] < GLOBAL_BIN_DEPTH)
      global_bins[bin][global_bin_count[bin]++] = span;
    else if (bin < 0 && global_huge_count < GLOBAL_HUGE_SLOTS)
      global_huge[global_huge_count++] = span;
    else
      goto full;
    global_cached_bytes += span.len;
    span.base = NULL;
  }
full:
  hak_unlock(&cache_lock);
  if (span.base) hak_os_unmap(span.base, span.len);
}

/* allocator: the heap that allocated the block the span held. */
static void cache_put(struct hak_large_span span, struct hak_heap *allocator) {
  struct hak_heap *h = hak_tc.heap;
  int bin = heap_bin(span.len);
  if (h && h == allocator && bin >= 0 && h->large_bin_count[bin] < HAK_LARGE_BIN_DEPTH &&
      h->large_cached_bytes + span.len <= HAK_LARGE_HEAP_CACHE_BYTES) {
    h->large_bins[bin][h->large_bin_count[bin]++] = span;
    h->large_cached_bytes += span.len;
    return;
  }
  global_cache_put(span);
}

/* Makes the block at span.base + room live: writes its header and enters it
 * in the table.  On failure the span is unmapped and NULL returned. */
static char *publish(struct hak_large_span span, size_t room, struct hak_heap *allocator) {
  char *p = (char *)span.base + room;
  struct large_header *hdr = header_of(p);
  hdr->base = span.base;
  hdr->len = span.len;
  hdr->heap = allocator;
  hdr->check = header_check(p, span.base, span.len);
  struct shard *sh = shard_of((uintptr_t)p);
  hak_lock(&sh->lock);
  int ok = table_insert(sh, (uintptr_t)p) == 0;
  if (ok) sh->live_bytes += span.len;
  hak_unlock(&sh->lock);
  if (ok) return p;
  hak_os_unmap(span.base, span.len);
  errno = ENOMEM;
  return NULL;
}

void *hak_large_alloc(size_t n, size_t align, int zero) {
  size_t room = align > HEADER_ROOM ? align : HEADER_ROOM;
  if (n > (size_t)PTRDIFF_MAX - room - HAK_SEGMENT_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = span_round(n + room);
  /* A thread that only allocates large blocks still gets a heap, for its
   * span cache. */
  if (!hak_tc.heap) hak_thread_attach();
  struct hak_large_span span = {0};
  int reused = align <= HAK_PAGE_SIZE && cache_take(need, &span);
  if (!reused) {
    span.len = need;
    span.base = hak_os_map_aligned(need, align > HAK_PAGE_SIZE ? align : HAK_PAGE_SIZE);
    if (!span.base) {
      errno = ENOMEM;
      return NULL;
    }
  }
  /* align <= 4096 here, or the span itself is aligned to align. */
  struct hak_heap *h = hak_tc.heap;
  char *p = publish(span, room, h);
  if (!p) return NULL;
  if (zero && reused) memset(p, 0, n);
  if (h) atomic_fetch_add_explicit(&h->large_allocs, 1, memory_order_relaxed);
  return p;
}

/* Removes p from the table; returns its span, or base NULL if p is not a
 * live large block (after reporting why).  *allocator gets the heap that
 * allocated it. */
static struct hak_large_span unlink_block(void *p, int report, struct hak_heap **allocator) {
  struct hak_large_span span = {0};
  struct shard *sh = shard_of((uintptr_t)p);
  hak_lock(&sh->lock);
  size_t at = table_find(sh, (uintptr_t)p);
  int recently_freed = 0, corrupt = 0;
  if (at != (size_t)-1) {
    struct large_header *hdr = header_of(p);
    if (HAK_UNLIKELY(hdr->check != header_check(p, hdr->base, hdr->len))) {
      corrupt = 1; /* left in the table: its span cannot be trusted */
    } else {
      span.base = hdr->base;
      span.len = hdr->len;
      *allocator = hdr->heap;
      table_remove_at(sh, at);
      sh->live_bytes -= span.len;
      sh->recent[sh->recent_next++ % RECENT] = (uintptr_t)p;
    }
  } else {
    for (unsigned i = 0; i < RECENT; i++)
      if (sh->recent[i] == (uintptr_t)p) recently_freed = 1;
  }
  hak_unlock(&sh->lock);
  if (corrupt) {
    hak_fault(HAK_FAULT_UNDERFLOW, p, -1, HAK_NODE_OK);
    return span;
  }
  if (!span.base && report)
    hak_fault(recently_freed ? HAK_FAULT_DOUBLE_FREE : HAK_FAULT_INVALID_FREE, p, -1,
              recently_freed ? HAK_NODE_OK : HAK_NODE_NOT_LARGE);
  return span;
}

int hak_large_free(void *p) {
  struct hak_heap *allocator = NULL;
  struct hak_large_span span = unlink_block(p, 1, &allocator);
  if (!span.base) return 0;
  struct hak_heap *h = hak_tc.heap;
  if (h) atomic_fetch_add_explicit(&h->large_frees, 1, memory_order_relaxed);
  cache_put(span, allocator);
  return 1;
}

static int is_live(const void *p) {
  struct shard *sh = shard_of((uintptr_t)p);
  hak_lock(&sh->lock);
  int live = table_find(sh, (uintptr_t)p) != (size_t)-1;
  hak_unlock(&sh->lock);
  return live;
}

int hak_large_known(const void *p) {
  struct shard *sh = shard_of((uintptr_t)p);
  hak_lock(&sh->lock);
  int known = table_find(sh, (uintptr_t)p) != (size_t)-1;
  for (unsigned i = 0; i < RECENT && !known; i++) known = sh->recent[i] == (uintptr_t)p;
  hak_unlock(&sh->lock);
  return known;
}

size_t hak_large_usable(const void *p) {
  if (!is_live(p)) return 0;
  const struct large_header *hdr = header_of(p);
  if (hdr->check != header_check(p, hdr->base, hdr->len)) return 0;
  return (size_t)((char *)hdr->base + hdr->len - (const char *)p);
}

void *hak_large_realloc(void *p, size_t n) {
  size_t usable = hak_large_usable(p);
  if (!usable) return NULL;
  struct large_header *hdr = header_of(p);
  size_t offset = (size_t)((char *)p - (char *)hdr->base);
  if (n > (size_t)PTRDIFF_MAX / 2 - offset - HAK_SEGMENT_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = span_round(n + offset);
  size_t len = hdr->len;
  /* Keep the span while the block fits and a quarter of it is used: a
   * buffer that shrinks and grows again stays put. */
  if (n <= usable && need >= len / 4) return p;
  /* Growing: by at least half the span, so a buffer growing in small steps
   * moves O(log n) times, not every time. */
  if (n > usable && need < len + len / 2) need = span_round(len + len / 2);
  /* A cached span already has its pages: copying into it is cheaper than
   * faulting in the pages mremap would add. */
  struct hak_large_span cached;
  if (n > usable && offset == HEADER_ROOM && cache_take(need, &cached)) {
    char *q = publish(cached, HEADER_ROOM, hak_tc.heap);
    if (q) {
      memcpy(q, p, usable);
      hak_large_free(p);
      return q;
    }
  }
  struct hak_heap *allocator = NULL;
  struct hak_large_span old = unlink_block(p, 0, &allocator);
  void *base = mremap(old.base, old.len, need, MREMAP_MAYMOVE);
  if (base == MAP_FAILED) {
    publish(old, offset, allocator); /* unchanged, back in the table */
    return NULL;
  }
  return publish((struct hak_large_span){base, need}, offset, allocator);
}

void hak_large_heap_flush(struct hak_heap *h) {
  for (int b = 0; b < HAK_LARGE_BINS; b++)
    while (h->large_bin_count[b])
      global_cache_put(h->large_bins[b][--h->large_bin_count[b]]);
  h->large_cached_bytes = 0;
}

uint64_t hak_large_scavenge(uint64_t deadline_ns) {
  uint64_t released = 0;
  for (;;) {
    struct hak_large_span span = {0};
    hak_lock(&cache_lock);
    if (global_huge_count) {
      span = global_huge[--global_huge_count];
    } else {
      for (int b = 0; b < HAK_LARGE_BINS && !span.base; b++)
        if (global_bin_count[b]) span = global_bins[b][--global_bin_count[b]];
    }
    if (span.base) global_cached_bytes -= span.len;
    hak_unlock(&cache_lock);
    if (!span.base) break;
    hak_os_unmap(span.base, span.len);
    released += span.len;
    if (deadline_ns && hak_os_now_ns() >= deadline_ns) break;
  }
  return released;
}

void hak_large_lock_all(void) {
  for (int i = 0; i < SHARDS; i++) hak_lock(&shards[i].lock);
  hak_lock(&cache_lock);
}

void hak_large_unlock_all(void) {
  hak_unlock(&cache_lock);
  for (int i = SHARDS; i-- > 0;) hak_unlock(&shards[i].lock);
}

void hak_large_totals(struct hak_large_totals *out) {
  out->live_bytes = 0;
  for (int i = 0; i < SHARDS; i++) {
    hak_lock(&shards[i].lock);
    out->live_bytes += shards[i].live_bytes;
    hak_unlock(&shards[i].lock);
  }
  hak_lock(&cache_lock);
  out->cached_bytes = global_cached_bytes;
  hak_unlock(&cache_lock);
}
