/* Carrying out a decision (controller.h) through the allocator's public
 * API - hkm_tiny_set_tls_capacity, hkm_tiny_set_drain_threshold,
 * hkm_tiny_set_bundle_width, hkm_set_release_pages, hak_scavenge_pages -
 * and logging each step (log.h): knob moves, scavenges and guard trips at
 * info. */
#ifndef HAKMEM_ACE_APPLY_H
#define HAKMEM_ACE_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "controller.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Applies and logs *d; returns the bytes the scavenges released. */
uint64_t hkm_ace_apply(const struct hkm_ace_decision *d);

/* The log text of one action, without the "[ACE] " prefix, e.g.
 * "Adjusting TLS cap[2]: 32 → 24 (diet factor=0.75)".  Returns the log
 * level it belongs to (HKM_ACE_LOG_INFO or _DEBUG). */
int hkm_ace_describe(const struct hkm_ace_action *a, char *buf, size_t n);

/* The log text of a guard trip ("Safety guard: ..."). */
void hkm_ace_describe_guard(const struct hkm_ace_decision *d, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
