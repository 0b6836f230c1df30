#include "shadow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakmem.h"

/* Sizes where classes, tiers and mappings change: off-by-one errors live
 * here, and random sizes rarely land on them. */
static const size_t edge_sizes[] = {
    0,     1,      8,      15,     16,      17,      31,      32,       33,
    48,    112,    128,    129,    160,     255,     256,     257,      384,
    511,   512,    513,    768,    1023,    1024,    1025,    2047,     2048,
    4095,  4096,   4097,   8192,   16384,   32767,   32768,   49152,    65535,
    65536, 65537,  65536 + 4096,   131072,  262144,  1 << 20, (2 << 20) - 64,
    2 << 20, (2 << 20) + 1,
};

size_t fz_size(struct fz_in *in) {
  unsigned sel = fz_u8(in);
  size_t r = fz_u16(in);
  switch (sel & 3) {
    case 0:
      return r % (HAK_TINY_MAX + 1);
    case 1:
      return HAK_TINY_MAX + 1 + r % (HAK_MID_MAX - HAK_TINY_MAX);
    case 2: /* large: up to 64 KiB << 6 = 4 MiB; most stay near the tier's start */
      return HAK_MID_MAX + 1 + (r << ((sel >> 2) % 7));
    default:
      return edge_sizes[r % (sizeof edge_sizes / sizeof edge_sizes[0])];
  }
}

#define FULL_WORDS ((size_t)16384) /* the first 128 KiB are patterned whole */

/* The pattern loops run over every byte of every block: without coverage
 * instrumentation (each comparison would call into libFuzzer), they are
 * several times faster, and their branches say nothing about hakmem. */
#if defined(__clang__)
#define FZ_UNTRACED __attribute__((no_sanitize("coverage")))
#else
#define FZ_UNTRACED
#endif

static inline size_t next_sampled(size_t j) {
  return j < FULL_WORDS ? j : (j + 63) & ~(size_t)63;
}

static inline uint64_t pattern_word(uint64_t seed, size_t j) {
  uint64_t x = seed ^ (j * 0x9e3779b97f4a7c15ull);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 29);
}

FZ_UNTRACED void fz_fill(unsigned char *p, size_t from, size_t to, uint64_t seed) {
  for (size_t j = next_sampled(from / 8); j * 8 < to; j = next_sampled(j + 1)) {
    uint64_t w = pattern_word(seed, j);
    size_t lo = j * 8 < from ? from : j * 8;
    size_t hi = j * 8 + 8 > to ? to : j * 8 + 8;
    if (lo == j * 8 && hi == lo + 8) {
      memcpy(p + lo, &w, 8);
    } else {
      for (size_t i = lo; i < hi; i++) p[i] = (unsigned char)(w >> (8 * (i & 7)));
    }
  }
}

FZ_UNTRACED size_t fz_find_bad(const unsigned char *p, size_t n, uint64_t seed) {
  for (size_t j = 0; j * 8 < n; j = next_sampled(j + 1)) {
    uint64_t w = pattern_word(seed, j);
    size_t hi = j * 8 + 8 > n ? n : j * 8 + 8;
    if (hi == j * 8 + 8) {
      uint64_t got;
      memcpy(&got, p + j * 8, 8);
      if (got == w) continue;
    }
    for (size_t i = j * 8; i < hi; i++)
      if (p[i] != (unsigned char)(w >> (8 * (i & 7)))) return i;
  }
  return (size_t)-1;
}

FZ_UNTRACED int fz_is_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

uint64_t fz_next_seed(struct fz_table *t, unsigned i) {
  return (++t->generation << 8 | i) * 0xd6e8feb86659fd93ull;
}

FZ_UNTRACED int fz_overlap(const struct fz_table *t, const void *p, size_t n, int except) {
  uintptr_t a = (uintptr_t)p, b = a + (n ? n : 1);
  for (int i = 0; i < FZ_SLOTS; i++) {
    const struct fz_slot *s = &t->s[i];
    if (!s->p || i == except) continue;
    uintptr_t c = (uintptr_t)s->p, d = c + (s->n ? s->n : 1);
    if (a < d && c < b) return i;
  }
  return -1;
}

int fz_report_fd = 2;
void (*fz_fail_hook)(void);

void fz_fail(const char *what, const void *p, size_t n) {
  /* snprintf, not the allocator's state: it may be what broke. */
  char buf[256];
  int len = snprintf(buf, sizeof buf, "hakmem fuzz: %s (block %p, %zu bytes)\n", what,
                     p, n);
  if (len > 0) {
    ssize_t ignored = write(fz_report_fd, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf);
    (void)ignored;
  }
  if (fz_fail_hook) fz_fail_hook();
  abort();
}
