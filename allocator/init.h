/* Process-wide start-up: settings, the registry, knobs, the thread-exit
 * key, fork handlers and the crash handler.  Runs from a constructor and,
 * for a preloaded library whose malloc is called before constructors run,
 * from the first allocation - whichever comes first. */
#ifndef HAKMEM_INIT_H
#define HAKMEM_INIT_H

#include <stdatomic.h>

#include "types.h"

extern _Atomic int hak_init_state HAK_INTERNAL; /* 2 once usable */

void hak_init_slow(void) HAK_INTERNAL;

static inline void hak_ensure_init(void) {
  if (HAK_LIKELY(atomic_load_explicit(&hak_init_state, memory_order_acquire) == 2)) return;
  hak_init_slow();
}

/* Installs the crash handler unless HAKMEM_CRASH_HANDLER=0 (crash.c). */
void hak_crash_handler_install(void) HAK_INTERNAL;
/* Installs it now if an ASan start-up made it wait (crash.c). */
void hak_crash_handler_resume(void) HAK_INTERNAL;
/* Creates the thread-exit key (heap.c). */
void hak_heaps_init(void) HAK_INTERNAL;

#endif
