#include "init.h"

#include <pthread.h>
#include <sys/auxv.h>

#include "config.h"
#include "heap.h"
#include "integrity.h"
#include "knobs.h"
#include "large.h"
#include "segment.h"
#include "tsan_entry.h"

_Atomic int hak_init_state; /* 0 not started, 1 running, 2 usable */
uintptr_t hak_tag_secret;
__thread struct hak_tcache hak_tc __attribute__((tls_model("initial-exec")));

static __thread int initialising_thread;

/* ---- fork: hold every lock across fork so the child inherits consistent
 * shared state; the child then forgets the heaps of vanished threads. ---- */

static void fork_prepare(void) {
  hak_tsan_fork_enter();
  hak_lock(&hak_heaps.lock);
  hak_lock(&hak_pool.carve_lock);
  hak_large_lock_all();
}

static void fork_parent(void) {
  hak_large_unlock_all();
  hak_unlock(&hak_pool.carve_lock);
  hak_unlock(&hak_heaps.lock);
  hak_tsan_fork_leave();
}

static void fork_child(void) {
  hak_large_unlock_all();
  hak_unlock(&hak_pool.carve_lock);
  hak_heaps_after_fork_child();
  hak_unlock(&hak_heaps.lock);
  hak_tsan_fork_leave();
}

static uintptr_t make_secret(void) {
  uintptr_t secret = (uintptr_t)&hak_tag_secret * 0x9e3779b97f4a7c15ull;
  const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
  if (random) {
    uintptr_t r = 0;
    for (int i = 0; i < 8; i++) r = (r << 8) | random[i + 8];
    secret ^= r;
  }
  return secret | 1; /* never 0: a zeroed word is never a valid tag */
}

void hak_init_slow(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&hak_init_state, &expected, 1)) {
    /* Another thread is initialising; wait unless that thread is us
     * (a call back into malloc from inside init). */
    if (initialising_thread) return;
    while (atomic_load_explicit(&hak_init_state, memory_order_acquire) != 2)
      sched_yield();
    return;
  }
  initialising_thread = 1;
  hak_config_load();
  atomic_store_explicit(&hak_fault_mode, (int)hak_config.fault_action,
                        memory_order_relaxed);
  hak_tag_secret = make_secret();
  hak_knobs_init();
  hak_heaps_init();
  atomic_store_explicit(&hak_init_state, 2, memory_order_release);
  /* These may allocate; the allocator is usable by now. */
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  hak_crash_handler_install();
  initialising_thread = 0;
}

__attribute__((constructor)) static void hak_constructor(void) { hak_ensure_init(); }
