/* The API layer's block-level hooks for memcheck and ASan (tool_hooks.h).
 * Compiled to nothing when neither tool is built in. */
#include "tool_hooks.h"

#if HAK_TOOLS

#include "alloc.h"
#include "large.h"
#include "redzone.h"
#include "registry.h"

#if HAK_TOOL_ASAN
int hak_asan_ready;

__attribute__((constructor)) static void asan_ready(void) {
  hak_asan_ready = 1;
  hak_crash_handler_resume();
}

/* libasan's own free and realloc, under the names its interceptors export
 * beside the ones hakmem takes over. */
void __interceptor_free(void *p);
void *__interceptor_realloc(void *p, size_t n);

/* The sanitizer runtime's, declared here: GCC installs no header for it. */
int __sanitizer_get_ownership(const volatile void *p);

int hak_tool_foreign(const void *p) {
  if (!p || hak_registry_contains(p) || hak_large_known(p)) return 0;
  /* A redzoned large block: p is HAK_RZ_HEAD past the block. */
  if (hak_rz_active() && hak_large_known((const char *)p - HAK_RZ_HEAD)) return 0;
  return __sanitizer_get_ownership(p);
}

void hak_tool_foreign_free(void *p) { __interceptor_free(p); }
void *hak_tool_foreign_realloc(void *p, size_t n) { return __interceptor_realloc(p, n); }
#endif

/* 1 if p is a live block, with its usable bytes in *n (0 for a redzoned
 * malloc(0)); 0 if p is none. */
static int live_extent(const void *p, size_t *n) {
  if (hak_rz_active() && hak_rz_size(p, n)) return 1;
  if (!hak_registry_contains(p)) return (*n = hak_large_usable(p)) != 0;
  const struct hak_slab *s = hak_slab_of(p);
  if (s->magic != HAK_SLAB_MAGIC || s->cls >= HAK_NUM_CLASSES) return 0;
  uint32_t idx = hak_block_index(s, p);
  if (s->start + (size_t)idx * s->block_size != (const char *)p ||
      idx >= atomic_load_explicit(&s->carved, memory_order_relaxed))
    return 0;
  *n = s->block_size;
  return 1;
}

void hak_tool_on_alloc(void *p, size_t defined) {
  size_t n = 0;
  live_extent(p, &n);
#if HAK_TOOL_ASAN
  HAK_ASAN_UNPOISON(p, n);
#endif
#if HAK_TOOL_VALGRIND
  VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0);
  if (defined) VALGRIND_MAKE_MEM_DEFINED(p, defined < n ? defined : n);
#else
  (void)defined;
#endif
}

void hak_tool_on_free(void *p) {
  size_t n;
  if (!live_extent(p, &n)) return; /* not a live block: the tiers report it */
#if HAK_TOOL_ASAN
  HAK_ASAN_POISON(p, n);
#endif
#if HAK_TOOL_VALGRIND
  /* FREELIKE makes the block no access; of a block freed already memcheck
   * reports an invalid free (hakmem then reports the double free). */
  VALGRIND_FREELIKE_BLOCK(p, 0);
  VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
}

void hak_tool_on_resize(void *p, size_t old) {
  size_t n = 0;
  live_extent(p, &n);
#if HAK_TOOL_ASAN
  if (n > old) HAK_ASAN_UNPOISON(p, n);
  else HAK_ASAN_POISON((char *)p + n, old - n);
#endif
#if HAK_TOOL_VALGRIND
  VALGRIND_RESIZEINPLACE_BLOCK(p, old, n, 0);
#endif
}

#endif /* HAK_TOOLS */
