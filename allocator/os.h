/* The allocator's only contact with the kernel's memory calls. */
#ifndef HAKMEM_OS_H
#define HAKMEM_OS_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* Anonymous read-write mapping, NULL on failure. */
void *hak_os_map(size_t len) HAK_INTERNAL;
/* Mapping of len bytes aligned to align (a power of two), NULL on failure. */
void *hak_os_map_aligned(size_t len, size_t align) HAK_INTERNAL;
void hak_os_unmap(void *p, size_t len) HAK_INTERNAL;
/* Returns the pages' memory to the OS; they read back as zeros. */
void hak_os_decommit(void *p, size_t len) HAK_INTERNAL;
/* hak_os_decommit of n ranges: one process_madvise(PIDFD_SELF,
 * MADV_DONTNEED) where the kernel accepts it (recent kernels; tried at
 * run time), which also flushes the TLBs once for the lot; otherwise, and
 * for good once that call has failed, one madvise a range.  Only page
 * release calls it (off unless ACE or HAKMEM_RELEASE_PAGES turns it on):
 * a seccomp filter that kills rather than fails unknown system calls would
 * kill the process at the first batch. */
void hak_os_decommit_batch(const struct iovec *v, unsigned n) HAK_INTERNAL;
/* Resident set size of the process in bytes, 0 if unknown. */
uint64_t hak_os_rss_bytes(void) HAK_INTERNAL;
/* Monotonic clock in nanoseconds. */
uint64_t hak_os_now_ns(void) HAK_INTERNAL;

#endif
