/* The allocation API's entry points under ThreadSanitizer.
 *
 * The tool's runtime starts first in a process (from .preinit_array), and
 * while it starts it looks its interceptors' targets up with dlsym; a
 * symbol libc lacks makes the loader format an error message with malloc -
 * hakmem's, the program's malloc.  Instrumented code run then reports its
 * function entry to a runtime whose thread state does not exist yet, and
 * the process dies before main.  New threads meet the same in the tool's
 * thread start (tsan_thread.c).  So under TSan the exported functions are
 * these, compiled without instrumentation: on a thread the tool has not
 * set up (or has torn down) they serve requests from a static boot buffer;
 * otherwise they call api.c's functions (renamed by tsan_entry.h).  A boot
 * block may be freed or reallocated at any time later: realloc moves it
 * into the heap.  The release and debug builds compile none of this. */
#include "tsan_entry.h"

#if HAK_TSAN

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "api.h"

/* The boot buffer: SLOTS small blocks that are reused (every new thread
 * allocates and frees one in the tool's thread start), then a bump region
 * whose blocks never are (the runtime's start-up messages, libstdc++'s
 * exception pool of about 73 KiB, the odd locale or stdio buffer). */
#define BOOT_BYTES ((size_t)1 << 20)
#define BOOT_HEADER 16 /* the block's size, just before it */
#define SLOTS 64
#define SLOT_BYTES 256
#define SLOT_REGION ((size_t)SLOTS * SLOT_BYTES)

static _Alignas(4096) char boot_buf[BOOT_BYTES];
static _Atomic uint64_t slots_used;
static _Atomic size_t bump_used = SLOT_REGION;

/* Every constructor runs after the tool's runtime is up. */
__attribute__((constructor(101))) HAK_NO_TSAN static void tsan_entry_ready(void) {
  hak_tsan_threads_init();
}

HAK_NO_TSAN static int boot_owns(const void *p) {
  return (const char *)p >= boot_buf && (const char *)p < boot_buf + BOOT_BYTES;
}

HAK_NO_TSAN static size_t boot_size(const void *p) {
  return *(const size_t *)((const char *)p - BOOT_HEADER);
}

HAK_NO_TSAN static void *boot_block(size_t start, size_t n) {
  *(size_t *)(boot_buf + start - BOOT_HEADER) = n;
  return boot_buf + start;
}

/* n bytes aligned to align (a power of two); zeroed unless a reused slot
 * (calloc clears it). */
HAK_NO_TSAN static void *boot_alloc(size_t n, size_t align) {
  if (align <= BOOT_HEADER && n <= SLOT_BYTES - BOOT_HEADER) {
    uint64_t used = atomic_load_explicit(&slots_used, memory_order_relaxed);
    while (~used) {
      unsigned i = (unsigned)__builtin_ctzll(~used);
      if (atomic_compare_exchange_weak_explicit(&slots_used, &used, used | 1ull << i,
                                                memory_order_acquire, memory_order_relaxed))
        return boot_block((size_t)i * SLOT_BYTES + BOOT_HEADER, n);
    }
  }
  if (align < BOOT_HEADER) align = BOOT_HEADER;
  if (n > BOOT_BYTES || align > BOOT_BYTES / 2) goto out;
  size_t used = atomic_load_explicit(&bump_used, memory_order_relaxed), start, end;
  do {
    start = (used + BOOT_HEADER + align - 1) & ~(align - 1);
    end = start + ((n + 15) & ~(size_t)15);
    if (end > BOOT_BYTES) goto out;
  } while (!atomic_compare_exchange_weak_explicit(&bump_used, &used, end,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed));
  return boot_block(start, n);
out:
  errno = ENOMEM;
  return NULL;
}

HAK_NO_TSAN static void boot_free(void *p) {
  size_t off = (size_t)((char *)p - boot_buf);
  if (off < SLOT_REGION)
    atomic_fetch_and_explicit(&slots_used, ~(1ull << (off / SLOT_BYTES)), memory_order_release);
}

/* realloc of a boot block: in place within its slot, else a new block
 * (the heap's if the thread is ready) with the bytes copied over. */
HAK_NO_TSAN static void *boot_move(void *p, size_t n) {
  size_t off = (size_t)((char *)p - boot_buf);
  if (off < SLOT_REGION && n <= SLOT_BYTES - BOOT_HEADER) return boot_block(off, n);
  void *q = hak_tsan_thread_ready ? hak_tsan_body_malloc(n) : boot_alloc(n, 16);
  size_t old = boot_size(p);
  /* Byte by byte: libc's memcpy is the tool's interceptor, which this
   * thread may not be ready for either. */
  if (q) {
    for (size_t i = 0; i < (n < old ? n : old); i++) ((volatile char *)q)[i] = ((char *)p)[i];
    boot_free(p);
  }
  return q;
}

/* aligned_alloc and memalign on a thread that is not ready: any power of
 * two. */
HAK_NO_TSAN static void *boot_alloc_aligned(size_t align, size_t n) {
  if (!align || (align & (align - 1))) {
    errno = EINVAL;
    return NULL;
  }
  return boot_alloc(n, align);
}

HAK_API HAK_NO_TSAN void *malloc(size_t n) {
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) return boot_alloc(n, 16);
  return hak_tsan_body_malloc(n);
}

HAK_API HAK_NO_TSAN void free(void *p) {
  if (HAK_UNLIKELY(boot_owns(p))) {
    boot_free(p);
    return;
  }
  /* A heap block freed by a thread the tool does not know: leaks. */
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) return;
  hak_tsan_body_free(p);
}

HAK_API HAK_NO_TSAN void *calloc(size_t count, size_t size) {
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
      errno = ENOMEM;
      return NULL;
    }
    void *p = boot_alloc(n, 16);
    if (p)
      for (size_t i = 0; i < n; i++) ((volatile char *)p)[i] = 0;
    return p;
  }
  return hak_tsan_body_calloc(count, size);
}

HAK_API HAK_NO_TSAN void *realloc(void *p, size_t n) {
  if (HAK_UNLIKELY(boot_owns(p))) return boot_move(p, n);
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) return p ? NULL : boot_alloc(n, 16);
  return hak_tsan_body_realloc(p, n);
}

HAK_API HAK_NO_TSAN void *reallocarray(void *p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, n);
}

HAK_API HAK_NO_TSAN int posix_memalign(void **out, size_t align, size_t n) {
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) {
    if (!align || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
    void *p = boot_alloc(n, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
  }
  return hak_tsan_body_posix_memalign(out, align, n);
}

HAK_API HAK_NO_TSAN void *aligned_alloc(size_t align, size_t n) {
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) return boot_alloc_aligned(align, n);
  return hak_tsan_body_aligned_alloc(align, n);
}

HAK_API HAK_NO_TSAN void *memalign(size_t align, size_t n) {
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) return boot_alloc_aligned(align, n);
  return hak_tsan_body_memalign(align, n);
}

HAK_API HAK_NO_TSAN void *valloc(size_t n) {
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) return boot_alloc(n, HAK_PAGE_SIZE);
  return hak_tsan_body_valloc(n);
}

HAK_API HAK_NO_TSAN void *pvalloc(size_t n) {
  if (HAK_UNLIKELY(!hak_tsan_thread_ready))
    return boot_alloc((n + HAK_PAGE_SIZE - 1) & ~(size_t)(HAK_PAGE_SIZE - 1), HAK_PAGE_SIZE);
  return hak_tsan_body_pvalloc(n);
}

HAK_API HAK_NO_TSAN size_t malloc_usable_size(void *p) {
  if (HAK_UNLIKELY(boot_owns(p))) return boot_size(p);
  if (HAK_UNLIKELY(!hak_tsan_thread_ready)) return 0;
  return hak_tsan_body_malloc_usable_size(p);
}

HAK_API HAK_NO_TSAN void free_sized(void *p, size_t n) {
  if (HAK_UNLIKELY(boot_owns(p) || !hak_tsan_thread_ready)) {
    free(p);
    return;
  }
  hak_tsan_body_free_sized(p, n);
}

HAK_API HAK_NO_TSAN void free_aligned_sized(void *p, size_t align, size_t n) {
  if (HAK_UNLIKELY(boot_owns(p) || !hak_tsan_thread_ready)) {
    free(p);
    return;
  }
  hak_tsan_body_free_aligned_sized(p, align, n);
}

/* C++ sized delete (cxx.c), of a boot block too. */
HAK_NO_TSAN void hak_free_checked(void *p, size_t n, size_t align, int strict) {
  if (HAK_UNLIKELY(boot_owns(p) || !hak_tsan_thread_ready)) {
    free(p);
    return;
  }
  hak_tsan_body_free_checked(p, n, align, strict);
}

#endif
