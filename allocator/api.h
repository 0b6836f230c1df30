/* What api.c offers the rest of the library (cxx.c). */
#ifndef HAKMEM_API_H
#define HAKMEM_API_H

#include <stddef.h>

#include "types.h"

/* Frees p after checking that n (and align, 16 for none) can be the size
 * it was allocated with; reports HAK_FAULT_SIZE_MISMATCH otherwise.
 * strict: the block was never reallocated (C++), so no shrunk-in-place
 * slack is allowed. */
void hak_free_checked(void *p, size_t n, size_t align, int strict) HAK_INTERNAL;

#endif
