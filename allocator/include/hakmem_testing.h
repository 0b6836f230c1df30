/* Hooks for hakmem's own tests: they let a test put the allocator into a
 * state a correct program never reaches, to prove the checks catch it.
 * Not for applications. */
#ifndef HAKMEM_TESTING_H
#define HAKMEM_TESTING_H

#include "hakmem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pushes node onto the calling thread's TLS SLL of class cls exactly as a
 * stray write would: no check, no tag.  The next pop or verify of that list
 * must detect it. */
HAK_API void hak_testing_tls_sll_push_raw(int cls, void *node);
/* Blocks currently in the calling thread's TLS SLL of class cls. */
HAK_API uint32_t hak_testing_tls_sll_length(int cls);
/* hak_tls_sll_verify, then every node of the local free lists of the
 * slabs of class cls (every class if cls < 0) the calling thread owns: a
 * bad node is reported (an integrity event) and its list dropped.  Returns
 * the number of bad lists. */
HAK_API size_t hak_testing_verify_heap(int cls);
/* Returns every block in the calling thread's TLS SLLs to their slabs. */
HAK_API void hak_testing_tls_flush(void);
/* Moves the remote queues of the calling thread's slabs of class cls onto
 * their local free lists, as its slow path does when it runs dry. */
HAK_API void hak_testing_collect_remote(int cls);

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_TESTING_H */
