#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static _Atomic int log_level = HKM_ACE_LOG_OFF;
static _Atomic int log_fd = 2;

void hkm_ace_log_set(int level, int fd) {
  atomic_store_explicit(&log_level, level, memory_order_relaxed);
  atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

int hkm_ace_log_level(void) { return atomic_load_explicit(&log_level, memory_order_relaxed); }

void hkm_ace_log(int level, const char *fmt, ...) {
  if (level <= HKM_ACE_LOG_OFF || level > hkm_ace_log_level()) return;
  char buf[512];
  int n = snprintf(buf, sizeof buf, "[ACE] ");
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) return;
  size_t len = (size_t)n + ((size_t)m < sizeof buf - (size_t)n - 1 ? (size_t)m
                                                                    : sizeof buf - (size_t)n - 2);
  buf[len++] = '\n';
  int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, buf + off, len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
}
