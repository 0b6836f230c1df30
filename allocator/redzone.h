/* Debug-variant redzones: heap overflow and underflow caught at free.
 *
 * The debug variant gives every malloc/calloc/realloc block (alignment 16,
 * any tier) a 16-byte header in front of the bytes the program sees and at
 * least HAK_RZ_TAIL bytes of canary after them:
 *
 *   block:  [ n ^ key | canary ][ n program bytes ][ 0xFB ... to block end ]
 *                                ^ pointer returned
 *
 * The header records the requested size (so free_sized and C++ sized delete
 * are checked exactly) and a canary derived from the block address and the
 * per-process secret; it is chosen so it never equals the block's free tag,
 * so a second free still reads as a double free.  free() checks the header
 * (underflow: bytes before the block overwritten) and the tail (overflow)
 * before the block goes back to a list.
 *
 * Blocks with a larger alignment (memalign & co. above 16) carry no redzone;
 * free tells them apart because their pointer is the block start, while a
 * redzoned pointer is 16 bytes past it.  A redzoned request of n bytes
 * takes the class of n + 32 (hak_size_class says so in debug).
 *
 * HAKMEM_REDZONE=0 turns redzones off for the whole process (read at init,
 * before the first block exists); the debug variant then lays blocks out as
 * release does.  The release variant compiles none of this: HAK_REDZONES is
 * 0 there. */
#ifndef HAKMEM_REDZONE_H
#define HAKMEM_REDZONE_H

#include <stddef.h>

#include "config.h"
#include "init.h"
#include "types.h"

#define HAK_REDZONES HAK_FULL_CHECKS
#define HAK_RZ_HEAD 16
#define HAK_RZ_TAIL 16
#define HAK_RZ_CHECKED_TAIL 64 /* tail bytes filled and checked at most */

/* Whether blocks get (and frees look for) redzones.  Initialises hakmem
 * first, so the setting is known before the first block exists. */
static inline int hak_rz_active(void) {
  if (!HAK_REDZONES) return 0;
  hak_ensure_init();
  return hak_config.redzone != 0;
}

/* n bytes (zeroed if zero) with redzones; NULL with ENOMEM. */
void *hak_rz_alloc(size_t n, int zero) HAK_INTERNAL;

/* What free must hand to the tiers for program pointer p: the block start
 * of a redzoned block whose redzones are intact, p itself for anything else
 * (plain blocks, and pointers the tiers then report as invalid), or NULL
 * when a fault was reported here (overflow, underflow, double free). */
void *hak_rz_unwrap(void *p) HAK_INTERNAL;

/* If p is a live redzoned block: 1 and its requested size in *n; else 0.
 * Reads nothing that is not inside a live block. */
int hak_rz_size(const void *p, size_t *n) HAK_INTERNAL;

/* Resizes redzoned block p in place when the new size still fits its
 * block (rewriting header and tail); returns p, or NULL if it does not fit. */
void *hak_rz_resize_in_place(void *p, size_t n) HAK_INTERNAL;

#endif
