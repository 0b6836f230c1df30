/* A spin lock for hakmem's rare paths (segment carving, the large-block
 * table, the heap list).  It never allocates and is plain memory, so fork
 * handlers can take and reset it; waiters yield rather than burn a core.
 *
 * The uncontended path is one load and one exchange, as before.  A thread
 * that finds the lock held waits out of line (lock.c), and only there is
 * the wait timed and added to two process-wide counters: ACE's "mutex
 * wait" metric (hak_lock_waits, hak_lock_wait_ns in hakmem.h). */
#ifndef HAKMEM_LOCK_H
#define HAKMEM_LOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct {
  atomic_int held;
} hak_lock_t;

#define HAK_LOCK_INIT {0}

/* Totals of every contended acquisition. */
extern _Atomic uint64_t hak_lock_wait_count, hak_lock_wait_total_ns
    __attribute__((visibility("hidden")));

void hak_lock_wait(hak_lock_t *l) __attribute__((visibility("hidden"), noinline));

static inline void hak_lock(hak_lock_t *l) {
  if (__builtin_expect(!atomic_load_explicit(&l->held, memory_order_relaxed) &&
                           !atomic_exchange_explicit(&l->held, 1, memory_order_acquire),
                       1))
    return;
  hak_lock_wait(l);
}

static inline void hak_unlock(hak_lock_t *l) {
  atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif
