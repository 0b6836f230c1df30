/* Operation-sequence fuzzer: the input is a program of malloc, calloc,
 * realloc, aligned allocations, free, malloc_usable_size and a few hakmem
 * calls over a table of 64 slots, run against hakmem (linked into this
 * binary, so it also serves libFuzzer's own allocations).  A shadow model
 * (shadow.h) checks after every step what the C library promises: blocks
 * are aligned, never overlap, keep their contents (realloc its prefix),
 * calloc's are zero, malloc_usable_size's extra bytes are really usable.
 * hakmem runs in its default abort mode: any fault it reports is a crash.
 *
 * Each step is one opcode byte (low nibble: the operation, high nibble
 * free for the operation), then its operands. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"
#include "hakmem_testing.h"
#include "shadow.h"

static struct fz_table table;
/* HAKMEM_FUZZ_TRACE=1: print every step, to read what a crashing input does. */
static int trace;

#define TRACE(...) \
  do { \
    if (trace) fprintf(stderr, __VA_ARGS__); \
  } while (0)

static void check_contents(const struct fz_slot *s) {
  if (fz_find_bad(s->p, s->n, s->seed) != (size_t)-1)
    fz_fail("live block's contents changed", s->p, s->n);
}

static void drop(unsigned i) {
  struct fz_slot *s = &table.s[i];
  if (!s->p) return;
  check_contents(s);
  free(s->p);
  s->p = NULL;
}

/* Checks a block the allocator just handed out for slot i and patterns its
 * first n bytes; `zeroed` for calloc. */
static void adopt(unsigned i, void *p, size_t n, size_t align, int zeroed) {
  if (!p) fz_fail("allocation failed", p, n);
  size_t want = align > 16 ? align : (n >= 16 ? 16 : 8);
  if ((uintptr_t)p % want) fz_fail("misaligned block", p, n);
  size_t usable = malloc_usable_size(p);
  if (usable < n) fz_fail("usable size below the request", p, n);
  if (fz_overlap(&table, p, usable, (int)i) >= 0) fz_fail("blocks overlap", p, usable);
  if (zeroed && !fz_is_zero(p, n)) fz_fail("calloc block not zeroed", p, n);
  struct fz_slot *s = &table.s[i];
  TRACE("  slot %u <- %p, %zu bytes (align %zu, usable %zu)\n", i, p, n, align, usable);
  s->p = p;
  s->n = n;
  s->align = align;
  s->seed = fz_next_seed(&table, i);
  fz_fill(s->p, 0, n, s->seed);
}

static void op_realloc(unsigned i, size_t n, int as_array) {
  struct fz_slot *s = &table.s[i];
  if (s->p) check_contents(s);
  void *q = as_array ? reallocarray(s->p, n ? 1 : 0, n) : realloc(s->p, n);
  if (s->p && n == 0) { /* glibc's realloc(p, 0): frees, returns NULL */
    if (q) fz_fail("realloc(p, 0) returned a block", q, 0);
    s->p = NULL;
    return;
  }
  if (!s->p) {
    adopt(i, q, n, 16, 0);
    return;
  }
  if (!q) fz_fail("realloc failed", s->p, n);
  size_t keep = s->n < n ? s->n : n;
  unsigned char *old = s->p;
  TRACE("  realloc(slot %u: %p, %zu bytes -> %zu) = %p\n", i, old, s->n, n, q);
  s->p = NULL; /* the old block is gone, and q may overlap where it was */
  if ((uintptr_t)q % 16) fz_fail("realloc: misaligned block", q, n);
  if (malloc_usable_size(q) < n) fz_fail("realloc: usable size below the request", q, n);
  if (fz_overlap(&table, q, n, -1) >= 0) fz_fail("realloc: blocks overlap", q, n);
  if (fz_find_bad(q, keep, s->seed) != (size_t)-1)
    fz_fail(q == old ? "realloc in place lost contents" : "realloc lost the prefix", q,
            keep);
  /* Same seed: the pattern is positional, so the prefix stays valid. */
  fz_fill(q, keep, n, s->seed);
  s->p = q;
  s->n = n;
}

static void op_aligned(unsigned i, unsigned how, unsigned lg, size_t n) {
  size_t align = (size_t)1 << lg; /* 1 B .. 1 MiB */
  void *p = NULL;
  switch (how % 3) {
    case 0: {
      int rc = posix_memalign(&p, align, n);
      if (align < sizeof(void *)) {
        if (rc != EINVAL) fz_fail("posix_memalign accepted a bad alignment", p, n);
        return;
      }
      if (rc) fz_fail("posix_memalign failed", NULL, n);
      break;
    }
    case 1:
      p = aligned_alloc(align, n);
      break;
    default:
      p = memalign(align, n);
      break;
  }
  adopt(i, p, n, align, 0);
}

/* malloc_usable_size: every byte it reports is the block's to use. */
static void op_usable(unsigned i) {
  struct fz_slot *s = &table.s[i];
  if (!s->p) {
    if (malloc_usable_size(NULL) != 0) fz_fail("malloc_usable_size(NULL) != 0", NULL, 0);
    return;
  }
  size_t usable = malloc_usable_size(s->p);
  TRACE("  usable(slot %u: %p, %zu bytes) = %zu\n", i, s->p, s->n, usable);
  if (usable < s->n) fz_fail("usable size shrank", s->p, usable);
  /* A realloc that shrinks keeps the block while a quarter of it is used
   * (mid classes: half), and a large block's span holds its alignment
   * padding too: up to four times both is expected. */
  if (usable > 4 * (s->n + s->align) + (256u << 10))
    fz_fail("usable size implausibly large", s->p, usable);
  fz_fill(s->p, s->n, usable, s->seed);
  s->n = usable;
}

/* ---- remote frees: one helper thread frees blocks handed to it, so the
 * block goes through its span's remote queue and its owner's drain. ---- */

static pthread_mutex_t remote_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t remote_cv = PTHREAD_COND_INITIALIZER;
static void *remote_block;
static int remote_started;

static void *remote_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&remote_lock);
  for (;;) {
    while (!remote_block) pthread_cond_wait(&remote_cv, &remote_lock);
    free(remote_block);
    remote_block = NULL;
    pthread_cond_broadcast(&remote_cv);
  }
  return NULL;
}

static void op_remote_free(unsigned i) {
  struct fz_slot *s = &table.s[i];
  if (!s->p) return;
  check_contents(s);
  pthread_mutex_lock(&remote_lock);
  if (!remote_started) {
    pthread_t t;
    if (pthread_create(&t, NULL, remote_main, NULL)) fz_fail("pthread_create", NULL, 0);
    pthread_detach(t);
    remote_started = 1;
  }
  remote_block = s->p;
  pthread_cond_broadcast(&remote_cv);
  while (remote_block) pthread_cond_wait(&remote_cv, &remote_lock);
  pthread_mutex_unlock(&remote_lock);
  s->p = NULL;
}

static void step(struct fz_in *in) {
  unsigned op = fz_u8(in);
  unsigned i = fz_u8(in) % FZ_SLOTS;
  TRACE("op 0x%02x slot %u\n", op, i);
  switch (op & 15) {
    case 0:
    case 1:
    case 2: {
      drop(i);
      size_t n = fz_size(in);
      adopt(i, malloc(n), n, 16, 0);
      break;
    }
    case 3: {
      drop(i);
      size_t n = fz_size(in), count = 1 + (op >> 4);
      size_t each = n / count;
      adopt(i, calloc(count, each), count * each, 16, 1);
      break;
    }
    case 4:
    case 5:
      op_realloc(i, fz_size(in), (op >> 4) & 1);
      break;
    case 6: {
      drop(i);
      unsigned lg = fz_u8(in) % 21;
      op_aligned(i, op >> 4, lg, fz_size(in));
      break;
    }
    case 7:
    case 8:
    case 9:
      drop(i);
      break;
    case 10:
      op_usable(i);
      break;
    case 11:
      if (table.s[i].p) check_contents(&table.s[i]);
      break;
    case 12:
      op_remote_free(i);
      break;
    case 13: /* the hakmem calls tests and ACE make */
      switch (op >> 4) {
        case 0:
          if (hak_tls_sll_verify()) fz_fail("hak_tls_sll_verify found bad nodes", NULL, 0);
          break;
        case 1:
          hak_testing_tls_flush();
          break;
        case 2:
          hak_scavenge(0);
          break;
        default: {
          int cls = (int)(op >> 4) * 3 % HAK_NUM_CLASSES;
          hkm_tiny_set_tls_capacity(cls, 1u + fz_u8(in));
          break;
        }
      }
      break;
    case 14: /* the C library's edge cases */
      free(NULL);
      drop(i);
      op_realloc(i, fz_size(in), 0); /* realloc(NULL, n) */
      break;
    default: /* malloc then free at once: the tightest reuse */
      free(malloc(fz_size(in)));
      break;
  }
}

static uint32_t default_cap[HAK_NUM_CLASSES];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  trace = getenv("HAKMEM_FUZZ_TRACE") != NULL;
  for (int c = 0; c < HAK_NUM_CLASSES; c++) default_cap[c] = hkm_tiny_get_tls_capacity(c);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz_in in = {data, size, 0};
  while (fz_more(&in)) step(&in);
  for (unsigned i = 0; i < FZ_SLOTS; i++) drop(i);
  /* Knobs back to their defaults, so one input's settings do not change
   * what the next one does. */
  for (int c = 0; c < HAK_NUM_CLASSES; c++) hkm_tiny_set_tls_capacity(c, default_cap[c]);
  if (hak_tls_sll_verify()) fz_fail("hak_tls_sll_verify found bad nodes", NULL, 0);
  if (hak_integrity_events()) fz_fail("hakmem counted an integrity event", NULL, 0);
  return 0;
}
