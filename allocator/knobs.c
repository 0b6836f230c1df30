#include "knobs.h"

#include "config.h"
#include "init.h"
#include "size_class.h"

struct hak_knobs hak_knobs;

/* HAKMEM_TLS_CAP wins; else the class default times HAKMEM_TLS_CAP_SCALE
 * percent, kept in 1..4096 (the setter's range). */
static uint32_t initial_tls_cap(unsigned c) {
  if (hak_config.tls_cap) return (uint32_t)hak_config.tls_cap;
  uint64_t cap = (uint64_t)hak_class_default_tls_cap(c) * hak_config.tls_cap_scale / 100;
  return cap < 1 ? 1 : cap > 4096 ? 4096 : (uint32_t)cap;
}

void hak_knobs_init(void) {
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    atomic_store_explicit(&hak_knobs.tls_cap[c], initial_tls_cap(c), memory_order_relaxed);
    atomic_store_explicit(&hak_knobs.drain_threshold[c],
                          (uint32_t)hak_config.drain_threshold, memory_order_relaxed);
    atomic_store_explicit(&hak_knobs.bundle[c], (uint32_t)hak_config.bundle_width,
                          memory_order_relaxed);
  }
  atomic_store_explicit(&hak_knobs.release_pages, (uint32_t)hak_config.release_pages,
                        memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_knobs.epoch, 1, memory_order_release);
}

void hak_knobs_refresh(struct hak_tcache *tc) {
  uint32_t epoch = atomic_load_explicit(&hak_knobs.epoch, memory_order_acquire);
  if (tc->knob_epoch == epoch) return;
  tc->knob_epoch = epoch;
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
    tc->bins[c].cap = atomic_load_explicit(&hak_knobs.tls_cap[c], memory_order_relaxed);
}

int hkm_tiny_set_tls_capacity(int cls, uint32_t cap) {
  hak_ensure_init();
  if (cls < 0 || cls >= HAK_NUM_CLASSES || cap < 1 || cap > 4096) return -1;
  atomic_store_explicit(&hak_knobs.tls_cap[cls], cap, memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_knobs.epoch, 1, memory_order_release);
  return 0;
}

uint32_t hkm_tiny_get_tls_capacity(int cls) {
  hak_ensure_init();
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return 0;
  return atomic_load_explicit(&hak_knobs.tls_cap[cls], memory_order_relaxed);
}

int hkm_tiny_set_drain_threshold(int cls, uint32_t n) {
  hak_ensure_init();
  if (cls < 0 || cls >= HAK_NUM_CLASSES || n < 1 || n > 65536) return -1;
  atomic_store_explicit(&hak_knobs.drain_threshold[cls], n, memory_order_relaxed);
  return 0;
}

uint32_t hkm_tiny_get_drain_threshold(int cls) {
  hak_ensure_init();
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return 0;
  return atomic_load_explicit(&hak_knobs.drain_threshold[cls], memory_order_relaxed);
}

int hkm_tiny_set_bundle_width(int cls, uint32_t n) {
  hak_ensure_init();
  if (cls < 0 || cls >= HAK_NUM_CLASSES || n > 4096) return -1;
  atomic_store_explicit(&hak_knobs.bundle[cls], n, memory_order_relaxed);
  return 0;
}

uint32_t hkm_tiny_get_bundle_width(int cls) {
  hak_ensure_init();
  if (cls < 0 || cls >= HAK_NUM_CLASSES) return 0;
  uint32_t cap = atomic_load_explicit(&hak_knobs.tls_cap[cls], memory_order_relaxed);
  uint32_t n = atomic_load_explicit(&hak_knobs.bundle[cls], memory_order_relaxed);
  if (!n) return cap > 1 ? cap / 2 : 1;
  return n < cap ? n : cap;
}

int hkm_set_release_pages(uint32_t min_pages) {
  hak_ensure_init();
  if (min_pages > HAK_RELEASE_PAGES_MAX) return -1;
  atomic_store_explicit(&hak_knobs.release_pages, min_pages, memory_order_relaxed);
  return 0;
}

uint32_t hkm_get_release_pages(void) {
  hak_ensure_init();
  return atomic_load_explicit(&hak_knobs.release_pages, memory_order_relaxed);
}
