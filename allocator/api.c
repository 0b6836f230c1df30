/* The C allocation API, exported under its standard names. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "init.h"
#include "large.h"

#define HAK_EXPORT HAK_API

static void *alloc_bytes(size_t n) {
  if (HAK_LIKELY(n <= HAK_MID_MAX)) return hak_alloc_class(hak_class_of(n));
  hak_ensure_init();
  return hak_large_alloc(n, 16, 0);
}

#ifdef HAKMEM_INJECT_WORK
/* Regression-gate proof builds only: a fixed amount of extra work in every
 * malloc (loop iterations of about 4 instructions each), which the gates
 * must catch: HAKMEM_INJECT_WORK iterations, or as many as the environment
 * variable of that name says (read once), so one build serves both the
 * instruction proof (+3%) and the wall-clock one (+10%). */
#include <stdlib.h>

static int inject_iterations = -1;

static inline void injected_work(void) {
  int n = inject_iterations;
  if (n < 0) {
    const char *v = getenv("HAKMEM_INJECT_WORK");
    n = v && *v ? atoi(v) : HAKMEM_INJECT_WORK;
    inject_iterations = n < 0 ? 0 : n;
  }
  for (int i = 0; i < n; i++) __asm__ volatile("nop");
}
#else
static inline void injected_work(void) {}
#endif

HAK_EXPORT void *malloc(size_t n) {
  injected_work();
  return alloc_bytes(n);
}

HAK_EXPORT void free(void *p) {
  if (HAK_LIKELY(p != NULL)) hak_free_block(p);
}

HAK_EXPORT void *calloc(size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  if (n > HAK_MID_MAX) {
    hak_ensure_init();
    return hak_large_alloc(n, 16, 1);
  }
  void *p = alloc_bytes(n);
  if (p) memset(p, 0, n);
  return p;
}

/* Usable bytes of a live block; 0 (after a report) if p is none. */
static size_t usable_size(void *p) {
  if (!hak_registry_contains(p)) return hak_large_usable(p); /* reports itself */
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

HAK_EXPORT void *realloc(void *p, size_t n) {
  if (!p) return alloc_bytes(n);
  if (n == 0) { /* glibc: frees and returns NULL */
    hak_free_block(p);
    return NULL;
  }
  size_t old = usable_size(p);
  if (!old) {
    errno = EINVAL;
    return NULL;
  }
  if (n <= HAK_MID_MAX) {
    /* Stay put while the block fits and is not more than twice too big. */
    if (n <= old && old <= HAK_MID_MAX && hak_class_of(n) + 4 >= hak_class_of(old))
      return p;
  } else if (old > HAK_MID_MAX && !hak_registry_contains(p)) {
    void *q = hak_large_realloc(p, n);
    if (q) return q;
  }
  void *q = alloc_bytes(n);
  if (!q) return NULL;
  memcpy(q, p, n < old ? n : old);
  hak_free_block(p);
  return q;
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
  if (cls >= 0) return hak_alloc_class((unsigned)cls);
  hak_ensure_init();
  /* A large block starts `align` bytes into its span, so a 0-byte request
   * would sit one past the span's end, in whatever is mapped next. */
  return hak_large_alloc(n ? n : 1, align, 0);
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

/* C23 sized frees: the size must be the one the block was allocated with. */
static void free_checked(void *p, size_t n, size_t align) {
  if (!p) return;
  if (hak_registry_contains(p)) {
    struct hak_slab *s = hak_slab_of(p);
    int expected = align > 16 ? aligned_class(n, align) : hak_size_class(n);
    if (s->cls < HAK_NUM_CLASSES && expected != (int)s->cls) {
      hak_fault(HAK_FAULT_SIZE_MISMATCH, p, expected, HAK_NODE_OK);
      return;
    }
  }
  hak_free_block(p);
}

HAK_EXPORT void free_sized(void *p, size_t n) { free_checked(p, n, 16); }

HAK_EXPORT void free_aligned_sized(void *p, size_t align, size_t n) {
  free_checked(p, n, align);
}
