/* Debug-variant redzones (redzone.h).  Nothing here is compiled into the
 * release variant. */
#include "redzone.h"

#if HAK_REDZONES

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "init.h"
#include "integrity.h"
#include "large.h"
#include "registry.h"

#define TAIL_BYTE 0xFB

/* Keys of the header words: both depend on the block address and the
 * per-process secret, so a header copied from elsewhere or written by a
 * stray store does not check out. */
static uintptr_t size_key(const void *b) {
  return ((uintptr_t)b ^ hak_tag_secret) * 0x9e3779b97f4a7c15ull;
}

/* ~x never equals the free tag x + (cls << 56): that would need
 * 2x = -1 - (cls << 56), whose right side is odd.  A free block's second
 * word is that tag sealed with its link (types.h), so it matches the
 * canary only for one link value, never a block address: a freed block
 * does not look redzoned, and a live one looks freed only if its header
 * words happen to seal (one chance in 2^64). */
static uintptr_t head_canary(const void *b) { return ~((uintptr_t)b ^ hak_tag_secret); }

static size_t tail_len(size_t room) {
  return room < HAK_RZ_CHECKED_TAIL ? room : HAK_RZ_CHECKED_TAIL;
}

/* Writes header and tail into block b of bsize bytes for an n-byte
 * request; returns the program's pointer.  The redzones are no access to
 * the program under a memory checker (tool_hooks.h): opened for the
 * writes, closed after. */
static void *wrap(uintptr_t *b, size_t bsize, size_t n) {
  hak_tool_open(b, HAK_RZ_HEAD);
  b[0] = n ^ size_key(b);
  b[1] = head_canary(b);
  hak_tool_close(b, HAK_RZ_HEAD);
  char *p = (char *)b + HAK_RZ_HEAD;
  size_t t = tail_len(bsize - HAK_RZ_HEAD - n);
  hak_tool_open(p + n, t);
  memset(p + n, TAIL_BYTE, t);
  hak_tool_close(p + n, t);
  return p;
}

void *hak_rz_alloc(size_t n, int zero) {
  hak_ensure_init(); /* the canaries use the secret init chooses */
  size_t total;
  if (__builtin_add_overflow(n, HAK_RZ_HEAD + HAK_RZ_TAIL, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  uintptr_t *b;
  size_t bsize;
  if (total <= HAK_MID_MAX) {
    unsigned cls = hak_class_of(total);
    b = hak_alloc_class(cls);
    if (!b) return NULL;
    bsize = hak_class_bytes[cls];
    if (zero) {
      /* A block off a free list is no access to a memory checker until
       * the API hands it out (tool_hooks.h). */
      hak_tool_open((char *)b + HAK_RZ_HEAD, n);
      memset((char *)b + HAK_RZ_HEAD, 0, n);
      hak_tool_close((char *)b + HAK_RZ_HEAD, n);
    }
  } else {
    b = hak_large_alloc(total, 16, zero);
    if (!b) return NULL;
    bsize = hak_large_usable(b);
  }
  return wrap(b, bsize, n);
}

/* Where a redzoned block for program pointer p would be, if there is one:
 * the block start (and its size and class) or NULL.  Only addresses inside
 * a carved block of a live span, or a live large block, are returned. */
static uintptr_t *find_block(const void *p, size_t *bsize, unsigned *cls) {
  if (hak_registry_contains(p)) {
    const struct hak_slab *s = hak_slab_of(p);
    if (s->magic != HAK_SLAB_MAGIC || s->cls >= HAK_NUM_CLASSES) return NULL;
    /* A pointer on a block boundary is a plain block (only 16-byte blocks
     * could also be 16 bytes past one, and redzoned blocks are never
     * that small). */
    if (s->start + (size_t)hak_block_index(s, p) * s->block_size == (const char *)p ||
        (const char *)p < s->start + HAK_RZ_HEAD)
      return NULL;
    const char *b = (const char *)p - HAK_RZ_HEAD;
    uint32_t idx = hak_block_index(s, b);
    if (s->start + (size_t)idx * s->block_size != b ||
        idx >= atomic_load_explicit(&s->carved, memory_order_relaxed))
      return NULL;
    *bsize = s->block_size;
    *cls = s->cls;
    return (uintptr_t *)b;
  }
  if (hak_large_usable(p)) return NULL; /* a plain (aligned) large block */
  uintptr_t *b = (uintptr_t *)((char *)p - HAK_RZ_HEAD);
  *bsize = hak_large_usable(b);
  *cls = HAK_CLASS_NONE;
  return *bsize ? b : NULL;
}

/* HAK_FAULT_UNDERFLOW / HAK_FAULT_OVERFLOW if a redzone was overwritten,
 * else 0 and the requested size in *n. */
static int check(const uintptr_t *b, size_t bsize, size_t *n) {
  hak_tool_open(b, HAK_RZ_HEAD);
  uintptr_t canary = b[1], size_word = b[0];
  hak_tool_close(b, HAK_RZ_HEAD);
  if (canary != head_canary(b)) return HAK_FAULT_UNDERFLOW;
  size_t len = size_word ^ size_key(b);
  if (len > bsize - HAK_RZ_HEAD - HAK_RZ_TAIL) return HAK_FAULT_UNDERFLOW;
  const unsigned char *tail = (const unsigned char *)b + HAK_RZ_HEAD + len;
  size_t t = tail_len(bsize - HAK_RZ_HEAD - len);
  int fault = 0;
  hak_tool_open(tail, t);
  for (size_t i = 0; i < t && !fault; i++)
    if (tail[i] != TAIL_BYTE) fault = HAK_FAULT_OVERFLOW;
  hak_tool_close(tail, t);
  if (fault) return fault;
  *n = len;
  return 0;
}

void *hak_rz_unwrap(void *p) {
  size_t bsize, n;
  unsigned cls;
  uintptr_t *b = find_block(p, &bsize, &cls);
  if (!b) {
    /* A redzoned large block whose large header is damaged, or that was
     * freed already: large.c reports it (naming the block start, 16 bytes
     * before p) as the underflow or double free it is. */
    char *block = (char *)p - HAK_RZ_HEAD;
    if (!hak_registry_contains(p) && !hak_large_usable(p) && hak_large_known(block))
      return block;
    return p;
  }
  if (cls < HAK_NUM_CLASSES && hak_node_sealed(b, hak_free_tag(b, cls))) {
    hak_fault(HAK_FAULT_DOUBLE_FREE, p, (int)cls, HAK_NODE_OK);
    return NULL;
  }
  int fault = check(b, bsize, &n);
  if (fault) {
    hak_fault((enum hak_fault_kind)fault, p, -1, HAK_NODE_OK);
    return NULL;
  }
  return b;
}

int hak_rz_size(const void *p, size_t *n) {
  size_t bsize;
  unsigned cls;
  const uintptr_t *b = find_block(p, &bsize, &cls);
  return b && check(b, bsize, n) == 0;
}

void *hak_rz_resize_in_place(void *p, size_t n) {
  size_t bsize, old;
  unsigned cls;
  uintptr_t *b = find_block(p, &bsize, &cls);
  if (!b || check(b, bsize, &old) != 0) return NULL;
  size_t total;
  if (__builtin_add_overflow(n, HAK_RZ_HEAD + HAK_RZ_TAIL, &total)) return NULL;
  if (cls < HAK_NUM_CLASSES) {
    /* Stay put while the block fits and is not more than twice too big,
     * as release does. */
    if (total > HAK_MID_MAX || total > bsize || hak_class_of(total) + 4 < cls) return NULL;
    return wrap(b, bsize, n);
  }
  if (total <= HAK_MID_MAX) return NULL;
  uintptr_t *q = hak_large_realloc(b, total);
  return q ? wrap(q, hak_large_usable(q), n) : NULL;
}

#endif /* HAK_REDZONES */
