/* hak_scavenge: the budgeted release of memory ACE's slow loop calls. */
#include "init.h"
#include "large.h"
#include "os.h"
#include "segment.h"

size_t hak_scavenge(uint64_t budget_ns) {
  hak_ensure_init();
  uint64_t deadline = budget_ns ? hak_os_now_ns() + budget_ns : 0;
  uint64_t released = hak_pool_scavenge(deadline);
  if (!deadline || hak_os_now_ns() < deadline) released += hak_large_scavenge(deadline);
  return (size_t)released;
}
