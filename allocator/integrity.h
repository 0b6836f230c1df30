/* Integrity checks and fault reports (SPEC §1, "TLS SLL header
 * integrity").  Every detected fault is counted, reported on stderr with the
 * pointer, the expected and found class and where the block lives, and then
 * either aborts the process or - in report mode - is contained: the bad
 * block is dropped, never linked back into a list. */
#ifndef HAKMEM_INTEGRITY_H
#define HAKMEM_INTEGRITY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

enum hak_fault_kind {
  HAK_FAULT_DOUBLE_FREE,
  HAK_FAULT_INVALID_FREE,
  HAK_FAULT_SLL_CORRUPTION,
  HAK_FAULT_SIZE_MISMATCH,
  HAK_FAULT_OVERFLOW,  /* bytes past the block overwritten (redzone.h) */
  HAK_FAULT_UNDERFLOW, /* bytes before the block overwritten */
};

/* What is wrong with a would-be free-list node, HAK_NODE_OK if nothing. */
enum hak_node_problem {
  HAK_NODE_OK,
  HAK_NODE_NOT_REGISTERED,  /* not inside any live SuperSlab */
  HAK_NODE_NOT_LARGE,       /* outside every SuperSlab, not a live large block */
  HAK_NODE_NO_SPAN,         /* segment header or a slab serving no class */
  HAK_NODE_WRONG_CLASS,     /* a block of another class */
  HAK_NODE_OFF_BOUNDARY,    /* inside a block, not at its start */
  HAK_NODE_NEVER_CARVED,    /* past the blocks the span has handed out */
  HAK_NODE_BAD_TAG,         /* no sealed free tag: not a freed block, or its link changed */
  HAK_NODE_BAD_COUNT,       /* a slab list longer or shorter than its count */
};

extern _Atomic uint64_t hak_integrity_count HAK_INTERNAL;
extern _Atomic int hak_fault_mode HAK_INTERNAL;

/* Full check of a node expected on a free list of class cls: registry,
 * span, class, block boundary, carved range and free tag. */
enum hak_node_problem hak_node_check(const void *node, unsigned cls) HAK_INTERNAL;

/* Counts and reports a fault about ptr; aborts unless in report mode.
 * expected_cls < 0 when no class is expected. */
void hak_fault(enum hak_fault_kind kind, const void *ptr, int expected_cls,
               enum hak_node_problem problem) HAK_INTERNAL
    __attribute__((cold, noinline));

#endif
