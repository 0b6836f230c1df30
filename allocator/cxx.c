/* C++ operator new and delete, in C under their Itanium-ABI names, so that
 * every C++ program linked with or preloading hakmem allocates through it
 * and sized delete is checked: `delete` of an object with the wrong static
 * type (or a corrupted size) is reported like any other bad free.
 *
 * Throwing new follows the standard: on failure it calls the installed
 * new_handler and retries, and throws std::bad_alloc when there is none.
 * Both come from libstdc++, referenced weakly: a C++ program has them, and
 * a C program never calls a throwing new.  The nothrow forms return NULL on
 * failure without consulting the new_handler (a handler may throw, and C
 * cannot catch). */
#include <stddef.h>
#include <stdlib.h>

#include "api.h"
#include "integrity.h"
#include "report.h"

#define HAK_EXPORT HAK_API

typedef void (*new_handler_fn)(void);
new_handler_fn _ZSt15get_new_handlerv(void) __attribute__((weak));         /* std::get_new_handler */
void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));        /* throws std::bad_alloc */

/* `operator new` ran out of memory and has no handler to call. */
static void *out_of_memory(void) {
  if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
  struct hak_msg m = {0};
  hak_msg_str(&m, "hakmem: operator new: out of memory and no std::bad_alloc to throw; aborting");
  hak_msg_send(&m, 2);
  abort();
}

static void *new_bytes(size_t n, size_t align) {
  if (align > 16 && n > (size_t)-1 - align) return out_of_memory();
  for (;;) {
    void *p = align > 16 ? aligned_alloc(align, (n + align - 1) & ~(align - 1)) : malloc(n);
    if (p) return p;
    new_handler_fn handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (!handler) return out_of_memory();
    handler();
  }
}

static void *new_nothrow(size_t n, size_t align) {
  if (align <= 16) return malloc(n);
  if (n > (size_t)-1 - align) return NULL;
  return aligned_alloc(align, (n + align - 1) & ~(align - 1));
}

/* Sized delete of an over-aligned object: the size aligned_alloc got. */
static void delete_sized(void *p, size_t n, size_t align) {
  if (align > 16) n = (n + align - 1) & ~(align - 1);
  hak_free_checked(p, n, align, 1);
}

/* The std::nothrow_t and std::align_val_t arguments are passed as a
 * reference (pointer) and a size_t. */
HAK_EXPORT void *_Znwm(size_t n) { return new_bytes(n, 16); }
HAK_EXPORT void *_Znam(size_t n) { return new_bytes(n, 16); }
HAK_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return new_nothrow(n, 16); }
HAK_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) { (void)nt; return new_nothrow(n, 16); }
HAK_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al) { return new_bytes(n, al); }
HAK_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al) { return new_bytes(n, al); }
HAK_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) {
  (void)nt;
  return new_nothrow(n, al);
}
HAK_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt) {
  (void)nt;
  return new_nothrow(n, al);
}

HAK_EXPORT void _ZdlPv(void *p) { free(p); }
HAK_EXPORT void _ZdaPv(void *p) { free(p); }
HAK_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; free(p); }
HAK_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) { (void)nt; free(p); }
HAK_EXPORT void _ZdlPvm(void *p, size_t n) { delete_sized(p, n, 16); }
HAK_EXPORT void _ZdaPvm(void *p, size_t n) { delete_sized(p, n, 16); }
HAK_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al) { (void)al; free(p); }
HAK_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t al) { (void)al; free(p); }
HAK_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) { delete_sized(p, n, al); }
HAK_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) { delete_sized(p, n, al); }
HAK_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) {
  (void)al;
  (void)nt;
  free(p);
}
HAK_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt) {
  (void)al;
  (void)nt;
  free(p);
}
