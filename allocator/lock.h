/* A spin lock for hakmem's rare paths (segment carving, the large-block
 * table, the heap list).  It never allocates and is plain memory, so fork
 * handlers can take and reset it; waiters yield rather than burn a core. */
#ifndef HAKMEM_LOCK_H
#define HAKMEM_LOCK_H

#include <sched.h>
#include <stdatomic.h>

typedef struct {
  atomic_int held;
} hak_lock_t;

#define HAK_LOCK_INIT {0}

static inline void hak_lock(hak_lock_t *l) {
  for (int spins = 0;; spins++) {
    if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
        !atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
      return;
    if (spins > 1000) sched_yield();
    else __builtin_ia32_pause();
  }
}

static inline void hak_unlock(hak_lock_t *l) {
  atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif
