#include "segment.h"

#include "config.h"
#include "os.h"
#include "registry.h"
#include "release.h"
#include "remote.h"
#include "size_class.h"

_Static_assert(HAK_ADDRESS_BITS <= HAK_REMOTE_COUNT_SHIFT,
               "a remote queue head must hold any segment address");
_Static_assert((HAK_MAX_SPAN_SLABS * HAK_SLAB_SIZE / 16) >> (64 - HAK_REMOTE_COUNT_SHIFT) == 0,
               "a remote queue head must count every block of a span");

struct hak_pool hak_pool = {.carve_lock = HAK_LOCK_INIT};
struct hak_slab hak_no_slab = {
    .span_head = &hak_no_slab, .owner = &hak_no_owner, .cls = HAK_CLASS_NONE};

#define STACK_PTR_MASK (((uint64_t)1 << 48) - 1)

static void stack_push(struct hak_span_stack *st, struct hak_slab *s) {
  uint64_t old = atomic_load_explicit(&st->top, memory_order_relaxed);
  uint64_t next;
  do {
    atomic_store_explicit(&s->pool_next, (uintptr_t)(old & STACK_PTR_MASK),
                          memory_order_relaxed);
    next = (uint64_t)(uintptr_t)s | ((old >> 48) + 1) << 48;
  } while (!atomic_compare_exchange_weak_explicit(&st->top, &old, next,
                                                  memory_order_release,
                                                  memory_order_relaxed));
}

static struct hak_slab *stack_pop(struct hak_span_stack *st) {
  uint64_t old = atomic_load_explicit(&st->top, memory_order_acquire);
  for (;;) {
    struct hak_slab *s = (struct hak_slab *)(uintptr_t)(old & STACK_PTR_MASK);
    if (!s) return NULL;
    /* s may be popped and reused meanwhile; then the tag makes the CAS
     * fail and the link read here is discarded.  Span metadata is never
     * unmapped, so the read itself is safe. */
    uintptr_t link = atomic_load_explicit(&s->pool_next, memory_order_relaxed);
    uint64_t next = (uint64_t)link | (old & ~STACK_PTR_MASK);
    if (atomic_compare_exchange_weak_explicit(&st->top, &old, next,
                                              memory_order_acquire,
                                              memory_order_acquire))
      return s;
  }
}

static unsigned log2_slabs(unsigned slabs) { return (unsigned)__builtin_ctz(slabs); }

char *hak_span_base(const struct hak_slab *s) {
  struct hak_segment *seg = hak_segment_of(s);
  return (char *)seg + (size_t)(s - seg->slabs) * HAK_SLAB_SIZE;
}

static size_t span_bytes(const struct hak_slab *s) {
  return (size_t)s->span_slabs * HAK_SLAB_SIZE;
}

/* Makes slabs [first, first+slabs) of seg one span, serving no class. */
static struct hak_slab *span_init_free(struct hak_segment *seg, unsigned first,
                                       unsigned slabs, int fresh) {
  struct hak_slab *head = &seg->slabs[first];
  for (unsigned i = 0; i < slabs; i++) head[i].span_head = head;
  hak_set_cls(head, HAK_CLASS_NONE);
  head->magic = 0;
  head->span_slabs = (uint8_t)slabs;
  head->decommitted = (uint8_t)fresh; /* fresh pages are not resident yet */
  head->parked = 0;
  head->parked_pages[0] = head->parked_pages[1] = 0;
  atomic_store_explicit(&head->owner, &hak_no_owner, memory_order_relaxed);
  return head;
}

static struct hak_segment *segment_map(void) {
  struct hak_segment *seg = hak_os_map_aligned(HAK_SEGMENT_SIZE, HAK_SEGMENT_SIZE);
  if (!seg) return NULL;
  /* The registry and the remote queues' head words (remote.h) cover the
   * 47-bit address space, where the kernel maps unless asked otherwise. */
  if ((uintptr_t)seg >> HAK_ADDRESS_BITS) {
    hak_os_unmap(seg, HAK_SEGMENT_SIZE);
    return NULL;
  }
  seg->magic = HAK_SEGMENT_MAGIC;
  seg->carved_slabs = 1; /* slab 0 is this header */
  for (int i = 0; i < HAK_SLABS_PER_SEGMENT; i++) {
    seg->slabs[i].span_head = &hak_no_slab;
    seg->slabs[i].cls = HAK_CLASS_NONE;
    atomic_store_explicit(&seg->slabs[i].owner, &hak_no_owner, memory_order_relaxed);
  }
  /* Registered before any block of it exists: a lookup of a live block
   * can never miss. */
  hak_registry_add(seg);
  seg->next = hak_pool.all_segments;
  hak_pool.all_segments = seg;
  atomic_fetch_add_explicit(&hak_pool.segments, 1, memory_order_relaxed);
  return seg;
}

/* A fresh span of `slabs` slabs from the current segment, or NULL. */
static struct hak_slab *span_carve(unsigned slabs) {
  hak_lock(&hak_pool.carve_lock);
  struct hak_segment *seg = hak_pool.carve_segment;
  if (!seg || seg->carved_slabs + slabs > HAK_SLABS_PER_SEGMENT) {
    /* The tail that cannot hold this span still serves 1-slab classes. */
    while (seg && seg->carved_slabs < HAK_SLABS_PER_SEGMENT) {
      hak_span_release(span_init_free(seg, seg->carved_slabs++, 1, 1));
    }
    seg = segment_map();
    hak_pool.carve_segment = seg;
  }
  struct hak_slab *s = NULL;
  if (seg) {
    s = span_init_free(seg, seg->carved_slabs, slabs, 1);
    seg->carved_slabs += slabs;
  }
  hak_unlock(&hak_pool.carve_lock);
  return s;
}

/* Turns a free span into an empty span of class cls owned by h. */
static void span_assign(struct hak_slab *s, unsigned cls, struct hak_heap *h) {
  hak_set_cls(s, cls);
  s->magic = HAK_SLAB_MAGIC;
  s->block_size = hak_class_bytes[cls];
  s->inv_block_size = (((uint64_t)1 << 40) + s->block_size - 1) / s->block_size;
  s->start = hak_span_base(s);
  s->capacity = (uint32_t)(span_bytes(s) / s->block_size);
  atomic_store_explicit(&s->carved, 0, memory_order_relaxed);
  s->free = NULL;
  s->used = 0;
  s->decommitted = 0;
  /* Pages parked while the span last served a class hold no listed block:
   * carving rewrites every block it hands out. */
  s->parked = 0;
  s->parked_pages[0] = s->parked_pages[1] = 0;
  atomic_fetch_add_explicit(&hak_pool.reserved_bytes[cls], span_bytes(s),
                            memory_order_relaxed);
  atomic_store_explicit(&s->owner, h, memory_order_release);
}

struct hak_slab *hak_span_acquire(unsigned cls, struct hak_heap *h) {
  struct hak_slab *s = stack_pop(&hak_pool.abandoned[cls]);
  if (s) {
    atomic_fetch_sub_explicit(&hak_pool.abandoned_spans, 1, memory_order_relaxed);
    atomic_store_explicit(&s->owner, h, memory_order_release);
    return s;
  }
  unsigned slabs = hak_class_span_slabs(cls);
  s = stack_pop(&hak_pool.empty[log2_slabs(slabs)]);
  if (s) {
    atomic_fetch_sub_explicit(&hak_pool.empty_spans, 1, memory_order_relaxed);
    if (!s->decommitted)
      atomic_fetch_sub_explicit(&hak_pool.empty_committed_bytes, span_bytes(s),
                                memory_order_relaxed);
    else
      atomic_fetch_sub_explicit(&hak_pool.decommitted_bytes, span_bytes(s),
                                memory_order_relaxed);
  } else {
    s = span_carve(slabs);
    if (!s) return NULL;
  }
  span_assign(s, cls, h);
  return s;
}

void hak_span_release(struct hak_slab *s) {
  if (s->cls < HAK_NUM_CLASSES)
    atomic_fetch_sub_explicit(&hak_pool.reserved_bytes[s->cls], span_bytes(s),
                              memory_order_relaxed);
  hak_set_cls(s, HAK_CLASS_NONE);
  s->magic = 0;
  atomic_store_explicit(&s->owner, &hak_no_owner, memory_order_release);
  if (!s->decommitted) {
    uint64_t kept = atomic_fetch_add_explicit(&hak_pool.empty_committed_bytes,
                                              span_bytes(s), memory_order_relaxed);
    if (kept + span_bytes(s) > hak_config.empty_retain_bytes) {
      atomic_fetch_sub_explicit(&hak_pool.empty_committed_bytes, span_bytes(s),
                                memory_order_relaxed);
      hak_os_decommit(hak_span_base(s), span_bytes(s));
      s->decommitted = 1;
      atomic_fetch_add_explicit(&hak_pool.released_pages, span_bytes(s) / HAK_PAGE_SIZE,
                                memory_order_relaxed);
    }
  }
  if (s->decommitted)
    atomic_fetch_add_explicit(&hak_pool.decommitted_bytes, span_bytes(s),
                              memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_pool.empty_spans, 1, memory_order_relaxed);
  stack_push(&hak_pool.empty[log2_slabs(s->span_slabs)], s);
}

void hak_span_abandon(struct hak_slab *s) {
  atomic_store_explicit(&s->owner, &hak_no_owner, memory_order_release);
  atomic_fetch_add_explicit(&hak_pool.abandoned_spans, 1, memory_order_relaxed);
  stack_push(&hak_pool.abandoned[s->cls], s);
}

/* Pops every span of st into a private list (linked through pool_next). */
static struct hak_slab *stack_take_all(struct hak_span_stack *st) {
  struct hak_slab *list = NULL, *s;
  while ((s = stack_pop(st)) != NULL) {
    atomic_store_explicit(&s->pool_next, (uintptr_t)list, memory_order_relaxed);
    list = s;
  }
  return list;
}

static int out_of_budget(uint64_t deadline_ns, uint64_t max_pages, uint64_t pages) {
  return (max_pages && pages >= max_pages) || (deadline_ns && hak_os_now_ns() >= deadline_ns);
}

uint64_t hak_pool_scavenge(uint64_t deadline_ns, uint64_t max_pages) {
  uint64_t pages = 0;
  /* Abandoned spans whose blocks all came home are empty: into the empty
   * pool with them, where the loop below finds them. */
  for (unsigned c = 0; c < HAK_NUM_CLASSES && !out_of_budget(deadline_ns, 0, 0); c++) {
    struct hak_slab *list = stack_take_all(&hak_pool.abandoned[c]);
    while (list) {
      struct hak_slab *s = list;
      list = (struct hak_slab *)atomic_load_explicit(&s->pool_next, memory_order_relaxed);
      atomic_fetch_sub_explicit(&hak_pool.abandoned_spans, 1, memory_order_relaxed);
      hak_remote_collect(s);
      if (s->used == 0) {
        hak_span_release(s);
        continue;
      }
      /* Popped, the span is this thread's alone: its free pages can go
       * (hak_span_release_pages counts them in released_pages itself). */
      if (!out_of_budget(deadline_ns, max_pages, pages)) pages += hak_span_release_pages(s, 1, NULL);
      hak_span_abandon(s);
    }
  }
  /* Empty spans, one at a time, so the budget is checked between spans:
   * each is popped, decommitted if it is not already, and kept on a
   * private list until the pass ends (other threads meanwhile carve or
   * take other spans; a pass is short). */
  uint64_t decommitted = 0;
  for (unsigned b = 0; b < 4; b++) {
    uint64_t n = atomic_load_explicit(&hak_pool.empty_spans, memory_order_relaxed);
    struct hak_slab *done = NULL, *s;
    for (uint64_t i = 0; i < n && !out_of_budget(deadline_ns, max_pages, pages); i++) {
      if (!(s = stack_pop(&hak_pool.empty[b]))) break;
      if (!s->decommitted) {
        hak_os_decommit(hak_span_base(s), span_bytes(s));
        s->decommitted = 1;
        atomic_fetch_sub_explicit(&hak_pool.empty_committed_bytes, span_bytes(s),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&hak_pool.decommitted_bytes, span_bytes(s),
                                  memory_order_relaxed);
        pages += span_bytes(s) / HAK_PAGE_SIZE;
        decommitted += span_bytes(s) / HAK_PAGE_SIZE;
      }
      atomic_store_explicit(&s->pool_next, (uintptr_t)done, memory_order_relaxed);
      done = s;
    }
    while ((s = done) != NULL) {
      done = (struct hak_slab *)atomic_load_explicit(&s->pool_next, memory_order_relaxed);
      stack_push(&hak_pool.empty[b], s);
    }
  }
  atomic_fetch_add_explicit(&hak_pool.released_pages, decommitted, memory_order_relaxed);
  return pages;
}
