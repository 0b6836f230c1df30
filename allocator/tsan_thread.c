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

#include <errno.h>
#include <limits.h>
#include <pthread.h>
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

HAK_API int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                           void *arg) {
  struct start *s = malloc(sizeof *s);
  if (!s) return EAGAIN;
  s->fn = fn;
  s->arg = arg;
  int err = __interceptor_pthread_create(t, attr, start_ready, s);
  if (err) free(s);
  return err;
}

#endif
