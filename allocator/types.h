/* hakmem's core data structures, explained once.
 *
 * Memory comes from the OS in SuperSlabs ("segments"): 2 MiB regions aligned
 * to 2 MiB, so the segment holding any block is found by masking the block's
 * address.  A segment is cut into 32 slabs of 64 KiB.  Slab 0 holds the
 * segment header (below) and is never given to a class.  A slab span is one
 * or more consecutive slabs serving one size class: tiny classes use one
 * slab, the bigger mid classes 2, 4 or 8 so that a span holds several
 * blocks.
 *
 * Block metadata is out of band.  The slab metadata record of a span is the
 * block "header" SPEC §1 asks for: found from the block address alone
 * (segment = address & ~(2 MiB-1), slab = bits 16..20), it names the class
 * and carries a magic value.  Every block is 16-byte aligned because every
 * class size is a multiple of 16 and every span starts on a 64 KiB boundary.
 *
 * A free block's first word links it into a list; its second word holds the
 * free tag, hak_free_tag(block, class) - the block address and class mixed
 * with a per-process secret - sealed with the link: tag ^ link
 * (hak_node_link).  The tag marks a block as free (so a second free of it
 * is caught), and a list node whose tag is wrong - a pointer a few bytes
 * off a block, a block of another class, a stray write - is caught when it
 * is popped.  The seal makes that pop catch a changed link too, before the
 * list follows it: a stray write to either word can never send a list to
 * an address hakmem did not put there.  The tag is cleared when a block is
 * handed out.
 *
 * Ownership: each thread has a heap.  A span belongs to at most one heap at
 * a time (its owner); only the owner touches the span's local free list and
 * counters.  Other threads free into the span's remote queue, a lock-free
 * stack the owner drains.  Spans of exited threads ("abandoned") and empty
 * spans go to the shared pool, from which any heap takes them.
 *
 * Page release (release.h): a span in use may have some of its pages
 * returned to the OS; the free blocks in them are "parked" - on no list -
 * until the span's free list runs dry. */
#ifndef HAKMEM_TYPES_H
#define HAKMEM_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hakmem.h"
#include "tool_hooks.h"

#define HAK_SEGMENT_SHIFT 21
#define HAK_SEGMENT_SIZE ((size_t)1 << HAK_SEGMENT_SHIFT)
#define HAK_SLAB_SHIFT 16
#define HAK_SLAB_SIZE ((size_t)1 << HAK_SLAB_SHIFT)
#define HAK_SLABS_PER_SEGMENT ((int)(HAK_SEGMENT_SIZE / HAK_SLAB_SIZE))
#define HAK_MAX_SPAN_SLABS 8
#define HAK_PAGE_SIZE 4096

#define HAK_SEGMENT_MAGIC 0x68616b6d656d5353ull /* "hakmemSS" */
#define HAK_SLAB_MAGIC 0x5ab1u
#define HAK_CLASS_NONE 0xff /* cls of a slab that serves no class */

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_INTERNAL __attribute__((visibility("hidden")))

#if HAKMEM_BUILD_RELEASE
#define HAK_FULL_CHECKS 0
#else
#define HAK_FULL_CHECKS 1
#endif

struct hak_heap;

/* Metadata of one slab.  For a span, the first slab's record describes the
 * whole span; the others only point at it (span_head).  The first cache
 * line is read by every free; the second is written by remote frees, so the
 * two never share a line. */
struct hak_slab {
  struct hak_slab *span_head;        /* &hak_no_slab: slab 0, or no span yet */
  _Atomic(struct hak_heap *) owner;  /* &hak_no_owner when none */
  uint16_t magic;                    /* HAK_SLAB_MAGIC while in use */
  uint8_t cls;                       /* HAK_CLASS_NONE when unused */
  uint8_t span_slabs;                /* slabs in this span */
  uint32_t block_size;
  uint64_t inv_block_size;           /* ceil(2^40 / block_size): division-free index */
  char *start;                       /* first block */
  _Atomic uint32_t carved;           /* blocks ever cut from the span */
  uint32_t capacity;                 /* blocks the span can hold */
  void *free;                        /* owner-local free list (tagged blocks) */
  uint32_t used;                     /* blocks outside the local free list */
  uint8_t on_full_list;              /* owner-only: which heap list holds it */
  uint8_t decommitted;               /* memory was returned with madvise */
  uint16_t parked;                   /* owner-only: free blocks in released
                                        pages, on no list (release.h) */

  /* The remote queue: its top block in the low HAK_REMOTE_COUNT_SHIFT
   * bits, its length above them (remote.h), so that one atomic operation
   * pushes a block and counts it, and the owner takes the queue with its
   * length without reading a node another core has just written. */
  _Alignas(64) _Atomic(uintptr_t) remote_head;
  _Atomic uint32_t in_pending;       /* on its owner's pending stack */
  _Atomic(struct hak_slab *) pending_next;
  _Atomic uintptr_t pool_next;       /* shared-pool stack link */
  struct hak_slab *prev, *next;      /* owner heap's avail/full list (slow paths) */
  /* Owner-only, rare: pages of the span returned to the OS while the span
   * stays in use (release.h), one bit per 4 KiB page of up to 8 slabs.  In
   * the second line only because the first is full; remote frees never
   * touch them. */
  uint64_t parked_pages[2];
} __attribute__((aligned(64)));

/* Two cache lines exactly, so the record of a slab is found with a shift. */
_Static_assert(sizeof(struct hak_slab) == 128, "slab record must be 128 bytes");

/* A span's class changes while other threads may read it without owning
 * the span: hak_stats walks every record (stats.c).  Plain accesses there
 * were a data race - and the walk's check `cls < HAK_NUM_CLASSES` and its
 * use as an index were two reads, between which a release could make the
 * index HAK_CLASS_NONE.  So the writes (segment.c) and that walk use
 * relaxed atomics: the same single byte moves on x86, and the hot paths,
 * which read cls of a span their block keeps alive, stay plain. */
static inline void hak_set_cls(struct hak_slab *s, unsigned cls) {
  __atomic_store_n(&s->cls, (uint8_t)cls, __ATOMIC_RELAXED);
}
static inline unsigned hak_cls_relaxed(const struct hak_slab *s) {
  return __atomic_load_n(&s->cls, __ATOMIC_RELAXED);
}

struct hak_segment {
  uint64_t magic;
  struct hak_segment *next; /* every segment ever mapped */
  uint32_t carved_slabs;    /* slabs handed out so far; under the segment lock */
  struct hak_slab slabs[HAK_SLABS_PER_SEGMENT];
};

_Static_assert(sizeof(struct hak_segment) <= HAK_SLAB_SIZE,
               "segment header must fit in slab 0");

/* Per-thread counters are written only by their thread and read by
 * hak_stats from others: the owner writes with HAK_COUNTER_SET (a plain
 * store; an atomic one under ThreadSanitizer, so the tool sees no race) and
 * readers use HAK_COUNTER_READ (a relaxed atomic load). */
#if defined(__SANITIZE_THREAD__)
#define HAK_COUNTER_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HAK_COUNTER_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#endif
#endif
#ifndef HAK_COUNTER_SET
#define HAK_COUNTER_SET(x, v) ((x) = (v))
#endif
#define HAK_COUNTER_READ(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* One class's TLS SLL.  malloc counts nothing beyond the list length;
 * allocations follow from  allocs = net_in + frees - count,  where net_in
 * is the blocks refills moved in minus the blocks flushes moved out. */
struct hak_bin {
  void *head;
  uint32_t count;
  uint32_t cap;
  uint64_t frees; /* frees pushed onto this list */
  int64_t net_in;
};

/* Per-thread state, in initial-exec TLS.  All zero until the thread's first
 * allocation, so the fast paths see empty lists and fall into the slow path
 * that sets the thread up. */
struct hak_tcache {
  struct hak_bin bins[HAK_NUM_CLASSES];
  struct hak_heap *heap;
  uint32_t knob_epoch;
  uint64_t remote_frees[HAK_NUM_CLASSES]; /* frees sent to other heaps */
};

struct hak_slab_list {
  struct hak_slab *head, *tail;
};

/* A span of pages holding one large block (large.h). */
struct hak_large_span {
  void *base;
  size_t len;
};

/* Page runs a thread has taken out of use (their blocks parked,
 * release.h) but not yet returned to the OS: returned together, in one
 * system call where the kernel allows it, because each call costs a TLB
 * shootdown of every CPU running the process - on a VM an interrupt and
 * an exit apiece - and page release returns runs of a few pages, tens of
 * thousands of them in a program's free phase. */
#define HAK_RELEASE_BATCH_RUNS 32
#define HAK_RELEASE_BATCH_PAGES 256 /* at most 1 MiB waits, plus one run */
struct hak_release_batch {
  uint32_t n, pages;
  struct iovec run[HAK_RELEASE_BATCH_RUNS];
};

/* A thread's heap: the spans it owns and the stack of spans whose remote
 * queues want draining.  Heaps live in global memory, never freed, so a
 * remote free can always announce itself to a span's owner; a heap whose
 * thread has exited is recycled by the next new thread. */
struct hak_heap {
  struct hak_tcache *tc; /* owner thread's TLS; NULL while retired */
  struct hak_heap *next_live, *prev_live, *next_free;
  uint32_t id;
  struct hak_slab_list avail[HAK_NUM_CLASSES]; /* spans with blocks to give */
  struct hak_slab_list full[HAK_NUM_CLASSES];  /* nothing local left */
  _Atomic(struct hak_slab *) pending;          /* backlog reached threshold */
  uint32_t flushes_since_refill; /* owner-only: a long run of flushes with
                                    no refill is a program giving memory
                                    back (release.h) */
  struct hak_release_batch release_batch; /* owner-only (release.h) */
  _Atomic uint64_t large_allocs, large_frees;
};

/* The span record of slabs that are in no span (slab 0, slabs not yet
 * carved): it serves no class and has no owner, so lookups need no NULL
 * check. */
extern struct hak_slab hak_no_slab HAK_INTERNAL;

/* The owner of spans that have none: unused, pooled or abandoned.  Never
 * the heap of a thread, so a free's owner check can never match it. */
extern struct hak_heap hak_no_owner HAK_INTERNAL;

extern __thread struct hak_tcache hak_tc HAK_INTERNAL
    __attribute__((tls_model("initial-exec")));

extern uintptr_t hak_tag_secret HAK_INTERNAL;

static inline uintptr_t hak_free_tag(const void *block, unsigned cls) {
  return ((uintptr_t)block ^ hak_tag_secret) + ((uintptr_t)cls << 56);
}

/* The node accessors: the only code that reads or writes a free block's
 * words.  Under a memory checker a free block is no access to everyone, so
 * each opens the two words for its access and closes them after
 * (tool_hooks.h); otherwise they are plain loads and stores. */
#define HAK_NODE_WORDS (2 * sizeof(uintptr_t))

/* Links free block b to next and seals the link with tag. */
static inline void hak_node_link(uintptr_t *b, uintptr_t next, uintptr_t tag) {
  hak_tool_open(b, HAK_NODE_WORDS);
  b[0] = next;
  b[1] = tag ^ next;
  hak_tool_close(b, HAK_NODE_WORDS);
}

/* 1 if free block b carries tag, sealed with its current link. */
static inline int hak_node_sealed(const uintptr_t *b, uintptr_t tag) {
  hak_tool_open(b, HAK_NODE_WORDS);
  int sealed = b[1] == (tag ^ b[0]);
  hak_tool_close(b, HAK_NODE_WORDS);
  return sealed;
}

/* The next node after free block b (its link, unchecked). */
static inline uintptr_t *hak_node_next(const uintptr_t *b) {
  hak_tool_open(b, HAK_NODE_WORDS);
  uintptr_t next = b[0];
  hak_tool_close(b, HAK_NODE_WORDS);
  return (uintptr_t *)next;
}

/* Takes block b off its list to hand it out: returns its link and clears
 * its tag, so a later free of b is not taken for a second one. */
static inline uintptr_t *hak_node_unlink(uintptr_t *b) {
  hak_tool_open(b, HAK_NODE_WORDS);
  uintptr_t next = b[0];
  b[1] = 0;
  hak_tool_close(b, HAK_NODE_WORDS);
  return (uintptr_t *)next;
}

static inline struct hak_segment *hak_segment_of(const void *p) {
  return (struct hak_segment *)((uintptr_t)p & ~(HAK_SEGMENT_SIZE - 1));
}

/* Span head record of the slab holding p (p inside a registered segment);
 * &hak_no_slab for slab 0 and for slabs outside any span. */
static inline struct hak_slab *hak_slab_of(const void *p) {
  struct hak_segment *seg = hak_segment_of(p);
  size_t idx = ((uintptr_t)p >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_SEGMENT - 1);
  return seg->slabs[idx].span_head;
}

/* Index of the block containing p within its span. */
static inline uint32_t hak_block_index(const struct hak_slab *s, const void *p) {
  uint64_t off = (uint64_t)((const char *)p - s->start);
  return (uint32_t)((off * s->inv_block_size) >> 40);
}

#endif /* HAKMEM_TYPES_H */
