#include "large.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "config.h"
#include "heap.h"
#include "integrity.h"
#include "lock.h"
#include "os.h"
#include "page_arena.h"
#include "tsan_sync.h"

/* Sits right before the block. */
struct large_header {
  void *base;      /* start of the span */
  size_t len;      /* span length */
  uintptr_t check; /* header_check(p, base, len): whoever changes base or
                      len rewrites it; an underflow changes it */
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
  /* Recently freed addresses, to tell a double free from a foreign
   * pointer: consulted only for an address not in the table, so an entry
   * whose address is live again needs no removal. */
  uintptr_t recent[RECENT];
  unsigned recent_next;
  uint64_t live_bytes;
};

static struct shard shards[SHARDS];

/* Spans too long for an arena, kept for reuse under cache_lock up to
 * HAKMEM_LARGE_CACHE_MB: unmapping and mapping them again would fault
 * every page in anew. */
#define HUGE_SLOTS 16
static hak_lock_t cache_lock = HAK_LOCK_INIT;
static struct hak_large_span huge_cache[HUGE_SLOTS];
static unsigned huge_count;
static uint64_t huge_cached_bytes;

#if HAK_TSAN
/* ThreadSanitizer's key for memory mremap moved (hak_large_realloc). */
static char moved_memory;
#endif

/* Blocks sit at a fixed offset in page-aligned spans, so the low bits of
 * an address say nothing; a multiply moves the rest up, and folding the
 * high half down gives the table's slot bits (low) and the shard bits
 * (top) all of them. */
static size_t hash_ptr(uintptr_t p) {
  uint64_t x = (uint64_t)(p >> 6) * 0x9e3779b97f4a7c15ull;
  return (size_t)(x ^ (x >> 32));
}

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
 * free a forged span to unmap or return to an arena.  Underflows run
 * backwards from the block, so they reach `check` before any other field.
 * Checked on every large free and size query; a few instructions, no extra
 * memory touched. */
static inline uintptr_t header_check(const void *p, const void *base, size_t len) {
  return ((uintptr_t)p ^ hak_tag_secret) + ((uintptr_t)base ^ len);
}

/* Arena spans are whole pages; longer spans are rounded to 8 steps per
 * power of two, so a cached one fits later requests of about its size. */
static size_t span_round(size_t len) {
  len = (len + HAK_PAGE_SIZE - 1) & ~(size_t)(HAK_PAGE_SIZE - 1);
  if (len <= HAK_ARENA_MAX_SPAN) return len;
  unsigned log2 = 63u - (unsigned)__builtin_clzl(len - 1);
  size_t step = (size_t)1 << (log2 - 3);
  return (len + step - 1) & ~(step - 1);
}

/* A cached span of at least need bytes and at most half again as many,
 * the shortest such. */
static int cache_take(size_t need, struct hak_large_span *out) {
  hak_lock(&cache_lock);
  unsigned best = huge_count;
  for (unsigned i = 0; i < huge_count; i++) {
    if (huge_cache[i].len >= need && huge_cache[i].len <= need + need / 2 &&
        (best == huge_count || huge_cache[i].len < huge_cache[best].len))
      best = i;
  }
  int found = best < huge_count;
  if (found) {
    *out = huge_cache[best];
    huge_cache[best] = huge_cache[--huge_count];
    huge_cached_bytes -= out->len;
  }
  hak_unlock(&cache_lock);
  /* The span's last holder, maybe another thread, released it (span_put):
   * its accesses happen before this thread's use of the span. */
  if (found) hak_tsan_acquire(out->base);
  return found;
}

/* Gives a span back: to its page arena, or to the kernel.  Returns the
 * bytes the kernel got back. */
static uint64_t span_release(struct hak_large_span span) {
  if (hak_arena_owns(span.base)) return hak_arena_free(span.base, span.len);
  hak_os_unmap(span.base, span.len);
  return span.len;
}

/* A freed span: into the cache if it is too long for an arena (so never an
 * arena run) and there is room, else released. */
static void span_put(struct hak_large_span span) {
  if (span.len > HAK_ARENA_MAX_SPAN) {
    /* Hand-off to whichever thread takes it from the cache (cache_take),
     * keyed by the span's base, which a cached span keeps.  cache_lock
     * orders the two today; the key says what must stay ordered.  Arena
     * runs need no key: they split and coalesce, so their bases change,
     * and every hand-off of one happens under its arena's lock. */
    hak_tsan_release(span.base);
    hak_lock(&cache_lock);
    int kept = huge_count < HUGE_SLOTS &&
               huge_cached_bytes + span.len <= hak_config.large_cache_bytes;
    if (kept) {
      huge_cache[huge_count++] = span;
      huge_cached_bytes += span.len;
    }
    hak_unlock(&cache_lock);
    if (kept) return;
  }
  span_release(span);
}

/* A span of need bytes for a block aligned to align: an arena run, a
 * cached long span, or else a fresh mapping (aligned itself when align is
 * above a page).  *zeroed tells whether its pages read as zeros. */
static int span_get(size_t need, size_t align, struct hak_large_span *span, int *zeroed) {
  *zeroed = 0;
  span->len = need;
  if (align <= HAK_PAGE_SIZE) {
    int reused = 0;
    if (need <= HAK_ARENA_MAX_SPAN) {
      reused = (span->base = hak_arena_alloc(need, zeroed)) != NULL;
    } else {
      reused = cache_take(need, span);
    }
    /* Pages of earlier blocks, whose header may now fall where a freed
     * block was poisoned (tool_hooks.h). */
    if (reused) hak_tool_reopen(span->base, span->len);
    if (reused) return 1;
  }
  span->len = need;
  span->base = hak_os_map_aligned(need, align > HAK_PAGE_SIZE ? align : HAK_PAGE_SIZE);
  *zeroed = 1;
  return span->base != NULL;
}

/* Makes the block at span.base + room live: writes its header and enters it
 * in the table.  On failure the span is released and NULL returned. */
static char *publish(struct hak_large_span span, size_t room) {
  char *p = (char *)span.base + room;
  struct large_header *hdr = header_of(p);
  hdr->base = span.base;
  hdr->len = span.len;
  hdr->check = header_check(p, span.base, span.len);
  struct shard *sh = shard_of((uintptr_t)p);
  hak_lock(&sh->lock);
  int ok = table_insert(sh, (uintptr_t)p) == 0;
  if (ok) sh->live_bytes += span.len;
  hak_unlock(&sh->lock);
  if (ok) return p;
  span_release(span);
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
  /* A thread that only allocates large blocks still gets a heap: its id
   * picks the thread's page arena. */
  if (!hak_tc.heap) hak_thread_attach();
  struct hak_large_span span;
  int zeroed;
  if (!span_get(need, align, &span, &zeroed)) {
    errno = ENOMEM;
    return NULL;
  }
  /* align <= 4096 here, or the span itself is aligned to align. */
  struct hak_heap *h = hak_tc.heap;
  char *p = publish(span, room);
  if (!p) return NULL;
  if (zero && !zeroed) memset(p, 0, n);
  if (h) atomic_fetch_add_explicit(&h->large_allocs, 1, memory_order_relaxed);
  return p;
}

/* Removes p from the table; returns its span, or base NULL if p is not a
 * live large block (after reporting why). */
static struct hak_large_span unlink_block(void *p, int report) {
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
  struct hak_large_span span = unlink_block(p, 1);
  if (!span.base) return 0;
  struct hak_heap *h = hak_tc.heap;
  if (h) atomic_fetch_add_explicit(&h->large_frees, 1, memory_order_relaxed);
  span_put(span);
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

/* Records live block p's span as len bytes long (resized in place). */
static void set_span_len(void *p, size_t len) {
  struct large_header *hdr = header_of(p);
  struct shard *sh = shard_of((uintptr_t)p);
  hak_lock(&sh->lock);
  sh->live_bytes += len - hdr->len;
  hdr->len = len;
  hdr->check = header_check(p, hdr->base, len);
  hak_unlock(&sh->lock);
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
  int in_arena = hak_arena_owns(hdr->base);
  if (n <= usable) {
    /* Shrinking: an arena run hands its tail back once half of it is
     * unused; a mapping stays put while a quarter is used, so a buffer
     * that shrinks and grows again does not move. */
    if (need >= len / 2 || (!in_arena && need >= len / 4)) return p;
    if (in_arena && hak_arena_resize(hdr->base, len, need)) {
      set_span_len(p, need);
      return p;
    }
  } else {
    /* Growing: in an arena, first into the free pages after the block,
     * where nothing moves; else by at least half the span, so a buffer
     * growing in small steps moves O(log n) times, not every time. */
    size_t grow_to = need < len + len / 2 ? span_round(len + len / 2) : need;
    if (in_arena && need <= HAK_ARENA_MAX_SPAN && hak_arena_resize(hdr->base, len, need)) {
      set_span_len(p, need);
      return p;
    }
    if (HAK_TOOLS) return NULL; /* no move behind a memory checker's back */
    /* Below the arena limit a new span (cached, or an arena run: pages
     * already faulted in) plus a copy beats mremap's fresh pages. */
    if (in_arena || grow_to <= HAK_ARENA_MAX_SPAN) {
      void *q = hak_large_alloc(grow_to - HEADER_ROOM, 16, 0);
      if (!q) return NULL;
      memcpy(q, p, usable);
      hak_large_free(p);
      return q;
    }
    need = grow_to;
  }
  if (HAK_TOOLS) return NULL;
  /* A mapping of its own: mremap moves the pages, not the bytes. */
  struct hak_large_span old = unlink_block(p, 0);
  /* The tool sees mmap and munmap, which clear its record of a range, but
   * not mremap: the range left behind keeps this thread's accesses, and
   * the range moved to keeps those of whoever last used it - perhaps a
   * block another thread moved away from there, unsynchronised with this
   * one.  Every move releases, then acquires, the one key of moved
   * memory, so each earlier user of an address happens before its next. */
  hak_tsan_release(&moved_memory);
  void *base = mremap(old.base, old.len, need, MREMAP_MAYMOVE);
  hak_tsan_acquire(&moved_memory);
  if (base == MAP_FAILED) {
    publish(old, offset); /* unchanged, back in the table */
    return NULL;
  }
  return publish((struct hak_large_span){base, need}, offset);
}

uint64_t hak_large_scavenge(uint64_t deadline_ns) {
  uint64_t released = 0;
  for (;;) {
    struct hak_large_span span = {0};
    hak_lock(&cache_lock);
    if (huge_count) {
      span = huge_cache[--huge_count];
      huge_cached_bytes -= span.len;
    }
    hak_unlock(&cache_lock);
    if (!span.base) break;
    released += span_release(span);
    if (deadline_ns && hak_os_now_ns() >= deadline_ns) return released;
  }
  return released + hak_arena_purge(deadline_ns);
}

void hak_large_lock_all(void) {
  for (int i = 0; i < SHARDS; i++) hak_lock(&shards[i].lock);
  hak_lock(&cache_lock);
  hak_arena_lock_all();
}

void hak_large_unlock_all(void) {
  hak_arena_unlock_all();
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
  out->cached_bytes = huge_cached_bytes;
  hak_unlock(&cache_lock);
  out->cached_bytes += hak_arena_dirty_bytes();
}
