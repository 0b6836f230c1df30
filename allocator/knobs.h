/* The knobs ACE turns, as the allocator reads them.  Setters store here and
 * bump the epoch; each thread copies the TLS capacities into its own bins
 * on its next refill or flush, so the fast paths read only thread-local
 * values.  Remote frees read the drain thresholds directly; refills read
 * the bundle widths and flushes the page-release setting directly (slow
 * paths: one relaxed load each). */
#ifndef HAKMEM_KNOBS_H
#define HAKMEM_KNOBS_H

#include <stdatomic.h>
#include <stdint.h>

#include "types.h"

struct hak_knobs {
  _Atomic uint32_t tls_cap[HAK_NUM_CLASSES];
  _Atomic uint32_t drain_threshold[HAK_NUM_CLASSES];
  _Atomic uint32_t bundle[HAK_NUM_CLASSES]; /* blocks per refill; 0: cap / 2 */
  _Atomic uint32_t release_pages;           /* release.h; 0: off */
  _Atomic uint32_t epoch;
};

extern struct hak_knobs hak_knobs HAK_INTERNAL;

/* Defaults from the size classes and the environment settings. */
void hak_knobs_init(void) HAK_INTERNAL;
/* Copies changed capacities into the calling thread's bins. */
void hak_knobs_refresh(struct hak_tcache *tc) HAK_INTERNAL;

#endif
