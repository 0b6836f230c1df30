/* The contended half of hak_lock (lock.h): spin, then yield, and count the
 * time it took. */
#include "lock.h"

#include "os.h"

_Atomic uint64_t hak_lock_wait_count, hak_lock_wait_total_ns;

void hak_lock_wait(hak_lock_t *l) {
  uint64_t t0 = hak_os_now_ns();
  for (int spins = 0;; spins++) {
    if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
        !atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
      break;
    if (spins > 1000) sched_yield();
    else __builtin_ia32_pause();
  }
  atomic_fetch_add_explicit(&hak_lock_wait_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_lock_wait_total_ns, hak_os_now_ns() - t0, memory_order_relaxed);
}
