/* Under ThreadSanitizer: when a thread may run hakmem's instrumented code.
 *
 * The tool keeps a state per thread, which instrumented code writes on
 * every function entry.  A thread's state exists from the end of the
 * tool's thread start (its pthread_create interceptor's start routine)
 * until its last round of thread-specific destructors - but libc calls
 * malloc outside that window: pthread_getattr_np, from the tool's own
 * thread start, reallocates and frees a CPU set, and libc's thread
 * cleanup may free its buffers after the last round.  hak_tsan_thread_ready
 * marks the window; outside it the entry points (tsan_entry.c) serve the
 * thread from the boot buffer and ignore frees of heap blocks (a buffer
 * of a dying thread leaks).
 *
 * The window opens in a start routine of hakmem's wrapped around the
 * program's by pthread_create below, which the tool's interceptor runs
 * after its own set-up; it closes in the last destructor round, right
 * after the tool's destructor (a key created after the tool's runs after
 * it within a round; both re-arm themselves until the last round). */
#include "tsan_entry.h"

#if HAK_TSAN

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

__thread int hak_tsan_thread_ready __attribute__((tls_model("initial-exec")));

/* The tool's pthread_create, which this one calls. */
int __interceptor_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                                 void *(*fn)(void *), void *arg);

static pthread_key_t last_round_key;
static int last_round_key_ok;

#ifndef PTHREAD_DESTRUCTOR_ITERATIONS
#define PTHREAD_DESTRUCTOR_ITERATIONS 4
#endif

HAK_NO_TSAN static void last_round(void *rounds_left) {
  uintptr_t left = (uintptr_t)rounds_left;
  if (left > 1) {
    pthread_setspecific(last_round_key, (void *)(left - 1));
    return;
  }
  hak_tsan_thread_ready = 0;
}

HAK_NO_TSAN void hak_tsan_threads_init(void) {
  hak_tsan_thread_ready = 1;
  last_round_key_ok = pthread_key_create(&last_round_key, last_round) == 0;
}

/* fork: the tool registers its fork handlers before hakmem does, so
 * hakmem's prepare handler runs first and its parent and child handlers
 * last.  In between hakmem holds all its locks - and the tool's child
 * handler starts its background thread again, whose pthread_create
 * allocates thread storage: from hakmem it would wait forever for a lock
 * only this thread's later handler releases.  The forking thread takes
 * that window's blocks from the boot buffer instead (the child's only
 * thread, too, inherits the mark until hakmem's child handler). */
HAK_NO_TSAN void hak_tsan_fork_enter(void) { hak_tsan_thread_ready = 0; }
HAK_NO_TSAN void hak_tsan_fork_leave(void) { hak_tsan_thread_ready = 1; }

struct start {
  void *(*fn)(void *);
  void *arg;
};

static void *start_ready(void *p) {
  hak_tsan_thread_ready = 1;
  if (last_round_key_ok)
    pthread_setspecific(last_round_key, (void *)(uintptr_t)PTHREAD_DESTRUCTOR_ITERATIONS);
  struct start s = *(struct start *)p;
  free(p);
  return s.fn(s.arg);
}

typedef int create_fn(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* libc's pthread_create when hakmem's comes after the tool's in symbol
 * lookup, else NULL.  That is the case of a program linked against
 * libhakmem.so: the tool's runtime is always first, so the program's calls
 * reach the tool's pthread_create, whose call on to "the next one" lands
 * here; wrapping again would re-enter the tool, without end.  (Its malloc
 * is then the tool's too, so no thread needs the start routine below.)
 * Told apart by what follows hakmem in lookup order: the tool, when
 * hakmem's definition is the program's; libc, when the tool's is. */
static create_fn *pass_through(void) {
  static _Atomic int resolved;
  static create_fn *_Atomic next;
  if (!atomic_load_explicit(&resolved, memory_order_acquire)) {
    void *after = dlsym(RTLD_NEXT, "pthread_create");
    if (after && after != (void *)__interceptor_pthread_create)
      atomic_store_explicit(&next, (create_fn *)after, memory_order_relaxed);
    atomic_store_explicit(&resolved, 1, memory_order_release);
  }
  return atomic_load_explicit(&next, memory_order_relaxed);
}

HAK_API int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                           void *arg) {
  create_fn *libc_create = pass_through();
  if (libc_create) return libc_create(t, attr, fn, arg);
  struct start *s = malloc(sizeof *s);
  if (!s) return EAGAIN;
  s->fn = fn;
  s->arg = arg;
  int err = __interceptor_pthread_create(t, attr, start_ready, s);
  if (err) free(s);
  return err;
}

#endif
