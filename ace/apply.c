#include "apply.h"

#include <stdio.h>

#include "hakmem.h"
#include "log.h"
#include "metrics.h"

static const char *knob_name(enum hkm_ace_knob k) {
  switch (k) {
    case HKM_ACE_KNOB_TLS_CAP: return "TLS cap";
    case HKM_ACE_KNOB_DRAIN: return "drain threshold";
    case HKM_ACE_KNOB_BUNDLE: return "bundle width";
    case HKM_ACE_KNOB_RELEASE: return "page release";
  }
  return "?";
}

int hkm_ace_describe(const struct hkm_ace_action *a, char *buf, size_t n) {
  if (a->kind == HKM_ACE_SCAVENGE) {
    if (a->reason == HKM_ACE_BECAUSE_FRAG)
      snprintf(buf, n, "Partial release: scavenging up to %.2f ms and %llu pages (%u/8 of the "
               "budget; live/reserved=%.2f)", (double)a->budget_ns / 1e6,
               (unsigned long long)a->max_pages, a->release_pages, a->signal);
    else
      snprintf(buf, n, "Scavenging up to %.2f ms (RSS %.0f MiB, up from %.0f MiB)",
               (double)a->budget_ns / 1e6, a->signal / 1048576.0, a->baseline / 1048576.0);
    return HKM_ACE_LOG_INFO;
  }
  const char *verb = a->reason == HKM_ACE_BECAUSE_CALM || a->reason == HKM_ACE_BECAUSE_GUARD
                         ? "Restoring" : "Adjusting";
  int len = a->cls < 0 ? snprintf(buf, n, "%s %s: %u → %u", verb, knob_name(a->knob), a->from,
                                  a->to)
                       : snprintf(buf, n, "%s %s[%d]: %u → %u", verb, knob_name(a->knob),
                                  a->cls, a->from, a->to);
  if (len < 0 || (size_t)len >= n) return HKM_ACE_LOG_INFO;
  char *rest = buf + len;
  size_t left = n - (size_t)len;
  switch (a->reason) {
    case HKM_ACE_BECAUSE_LLC:
      snprintf(rest, left, " (diet factor=%g)", a->factor);
      break;
    case HKM_ACE_BECAUSE_BACKLOG:
      snprintf(rest, left, " (remote backlog=%.0f blocks)", a->signal);
      break;
    case HKM_ACE_BECAUSE_MUTEX:
      snprintf(rest, left, " (mutex wait=%.0f ns/s)", a->signal);
      break;
    case HKM_ACE_BECAUSE_CALM:
      snprintf(rest, left, " (calm for %u ticks)", a->calm_ticks);
      break;
    case HKM_ACE_BECAUSE_FRAG:
      snprintf(rest, left, " (live/reserved=%.2f)", a->signal);
      break;
    case HKM_ACE_BECAUSE_GUARD:
      snprintf(rest, left, " (safety guard)");
      break;
    default:
      break;
  }
  return HKM_ACE_LOG_INFO;
}

void hkm_ace_describe_guard(const struct hkm_ace_decision *d, char *buf, size_t n) {
  switch (d->tripped) {
    case HKM_ACE_GUARD_P99:
      snprintf(buf, n, "Safety guard: p99 allocation latency %.0f ns > %.0f ns; "
               "restoring defaults and stopping", d->guard_value, d->guard_limit);
      break;
    case HKM_ACE_GUARD_RSS:
      snprintf(buf, n, "Safety guard: RSS %.0f MiB > %.0f MiB; restoring defaults and stopping",
               d->guard_value / 1048576.0, d->guard_limit / 1048576.0);
      break;
    case HKM_ACE_GUARD_CPU:
      snprintf(buf, n, "Safety guard: ACE thread CPU %.1f%% > %.0f%% of a core; "
               "restoring defaults and stopping", d->guard_value, d->guard_limit);
      break;
    default:
      snprintf(buf, n, "no guard tripped");
  }
}

uint64_t hkm_ace_apply(const struct hkm_ace_decision *d) {
  char text[400];
  uint64_t released = 0;
  if (d->tripped != HKM_ACE_GUARD_NONE) {
    hkm_ace_describe_guard(d, text, sizeof text);
    hkm_ace_log(HKM_ACE_LOG_INFO, "%s", text);
  }
  for (unsigned i = 0; i < d->n; i++) {
    const struct hkm_ace_action *a = &d->actions[i];
    int level = hkm_ace_describe(a, text, sizeof text);
    if (a->kind == HKM_ACE_SCAVENGE) {
      uint64_t t0 = hkm_ace_now_ns();
      size_t got = hak_scavenge_pages(a->max_pages, a->budget_ns) * HKM_ACE_PAGE_BYTES;
      uint64_t t1 = hkm_ace_now_ns();
      released += got;
      hkm_ace_log(level, "%s: released %zu KiB in %.2f ms", text, got >> 10,
                  (double)(t1 - t0) / 1e6);
      continue;
    }
    int rc = 0;
    if (a->knob == HKM_ACE_KNOB_TLS_CAP) rc = hkm_tiny_set_tls_capacity(a->cls, a->to);
    else if (a->knob == HKM_ACE_KNOB_DRAIN) rc = hkm_tiny_set_drain_threshold(a->cls, a->to);
    else if (a->knob == HKM_ACE_KNOB_BUNDLE) rc = hkm_tiny_set_bundle_width(a->cls, a->to);
    else if (a->knob == HKM_ACE_KNOB_RELEASE) rc = hkm_set_release_pages(a->to);
    if (rc != 0) hkm_ace_log(HKM_ACE_LOG_INFO, "%s: the allocator refused it", text);
    else hkm_ace_log(level, "%s", text);
  }
  return released;
}
