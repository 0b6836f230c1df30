/* The C allocation API, exported under its standard names.  Every block
 * it hands out and takes back passes a memory-checker hook
 * (tool_hooks.h), which compiles to nothing without one. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "api.h"
#include "init.h"
#include "large.h"
#include "redzone.h"
#include "tool_hooks.h"

#define HAK_EXPORT HAK_API
/* Under ThreadSanitizer the exports are tsan_entry.c's, which call these. */
#define HAK_TSAN_ENTRY_RENAME
#include "tsan_entry.h"

static void *alloc_bytes(size_t n) {
  if (hak_rz_active()) return hak_tool_alloced(hak_rz_alloc(n, 0), 0);
  if (HAK_LIKELY(n <= HAK_MID_MAX))
    return hak_tool_alloced(hak_alloc_class(hak_class_of(n)), 0);
  hak_ensure_init();
  return hak_tool_alloced(hak_large_alloc(n, 16, 0), 0);
}

/* free() of a program pointer: debug first checks (and strips) redzones. */
static inline void free_ptr(void *p) {
  if (hak_tool_foreign(p)) {
    hak_tool_foreign_free(p);
    return;
  }
  hak_tool_freeing(p);
  if (hak_rz_active()) {
    p = hak_rz_unwrap(p);
    if (!p) return; /* a fault, reported */
  }
  hak_free_block(p);
}

#ifdef HAKMEM_INJECT_WORK
/* Regression-gate proof builds only: a fixed amount of extra work in every
 * malloc (HAKMEM_INJECT_WORK nop iterations), which the gates must catch;
 * variants.bzl has one build for the instruction gate and one for the wall
 * clock. */
static inline void injected_work(void) {
  for (int i = 0; i < HAKMEM_INJECT_WORK; i++) __asm__ volatile("nop");
}
#else
static inline void injected_work(void) {}
#endif

HAK_EXPORT void *malloc(size_t n) {
  injected_work();
  return alloc_bytes(n);
}

HAK_EXPORT void free(void *p) {
  if (HAK_LIKELY(p != NULL)) free_ptr(p);
}

HAK_EXPORT void *calloc(size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  if (hak_rz_active()) return hak_tool_alloced(hak_rz_alloc(n, 1), n);
  if (n > HAK_MID_MAX) {
    hak_ensure_init();
    return hak_tool_alloced(hak_large_alloc(n, 16, 1), n);
  }
  void *p = alloc_bytes(n);
  if (p) memset(p, 0, n);
  return p;
}

/* Usable bytes of a live block; 0 (after a report) if p is none. */
static size_t usable_size(void *p) {
  size_t requested;
  if (hak_rz_active() && hak_rz_size(p, &requested)) return requested;
  if (!hak_registry_contains(p)) {
    size_t n = hak_large_usable(p);
    if (!n) hak_fault(HAK_FAULT_INVALID_FREE, p, -1, HAK_NODE_NOT_LARGE);
    return n;
  }
  struct hak_slab *s = hak_slab_of(p);
  enum hak_node_problem why = HAK_NODE_OK;
  if (s->magic != HAK_SLAB_MAGIC || s->cls >= HAK_NUM_CLASSES) why = HAK_NODE_NO_SPAN;
  else if (s->start + (size_t)hak_block_index(s, p) * s->block_size != (char *)p)
    why = HAK_NODE_OFF_BOUNDARY;
  if (why != HAK_NODE_OK) {
    hak_fault(HAK_FAULT_INVALID_FREE, p, -1, why);
    return 0;
  }
  return s->block_size;
}

/* realloc's last resort: a new block, the common prefix copied over. */
static void *move_block(void *p, size_t old, size_t n) {
  void *q = alloc_bytes(n);
  if (!q) return NULL;
  memcpy(q, p, n < old ? n : old);
  free_ptr(p);
  return q;
}

HAK_EXPORT void *realloc(void *p, size_t n) {
  if (!p) return alloc_bytes(n);
  if (hak_tool_foreign(p)) return hak_tool_foreign_realloc(p, n);
  if (n == 0) { /* glibc: frees and returns NULL */
    free_ptr(p);
    return NULL;
  }
  size_t old;
  if (hak_rz_active() && hak_rz_size(p, &old)) {
    /* Redzoned: resized in place (header and tail rewritten) or moved;
     * never kept as it is, or its recorded size would be stale. */
    void *q = hak_rz_resize_in_place(p, n);
    if (!q) return move_block(p, old, n);
#if HAK_TOOLS
    hak_tool_on_resize(q, old);
#endif
    return q;
  }
  old = usable_size(p);
  if (!old) {
    errno = EINVAL;
    return NULL;
  }
  if (n <= HAK_MID_MAX) {
    /* Stay put while the block fits and is not more than twice too big. */
    if (n <= old && old <= HAK_MID_MAX && hak_class_of(n) + 4 >= hak_class_of(old))
      return p;
  } else if (old > HAK_MID_MAX && !hak_registry_contains(p)) {
    /* With a memory checker built in it only resizes in place (large.h). */
    void *q = hak_large_realloc(p, n);
#if HAK_TOOLS
    if (q) hak_tool_on_resize(q, old);
#endif
    if (q) return q;
  }
  return move_block(p, old, n);
}

HAK_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, n);
}

/* Smallest class whose blocks are all aligned to align: its size must be a
 * multiple of align (spans start on 64 KiB boundaries); -1 if none. */
static int aligned_class(size_t n, size_t align) {
  if (n > HAK_MID_MAX || align > HAK_SLAB_SIZE) return -1;
  for (unsigned c = hak_class_of(n < align ? align : n); c < HAK_NUM_CLASSES; c++)
    if (hak_class_bytes[c] % align == 0) return (int)c;
  return -1;
}

static void *alloc_aligned(size_t align, size_t n) {
  if (align <= 16) return alloc_bytes(n);
  int cls = aligned_class(n, align);
  if (cls >= 0) return hak_tool_alloced(hak_alloc_class((unsigned)cls), 0);
  hak_ensure_init();
  /* A large block starts `align` bytes into its span, so a 0-byte request
   * would sit one past the span's end, in whatever is mapped next. */
  return hak_tool_alloced(hak_large_alloc(n ? n : 1, align, 0), 0);
}

static int is_power_of_two(size_t x) { return x && !(x & (x - 1)); }

HAK_EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  if (!is_power_of_two(align) || align % sizeof(void *)) return EINVAL;
  int saved = errno;
  void *p = alloc_aligned(align, n);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

HAK_EXPORT void *aligned_alloc(size_t align, size_t n) {
  if (!is_power_of_two(align)) {
    errno = EINVAL;
    return NULL;
  }
  return alloc_aligned(align, n);
}

HAK_EXPORT void *memalign(size_t align, size_t n) {
  /* glibc rounds a non-power-of-two alignment up. */
  if (!is_power_of_two(align)) {
    if (align > ((size_t)1 << 62)) {
      errno = EINVAL;
      return NULL;
    }
    size_t a = 1;
    while (a < align) a <<= 1;
    align = a;
  }
  return alloc_aligned(align, n);
}

HAK_EXPORT void *valloc(size_t n) { return alloc_aligned(HAK_PAGE_SIZE, n); }

HAK_EXPORT void *pvalloc(size_t n) {
  size_t rounded = (n + HAK_PAGE_SIZE - 1) & ~(size_t)(HAK_PAGE_SIZE - 1);
  if (rounded < n) {
    errno = ENOMEM;
    return NULL;
  }
  return alloc_aligned(HAK_PAGE_SIZE, rounded ? rounded : HAK_PAGE_SIZE);
}

HAK_EXPORT size_t malloc_usable_size(void *p) { return p ? usable_size(p) : 0; }

/* The class a block without redzones of n bytes aligned to align takes;
 * -1 for none (a large block). */
static int plain_class(size_t n, size_t align) {
  if (align > 16) return aligned_class(n, align);
  return n <= HAK_MID_MAX ? (int)hak_class_of(n) : -1;
}

/* Whether n can be the size block p was allocated (or last reallocated)
 * with.  Debug knows the exact size of a redzoned block.  Otherwise the
 * class must match, except that realloc may have shrunk the block in place
 * (up to four classes: realloc above), which only C's free_sized allows -
 * C++ objects are never reallocated (strict).  A large block must hold n
 * and, unless over-aligned, n must be a large size. */
static int size_fits(void *p, size_t n, size_t align, int strict) {
  size_t requested;
  if (hak_rz_active() && hak_rz_size(p, &requested)) return requested == n;
  if (!hak_registry_contains(p)) {
    size_t usable = hak_large_usable(p);
    return !usable || (n <= usable && (align > 16 || n > HAK_MID_MAX));
  }
  const struct hak_slab *s = hak_slab_of(p);
  if (s->cls >= HAK_NUM_CLASSES) return 1; /* not a block: free reports it */
  int expected = plain_class(n, align);
  if (expected == (int)s->cls) return 1;
  return !strict && expected >= 0 && expected < (int)s->cls && expected + 4 >= (int)s->cls;
}

/* Sized frees (C23 free_sized, C++ sized delete): the size must be the one
 * the block was allocated with. */
void hak_free_checked(void *p, size_t n, size_t align, int strict) {
  if (!p) return;
  if (!size_fits(p, n, align, strict)) {
    hak_fault(HAK_FAULT_SIZE_MISMATCH, p, plain_class(n, align), HAK_NODE_OK);
    return;
  }
  free_ptr(p);
}

HAK_EXPORT void free_sized(void *p, size_t n) { hak_free_checked(p, n, 16, 0); }

HAK_EXPORT void free_aligned_sized(void *p, size_t align, size_t n) {
  hak_free_checked(p, n, align, 0);
}
