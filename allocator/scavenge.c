/* hak_scavenge: the budgeted release of memory ACE's slow loop calls.  It
 * runs on the caller's thread (ACE's), so it reaches only memory no live
 * thread owns: the shared pool's empty spans, spans of exited threads and
 * the large tier's global cache (without a page limit).  Live threads' spans release their own
 * free pages (release.h). */
#include "init.h"
#include "large.h"
#include "os.h"
#include "segment.h"

size_t hak_scavenge_pages(size_t max_pages, uint64_t budget_ns) {
  hak_ensure_init();
  uint64_t deadline = budget_ns ? hak_os_now_ns() + budget_ns : 0;
  uint64_t pages = hak_pool_scavenge(deadline, max_pages);
  /* The large tier returns whole runs and mappings, without a page count,
   * so only a call without a page limit takes them. */
  if (!max_pages && (!deadline || hak_os_now_ns() < deadline)) {
    uint64_t bytes = hak_large_scavenge(deadline);
    atomic_fetch_add_explicit(&hak_pool.released_pages, bytes / HAK_PAGE_SIZE,
                              memory_order_relaxed);
    pages += bytes / HAK_PAGE_SIZE;
  }
  return (size_t)pages;
}

size_t hak_scavenge(uint64_t budget_ns) {
  return hak_scavenge_pages(0, budget_ns) * HAK_PAGE_SIZE;
}
