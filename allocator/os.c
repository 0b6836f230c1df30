#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *hak_os_map(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *hak_os_map_aligned(size_t len, size_t align) {
  if (align <= HAK_PAGE_SIZE) return hak_os_map(len);
  if (len + align < len) return NULL;
  /* Over-map, then trim both ends to the aligned window. */
  char *raw = hak_os_map(len + align);
  if (!raw) return NULL;
  char *aligned = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  size_t head = (size_t)(aligned - raw);
  size_t tail = align - head;
  if (head) munmap(raw, head);
  if (tail) munmap(aligned + len, tail);
  return aligned;
}

void hak_os_unmap(void *p, size_t len) {
  /* ASan's shadow outlives the mapping: a later one at this address must
   * not inherit a freed block's poison (tool_hooks.h). */
  hak_tool_reopen(p, len);
  munmap(p, len);
}

void hak_os_decommit(void *p, size_t len) { madvise(p, len, MADV_DONTNEED); }

/* The kernel's "this process" pidfd (PIDFD_SELF_THREAD_GROUP, not in every
 * libc's headers).  A kernel without it answers EBADF: a negative number
 * is never the descriptor of another process, so a forked child (whose
 * real pidfd would still name its parent) is safe too. */
#define PIDFD_SELF_GROUP (-10001)

static _Atomic int batch_refused; /* process_madvise failed once: never again */

void hak_os_decommit_batch(const struct iovec *v, unsigned n) {
  if (n == 0) return;
  int saved = errno; /* free() leaves errno alone */
#ifdef SYS_process_madvise
  if (n > 1 && !atomic_load_explicit(&batch_refused, memory_order_relaxed)) {
    size_t want = 0;
    for (unsigned i = 0; i < n; i++) want += v[i].iov_len;
    long got = syscall(SYS_process_madvise, PIDFD_SELF_GROUP, v, (size_t)n, MADV_DONTNEED, 0u);
    if (got >= 0 && (size_t)got == want) {
      errno = saved;
      return;
    }
    /* Refused (no PIDFD_SELF, MADV_DONTNEED not taken, a seccomp filter):
     * one madvise a range from now on.  A short count is a range that
     * failed midway; the loop below redoes them all (DONTNEED twice is
     * harmless). */
    if (got < 0 && errno != EINTR && errno != EAGAIN && errno != ENOMEM)
      atomic_store_explicit(&batch_refused, 1, memory_order_relaxed);
  }
#endif
  for (unsigned i = 0; i < n; i++) madvise(v[i].iov_base, v[i].iov_len, MADV_DONTNEED);
  errno = saved;
}

uint64_t hak_os_rss_bytes(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *c = buf;
  while (*c && *c != ' ') c++; /* skip total size */
  while (*c == ' ') c++;
  uint64_t pages = 0;
  while (*c >= '0' && *c <= '9') pages = pages * 10 + (uint64_t)(*c++ - '0');
  return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t hak_os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
