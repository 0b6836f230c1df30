#include "heap.h"

#include <pthread.h>

#include "alloc.h"
#include "init.h"
#include "integrity.h"
#include "knobs.h"
#include "os.h"
#include "release.h"
#include "remote.h"
#include "segment.h"

struct hak_heap_registry hak_heaps = {.lock = HAK_LOCK_INIT};
struct hak_heap hak_no_owner;

#define FULL_SCAN_LIMIT 8

/* ---- span lists ------------------------------------------------------ */

static void list_push(struct hak_slab_list *l, struct hak_slab *s) {
  s->prev = NULL;
  s->next = l->head;
  if (l->head) l->head->prev = s;
  else l->tail = s;
  l->head = s;
}

static void list_append(struct hak_slab_list *l, struct hak_slab *s) {
  s->next = NULL;
  s->prev = l->tail;
  if (l->tail) l->tail->next = s;
  else l->head = s;
  l->tail = s;
}

static void list_remove(struct hak_slab_list *l, struct hak_slab *s) {
  if (s->prev) s->prev->next = s->next;
  else l->head = s->next;
  if (s->next) s->next->prev = s->prev;
  else l->tail = s->prev;
  s->prev = s->next = NULL;
}

static int span_has_blocks(const struct hak_slab *s) {
  return s->free || s->parked ||
         atomic_load_explicit(&s->carved, memory_order_relaxed) < s->capacity;
}

static void move_to_avail(struct hak_heap *h, struct hak_slab *s) {
  list_remove(&h->full[s->cls], s);
  s->on_full_list = 0;
  list_push(&h->avail[s->cls], s);
}

static void move_to_full(struct hak_heap *h, struct hak_slab *s) {
  list_remove(&h->avail[s->cls], s);
  s->on_full_list = 1;
  list_append(&h->full[s->cls], s);
}

/* A span whose blocks are all home: back to the pool, unless it is the
 * only avail span of its class (keeping one avoids ping-pong). */
static void maybe_release(struct hak_heap *h, struct hak_slab *s) {
  struct hak_slab_list *avail = &h->avail[s->cls];
  if (s->on_full_list || (avail->head == s && avail->tail == s)) return;
  list_remove(avail, s);
  /* Its released runs go out before another thread can carve into them. */
  hak_release_batch_flush_span(&h->release_batch, s);
  hak_span_release(s);
}

static void drain(struct hak_heap *h, struct hak_slab *s) {
  if (!hak_remote_collect(s)) return;
  if (s->on_full_list) move_to_avail(h, s);
  if (s->used == 0) maybe_release(h, s);
}

static void drain_pending(struct hak_heap *h) {
  struct hak_slab *s = atomic_exchange_explicit(&h->pending, NULL, memory_order_acquire);
  while (s) {
    struct hak_slab *next = atomic_load_explicit(&s->pending_next, memory_order_relaxed);
    atomic_store_explicit(&s->in_pending, 0, memory_order_release);
    /* Stale entries (spans since given away) are skipped.  A span that
     * still has local blocks to give is left to its queue unless every
     * block it has out is in the queue (then it can go back to the pool):
     * taken when its local list has run dry, the queue joins nothing and
     * neither list is walked (remote.c); span_take and scan_full take it
     * then. */
    if (atomic_load_explicit(&s->owner, memory_order_acquire) == h &&
        (!s->free || hak_remote_backlog(s) >= s->used))
      drain(h, s);
    s = next;
  }
}

void hak_collect_class(struct hak_heap *h, unsigned cls) {
  /* drain() may move a span from full to avail or release it: the next
   * span is taken first. */
  struct hak_slab_list *lists[2] = {&h->full[cls], &h->avail[cls]};
  for (int i = 0; i < 2; i++) {
    for (struct hak_slab *s = lists[i]->head, *next; s; s = next) {
      next = s->next;
      drain(h, s);
    }
  }
}

/* Looks at a few full spans for a remote backlog below the threshold,
 * rotating them so the next look starts elsewhere. */
static void scan_full(struct hak_heap *h, unsigned cls) {
  struct hak_slab_list *full = &h->full[cls];
  for (int i = 0; i < FULL_SCAN_LIMIT && full->head; i++) {
    struct hak_slab *s = full->head;
    if (hak_remote_backlog(s) > 0) {
      drain(h, s);
      return;
    }
    if (s == full->tail) return;
    list_remove(full, s);
    list_append(full, s);
  }
}

/* An avail span of cls, acquiring one if needed; NULL when out of memory. */
static struct hak_slab *find_span(struct hak_heap *h, unsigned cls) {
  if (h->avail[cls].head) return h->avail[cls].head;
  drain_pending(h);
  if (h->avail[cls].head) return h->avail[cls].head;
  scan_full(h, cls);
  if (h->avail[cls].head) return h->avail[cls].head;
  for (;;) {
    struct hak_slab *s = hak_span_acquire(cls, h);
    if (!s) return NULL;
    hak_remote_collect(s); /* an adopted span may carry a backlog */
    if (span_has_blocks(s)) {
      s->on_full_list = 0;
      list_push(&h->avail[cls], s);
      return s;
    }
    s->on_full_list = 1;
    list_append(&h->full[cls], s);
  }
}

/* Moves up to `want` blocks of span s onto the bin; returns how many.
 * Blocks of the span's free list move as a chain, relinking only its last
 * node.  When the whole list fits and the bin is empty (a refill), it moves
 * as it is, unread: every node's link is checked by the pop that would
 * follow it.  Otherwise the first `want` nodes are walked, each checked
 * like a pop before its link is followed. */
static uint32_t span_take(struct hak_slab *s, struct hak_bin *bin, unsigned cls,
                          uint32_t want) {
  /* A remote queue left waiting (drain_pending), then parked blocks, before
   * fresh ones: their pages were in use before. */
  if (!s->free && hak_remote_backlog(s)) hak_remote_collect(s);
  if (!s->free && s->parked) hak_span_unpark(s);
  /* Blocks on the list: neither in use (handed out or in a TLS list) nor
   * parked on released pages. */
  uint32_t listed = atomic_load_explicit(&s->carved, memory_order_relaxed) - s->used - s->parked;
  uint32_t got = 0;
  uintptr_t *first = s->free, *last = NULL, *b = first;
  if (listed && listed <= want && first && !bin->head) {
    got = listed;
    b = NULL;
  } else {
    while (got < want && b) {
      enum hak_node_problem why = hak_pop_check(b, cls);
      if (HAK_UNLIKELY(why != HAK_NODE_OK)) {
        hak_fault(HAK_FAULT_SLL_CORRUPTION, b, (int)cls, why);
        /* The rest of the list cannot be trusted: its blocks leak. */
        s->used += listed - got;
        b = NULL;
        break;
      }
      last = b;
      b = hak_node_next(b);
      got++;
    }
  }
  s->free = b;
  void *head = bin->head;
  if (last) hak_node_link(last, (uintptr_t)head, hak_free_tag(last, cls));
  if (got) head = first;
  uint32_t carved = atomic_load_explicit(&s->carved, memory_order_relaxed);
  uint32_t fresh = s->capacity - carved;
  if (fresh > want - got) fresh = want - got;
  /* Pushed from the highest address down, so the list hands them out in
   * address order. */
  for (uint32_t i = fresh; i-- > 0;) {
    uintptr_t *b = (uintptr_t *)(s->start + (size_t)(carved + i) * s->block_size);
    hak_node_link(b, (uintptr_t)head, hak_free_tag(b, cls));
    head = b;
  }
  atomic_store_explicit(&s->carved, carved + fresh, memory_order_relaxed);
  got += fresh;
  bin->head = head;
  s->used += got;
  HAK_COUNTER_SET(bin->count, bin->count + got);
  HAK_COUNTER_SET(bin->net_in, bin->net_in + got);
  return got;
}

int hak_refill(struct hak_tcache *tc, unsigned cls) {
  struct hak_heap *h = tc->heap;
  hak_knobs_refresh(tc);
  h->flushes_since_refill = 0;
  /* The run of frees is over, and an unpark below would write into pages
   * still waiting for their madvise. */
  if (HAK_UNLIKELY(h->release_batch.n)) hak_release_batch_flush(&h->release_batch);
  struct hak_bin *bin = &tc->bins[cls];
  /* A bundle: the set width (never more than the list holds), else half
   * the capacity. */
  uint32_t want = atomic_load_explicit(&hak_knobs.bundle[cls], memory_order_relaxed);
  if (!want) want = bin->cap > 1 ? bin->cap / 2 : 1;
  else if (want > bin->cap) want = bin->cap;
  for (;;) {
    struct hak_slab *s = find_span(h, cls);
    if (!s) return 0;
    uint32_t got = span_take(s, bin, cls, want);
    if (!span_has_blocks(s)) move_to_full(h, s);
    if (got) return 1;
  }
}

void hak_flush(struct hak_tcache *tc, unsigned cls, uint32_t keep) {
  struct hak_heap *h = tc->heap;
  struct hak_bin *bin = &tc->bins[cls];
  uint32_t count = bin->count;
  int64_t flushed = 0;
  uint32_t release = atomic_load_explicit(&hak_knobs.release_pages, memory_order_relaxed);
  if (h->flushes_since_refill < UINT32_MAX) h->flushes_since_refill++;
  while (count > keep) {
    uintptr_t *b = bin->head;
    /* The same check a pop makes; a list shorter than its count is
     * corrupt too. */
    enum hak_node_problem why = b ? hak_pop_check(b, cls) : HAK_NODE_NOT_REGISTERED;
    if (HAK_UNLIKELY(why != HAK_NODE_OK)) {
      hak_drop_bin(bin, cls, why);
      count = 0;
      break;
    }
    bin->head = hak_node_next(b);
    count--;
    flushed++;
    struct hak_slab *s = hak_slab_of(b);
    hak_node_link(b, (uintptr_t)s->free, hak_free_tag(b, cls));
    s->free = b;
    s->used--;
    if (s->on_full_list) move_to_avail(h, s);
    if (s->used == 0) maybe_release(h, s);
    else if (HAK_UNLIKELY(release) && hak_release_point(h, s))
      hak_span_release_pages(s, release, &h->release_batch);
  }
  HAK_COUNTER_SET(bin->count, count);
  HAK_COUNTER_SET(bin->net_in, bin->net_in - flushed);
  hak_knobs_refresh(tc);
}

/* ---- thread attach / detach ------------------------------------------ */

static pthread_key_t thread_key;
static int thread_key_ready;

static void thread_key_destructor(void *arg) {
  (void)arg;
  hak_thread_detach();
}

void hak_heaps_init(void) {
  if (pthread_key_create(&thread_key, thread_key_destructor) == 0)
    thread_key_ready = 1;
}

static struct hak_heap *heap_new_locked(void) {
  struct hak_heap *h = hak_heaps.free;
  if (h) {
    hak_heaps.free = h->next_free;
    return h;
  }
  /* Heaps are never unmapped: remote frees may still announce to one. */
  size_t chunk = 64 * 1024;
  char *mem = hak_os_map(chunk);
  if (!mem) return NULL;
  size_t n = chunk / sizeof(struct hak_heap);
  for (size_t i = 1; i < n; i++) {
    struct hak_heap *extra = (struct hak_heap *)(mem + i * sizeof(struct hak_heap));
    extra->id = ++hak_heaps.next_id;
    extra->next_free = hak_heaps.free;
    hak_heaps.free = extra;
  }
  h = (struct hak_heap *)mem;
  h->id = ++hak_heaps.next_id;
  return h;
}

struct hak_heap *hak_thread_attach(void) {
  struct hak_tcache *tc = &hak_tc;
  hak_lock(&hak_heaps.lock);
  struct hak_heap *h = heap_new_locked();
  if (h) {
    h->tc = tc;
    h->prev_live = NULL;
    h->next_live = hak_heaps.live;
    if (hak_heaps.live) hak_heaps.live->prev_live = h;
    hak_heaps.live = h;
    hak_heaps.live_count++;
  }
  hak_unlock(&hak_heaps.lock);
  if (!h) return NULL;
  tc->heap = h;
  tc->knob_epoch = 0;
  hak_knobs_refresh(tc);
  if (thread_key_ready) pthread_setspecific(thread_key, h);
  return h;
}

static void unlink_live_locked(struct hak_heap *h) {
  if (h->prev_live) h->prev_live->next_live = h->next_live;
  else hak_heaps.live = h->next_live;
  if (h->next_live) h->next_live->prev_live = h->prev_live;
  h->next_live = h->prev_live = NULL;
  hak_heaps.live_count--;
}

static void give_back_spans(struct hak_slab_list *l) {
  while (l->head) {
    struct hak_slab *s = l->head;
    list_remove(l, s);
    hak_remote_collect(s);
    if (s->used == 0) hak_span_release(s);
    else hak_span_abandon(s);
  }
}

void hak_thread_detach(void) {
  struct hak_tcache *tc = &hak_tc;
  struct hak_heap *h = tc->heap;
  if (!h) return;
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) hak_flush(tc, c, 0);
  drain_pending(h);
  hak_release_batch_flush(&h->release_batch); /* before the spans leave */
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    give_back_spans(&h->avail[c]);
    give_back_spans(&h->full[c]);
  }
  hak_lock(&hak_heaps.lock);
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    struct hak_bin *bin = &tc->bins[c];
    /* Flushed to zero above, so allocs = net_in + frees. */
    hak_heaps.retired_allocs[c] += (uint64_t)(bin->net_in + (int64_t)bin->frees);
    hak_heaps.retired_frees[c] += bin->frees + tc->remote_frees[c];
    hak_heaps.retired_remote_frees[c] += tc->remote_frees[c];
    HAK_COUNTER_SET(bin->net_in, 0);
    HAK_COUNTER_SET(bin->frees, 0);
    HAK_COUNTER_SET(tc->remote_frees[c], 0);
  }
  hak_heaps.retired_large_allocs +=
      atomic_exchange_explicit(&h->large_allocs, 0, memory_order_relaxed);
  hak_heaps.retired_large_frees +=
      atomic_exchange_explicit(&h->large_frees, 0, memory_order_relaxed);
  unlink_live_locked(h);
  h->tc = NULL;
  h->next_free = hak_heaps.free;
  hak_heaps.free = h;
  hak_heaps.retired_count++;
  hak_unlock(&hak_heaps.lock);
  tc->heap = NULL;
}

void hak_heaps_after_fork_child(void) {
  /* Only the forking thread survives.  Other heaps' lists may have been
   * mid-update at the fork, so they are not walked: their spans stay
   * allocated in the child and the heaps are never reused. */
  struct hak_heap *self = hak_tc.heap;
  struct hak_heap *h = hak_heaps.live;
  while (h) {
    struct hak_heap *next = h->next_live;
    if (h != self) {
      unlink_live_locked(h);
      h->tc = NULL;
    }
    h = next;
  }
}
