/* Corruption fuzzer: a stray write into allocator metadata must be caught
 * (an integrity event, hakmem in report mode) or be harmless - never turn
 * into silent heap corruption.
 *
 * Each input (1) allocates a run of blocks of one size and frees some of
 * them, so TLS free lists and slab free lists hold nodes; (2) corrupts one
 * word the allocator trusts: the link or tag word of a freed tiny/mid
 * block, or the header in front of a live large block - a byte flipped, or
 * the word replaced by another block's address, zero or itself; (3) keeps
 * allocating, reallocating and freeing.  Until hakmem counts an integrity
 * event, every block it hands out must be aligned, inside a SuperSlab (or
 * outside all of them for large blocks), clear of every live block, and no
 * live block may change.  After the first event the input is done: hakmem
 * caught it.
 *
 * hakmem's state outlives an input, so each one ends by restoring the word
 * if its block is still free, returning every block and checking every
 * list the thread holds (hak_testing_verify_heap): damage left behind is
 * reported there, in the input that caused it, not in a later one. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hakmem.h"
#include "hakmem_testing.h"
#include "shadow.h"

static struct fz_table table;
static uint64_t events_before;
static uint32_t default_cap[HAK_NUM_CLASSES];
static int trace;

#define TRACE(...) \
  do { \
    if (trace) fprintf(stderr, __VA_ARGS__); \
  } while (0)

/* The previous input, printed when an input fails: if hakmem let damage
 * outlive its input, that one is where it came from. */
static uint8_t prev_input[4096];
static size_t prev_len;

static void print_prev_input(void) {
  dprintf(fz_report_fd, "hakmem fuzz: the input before this one (hex):\n");
  for (size_t i = 0; i < prev_len; i++) dprintf(fz_report_fd, "%02x", prev_input[i]);
  dprintf(fz_report_fd, "\n");
}

static int caught(void) { return hak_integrity_events() != events_before; }

/* Until hakmem has reported something, every live block must be intact. */
static void check_all(void) {
  if (caught()) return;
  for (int i = 0; i < FZ_SLOTS; i++) {
    const struct fz_slot *s = &table.s[i];
    if (s->p && fz_find_bad(s->p, s->n, s->seed) != (size_t)-1) {
      if (caught()) return;
      fz_fail("live block changed, nothing reported", s->p, s->n);
    }
  }
}

static void release(unsigned i) {
  struct fz_slot *s = &table.s[i];
  if (!s->p) return;
  free(s->p);
  s->p = NULL;
}

/* A block hakmem handed out (nothing reported yet) must be usable. */
static void adopt(unsigned i, void *p, size_t n) {
  if (caught()) {
    if (p) free(p);
    return;
  }
  if (!p) fz_fail("allocation failed, nothing reported", p, n);
  if ((uintptr_t)p % 16) fz_fail("misaligned block", p, n);
  int in_segment = hak_super_lookup(p) != NULL;
  if (in_segment != (n <= HAK_MID_MAX)) fz_fail("block in the wrong tier's memory", p, n);
  if (in_segment && hak_super_lookup((char *)p + n - 1) != hak_super_lookup(p))
    fz_fail("block runs past its SuperSlab", p, n);
  int other = fz_overlap(&table, p, n, -1);
  if (other >= 0) fz_fail("block overlaps a live block", p, n);
  struct fz_slot *s = &table.s[i];
  s->p = p;
  s->n = n;
  s->align = 16;
  s->seed = fz_next_seed(&table, i);
  fz_fill(s->p, 0, n, s->seed);
  TRACE("  slot %u <- %p (%zu)\n", i, p, n);
}

/* Block sizes of one input: mostly tiny, where the lists are busiest. */
static size_t pick_size(struct fz_in *in) {
  unsigned sel = fz_u8(in);
  unsigned r = fz_u16(in);
  if (sel % 8 < 5) return 16 + r % (HAK_TINY_MAX - 15);
  if (sel % 8 < 7) return HAK_TINY_MAX + 1 + r % (8192 - HAK_TINY_MAX);
  return HAK_MID_MAX + 1 + r % (256 << 10);
}

struct victim {
  unsigned char *block; /* the block whose metadata was hit */
  uintptr_t *word;      /* the word changed */
  uintptr_t was, now;
  int slot;             /* its slot while live (large), else -1 */
  /* Large: the span as the header had it (large.c's layout: base, len,
   * check in front of the block).  A block whose header hakmem finds
   * overwritten is dropped from its table, span and all; the harness then
   * returns the span's pages (the span may lie in a page arena, so it is
   * not unmapped), or every such input would leak them. */
  void *span_base;
  size_t span_len;
  int dropped;
};

/* Value for a corrupted word: another block's address give or take, zero,
 * the block itself, or a flipped byte of the old value. */
static uintptr_t corrupt_value(struct fz_in *in, uintptr_t old, unsigned char *self,
                               unsigned char **blocks, unsigned nblocks, size_t size) {
  static const intptr_t deltas[] = {0, 8, 16, -16, 32, 64, -64, 4096};
  unsigned mode = fz_u8(in);
  switch (mode % 5) {
    case 0: {
      unsigned byte = fz_u8(in) % sizeof(uintptr_t);
      unsigned flip = fz_u8(in);
      return old ^ ((uintptr_t)(flip ? flip : 1) << (8 * byte));
    }
    case 1: {
      unsigned char *other = blocks[fz_u8(in) % nblocks];
      intptr_t d = deltas[(mode >> 3) % 8];
      if (mode & 0x80) d = (intptr_t)size; /* the next block over */
      return (uintptr_t)other + (uintptr_t)d;
    }
    case 2:
      return 0;
    case 3:
      return (uintptr_t)self;
    default:
      return old + (uintptr_t)(intptr_t)(int8_t)fz_u8(in) * 16;
  }
}

/* The blocks of the setup phase: all[j] was slot j's block; freed[j] set
 * once the setup freed it. */
struct setup {
  size_t size;
  unsigned n;
  unsigned char *all[32];
  int freed[32];
};

static struct victim corrupt(struct fz_in *in, const struct setup *su) {
  struct victim v = {.slot = -1};
  int large = su->size > HAK_MID_MAX;
  unsigned cand[32], ncand = 0;
  /* Large: the header of a live block; tiny/mid: the node of a freed one. */
  for (unsigned j = 0; j < su->n; j++)
    if (su->all[j] && su->freed[j] != large) cand[ncand++] = j;
  if (!ncand) return v;
  unsigned j = cand[fz_u8(in) % ncand];
  v.block = su->all[j];
  if (large) {
    v.slot = (int)j;
    v.span_base = (void *)((uintptr_t *)v.block)[-3];
    v.span_len = (size_t)((uintptr_t *)v.block)[-2];
  }
  /* Tiny/mid: word 0 (link) or 1 (sealed tag) of the free node.  Large:
   * one of the three words in front of the block (check, len, base). */
  unsigned w = fz_u8(in);
  v.word = large ? (uintptr_t *)v.block - 1 - w % 3 : (uintptr_t *)v.block + (w & 1);
  v.was = *v.word;
  v.now = corrupt_value(in, v.was, v.block, (unsigned char **)su->all, su->n, su->size);
  *v.word = v.now;
  TRACE("corrupt %p word %d: %#lx -> %#lx\n", (void *)v.block,
        (int)(v.word - (uintptr_t *)v.block), (unsigned long)v.was, (unsigned long)v.now);
  return v;
}

/* One step after the corruption; most are allocations of the setup's size,
 * which come from the lists the corruption hit. */
static void step(struct fz_in *in, const struct setup *su, struct victim *v) {
  unsigned op = fz_u8(in);
  unsigned i = fz_u8(in) % FZ_SLOTS;
  struct fz_slot *s = &table.s[i];
  int live_victim = v->slot >= 0 && table.s[v->slot].p == v->block;
  int on_victim = live_victim && (op % 12 == 11 || s->p == v->block);
  uint64_t events = hak_integrity_events();
  TRACE("op %u slot %u\n", op % 12, i);
  switch (op % 12) {
    case 0:
    case 1:
    case 2:
    case 3:
      release(i);
      adopt(i, malloc(su->size), su->size);
      break;
    case 4: {
      release(i);
      size_t n = pick_size(in);
      adopt(i, malloc(n), n);
      break;
    }
    case 5:
    case 6:
      release(i);
      break;
    case 7: {
      if (!s->p) break;
      size_t n = pick_size(in);
      size_t keep = s->n < n ? s->n : n;
      void *q = realloc(s->p, n);
      if (caught()) {
        s->p = q; /* whatever it is, it is not checked any more */
        s->n = 0;
        break;
      }
      if (!q) fz_fail("realloc failed, nothing reported", s->p, n);
      unsigned char *old = s->p;
      s->p = NULL;
      if (fz_find_bad(q, keep, s->seed) != (size_t)-1) fz_fail("realloc lost the prefix", q, n);
      adopt(i, q, n);
      (void)old;
      break;
    }
    case 8:
      if (s->p && malloc_usable_size(s->p) < s->n && !caught())
        fz_fail("usable size below the request, nothing reported", s->p, s->n);
      break;
    case 9:
      hak_tls_sll_verify();
      break;
    case 10:
      hak_testing_tls_flush();
      break;
    default:
      /* A large victim is live: free or realloc it, header and all.  A
       * freed victim is not freed again: a double free of a block whose
       * tag or link a stray write changed is two bugs, and the second one
       * cannot be seen (its mark of being free is what the first erased). */
      if (v->slot >= 0 && table.s[v->slot].p == v->block) {
        if (op & 0x80) {
          void *q = realloc(v->block, su->size * 2);
          table.s[v->slot].p = NULL;
          if (!caught()) adopt((unsigned)v->slot, q, su->size * 2);
          else if (q) table.s[v->slot].p = q, table.s[v->slot].n = 0;
        } else {
          release((unsigned)v->slot);
        }
      } else {
        hak_tls_sll_verify();
      }
      break;
  }
  if (on_victim && hak_integrity_events() != events) v->dropped = 1;
  check_all();
}

/* Before the end: more blocks of the input's size, so a damaged list that
 * the steps did not reach hands out what it holds now, within this input. */
static void drain(const struct setup *su) {
  enum { DRAIN = 64 };
  void *got[DRAIN];
  unsigned k = 0, want = su->size > HAK_MID_MAX ? 8 : DRAIN;
  while (k < want && !caught()) {
    unsigned char *p = malloc(su->size);
    if (caught() || !p) {
      if (!p && !caught()) fz_fail("allocation failed, nothing reported", p, su->size);
      free(p);
      break;
    }
    for (unsigned j = 0; j < k; j++)
      if ((uintptr_t)p < (uintptr_t)got[j] + su->size && (uintptr_t)got[j] < (uintptr_t)p + su->size)
        fz_fail("block handed out twice, nothing reported", p, su->size);
    if (fz_overlap(&table, p, su->size, -1) >= 0) fz_fail("block overlaps a live block", p, su->size);
    memset(p, 0xa5, su->size < 64 ? su->size : 64);
    got[k++] = p;
    if (k % 16 == 0) check_all(); /* every block: too slow for mid sizes */
  }
  check_all();
  while (k) free(got[--k]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  trace = getenv("HAKMEM_FUZZ_TRACE") != NULL;
  const char *rz = getenv("HAKMEM_REDZONE");
  if (!strcmp(hak_variant(), "debug") && !(rz && !strcmp(rz, "0")))
    fz_fail("the debug variant needs HAKMEM_REDZONE=0: redzones move the free-list "
            "node 16 bytes in front of the block this harness overwrites", NULL, 0);
  /* hakmem reports every caught corruption on stderr; runs close it
   * (-close_fd_mask=2), and the harness's own verdicts go to a copy. */
  int fd = dup(2);
  if (fd >= 0) fz_report_fd = fd;
  fz_fail_hook = print_prev_input;
  hak_set_fault_action(HAK_FAULT_REPORT);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) default_cap[c] = hkm_tiny_get_tls_capacity(c);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fz_in in = {data, size, 0};
  struct setup su = {0};
  events_before = hak_integrity_events();

  /* Small TLS capacities send blocks to the slab lists sooner. */
  su.size = pick_size(&in);
  int cls = hak_size_class(su.size);
  unsigned capsel = fz_u8(&in);
  if (cls >= 0 && capsel & 1) hkm_tiny_set_tls_capacity(cls, 1u + (capsel >> 1) % 16);

  su.n = 2 + fz_u8(&in) % 31;
  for (unsigned j = 0; j < su.n; j++) {
    adopt(j, malloc(su.size), su.size);
    su.all[j] = table.s[j].p;
  }
  uint32_t mask = fz_u8(&in) | fz_u8(&in) << 8 | (uint32_t)fz_u8(&in) << 16 |
                  (uint32_t)fz_u8(&in) << 24;
  for (unsigned j = 0; j < su.n; j++) {
    if (mask >> j & 1) {
      release(j);
      su.freed[j] = 1;
    }
  }
  if (fz_u8(&in) & 1) hak_testing_tls_flush(); /* nodes onto the slab lists */

  /* An earlier input's corruption that hakmem caught may leave lists it
   * only finds now: then this input has nothing left to test. */
  struct victim v = {.slot = -1};
  if (!caught()) v = corrupt(&in, &su);
  while (fz_more(&in) && !caught()) step(&in, &su, &v);
  drain(&su);
  check_all();

  /* Undo the corruption where it is still in place (caught or not), unless
   * a live block holds that word now: a free node or a live large block's
   * header.  Lists it already damaged are what hakmem reports. */
  int mapped = v.slot < 0 || table.s[v.slot].p == v.block; /* freed large: maybe unmapped */
  if (v.word && mapped && *v.word == v.now) {
    int live_again = fz_overlap(&table, v.word, sizeof *v.word, v.slot) >= 0;
    if (!live_again) *v.word = v.was;
  }
  if (v.dropped) madvise(v.span_base, v.span_len, MADV_DONTNEED);
  for (unsigned i = 0; i < FZ_SLOTS; i++) release(i);
  /* Whatever damage is left is found here, so no input inherits another's. */
  hak_testing_tls_flush();
  /* The input's class (a node of another class fails the pop check of this
   * class's lists, so damage stays in it), or all after a fault. */
  if (cls >= 0 || caught()) hak_testing_verify_heap(caught() ? -1 : cls);
  if (cls >= 0) hkm_tiny_set_tls_capacity(cls, default_cap[cls]);
  prev_len = size < sizeof prev_input ? size : sizeof prev_input;
  memcpy(prev_input, data, prev_len);
  return 0;
}
