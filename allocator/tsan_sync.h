/* Happens-before for ThreadSanitizer where hakmem hands memory from one
 * thread to another.
 *
 * Linked into a TSan-instrumented program, hakmem's malloc takes the place
 * of the tool's, and the tool no longer learns that a block freed by one
 * thread and handed out to another is a new object: the program's accesses
 * through the old pointer and through the new one look like a race unless
 * something hakmem does orders them.  Most hand-offs go through an atomic
 * or a lock the tool sees (a remote queue's exchange, the pool's stacks,
 * the arenas' locks); these annotations make the others visible - memory
 * that changes threads through the kernel (a mapping moved by mremap, or
 * unmapped and mapped again) or whose metadata is read outside the lock
 * that covers it - and state at each hand-off which record orders it, so a
 * later change to a weaker memory order cannot silently open a gap.
 *
 * Each annotation is keyed by a stable address: the span's record for
 * small blocks, the span's base for large ones.  A release merges the
 * releasing thread's history into the key; an acquire makes everything
 * merged there so far happen before the acquiring thread's next access.
 *
 * Without TSan every macro is empty and HAK_TSAN is 0: nothing is compiled
 * in, so the default build's code is unchanged. */
#ifndef HAKMEM_TSAN_SYNC_H
#define HAKMEM_TSAN_SYNC_H

#if defined(__SANITIZE_THREAD__)
#define HAK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HAK_TSAN 1
#endif
#endif
#ifndef HAK_TSAN
#define HAK_TSAN 0
#endif

#if HAK_TSAN
#include <sanitizer/tsan_interface.h>

/* Everything the releasing thread did so far happens before whatever an
 * acquirer of key does after its acquire. */
#define hak_tsan_release(key) __tsan_release((void *)(key))
#define hak_tsan_acquire(key) __tsan_acquire((void *)(key))

/* A function the tool must not instrument at all - no memory accesses, no
 * function entry and exit events - because it may run before the tool's
 * runtime is initialised (tsan_entry.c).  GCC's no_sanitize("thread")
 * drops all of it; clang's keeps the entry and exit events, which
 * disable_sanitizer_instrumentation (clang 14) drops too. */
#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define HAK_NO_TSAN __attribute__((disable_sanitizer_instrumentation))
#endif
#endif
#ifndef HAK_NO_TSAN
#define HAK_NO_TSAN __attribute__((no_sanitize("thread")))
#endif

#else
#define hak_tsan_release(key) ((void)0)
#define hak_tsan_acquire(key) ((void)0)
#define HAK_NO_TSAN
#endif

#endif
