#include "page_arena.h"

#include <stdatomic.h>

#include "config.h"
#include "lock.h"
#include "os.h"

#define PAGES ((uint32_t)(HAK_ARENA_REGION_SIZE / HAK_PAGE_SIZE))
#define BINS 64
#define FREE_BIT 0x80000000u
#define LEN_MASK 0x7fffffffu
#define NIL 0u /* page 0 holds the record: never a run */

struct arena;

/* The record at the start of every region; see page_arena.h.  Runs tile
 * the pages [first_page, PAGES): every page is in exactly one run, so the
 * page after a run starts a run and the page before one ends a run. */
struct region {
  struct arena *arena;
  struct region *next;
  uint32_t first_page;
  uint64_t bin_mask;
  uint32_t bin_head[BINS];
  uint32_t head[PAGES];      /* at a run's first page: length | FREE_BIT */
  uint32_t tail[PAGES];      /* at a run's last page: its first page */
  /* At a free run's first page: how many of its pages may be dirty.  Exact
   * where runs merge; where one splits, each part is assumed to keep as
   * many of them as it can hold, so a part counted clean truly is. */
  uint32_t dirty[PAGES];
  uint32_t next_free[PAGES]; /* at a free run's first page: its bin list */
  uint32_t prev_free[PAGES];
};

struct arena {
  hak_lock_t lock;
  struct region *regions;
  unsigned region_count;
  uint64_t dirty_pages;   /* sum of its free runs' dirty counts */
  uint64_t low_water;     /* least dirty_pages since the last purge */
  uint64_t next_purge_ns; /* no budget purge before then */
};

static struct arena arenas[HAK_ARENAS];

/* One bit per region-sized slot of the 47-bit address space. */
#define OWNED_WORDS (((uint64_t)1 << (47 - HAK_ARENA_REGION_SHIFT)) / 64)
static _Atomic uint64_t owned[OWNED_WORDS];

static void set_owned(const void *p, int on) {
  uint64_t slot = (uintptr_t)p >> HAK_ARENA_REGION_SHIFT;
  uint64_t bit = 1ull << (slot % 64);
  if (on) atomic_fetch_or_explicit(&owned[slot / 64], bit, memory_order_release);
  else atomic_fetch_and_explicit(&owned[slot / 64], ~bit, memory_order_release);
}

int hak_arena_owns(const void *p) {
  uint64_t slot = (uintptr_t)p >> HAK_ARENA_REGION_SHIFT;
  if (slot / 64 >= OWNED_WORDS) return 0;
  return (atomic_load_explicit(&owned[slot / 64], memory_order_acquire) >> (slot % 64)) & 1;
}

static struct region *region_of(const void *p) {
  return (struct region *)((uintptr_t)p & ~(uintptr_t)(HAK_ARENA_REGION_SIZE - 1));
}

static char *page_addr(struct region *r, uint32_t page) {
  return (char *)r + (size_t)page * HAK_PAGE_SIZE;
}

/* The bin of runs of `pages` pages: exact below 8, then 4 per power of
 * two.  Every run in a higher bin is longer than every run in a lower one. */
static unsigned bin_of(uint32_t pages) {
  if (pages < 8) return pages;
  unsigned lg = 31u - (unsigned)__builtin_clz(pages);
  return 8 + (lg - 3) * 4 + ((pages >> (lg - 2)) & 3);
}

static void set_run(struct region *r, uint32_t start, uint32_t len, uint32_t flags) {
  r->head[start] = len | flags;
  r->tail[start + len - 1] = start;
}

static void add_free(struct arena *a, struct region *r, uint32_t start, uint32_t len,
                     uint32_t dirty) {
  set_run(r, start, len, FREE_BIT);
  r->dirty[start] = dirty;
  unsigned b = bin_of(len);
  uint32_t first = r->bin_head[b];
  r->next_free[start] = first;
  r->prev_free[start] = NIL;
  if (first != NIL) r->prev_free[first] = start;
  r->bin_head[b] = start;
  r->bin_mask |= 1ull << b;
  a->dirty_pages += dirty;
}

/* Unlinks the free run at start; returns its length.  Its dirty count
 * stays readable in r->dirty[start]. */
static uint32_t take_free(struct arena *a, struct region *r, uint32_t start) {
  uint32_t h = r->head[start], len = h & LEN_MASK;
  unsigned b = bin_of(len);
  uint32_t next = r->next_free[start], prev = r->prev_free[start];
  if (prev != NIL) r->next_free[prev] = next;
  else r->bin_head[b] = next;
  if (next != NIL) r->prev_free[next] = prev;
  if (r->bin_head[b] == NIL) r->bin_mask &= ~(1ull << b);
  a->dirty_pages -= r->dirty[start];
  if (a->dirty_pages < a->low_water) a->low_water = a->dirty_pages;
  return len;
}

/* First page of a free run of at least n pages, NIL if none: a fit from
 * n's own bin, else the first run of the next non-empty bin (all fit). */
static uint32_t find_fit(struct region *r, uint32_t n) {
  unsigned b = bin_of(n);
  for (uint32_t p = r->bin_head[b]; p != NIL; p = r->next_free[p])
    if ((r->head[p] & LEN_MASK) >= n) return p;
  uint64_t higher = b + 1 < BINS ? r->bin_mask & ~((2ull << b) - 1) : 0;
  if (!higher) return NIL;
  return r->bin_head[__builtin_ctzll(higher)];
}

static uint32_t alloc_in_region(struct arena *a, struct region *r, uint32_t n, int *zeroed) {
  uint32_t start = find_fit(r, n);
  if (start == NIL) return NIL;
  uint32_t len = take_free(a, r, start), dirty = r->dirty[start];
  if (len > n) add_free(a, r, start + n, len - n, dirty < len - n ? dirty : len - n);
  set_run(r, start, n, 0);
  *zeroed = dirty == 0;
  return start;
}

static struct region *region_new(struct arena *a) {
  struct region *r = hak_os_map_aligned(HAK_ARENA_REGION_SIZE, HAK_ARENA_REGION_SIZE);
  if (!r) return NULL;
  r->arena = a;
  r->first_page = (uint32_t)((sizeof *r + HAK_PAGE_SIZE - 1) / HAK_PAGE_SIZE);
  /* A fresh mapping reads as zeros: the whole run is clean. */
  add_free(a, r, r->first_page, PAGES - r->first_page, 0);
  r->next = a->regions;
  a->regions = r;
  a->region_count++;
  set_owned(r, 1);
  return r;
}

static void region_unlink(struct arena *a, struct region *gone) {
  for (struct region **at = &a->regions; *at; at = &(*at)->next)
    if (*at == gone) {
      *at = gone->next;
      a->region_count--;
      return;
    }
}

static struct arena *my_arena(void) {
  struct hak_heap *h = hak_tc.heap;
  return &arenas[h ? h->id % HAK_ARENAS : 0];
}

void *hak_arena_alloc(size_t len, int *zeroed) {
  uint32_t n = (uint32_t)(len / HAK_PAGE_SIZE);
  struct arena *a = my_arena();
  hak_lock(&a->lock);
  uint32_t start = NIL;
  struct region *r;
  for (r = a->regions; r; r = r->next)
    if ((start = alloc_in_region(a, r, n, zeroed)) != NIL) break;
  if (!r && (r = region_new(a))) start = alloc_in_region(a, r, n, zeroed);
  hak_unlock(&a->lock);
  return r ? page_addr(r, start) : NULL;
}

/* Makes pages [start, start + n) of r, dirty of them possibly dirty, a
 * free run, merged with its free neighbours; called with the arena locked.
 * A region left wholly free is unmapped unless it is the arena's last.
 * Returns the bytes given to the kernel. */
static uint64_t insert_merged(struct arena *a, struct region *r, uint32_t start, uint32_t n,
                              uint32_t dirty) {
  uint32_t right = start + n;
  if (right < PAGES && (r->head[right] & FREE_BIT)) {
    n += take_free(a, r, right);
    dirty += r->dirty[right];
  }
  if (start > r->first_page) {
    uint32_t left = r->tail[start - 1];
    if (r->head[left] & FREE_BIT) {
      n += take_free(a, r, left);
      dirty += r->dirty[left];
      start = left;
    }
  }
  if (n == PAGES - r->first_page && a->region_count > 1) {
    region_unlink(a, r);
    set_owned(r, 0);
    hak_os_unmap(r, HAK_ARENA_REGION_SIZE);
    return HAK_ARENA_REGION_SIZE;
  }
  add_free(a, r, start, n, dirty);
  return 0;
}

/* The free run with the most dirty pages, NIL if none has any. */
static uint32_t dirtiest_run(struct arena *a, struct region **in) {
  uint32_t best = NIL, most = 0;
  for (struct region *r = a->regions; r; r = r->next)
    for (uint64_t bins = r->bin_mask; bins; bins &= bins - 1)
      for (uint32_t p = r->bin_head[__builtin_ctzll(bins)]; p != NIL; p = r->next_free[p])
        if (r->dirty[p] > most) {
          most = r->dirty[p];
          best = p;
          *in = r;
        }
  return best;
}

/* Returns dirty free runs to the kernel, dirtiest first, until the arena
 * keeps at most keep_pages dirty or the deadline passes.  Called with the
 * arena locked; the lock is dropped around each madvise (the run is taken
 * out of the lists meanwhile), so other threads never wait on the
 * kernel. */
static uint64_t purge_arena(struct arena *a, uint64_t keep_pages, uint64_t deadline_ns) {
  uint64_t released = 0;
  while (a->dirty_pages > keep_pages) {
    struct region *r;
    uint32_t p = dirtiest_run(a, &r);
    if (p == NIL) break;
    uint32_t dirty = r->dirty[p], len = take_free(a, r, p);
    set_run(r, p, len, 0); /* in use, by the purge: nothing merges into it */
    hak_unlock(&a->lock);
    hak_os_decommit(page_addr(r, p), (size_t)len * HAK_PAGE_SIZE);
    hak_lock(&a->lock);
    released += (uint64_t)dirty * HAK_PAGE_SIZE + insert_merged(a, r, p, len, 0);
    if (deadline_ns && hak_os_now_ns() >= deadline_ns) break;
  }
  return released;
}

/* Frees pages [start, start + n) of r (all possibly dirty).  Past the
 * dirty budget, at most once per PURGE_GAP_NS, the arena returns the dirty
 * pages no allocation needed since the last look (the low-water mark),
 * down to half the budget: pages a program keeps reusing stay, so one
 * churning through more large memory than the budget does not return and
 * fault in again nearly every page it frees. */
#define PURGE_GAP_NS 100000000ull
static uint64_t free_run(struct arena *a, struct region *r, uint32_t start, uint32_t n) {
  uint64_t released = insert_merged(a, r, start, n, n);
  uint64_t budget_pages = hak_config.large_cache_bytes / HAK_PAGE_SIZE;
  if (a->dirty_pages > budget_pages) {
    uint64_t now = hak_os_now_ns();
    if (now >= a->next_purge_ns) {
      uint64_t idle = a->low_water, excess = a->dirty_pages - budget_pages / 2;
      released += purge_arena(a, a->dirty_pages - (idle < excess ? idle : excess), 0);
      a->next_purge_ns = hak_os_now_ns() + PURGE_GAP_NS;
      a->low_water = a->dirty_pages;
    }
  }
  return released;
}

uint64_t hak_arena_free(void *base, size_t len) {
  struct region *r = region_of(base);
  struct arena *a = r->arena;
  uint32_t start = (uint32_t)(((char *)base - (char *)r) / HAK_PAGE_SIZE);
  hak_lock(&a->lock);
  uint64_t released = free_run(a, r, start, (uint32_t)(len / HAK_PAGE_SIZE));
  hak_unlock(&a->lock);
  return released;
}

int hak_arena_resize(void *base, size_t old_len, size_t new_len) {
  struct region *r = region_of(base);
  struct arena *a = r->arena;
  uint32_t start = (uint32_t)(((char *)base - (char *)r) / HAK_PAGE_SIZE);
  uint32_t old_n = (uint32_t)(old_len / HAK_PAGE_SIZE), n = (uint32_t)(new_len / HAK_PAGE_SIZE);
  int ok = 1;
  hak_lock(&a->lock);
  if (n < old_n) {
    set_run(r, start, n, 0);
    free_run(a, r, start + n, old_n - n);
  } else if (n > old_n) {
    uint32_t right = start + old_n;
    uint32_t h = right < PAGES ? r->head[right] : 0;
    ok = (h & FREE_BIT) && old_n + (h & LEN_MASK) >= n;
    if (ok) {
      uint32_t total = old_n + take_free(a, r, right), dirty = r->dirty[right];
      if (total > n) add_free(a, r, start + n, total - n, dirty < total - n ? dirty : total - n);
      set_run(r, start, n, 0);
    }
  }
  hak_unlock(&a->lock);
  return ok;
}

uint64_t hak_arena_purge(uint64_t deadline_ns) {
  uint64_t released = 0;
  for (int i = 0; i < HAK_ARENAS; i++) {
    hak_lock(&arenas[i].lock);
    released += purge_arena(&arenas[i], 0, deadline_ns);
    arenas[i].low_water = arenas[i].dirty_pages;
    hak_unlock(&arenas[i].lock);
    if (deadline_ns && hak_os_now_ns() >= deadline_ns) break;
  }
  return released;
}

void hak_arena_lock_all(void) {
  for (int i = 0; i < HAK_ARENAS; i++) hak_lock(&arenas[i].lock);
}

void hak_arena_unlock_all(void) {
  for (int i = HAK_ARENAS; i-- > 0;) hak_unlock(&arenas[i].lock);
}

uint64_t hak_arena_dirty_bytes(void) {
  uint64_t pages = 0;
  for (int i = 0; i < HAK_ARENAS; i++) {
    hak_lock(&arenas[i].lock);
    pages += arenas[i].dirty_pages;
    hak_unlock(&arenas[i].lock);
  }
  return pages * HAK_PAGE_SIZE;
}
