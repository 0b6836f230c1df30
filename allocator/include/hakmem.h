/* hakmem public API.
 *
 * Linking //allocator:hakmem (or preloading libhakmem.so) replaces the C
 * allocator: malloc, free, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size, free_sized,
 * free_aligned_sized and C++ operator new/delete (allocator/cxx.c) are all
 * served by hakmem.  The hak_* calls below are hakmem's own: statistics,
 * integrity checks and the knobs the adaptive control engine (ACE) turns. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HAK_API __attribute__((visibility("default")))
#else
#define HAK_API
#endif

/* Size classes.  Requests up to HAK_TINY_MAX bytes are "tiny", up to
 * HAK_MID_MAX "mid"; both are served from per-thread free lists.  Anything
 * larger is "large" (page arena).  Class 0 is 16 bytes; spacing is 16 bytes
 * up to 128, then four classes per power of two. */
#define HAK_NUM_CLASSES 44
#define HAK_NUM_TINY_CLASSES 20
#define HAK_TINY_MAX 1024
#define HAK_MID_MAX 65536

/* Block size of a class, 0 for an out-of-range class. */
HAK_API size_t hak_class_size(int cls);
/* Class serving a request of n bytes, -1 when n is a large request.  In
 * the debug variant, whose blocks carry redzones (HAKMEM_REDZONE, on by
 * default), that is the class of n plus the redzone bytes. */
HAK_API int hak_size_class(size_t n);

/* ---- statistics ------------------------------------------------------ */

struct hak_class_stats {
  uint64_t block_size;
  uint64_t allocs;          /* blocks handed to the program */
  uint64_t frees;           /* blocks given back by the program */
  uint64_t live_bytes;      /* (allocs - frees) * block_size */
  uint64_t reserved_bytes;  /* slab memory currently assigned to the class */
  uint64_t remote_backlog;  /* blocks freed by other threads, not drained */
  uint64_t tls_cached;      /* blocks in live threads' TLS free lists */
  uint64_t remote_frees;    /* frees that went to another thread's slab */
};

struct hak_stats {
  struct hak_class_stats cls[HAK_NUM_CLASSES];
  uint64_t large_allocs, large_frees;
  uint64_t large_live_bytes;     /* mapped for live large blocks */
  uint64_t large_cached_bytes;   /* freed spans kept for reuse */
  uint64_t segments;             /* SuperSlabs mapped */
  uint64_t segment_bytes;        /* their size */
  uint64_t empty_slabs;          /* slab spans in the shared pool, empty */
  uint64_t abandoned_slabs;      /* slabs of exited threads awaiting adoption */
  uint64_t decommitted_bytes;    /* empty slab memory returned to the OS */
  uint64_t threads_live;         /* threads holding a hakmem heap now */
  uint64_t threads_retired;      /* heaps handed back at thread exit */
  uint64_t rss_bytes;            /* process resident set (from /proc) */
  uint64_t integrity_events;     /* faults detected since start */
};

/* Fills *out with a snapshot.  Counters of running threads are read
 * without stopping them, so a snapshot taken under load is approximate;
 * once the threads are quiet it is exact.  Returns 0. */
HAK_API int hak_stats_get(struct hak_stats *out);
/* Writes a human-readable report to the file descriptor. */
HAK_API void hak_stats_print(int fd);
/* Counters outside struct hak_stats (whose size programs built against an
 * earlier hakmem.h depend on, since hak_stats_get fills all of it):
 * 4 KiB pages ever returned to the OS (retain limit, page release,
 * scavenge), and how often and how long threads waited for one of
 * hakmem's internal locks. */
HAK_API uint64_t hak_released_pages(void);
HAK_API uint64_t hak_lock_waits(void);
HAK_API uint64_t hak_lock_wait_ns(void);
/* Faults detected so far (same as hak_stats_get().integrity_events). */
HAK_API uint64_t hak_integrity_events(void);
/* "release" or "debug". */
HAK_API const char *hak_variant(void);

/* ---- integrity ------------------------------------------------------- */

/* Walks every TLS SLL (per-class free list) of the calling thread and
 * checks each node: inside a registered SuperSlab, on a block boundary of a
 * slab of that class, carrying the free-block tag.  Returns the number of
 * bad nodes found (0 = clean); each one is counted and reported as an
 * integrity event. */
HAK_API size_t hak_tls_sll_verify(void);

/* What hakmem does when it detects a fault (double free, invalid free,
 * corrupted free list): HAK_FAULT_ABORT (default) prints a one-line report
 * and aborts; HAK_FAULT_REPORT prints, counts and carries on without the
 * bad block (it is leaked, never put back into a list).  The environment
 * setting HAKMEM_FAULT_ACTION=abort|report chooses the start value. */
enum hak_fault_action { HAK_FAULT_ABORT = 0, HAK_FAULT_REPORT = 1 };
HAK_API void hak_set_fault_action(enum hak_fault_action action);

/* Address of the SuperSlab holding p, NULL if p is not in one. */
HAK_API void *hak_super_lookup(const void *p);

/* ---- knobs (ACE pushes values in through these) ---------------------- */

/* TLS SLL capacity of a class: a thread keeps at most this many free blocks
 * of the class before flushing half back to their slabs.  Threads pick a
 * new value up at their next refill or flush.  Returns 0, or -1 for a bad
 * class or a capacity outside 1..4096. */
HAK_API int hkm_tiny_set_tls_capacity(int cls, uint32_t cap);
HAK_API uint32_t hkm_tiny_get_tls_capacity(int cls);
/* Remote frees a slab collects before its owner is told to drain it.
 * Returns 0, or -1 for a bad class or a threshold outside 1..65536. */
HAK_API int hkm_tiny_set_drain_threshold(int cls, uint32_t n);
HAK_API uint32_t hkm_tiny_get_drain_threshold(int cls);
/* Blocks a refill moves into a TLS SLL at once (the "bundle"): 0 restores
 * the default, half the class's TLS capacity; a width above the capacity
 * acts as the capacity.  Read by each refill.  Returns 0, or -1 for a bad
 * class or a width above 4096.  The getter returns the width in effect. */
HAK_API int hkm_tiny_set_bundle_width(int cls, uint32_t n);
HAK_API uint32_t hkm_tiny_get_bundle_width(int cls);
/* Page release inside spans still in use: when a thread returns blocks and
 * a span's use falls to 1/8 (and again 1/32) of its capacity, runs of at
 * least min_pages whole 4 KiB pages holding only free blocks go back to
 * the OS (madvise MADV_DONTNEED); their blocks are reused last.  0 (the
 * default, or HAKMEM_RELEASE_PAGES) turns it off.  Returns 0, or -1 above
 * HAK_RELEASE_PAGES_MAX. */
#define HAK_RELEASE_PAGES_MAX 128
HAK_API int hkm_set_release_pages(uint32_t min_pages);
HAK_API uint32_t hkm_get_release_pages(void);
/* Returns memory to the OS in budgeted steps: empty slab spans of the
 * shared pool (a span at a time), the free pages of spans of exited
 * threads, and cached large spans (the calling thread's first).  Stops once
 * budget_ns has passed (0 = no limit).  Returns the bytes released. */
HAK_API size_t hak_scavenge(uint64_t budget_ns);
/* The same, also stopping once max_pages 4 KiB pages went back (0 = no
 * limit; a step may overshoot by one span).  Returns the pages released. */
HAK_API size_t hak_scavenge_pages(size_t max_pages, uint64_t budget_ns);

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_H */
