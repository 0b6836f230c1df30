/* The fuzz harnesses' shared parts: an input reader and the shadow model of
 * live blocks.
 *
 * Every live block is filled with a pattern derived from a per-block seed
 * (slot and generation), so a block whose bytes change behind the
 * program's back - a free-list link written into a live block, two blocks
 * handed out over each other, a realloc that lost its prefix - fails the
 * next content check.  Blocks up to 128 KiB are filled and checked whole;
 * beyond that one word in 64, so multi-MiB blocks stay cheap. */
#ifndef HAKMEM_FUZZ_SHADOW_H
#define HAKMEM_FUZZ_SHADOW_H

#include <stddef.h>
#include <stdint.h>

/* ---- input --------------------------------------------------------------
 * Bytes past the end read as 0, so every input decodes to some program. */
struct fz_in {
  const uint8_t *d;
  size_t n, i;
};

static inline int fz_more(const struct fz_in *in) { return in->i < in->n; }
static inline unsigned fz_u8(struct fz_in *in) { return in->i < in->n ? in->d[in->i++] : 0; }
static inline unsigned fz_u16(struct fz_in *in) {
  unsigned lo = fz_u8(in);
  return lo | fz_u8(in) << 8;
}

/* A request size: tiny (0..1 KiB), mid (1 KiB..64 KiB), large (64 KiB to
 * 4 MiB) or one of the boundary sizes where classes and tiers meet,
 * picked by the first byte. */
size_t fz_size(struct fz_in *in);

/* ---- patterns ----------------------------------------------------------- */

/* Writes the pattern of `seed` over bytes [from, to) of block p. */
void fz_fill(unsigned char *p, size_t from, size_t to, uint64_t seed);
/* Offset of the first byte of [0, n) that does not hold the pattern, or
 * (size_t)-1 if all do. */
size_t fz_find_bad(const unsigned char *p, size_t n, uint64_t seed);
/* 1 if bytes [0, n) are all zero. */
int fz_is_zero(const unsigned char *p, size_t n);

/* ---- the slot table ----------------------------------------------------- */

#define FZ_SLOTS 64

struct fz_slot {
  unsigned char *p; /* NULL: slot empty */
  size_t n;         /* bytes holding the pattern */
  size_t align;     /* alignment asked for (16 for plain malloc) */
  uint64_t seed;
};

struct fz_table {
  struct fz_slot s[FZ_SLOTS];
  uint64_t generation;
};

/* A fresh seed for slot i, never used before in this process. */
uint64_t fz_next_seed(struct fz_table *t, unsigned i);
/* Index of a live slot (other than `except`) whose block overlaps
 * [p, p + n), or -1. */
int fz_overlap(const struct fz_table *t, const void *p, size_t n, int except);

/* Reports a failed expectation on fz_report_fd (default 2) and aborts, so
 * libFuzzer keeps the input. */
extern int fz_report_fd;
/* Called by fz_fail before it aborts (the corruption harness prints the
 * input before the failing one: hakmem's state outlives an input). */
extern void (*fz_fail_hook)(void);
void fz_fail(const char *what, const void *p, size_t n) __attribute__((noreturn));

#endif
