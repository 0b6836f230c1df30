/* hak_stats: sums the per-thread counters of live threads, what exited
 * threads left behind, and the pool's and large tier's gauges. */
#include <string.h>

#include "heap.h"
#include "init.h"
#include "integrity.h"
#include "large.h"
#include "os.h"
#include "remote.h"
#include "report.h"
#include "segment.h"
#include "size_class.h"

static uint64_t relaxed64(_Atomic uint64_t *x) {
  return atomic_load_explicit(x, memory_order_relaxed);
}

/* Remote backlog per class, read from every span in use. */
static void add_backlogs(struct hak_stats *out) {
  hak_lock(&hak_pool.carve_lock);
  for (struct hak_segment *seg = hak_pool.all_segments; seg; seg = seg->next) {
    for (int i = 1; i < HAK_SLABS_PER_SEGMENT; i++) {
      struct hak_slab *s = &seg->slabs[i];
      if (s->span_head != s) continue;
      /* The owner may be assigning or releasing the span right now: one
       * relaxed load, checked and used as loaded (types.h, cls). */
      unsigned cls = hak_cls_relaxed(s);
      if (cls >= HAK_NUM_CLASSES) continue;
      out->cls[cls].remote_backlog += hak_remote_backlog(s);
    }
  }
  hak_unlock(&hak_pool.carve_lock);
}

/* The remote frees counted when a walk last found no backlog at all, or
 * UINT64_MAX.  The walk reads every span record of every segment under the
 * carve lock - ACE asks each tick, and with 600 MB of small blocks that was
 * most of its thread's time - yet a backlog only grows by a remote free, and
 * a remote free is counted after its block is queued (alloc.c).  So while
 * the count stands where it stood at a walk that found none, there is none:
 * the walk is skipped.  (A free queued just before that walk and counted
 * just after it is seen at the next count.) */
static _Atomic uint64_t quiet_remote_frees = UINT64_MAX;

static void maybe_add_backlogs(struct hak_stats *out) {
  uint64_t remote = 0, backlog = 0;
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) remote += out->cls[c].remote_frees;
  if (remote == atomic_load_explicit(&quiet_remote_frees, memory_order_relaxed)) return;
  add_backlogs(out);
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) backlog += out->cls[c].remote_backlog;
  atomic_store_explicit(&quiet_remote_frees, backlog ? UINT64_MAX : remote, memory_order_relaxed);
}

int hak_stats_get(struct hak_stats *out) {
  hak_ensure_init();
  memset(out, 0, sizeof *out);
  hak_lock(&hak_heaps.lock);
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    out->cls[c].allocs = hak_heaps.retired_allocs[c];
    out->cls[c].frees = hak_heaps.retired_frees[c] + relaxed64(&hak_heaps.heapless_frees[c]);
    out->cls[c].remote_frees = hak_heaps.retired_remote_frees[c] +
                               relaxed64(&hak_heaps.heapless_frees[c]);
  }
  out->large_allocs = hak_heaps.retired_large_allocs;
  out->large_frees = hak_heaps.retired_large_frees;
  for (struct hak_heap *h = hak_heaps.live; h; h = h->next_live) {
    struct hak_tcache *tc = h->tc;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
      struct hak_bin *bin = &tc->bins[c];
      uint64_t count = HAK_COUNTER_READ(bin->count);
      uint64_t frees = HAK_COUNTER_READ(bin->frees);
      uint64_t remote = HAK_COUNTER_READ(tc->remote_frees[c]);
      /* Read while the thread runs, the three may disagree for a moment. */
      int64_t allocs = HAK_COUNTER_READ(bin->net_in) + (int64_t)frees - (int64_t)count;
      out->cls[c].allocs += allocs > 0 ? (uint64_t)allocs : 0;
      out->cls[c].frees += frees + remote;
      out->cls[c].remote_frees += remote;
      out->cls[c].tls_cached += count;
    }
    out->large_allocs += relaxed64(&h->large_allocs);
    out->large_frees += relaxed64(&h->large_frees);
  }
  out->threads_live = hak_heaps.live_count;
  out->threads_retired = hak_heaps.retired_count;
  hak_unlock(&hak_heaps.lock);

  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    struct hak_class_stats *cs = &out->cls[c];
    cs->block_size = hak_class_bytes[c];
    cs->live_bytes = cs->allocs > cs->frees ? (cs->allocs - cs->frees) * cs->block_size : 0;
    cs->reserved_bytes = relaxed64(&hak_pool.reserved_bytes[c]);
  }
  maybe_add_backlogs(out);
  struct hak_large_totals large;
  hak_large_totals(&large);
  out->large_live_bytes = large.live_bytes;
  out->large_cached_bytes = large.cached_bytes;
  out->segments = relaxed64(&hak_pool.segments);
  out->segment_bytes = out->segments * HAK_SEGMENT_SIZE;
  out->empty_slabs = relaxed64(&hak_pool.empty_spans);
  out->abandoned_slabs = relaxed64(&hak_pool.abandoned_spans);
  out->decommitted_bytes = relaxed64(&hak_pool.decommitted_bytes);
  out->rss_bytes = hak_os_rss_bytes();
  out->integrity_events = hak_integrity_events();
  return 0;
}

uint64_t hak_released_pages(void) { return relaxed64(&hak_pool.released_pages); }
uint64_t hak_lock_waits(void) { return relaxed64(&hak_lock_wait_count); }
uint64_t hak_lock_wait_ns(void) { return relaxed64(&hak_lock_wait_total_ns); }

static void field(struct hak_msg *m, const char *name, uint64_t v) {
  hak_msg_str(m, name);
  hak_msg_u64(m, v);
}

void hak_stats_print(int fd) {
  struct hak_stats st;
  hak_stats_get(&st);
  struct hak_msg m = {0};
  hak_msg_str(&m, "hakmem ");
  hak_msg_str(&m, hak_variant());
  field(&m, ": rss_bytes=", st.rss_bytes);
  field(&m, " segments=", st.segments);
  field(&m, " threads_live=", st.threads_live);
  field(&m, " threads_retired=", st.threads_retired);
  field(&m, " integrity_events=", st.integrity_events);
  hak_msg_send(&m, fd);
  for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
    const struct hak_class_stats *cs = &st.cls[c];
    if (!cs->allocs && !cs->reserved_bytes) continue;
    field(&m, "  class ", c);
    field(&m, " size=", cs->block_size);
    field(&m, " allocs=", cs->allocs);
    field(&m, " frees=", cs->frees);
    field(&m, " live_bytes=", cs->live_bytes);
    field(&m, " reserved_bytes=", cs->reserved_bytes);
    field(&m, " remote_backlog=", cs->remote_backlog);
    field(&m, " tls_cached=", cs->tls_cached);
    hak_msg_send(&m, fd);
  }
  field(&m, "  large: allocs=", st.large_allocs);
  field(&m, " frees=", st.large_frees);
  field(&m, " live_bytes=", st.large_live_bytes);
  field(&m, " cached_bytes=", st.large_cached_bytes);
  field(&m, " empty_slabs=", st.empty_slabs);
  field(&m, " abandoned_slabs=", st.abandoned_slabs);
  field(&m, " decommitted_bytes=", st.decommitted_bytes);
  field(&m, " released_pages=", hak_released_pages());
  field(&m, " lock_waits=", hak_lock_waits());
  hak_msg_send(&m, fd);
}
