#include "knobs.h"

#include "config.h"
#include "init.h"
#include "size_class.h"

struct hak_knobs hak_knobs;

void hak_knobs_init(void) {
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    uint32_t cap = hak_config.tls_cap ? (uint32_t)hak_config.tls_cap
                                      : hak_class_default_tls_cap(c);
    atomic_store_explicit(&hak_knobs.tls_cap[c], cap, memory_order_relaxed);
    atomic_store_explicit(&hak_knobs.drain_threshold[c],
                          (uint32_t)hak_config.drain_threshold, memory_order_relaxed);
  }
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
