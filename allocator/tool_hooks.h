/* Cooperation with memory checkers: Valgrind's memcheck and
 * AddressSanitizer see the program's heap errors through hakmem.
 *
 * Without help neither tool can: hakmem's memory comes from mmap, so to
 * memcheck every byte of it is allocated and defined, and ASan (whose own
 * malloc hakmem replaces) knows no heap blocks at all.  A use after free,
 * a read past a block's end or a leaked block goes unseen.  So hakmem tells
 * them where the blocks are:
 *
 *   - a block handed to the program: its usable bytes become addressable
 *     (memcheck: VALGRIND_MALLOCLIKE_BLOCK, undefined unless zeroed; ASan:
 *     unpoisoned), nothing around it;
 *   - a block given back: no access (VALGRIND_FREELIKE_BLOCK; poisoned),
 *     before the tiers see it, so nothing of it is readable while it sits
 *     on a free list;
 *   - realloc in place: the extent grows or shrinks
 *     (VALGRIND_RESIZEINPLACE_BLOCK; unpoisoned or poisoned).
 *
 * The usable bytes are what malloc_usable_size reports: the class size in
 * release, the requested size in debug (whose redzones, redzone.h, stay no
 * access: an overflow into one is reported when it happens, not only at
 * free).
 *
 * hakmem itself must still read and write the words it keeps inside free
 * blocks (the free-list link and sealed tag, types.h) and in redzones.  It
 * does so only through accessors that open those words for the access and
 * close them again (hak_tool_open/hak_tool_close: memcheck's defined / no
 * access, ASan's unpoison / poison), so neither tool reports hakmem's own
 * bookkeeping.  Memory hakmem takes back for a new purpose - a large span
 * reused at another offset, a mapping about to be unmapped - is reopened
 * whole (hak_tool_reopen), so poison never outlives its block.
 *
 * When: for ASan, a build defines HAKMEM_ASAN=1 (`--config=asan` does, and
 * the checker variants in variants.bzl), links the ASan runtime, and every
 * variant poisons.  hakmem's own code is never instrumented
 * (-fno-sanitize=address in HAKMEM_COPTS), as ASan's own allocator is not:
 * ASan's start-up calls malloc before instrumented code can run, and
 * hakmem's bookkeeping is not the program's heap use.  So it is HAKMEM_ASAN,
 * not -fsanitize=address, that says ASan is there.  Valgrind is known only
 * at run time, so its client
 * requests are compiled into the debug variant always (a few instructions
 * each when not under Valgrind) and into release only with
 * -DHAKMEM_VALGRIND=1 (`--config=valgrind` sets it); they need Debian's
 * valgrind headers and are left out without them.  With neither, HAK_TOOLS
 * is 0 and every hook below compiles to nothing: the release hot path is
 * what it is without this file.
 *
 * The API layer (api.c) makes the block-level calls through tool_hooks.c;
 * types.h's node accessors and redzone.c make the word-level ones. */
#ifndef HAKMEM_TOOL_HOOKS_H
#define HAKMEM_TOOL_HOOKS_H

#include <stddef.h>

#if defined(HAKMEM_ASAN) && HAKMEM_ASAN
#define HAK_TOOL_ASAN 1
#else
#define HAK_TOOL_ASAN 0
#endif

#if !HAKMEM_BUILD_RELEASE || (defined(HAKMEM_VALGRIND) && HAKMEM_VALGRIND)
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#define HAK_TOOL_VALGRIND 1
#endif
#endif
#endif
#ifndef HAK_TOOL_VALGRIND
#define HAK_TOOL_VALGRIND 0
#endif

#define HAK_TOOLS (HAK_TOOL_ASAN || HAK_TOOL_VALGRIND)

#if HAK_TOOL_ASAN
#include <sanitizer/asan_interface.h>
/* ASan's runtime calls malloc while it starts, before its shadow memory
 * exists; poisoning waits for hakmem's constructor, which runs after the
 * runtime's (tool_hooks.c).  Blocks made before are simply not poisoned. */
extern int hak_asan_ready __attribute__((visibility("hidden")));
#define HAK_ASAN_POISON(p, n) \
  (hak_asan_ready ? __asan_poison_memory_region((p), (n)) : (void)0)
#define HAK_ASAN_UNPOISON(p, n) \
  (hak_asan_ready ? __asan_unpoison_memory_region((p), (n)) : (void)0)
#endif
#if HAK_TOOL_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/* hakmem is about to access n bytes at p that the program may not. */
static inline void hak_tool_open(const void *p, size_t n) {
  (void)p, (void)n;
#if HAK_TOOL_ASAN
  HAK_ASAN_UNPOISON(p, n);
#endif
#if HAK_TOOL_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
}

/* ... and is done with them: no access again. */
static inline void hak_tool_close(const void *p, size_t n) {
  (void)p, (void)n;
#if HAK_TOOL_ASAN
  HAK_ASAN_POISON(p, n);
#endif
#if HAK_TOOL_VALGRIND
  VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
}

/* Memory that leaves whatever block it belonged to (a span reused for a
 * block at another offset, pages about to be unmapped): addressable, with
 * no poison left behind.  memcheck tracks mappings itself; what hakmem
 * writes next (a header) it marks defined. */
static inline void hak_tool_reopen(const void *p, size_t n) {
  (void)p, (void)n;
#if HAK_TOOL_ASAN
  HAK_ASAN_UNPOISON(p, n);
#endif
#if HAK_TOOL_VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
}

/* Block-level hooks of the API layer (tool_hooks.c).  p may be NULL (a
 * failed allocation): nothing happens.  The extent is looked up, not
 * passed, so the calls stay one line where the API returns a block. */
#if HAK_TOOLS
/* p is handed to the program; its first `defined` bytes are known zero. */
void hak_tool_on_alloc(void *p, size_t defined) __attribute__((visibility("hidden")));
/* The program gives p back (before the tiers see it).  Nothing happens if
 * p is not a live block: the tiers report that. */
void hak_tool_on_free(void *p) __attribute__((visibility("hidden")));
/* Live block p was resized in place from old usable bytes to its present
 * size. */
void hak_tool_on_resize(void *p, size_t old) __attribute__((visibility("hidden")));
#endif

/* ASan's interceptors of libc functions that return memory to free
 * (strdup, getline, ...) allocate from ASan's own heap, not through
 * malloc, so the program hands hakmem blocks it never made.  They go back
 * to ASan (tool_hooks.c); elsewhere there are none. */
#if HAK_TOOL_ASAN
/* p is non-NULL, not hakmem's and ASan's.  hakmem's own blocks are ruled
 * out first: asking ASan takes its allocator's lock, which a fork can leave
 * held in the child (GCC's runtime does not take it across fork). */
int hak_tool_foreign(const void *p) __attribute__((visibility("hidden")));
void hak_tool_foreign_free(void *p) __attribute__((visibility("hidden")));
void *hak_tool_foreign_realloc(void *p, size_t n) __attribute__((visibility("hidden")));
#else
#define hak_tool_foreign(p) 0
#define hak_tool_foreign_free(p) ((void)(p))
#define hak_tool_foreign_realloc(p, n) ((void)(p), (void)(n), (void *)0)
#endif

static inline void *hak_tool_alloced(void *p, size_t defined) {
#if HAK_TOOLS
  if (p) hak_tool_on_alloc(p, defined);
#else
  (void)defined;
#endif
  return p;
}

static inline void hak_tool_freeing(void *p) {
#if HAK_TOOLS
  hak_tool_on_free(p);
#else
  (void)p;
#endif
}

#endif /* HAKMEM_TOOL_HOOKS_H */
