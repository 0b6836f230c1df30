/* One heap misuse per process: `cases <case> <size>` makes the mistake
 * named by <case> with a block of <size> bytes and then exits 0, printing
 * "survived <case> <size>".  An allocator that detects the mistake ends the
 * process before that (hakmem: a "hakmem: ..." report, then abort).
 *
 * The driver is plain C11 and links to whatever allocator provides malloc:
 * a hakmem variant linked in, or the system allocator with hakmem (or
 * nothing) preloaded.  The runner (run_cases.py) decides from the exit
 * status and stderr whether each mistake was detected; a legitimate case
 * ("legit") checks that correct use is never reported.
 *
 * Exit statuses: 0 survived, 2 usage, 3 the case could not be set up as
 * described (e.g. a block was not reused when the case needs it), 4 a
 * legitimate operation failed or returned wrong data. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* C23 sized free and the C++ operators by their Itanium-ABI names: hakmem
 * defines them; with the system allocator they come from the C++ runtime
 * (libstdc++), which the driver links (see BUILD.bazel). */
void free_sized(void *p, size_t n) __attribute__((weak));
void *_Znwm(size_t n);
void _ZdlPvm(void *p, size_t n);

/* Hides a pointer's origin from the compiler, so that it neither warns
 * about nor optimises away the misuse the case makes on purpose. */
static void *launder(void *p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

/* The same for a size: impossible sizes must reach malloc at run time. */
static size_t opaque(size_t n) {
  __asm__ volatile("" : "+r"(n));
  return n;
}

static void fail(const char *what, size_t n) {
  fprintf(stderr, "cases: %s failed (size %zu)\n", what, n);
  exit(4);
}

static char *must_malloc(size_t n) {
  char *p = malloc(n);
  if (!p) fail("malloc", n);
  memset(p, 0x5A, n);
  return p;
}

/* A size in a different tier from n, so blocks of it never reuse n's. */
static size_t other_tier(size_t n, unsigned i) {
  static const size_t tiny[] = {40, 72, 200}, mid[] = {3000, 9000, 30000},
                      large[] = {300000, 600000, 1200000};
  if (n > 65536) return i % 2 ? tiny[i % 3] : mid[i % 3];
  if (n > 1024) return i % 2 ? tiny[i % 3] : large[i % 3];
  return i % 2 ? mid[i % 3] : large[i % 3];
}

static void free_twice(void *p) {
  void *again = launder(p);
  free(p);
  free(again);
}

/* ---- correct use: must never be reported ------------------------------ */

static void *thread_frees(void *p) {
  free(p);
  return NULL;
}

static void legit(size_t n) {
  char *p = must_malloc(n);
  if (p[0] != 0x5A || p[n - 1] != 0x5A) fail("read back", n);
  char *q = realloc(p, n * 2);
  if (!q || q[n - 1] != 0x5A) fail("realloc grow", n);
  q = realloc(q, n / 2);
  if (!q || q[n / 2 - 1] != 0x5A) fail("realloc shrink", n);
  if (free_sized) free_sized(q, n / 2); /* realloc's size, as C23 asks */
  else free(q);
  unsigned char *z = calloc(n, 1);
  if (!z) fail("calloc", n);
  for (size_t i = 0; i < n; i++)
    if (z[i]) fail("calloc zeroes", n);
  free(z);
  char *o = _Znwm(n);
  memset(o, 1, n);
  _ZdlPvm(o, n);
  /* Zero-sized and over-aligned blocks, resized. */
  char *e = malloc(0);
  e = realloc(e, n);
  if (!e || malloc_usable_size(e) < n) fail("realloc of malloc(0)", n);
  memset(e, 2, n);
  free(e);
  void *a = NULL;
  if (posix_memalign(&a, 256, n) != 0 || (uintptr_t)a % 256) fail("posix_memalign", n);
  memset(a, 3, n);
  a = realloc(a, n + n / 2);
  if (!a || ((char *)a)[n - 1] != 3) fail("realloc of an aligned block", n);
  free(a);
  /* A block freed by another thread than the one that allocated it. */
  pthread_t t;
  p = must_malloc(n);
  if (pthread_create(&t, NULL, thread_frees, p) != 0 || pthread_join(t, NULL) != 0)
    fail("thread", n);
  /* Churn in all tiers, every block written in full. */
  void *held[64] = {0};
  for (unsigned i = 0; i < 2000; i++) {
    unsigned k = i * 7 % 64;
    free(held[k]);
    size_t m = i % 3 ? n : other_tier(n, i);
    held[k] = must_malloc(m);
  }
  for (unsigned k = 0; k < 64; k++) free(held[k]);
}

/* ---- double free -------------------------------------------------------- */

static void double_free(size_t n) { free_twice(must_malloc(n)); }

static void double_free_after_1000_ops(size_t n) {
  char *p = must_malloc(n);
  void *again = launder(p);
  free(p);
  /* Other tiers only: a same-sized malloc could hand p out again (that is
   * the "reused" case). */
  void *held[16] = {0};
  for (unsigned i = 0; i < 1000; i++) {
    unsigned k = i % 16;
    if (held[k]) {
      free(held[k]);
      held[k] = NULL;
    } else {
      held[k] = must_malloc(other_tier(n, i));
    }
  }
  for (unsigned k = 0; k < 16; k++) free(held[k]);
  free(again);
}

static void double_free_interleaved(size_t n) {
  char *p = must_malloc(n), *q = must_malloc(n);
  void *again = launder(p);
  free(p);
  free(q);
  free(again);
}

/* p is freed, a new malloc of the same size returns the same address, and
 * p is freed again: that frees the new owner's live block.  No allocator
 * can tell this from a correct free of q; the case checks the reuse really
 * happened, so the table can say so honestly. */
static void double_free_reused(size_t n) {
  char *p = must_malloc(n);
  void *again = launder(p);
  free(p);
  char *q = must_malloc(n);
  if ((void *)q != again) {
    fprintf(stderr, "cases: the block was not reused (p=%p q=%p)\n", again, (void *)q);
    exit(3);
  }
  free(again);
}

static void double_free_other_thread(size_t n) {
  char *p = must_malloc(n);
  void *again = launder(p);
  free(p);
  pthread_t t;
  if (pthread_create(&t, NULL, thread_frees, again) != 0) fail("thread", n);
  pthread_join(t, NULL);
}

/* ---- invalid free ------------------------------------------------------ */

static char global_buffer[256 * 1024] __attribute__((aligned(64)));

static void free_global(size_t n) {
  (void)n;
  free(launder(global_buffer + 64));
}

static void free_stack(size_t n) {
  char *buf = __builtin_alloca(n);
  memset(buf, 1, n);
  free(launder(buf));
}

static void free_offset(size_t n, size_t offset) {
  char *p = must_malloc(n);
  free(launder(p + offset));
}

static void free_plus_1(size_t n) { free_offset(n, 1); }
static void free_plus_8(size_t n) { free_offset(n, 8); }
static void free_plus_4k(size_t n) { free_offset(n, 4096); }
static void free_plus_1g(size_t n) { free_offset(n, (size_t)1 << 30); }

/* ---- overflow and underflow, then free --------------------------------- */

/* Flips every bit of the bytes it hits: a constant could happen to equal
 * the canary bytes there (one time in 256 per byte) and change nothing. */
static void overwrite_then_free(size_t n, long from, size_t len) {
  char *p = must_malloc(n);
  char *w = launder(p);
  for (size_t i = 0; i < len; i++) w[from + (long)i] = (char)~w[from + (long)i];
  free(p);
}

static void overflow_1(size_t n) { overwrite_then_free(n, (long)n, 1); }
static void overflow_32(size_t n) { overwrite_then_free(n, (long)n, 32); }
static void underflow_1(size_t n) { overwrite_then_free(n, -1, 1); }
static void underflow_32(size_t n) { overwrite_then_free(n, -32, 32); }

/* ---- sized free with the wrong size ------------------------------------- */

static void free_sized_bigger(size_t n) {
  if (!free_sized) exit(3);
  free_sized(must_malloc(n), 2 * n + 64);
}

static void free_sized_smaller(size_t n) {
  if (!free_sized) exit(3);
  free_sized(must_malloc(n), n / 2);
}

static void sized_delete_bigger(size_t n) {
  char *o = _Znwm(n);
  _ZdlPvm(o, 2 * n + 64);
}

static void sized_delete_smaller(size_t n) {
  char *o = _Znwm(n);
  _ZdlPvm(o, n / 2);
}

/* ---- impossible sizes: NULL and ENOMEM, nothing else ------------------- */

static void expect_enomem(void *p, const char *what, size_t n) {
  if (p) fail(what, n);
  if (errno != ENOMEM) fail("errno == ENOMEM", n);
  errno = 0;
}

static void malloc_huge(size_t n) {
  errno = 0;
  expect_enomem(malloc(opaque(SIZE_MAX - n)), "malloc(SIZE_MAX - n) == NULL", n);
  expect_enomem(malloc(opaque((size_t)PTRDIFF_MAX + 1)), "malloc(PTRDIFF_MAX + 1) == NULL", n);
  expect_enomem(malloc(opaque((size_t)1 << 62)), "malloc(2^62) == NULL", n);
}

static void calloc_overflow(size_t n) {
  errno = 0;
  expect_enomem(calloc(n, opaque(SIZE_MAX / n + 1)), "calloc(n, SIZE_MAX / n + 1) == NULL", n);
  expect_enomem(calloc(opaque(SIZE_MAX / 2), n), "calloc(SIZE_MAX / 2, n) == NULL", n);
}

static void realloc_huge(size_t n) {
  char *p = must_malloc(n);
  errno = 0;
  expect_enomem(realloc(p, opaque(SIZE_MAX - n)), "realloc(p, SIZE_MAX - n) == NULL", n);
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0x5A) fail("block intact after a failed realloc", n);
  free(p);
}

/* ---- the table --------------------------------------------------------- */

static const struct {
  const char *name;
  void (*run)(size_t n);
} cases[] = {
    {"legit", legit},
    {"double_free", double_free},
    {"double_free_after_1000_ops", double_free_after_1000_ops},
    {"double_free_interleaved", double_free_interleaved},
    {"double_free_reused", double_free_reused},
    {"double_free_other_thread", double_free_other_thread},
    {"free_global", free_global},
    {"free_stack", free_stack},
    {"free_plus_1", free_plus_1},
    {"free_plus_8", free_plus_8},
    {"free_plus_4k", free_plus_4k},
    {"free_plus_1g", free_plus_1g},
    {"overflow_1", overflow_1},
    {"overflow_32", overflow_32},
    {"underflow_1", underflow_1},
    {"underflow_32", underflow_32},
    {"free_sized_bigger", free_sized_bigger},
    {"free_sized_smaller", free_sized_smaller},
    {"sized_delete_bigger", sized_delete_bigger},
    {"sized_delete_smaller", sized_delete_smaller},
    {"malloc_huge", malloc_huge},
    {"calloc_overflow", calloc_overflow},
    {"realloc_huge", realloc_huge},
};

int main(int argc, char **argv) {
  size_t ncases = sizeof cases / sizeof cases[0];
  if (argc == 2 && !strcmp(argv[1], "--list")) {
    for (size_t i = 0; i < ncases; i++) puts(cases[i].name);
    return 0;
  }
  char *end = NULL;
  unsigned long long n = argc == 3 ? strtoull(argv[2], &end, 10) : 0;
  if (argc != 3 || !end || *end || n < 16 || n > 256 * 1024) {
    fprintf(stderr, "usage: cases <case> <size 16..262144> | cases --list\n");
    return 2;
  }
  for (size_t i = 0; i < ncases; i++) {
    if (strcmp(argv[1], cases[i].name)) continue;
    cases[i].run((size_t)n);
    printf("survived %s %llu\n", argv[1], n);
    return 0;
  }
  fprintf(stderr, "cases: unknown case %s (--list shows them)\n", argv[1]);
  return 2;
}
