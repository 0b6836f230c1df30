/* Under ThreadSanitizer only: api.c's exported functions get internal
 * names, and tsan_entry.c exports uninstrumented functions of the standard
 * names that call them (see there for why).  api.c includes this last,
 * after its HAK_EXPORT; without TSan it changes nothing. */
#ifndef HAKMEM_TSAN_ENTRY_H
#define HAKMEM_TSAN_ENTRY_H

#include <stddef.h>

#include "tsan_sync.h"
#include "types.h"

#if HAK_TSAN
/* Whether the calling thread may run instrumented code: the tool's runtime
 * has set the thread up and not yet torn it down (tsan_thread.c). */
extern __thread int hak_tsan_thread_ready HAK_INTERNAL
    __attribute__((tls_model("initial-exec")));
/* Marks the main thread ready; from hakmem's first constructor. */
void hak_tsan_threads_init(void) HAK_INTERNAL;
/* From hakmem's fork handlers (init.c): the forking thread is served from
 * the boot buffer between hakmem's prepare handler and its parent or child
 * handler (tsan_thread.c says why). */
void hak_tsan_fork_enter(void) HAK_INTERNAL;
void hak_tsan_fork_leave(void) HAK_INTERNAL;

/* api.c's functions under their internal names. */
void *hak_tsan_body_malloc(size_t n) HAK_INTERNAL;
void hak_tsan_body_free(void *p) HAK_INTERNAL;
void *hak_tsan_body_calloc(size_t count, size_t size) HAK_INTERNAL;
void *hak_tsan_body_realloc(void *p, size_t n) HAK_INTERNAL;
void *hak_tsan_body_reallocarray(void *p, size_t count, size_t size) HAK_INTERNAL;
int hak_tsan_body_posix_memalign(void **out, size_t align, size_t n) HAK_INTERNAL;
void *hak_tsan_body_aligned_alloc(size_t align, size_t n) HAK_INTERNAL;
void *hak_tsan_body_memalign(size_t align, size_t n) HAK_INTERNAL;
void *hak_tsan_body_valloc(size_t n) HAK_INTERNAL;
void *hak_tsan_body_pvalloc(size_t n) HAK_INTERNAL;
size_t hak_tsan_body_malloc_usable_size(void *p) HAK_INTERNAL;
void hak_tsan_body_free_sized(void *p, size_t n) HAK_INTERNAL;
void hak_tsan_body_free_aligned_sized(void *p, size_t align, size_t n) HAK_INTERNAL;
void hak_tsan_body_free_checked(void *p, size_t n, size_t align, int strict) HAK_INTERNAL;

/* api.c defines HAK_TSAN_ENTRY_RENAME before including this. */
#ifdef HAK_TSAN_ENTRY_RENAME
#define malloc hak_tsan_body_malloc
#define free hak_tsan_body_free
#define calloc hak_tsan_body_calloc
#define realloc hak_tsan_body_realloc
#define reallocarray hak_tsan_body_reallocarray
#define posix_memalign hak_tsan_body_posix_memalign
#define aligned_alloc hak_tsan_body_aligned_alloc
#define memalign hak_tsan_body_memalign
#define valloc hak_tsan_body_valloc
#define pvalloc hak_tsan_body_pvalloc
#define malloc_usable_size hak_tsan_body_malloc_usable_size
#define free_sized hak_tsan_body_free_sized
#define free_aligned_sized hak_tsan_body_free_aligned_sized
#define hak_free_checked hak_tsan_body_free_checked
#undef HAK_EXPORT
#define HAK_EXPORT HAK_INTERNAL
#endif
#else
#define hak_tsan_fork_enter() ((void)0)
#define hak_tsan_fork_leave() ((void)0)
#endif

#endif
