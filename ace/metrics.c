#include "metrics.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "log.h"

uint64_t hkm_ace_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t thread_cpu_ns(void) {
  struct timespec t;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return 0;
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Counter difference; a snapshot taken under load may read a counter a
 * little behind the previous one (hakmem.h), which counts as no change. */
static uint64_t delta(uint64_t now, uint64_t before) { return now > before ? now - before : 0; }

int hkm_ace_metrics_init(struct hkm_ace_metrics *m) {
  static _Atomic int llc_notice_given;
  memset(m, 0, sizeof *m);
  m->probe_enabled = 1;
  hak_stats_get(&m->prev);
  m->prev_lock_wait_ns = hak_lock_wait_ns();
  m->prev_lock_waits = hak_lock_waits();
  m->prev_released_pages = hak_released_pages();
  m->prev_ns = hkm_ace_now_ns();
  if (hkm_ace_llc_open(&m->llc) < 0 &&
      !atomic_exchange_explicit(&llc_notice_given, 1, memory_order_relaxed))
    hkm_ace_log(HKM_ACE_LOG_INFO,
                "LLC miss rate unavailable (perf_event_open: %s); reporting 0.0",
                strerror(m->llc.error));
  return 0;
}

/* The ACE thread's share of one core over the window, in percent. */
static double cpu_percent(struct hkm_ace_metrics *m, uint64_t wall_now) {
  uint64_t cpu_now = thread_cpu_ns();
  if (!m->cpu_started) {
    m->cpu_started = 1;
    m->cpu_prev_ns = cpu_now;
    m->cpu_wall_prev_ns = wall_now;
    return 0.0;
  }
  m->cpu_delta[m->cpu_pos] = delta(cpu_now, m->cpu_prev_ns);
  m->wall_delta[m->cpu_pos] = delta(wall_now, m->cpu_wall_prev_ns);
  m->cpu_pos = (m->cpu_pos + 1) % HKM_ACE_CPU_WINDOW;
  if (m->cpu_count < HKM_ACE_CPU_WINDOW) m->cpu_count++;
  m->cpu_prev_ns = cpu_now;
  m->cpu_wall_prev_ns = wall_now;
  /* Nothing until the window is full: over its first few intervals the
   * thread's share is mostly start-up (the probe's first allocations fault
   * pages in), which must not trip the CPU guard. */
  if (m->cpu_count < HKM_ACE_CPU_WINDOW) return 0.0;
  uint64_t cpu = 0, wall = 0;
  for (unsigned i = 0; i < m->cpu_count; i++) {
    cpu += m->cpu_delta[i];
    wall += m->wall_delta[i];
  }
  return wall ? 100.0 * (double)cpu / (double)wall : 0.0;
}

/* Request sizes for the probe: the block sizes of the busiest classes. */
static unsigned probe_sizes(const struct hkm_ace_sample *s, size_t *sizes) {
  int picked[HKM_ACE_PROBE_CLASSES];
  unsigned n = 0;
  while (n < HKM_ACE_PROBE_CLASSES) {
    int best = -1;
    for (int c = 0; c < HAK_NUM_CLASSES; c++) {
      int taken = 0;
      for (unsigned k = 0; k < n; k++) taken |= picked[k] == c;
      if (!taken && s->class_ops[c] && (best < 0 || s->class_ops[c] > s->class_ops[best]))
        best = c;
    }
    if (best < 0) break;
    picked[n] = best;
    sizes[n++] = hak_class_size(best);
  }
  if (n == 0) { /* idle: one size per tier of tiny blocks */
    static const size_t idle[] = {16, 64, 256, 1024};
    for (; n < 4; n++) sizes[n] = idle[n];
  }
  return n;
}

int hkm_ace_metrics_collect(struct hkm_ace_metrics *m, struct hkm_ace_sample *out) {
  memset(out, 0, sizeof *out);
  hak_stats_get(&m->cur);
  uint64_t now = hkm_ace_now_ns();
  uint64_t dt_ns = now > m->prev_ns ? now - m->prev_ns : 1;
  out->interval_s = (double)dt_ns / 1e9;

  uint64_t ops = 0;
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    const struct hak_class_stats *a = &m->cur.cls[c], *b = &m->prev.cls[c];
    uint64_t n = delta(a->allocs, b->allocs) + delta(a->frees, b->frees);
    out->class_ops[c] = delta(n, m->probe_ops[c]);
    ops += out->class_ops[c];
    out->remote_backlog[c] = a->remote_backlog;
    out->tls_cached_bytes[c] = a->tls_cached * a->block_size;
    out->live_bytes += a->live_bytes;
    out->reserved_bytes += a->reserved_bytes;
  }
  ops += delta(m->cur.large_allocs, m->prev.large_allocs) +
         delta(m->cur.large_frees, m->prev.large_frees);
  out->ops_per_sec = (double)ops / out->interval_s;
  out->fragmentation_ratio =
      out->reserved_bytes ? (double)out->live_bytes / (double)out->reserved_bytes : 1.0;
  if (out->fragmentation_ratio > 1.0) out->fragmentation_ratio = 1.0;
  out->large_cached_bytes = m->cur.large_cached_bytes;
  out->rss_bytes = m->cur.rss_bytes;
  out->llc_miss_rate = hkm_ace_llc_rate(&m->llc);
  uint64_t wait_ns = hak_lock_wait_ns(), released = hak_released_pages();
  out->mutex_wait_ns_per_sec = (double)delta(wait_ns, m->prev_lock_wait_ns) / out->interval_s;
  uint64_t waits = hak_lock_waits();
  out->mutex_waits_per_sec = (double)delta(waits, m->prev_lock_waits) / out->interval_s;
  m->prev_lock_waits = waits;
  out->released_bytes = delta(released, m->prev_released_pages) * (uint64_t)HKM_ACE_PAGE_BYTES;
  m->prev_lock_wait_ns = wait_ns;
  m->prev_released_pages = released;

  memset(m->probe_ops, 0, sizeof m->probe_ops);
  if (m->probe_enabled) {
    size_t sizes[HKM_ACE_PROBE_CLASSES];
    unsigned n = probe_sizes(out, sizes);
    out->p99_alloc_ns = hkm_ace_latency_probe_p99(&m->probe, sizes, n);
    for (unsigned i = 0; i < HKM_ACE_PROBE_SAMPLES; i++) {
      int c = hak_size_class(sizes[i % n]);
      if (c >= 0) m->probe_ops[c] += 2; /* its malloc and its free */
    }
  }
  out->ace_cpu_percent = cpu_percent(m, hkm_ace_now_ns());

  m->prev = m->cur;
  m->prev_ns = now;
  return 0;
}

void hkm_ace_metrics_destroy(struct hkm_ace_metrics *m) { hkm_ace_llc_close(&m->llc); }
