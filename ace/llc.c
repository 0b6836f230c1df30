#include "llc.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_counter(uint64_t config) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = PERF_TYPE_HARDWARE;
  a.config = config;
  a.inherit = 1;        /* threads created later count too */
  a.exclude_kernel = 1; /* allowed with perf_event_paranoid <= 2 */
  a.exclude_hv = 1;
  return (int)syscall(SYS_perf_event_open, &a, 0 /* this thread */, -1 /* any cpu */,
                      -1 /* no group */, PERF_FLAG_FD_CLOEXEC);
}

static int read_counter(int fd, uint64_t *v) {
  return read(fd, v, sizeof *v) == (ssize_t)sizeof *v ? 0 : -1;
}

int hkm_ace_llc_open(struct hkm_ace_llc *l) {
  *l = (struct hkm_ace_llc){.miss_fd = -1, .ref_fd = -1};
  int miss = open_counter(PERF_COUNT_HW_CACHE_MISSES);
  if (miss < 0) {
    l->error = errno ? errno : ENOENT;
    return -1;
  }
  int ref = open_counter(PERF_COUNT_HW_CACHE_REFERENCES);
  if (ref < 0 || read_counter(miss, &l->prev_miss) < 0 || read_counter(ref, &l->prev_ref) < 0) {
    l->error = errno ? errno : EIO;
    close(miss);
    if (ref >= 0) close(ref);
    return -1;
  }
  l->miss_fd = miss;
  l->ref_fd = ref;
  return 0;
}

double hkm_ace_llc_rate(struct hkm_ace_llc *l) {
  if (l->miss_fd < 0) return 0.0;
  uint64_t miss, ref;
  if (read_counter(l->miss_fd, &miss) < 0 || read_counter(l->ref_fd, &ref) < 0) return 0.0;
  uint64_t dm = miss >= l->prev_miss ? miss - l->prev_miss : 0;
  uint64_t dr = ref >= l->prev_ref ? ref - l->prev_ref : 0;
  l->prev_miss = miss;
  l->prev_ref = ref;
  if (dr == 0) return 0.0;
  double rate = (double)dm / (double)dr;
  return rate > 1.0 ? 1.0 : rate;
}

void hkm_ace_llc_close(struct hkm_ace_llc *l) {
  if (l->miss_fd >= 0) close(l->miss_fd);
  if (l->ref_fd >= 0) close(l->ref_fd);
  l->miss_fd = l->ref_fd = -1;
}
