#include "size_class.h"

#include "redzone.h"

/* Class of every request up to 1 KiB, indexed by (n + 15) / 16.  Above 128
 * bytes it equals the formula in hak_class_of; api_test checks every size. */
const uint8_t hak_small_class[HAK_TINY_MAX / 16 + 1] = {
    0,  0,  1,  2,  3,  4,  5,  6,  7,                      /* 0..128 */
    8,  8,  9,  9,  10, 10, 11, 11,                         /* ..256 */
    12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15, /* ..512 */
    16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17,
    18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19, /* ..1024 */
};

const uint32_t hak_class_bytes[HAK_NUM_CLASSES] = {
    16,    32,    48,    64,    80,    96,    112,   128,   160,   192,   224,
    256,   320,   384,   448,   512,   640,   768,   896,   1024,  1280,  1536,
    1792,  2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,  10240,
    12288, 14336, 16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536,
};

unsigned hak_class_span_slabs(unsigned cls) {
  size_t want = 8 * (size_t)hak_class_bytes[cls];
  unsigned slabs = 1;
  while (slabs * HAK_SLAB_SIZE < want && slabs < HAK_MAX_SPAN_SLABS) slabs *= 2;
  return slabs;
}

/* About 128 KiB of cached blocks per class, 24 to 256 blocks: a thread
 * caches at most ~11.4 MiB even with every class full.  The floor is for
 * the classes above 5 KiB: with 8 of them cached, a program that keeps a
 * few hundred mid-size blocks live across the classes flushed and
 * refilled every few frees and got back blocks long out of the cache
 * (mid_mt: +11% at 2 threads with 24, sharing a core with the old build;
 * its peak RSS fell, 19.4 to 18.0 MiB). */
uint32_t hak_class_default_tls_cap(unsigned cls) {
  uint32_t cap = 131072u / hak_class_bytes[cls];
  if (cap > 256) cap = 256;
  if (cap < 24) cap = 24;
  return cap;
}

size_t hak_class_size(int cls) {
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return 0;
  return hak_class_bytes[cls];
}

int hak_size_class(size_t n) {
  /* The class malloc(n) takes: with debug redzones, n plus their bytes. */
  if (hak_rz_active()) {
    if (n > HAK_MID_MAX - HAK_RZ_HEAD - HAK_RZ_TAIL) return -1;
    n += HAK_RZ_HEAD + HAK_RZ_TAIL;
  }
  if (n > HAK_MID_MAX) return -1;
  return (int)hak_class_of(n);
}
