#include "controller.h"

#include <string.h>

const uint32_t hkm_ace_tls_cap_candidates[HKM_ACE_N_TLS_CAP] = {4, 8, 16, 32, 64, 128, 256, 512};
const uint32_t hkm_ace_drain_candidates[HKM_ACE_N_DRAIN] = {32, 64, 128, 256, 512, 1024};
const uint32_t hkm_ace_release_candidates[HKM_ACE_N_RELEASE] = {1, 2, 4, 8};
const double hkm_ace_diet_candidates[HKM_ACE_N_DIET] = {0.5, 0.66, 0.75, 0.9, 1.0};
const uint32_t hkm_ace_bundle_candidates[HKM_ACE_N_BUNDLE] = {16, 32, 64, 128};

void hkm_ace_policy_default(struct hkm_ace_policy *p) {
  *p = (struct hkm_ace_policy){
      .backlog_hi = 1024,
      .backlog_lo = 256,
      .llc_up_ratio = 0.20,
      .llc_calm_ratio = 0.05,
      .llc_floor = 0.01,
      .mutex_up_ns_per_sec = 1e6,
      .mutex_up_waits_per_sec = 100,
      .diet_min_cached_bytes = 64 << 10,
      .restore_after = 4,
      .bundle_default = 32,
      .frag_lo = 0.5,
      .frag_calm = 0.7,
      .release_unit_pages = 256,
      .frag_min_reserved = 16ull << 20,
      .rss_up_ratio = 0.25,
      .rss_up_min_bytes = 32ull << 20,
      .scavenge_budget_ns = 5000000,
      .max_p99_ns = 10000000,
      .max_rss_bytes = 16384ull << 20,
      .max_cpu_percent = 5.0,
      .ucb_c = HKM_ACE_UCB1_DEFAULT_C,
      .w_llc = 0.2,
      .w_lock = 0.1,
      .w_backlog = 0.2,
      .w_frag = 0.1,
  };
}

static void table_to_double(const uint32_t *t, unsigned n, double *out) {
  for (unsigned i = 0; i < n; i++) out[i] = t[i];
}

void hkm_ace_controller_init(struct hkm_ace_controller *ctl, const struct hkm_ace_policy *p,
                             const uint32_t tls_default[HAK_NUM_CLASSES],
                             const uint32_t drain_default[HAK_NUM_CLASSES]) {
  memset(ctl, 0, sizeof *ctl);
  ctl->policy = *p;
  double drain[HKM_ACE_N_DRAIN], bundle[HKM_ACE_N_BUNDLE], release[HKM_ACE_N_RELEASE];
  table_to_double(hkm_ace_drain_candidates, HKM_ACE_N_DRAIN, drain);
  table_to_double(hkm_ace_bundle_candidates, HKM_ACE_N_BUNDLE, bundle);
  table_to_double(hkm_ace_release_candidates, HKM_ACE_N_RELEASE, release);
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    struct hkm_ace_class *k = &ctl->cls[c];
    k->tls_default = k->tls_cap = tls_default[c];
    k->drain_default = k->drain = drain_default[c];
    k->bundle_default = k->bundle = p->bundle_default;
    k->drain_arm = k->diet_arm = k->bundle_arm = -1;
    hkm_ace_ucb1_init(&k->drain_bandit, drain, HKM_ACE_N_DRAIN, p->ucb_c);
    hkm_ace_ucb1_init(&k->diet_bandit, hkm_ace_diet_candidates, HKM_ACE_N_DIET, p->ucb_c);
    hkm_ace_ucb1_init(&k->bundle_bandit, bundle, HKM_ACE_N_BUNDLE, p->ucb_c);
  }
  hkm_ace_ucb1_init(&ctl->release_bandit, release, HKM_ACE_N_RELEASE, p->ucb_c);
  ctl->release_arm = -1;
}

void hkm_ace_controller_destroy(struct hkm_ace_controller *ctl) { (void)ctl; }

void hkm_ace_controller_set_defaults(struct hkm_ace_controller *ctl,
                                     const uint32_t bundle_default[HAK_NUM_CLASSES],
                                     uint32_t release_default) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++)
    ctl->cls[c].bundle_default = ctl->cls[c].bundle = bundle_default[c];
  ctl->release_default = ctl->release = release_default;
}

uint32_t hkm_ace_step_toward(uint32_t from, uint32_t target, const uint32_t *table, unsigned n) {
  if (from < target) {
    for (unsigned i = 0; i < n; i++)
      if (table[i] > from && table[i] < target) return table[i];
  } else if (from > target) {
    for (unsigned i = n; i-- > 0;)
      if (table[i] < from && table[i] > target) return table[i];
  }
  return target;
}

static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

static double throughput_ratio(const struct hkm_ace_controller *ctl,
                               const struct hkm_ace_sample *s) {
  return ctl->ops_ref > 0 ? clamp(s->ops_per_sec / ctl->ops_ref, 0, 2) : 1.0;
}

double hkm_ace_reward(const struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                      int cls) {
  const struct hkm_ace_policy *p = &ctl->policy;
  double backlog = cls >= 0 && cls < HAK_NUM_CLASSES ? (double)s->remote_backlog[cls] : 0;
  double r = 0.5 * throughput_ratio(ctl, s) - p->w_llc * s->llc_miss_rate -
             p->w_lock * clamp(s->mutex_wait_ns_per_sec / 1e9, 0, 1) -
             p->w_backlog * clamp(backlog / (4.0 * (double)p->backlog_hi), 0, 1) -
             p->w_frag * (1.0 - clamp(s->fragmentation_ratio, 0, 1));
  return clamp(r, 0, 1);
}

/* ---- building the decision ---------------------------------------------- */

static struct hkm_ace_action *add(struct hkm_ace_decision *out) {
  if (out->n >= HKM_ACE_MAX_ACTIONS) return NULL;
  struct hkm_ace_action *a = &out->actions[out->n++];
  memset(a, 0, sizeof *a);
  return a;
}

static void set_knob(struct hkm_ace_decision *out, enum hkm_ace_knob knob, int cls, uint32_t from,
                     uint32_t to, enum hkm_ace_reason why, double signal) {
  struct hkm_ace_action *a = add(out);
  if (!a) return;
  a->kind = HKM_ACE_SET_KNOB;
  a->knob = knob;
  a->cls = cls;
  a->from = from;
  a->to = to;
  a->reason = why;
  a->signal = signal;
}

/* Puts every knob ACE moved back to its default. */
static void restore_all(struct hkm_ace_controller *ctl, struct hkm_ace_decision *out) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    struct hkm_ace_class *k = &ctl->cls[c];
    if (k->tls_cap != k->tls_default)
      set_knob(out, HKM_ACE_KNOB_TLS_CAP, c, k->tls_cap, k->tls_default, HKM_ACE_BECAUSE_GUARD, 0);
    if (k->drain != k->drain_default)
      set_knob(out, HKM_ACE_KNOB_DRAIN, c, k->drain, k->drain_default, HKM_ACE_BECAUSE_GUARD, 0);
    if (k->bundle != k->bundle_default)
      set_knob(out, HKM_ACE_KNOB_BUNDLE, c, k->bundle, k->bundle_default, HKM_ACE_BECAUSE_GUARD,
               0);
    k->tls_cap = k->tls_default;
    k->drain = k->drain_default;
    k->bundle = k->bundle_default;
  }
  if (ctl->release != ctl->release_default)
    set_knob(out, HKM_ACE_KNOB_RELEASE, -1, ctl->release, ctl->release_default,
             HKM_ACE_BECAUSE_GUARD, 0);
  ctl->release = ctl->release_default;
}

static int check_guards(struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                        struct hkm_ace_decision *out) {
  const struct hkm_ace_policy *p = &ctl->policy;
  if (p->max_p99_ns && s->p99_alloc_ns > p->max_p99_ns) {
    out->tripped = HKM_ACE_GUARD_P99;
    out->guard_value = (double)s->p99_alloc_ns;
    out->guard_limit = (double)p->max_p99_ns;
  } else if (p->max_rss_bytes && s->rss_bytes > p->max_rss_bytes) {
    out->tripped = HKM_ACE_GUARD_RSS;
    out->guard_value = (double)s->rss_bytes;
    out->guard_limit = (double)p->max_rss_bytes;
  } else if (p->max_cpu_percent > 0 && s->ace_cpu_percent > p->max_cpu_percent) {
    out->tripped = HKM_ACE_GUARD_CPU;
    out->guard_value = s->ace_cpu_percent;
    out->guard_limit = p->max_cpu_percent;
  } else {
    return 0;
  }
  restore_all(ctl, out);
  ctl->stopped = 1;
  ctl->stopped_by = out->tripped;
  return 1;
}

/* Rewards the arms pulled on the previous tick with what followed. */
static void credit(struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s) {
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    struct hkm_ace_class *k = &ctl->cls[c];
    if (k->drain_arm < 0 && k->diet_arm < 0 && k->bundle_arm < 0) continue;
    double r = hkm_ace_reward(ctl, s, c);
    hkm_ace_ucb1_update(&k->drain_bandit, k->drain_arm, r);
    hkm_ace_ucb1_update(&k->diet_bandit, k->diet_arm, r);
    hkm_ace_ucb1_update(&k->bundle_bandit, k->bundle_arm, r);
    k->drain_arm = k->diet_arm = k->bundle_arm = -1;
  }
  if (ctl->release_arm >= 0) {
    /* Memory given back, as a share of what was idle, and what it cost. */
    double idle = (double)(s->reserved_bytes > s->live_bytes ? s->reserved_bytes - s->live_bytes
                                                             : 0) +
                  (double)s->large_cached_bytes + (double)s->released_bytes;
    double share = idle > 0 ? (double)s->released_bytes / idle : 0;
    double r = clamp(0.5 * clamp(throughput_ratio(ctl, s), 0, 1) + 0.5 * clamp(share, 0, 1), 0, 1);
    hkm_ace_ucb1_update(&ctl->release_bandit, ctl->release_arm, r);
    ctl->release_arm = -1;
  }
}

/* Index of the first candidate >= v (n if none). */
static int lower_bound(const uint32_t *table, int n, uint32_t v) {
  int i = 0;
  while (i < n && table[i] < v) i++;
  return i;
}

/* A knob in a calm tick: counts, and after restore_after calm ticks takes
 * one step back towards the default. */
static void calm_step(struct hkm_ace_controller *ctl, int c, enum hkm_ace_knob knob,
                      uint32_t *value, uint32_t def, unsigned *calm, const uint32_t *table,
                      unsigned n, struct hkm_ace_decision *out) {
  if (*value == def) {
    *calm = 0;
    return;
  }
  if (++*calm < ctl->policy.restore_after) return;
  uint32_t to = hkm_ace_step_toward(*value, def, table, n);
  set_knob(out, knob, c, *value, to, HKM_ACE_BECAUSE_CALM, 0);
  out->actions[out->n - 1].calm_ticks = *calm;
  *value = to;
  *calm = 0;
}

static void fast_loop(struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                      struct hkm_ace_decision *out) {
  const struct hkm_ace_policy *p = &ctl->policy;
  double llc = s->llc_miss_rate;
  int llc_up = ctl->llc_base_set && llc >= p->llc_floor &&
               llc > ctl->llc_base * (1.0 + p->llc_up_ratio);
  int llc_calm = llc < p->llc_floor || !ctl->llc_base_set ||
                 llc <= ctl->llc_base * (1.0 + p->llc_calm_ratio);
  int mutex_up = s->mutex_wait_ns_per_sec >= p->mutex_up_ns_per_sec &&
                 s->mutex_waits_per_sec >= p->mutex_up_waits_per_sec;
  int mutex_calm = s->mutex_wait_ns_per_sec < p->mutex_up_ns_per_sec / 2 ||
                   s->mutex_waits_per_sec < p->mutex_up_waits_per_sec / 2;

  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    struct hkm_ace_class *k = &ctl->cls[c];

    /* Remote backlog -> drain threshold. */
    uint64_t backlog = s->remote_backlog[c];
    if (backlog >= p->backlog_hi && backlog >= k->prev_backlog) {
      k->drain_calm = 0;
      int below = lower_bound(hkm_ace_drain_candidates, HKM_ACE_N_DRAIN, k->drain);
      if (below > 0) {
        int arm = hkm_ace_ucb1_select_range(&k->drain_bandit, below - 1, 0);
        uint32_t to = hkm_ace_drain_candidates[arm];
        set_knob(out, HKM_ACE_KNOB_DRAIN, c, k->drain, to, HKM_ACE_BECAUSE_BACKLOG,
                 (double)backlog);
        k->drain = to;
        k->drain_arm = arm;
      }
    } else if (backlog <= p->backlog_lo) {
      calm_step(ctl, c, HKM_ACE_KNOB_DRAIN, &k->drain, k->drain_default, &k->drain_calm,
                hkm_ace_drain_candidates, HKM_ACE_N_DRAIN, out);
    } else {
      k->drain_calm = 0;
    }
    k->prev_backlog = backlog;

    /* LLC misses -> TLS capacity diet.  The diet bandit chooses among the
     * factors below 1.0, gentlest untried first: a rule that fired acts. */
    if (llc_up) {
      k->tls_calm = 0;
      uint32_t min_cap = hkm_ace_tls_cap_candidates[0];
      if (s->tls_cached_bytes[c] >= p->diet_min_cached_bytes && k->tls_cap > min_cap) {
        int arm = hkm_ace_ucb1_select_range(&k->diet_bandit, HKM_ACE_N_DIET - 2, 0);
        double f = hkm_ace_diet_candidates[arm];
        uint32_t to = (uint32_t)((double)k->tls_cap * f);
        if (to < min_cap) to = min_cap;
        if (to < k->tls_cap) {
          set_knob(out, HKM_ACE_KNOB_TLS_CAP, c, k->tls_cap, to, HKM_ACE_BECAUSE_LLC, llc);
          out->actions[out->n - 1].factor = f;
          out->actions[out->n - 1].baseline = ctl->llc_base;
          k->tls_cap = to;
          k->diet_arm = arm;
        }
      }
    } else if (llc_calm) {
      calm_step(ctl, c, HKM_ACE_KNOB_TLS_CAP, &k->tls_cap, k->tls_default, &k->tls_calm,
                hkm_ace_tls_cap_candidates, HKM_ACE_N_TLS_CAP, out);
    } else {
      k->tls_calm = 0;
    }

    /* Mutex wait -> wider bundles, for classes in use. */
    if (mutex_up) {
      k->bundle_calm = 0;
      int above = lower_bound(hkm_ace_bundle_candidates, HKM_ACE_N_BUNDLE, k->bundle + 1);
      if (s->class_ops[c] && above < HKM_ACE_N_BUNDLE) {
        int arm = hkm_ace_ucb1_select_range(&k->bundle_bandit, above, HKM_ACE_N_BUNDLE - 1);
        uint32_t to = hkm_ace_bundle_candidates[arm];
        set_knob(out, HKM_ACE_KNOB_BUNDLE, c, k->bundle, to, HKM_ACE_BECAUSE_MUTEX,
                 s->mutex_wait_ns_per_sec);
        k->bundle = to;
        k->bundle_arm = arm;
      }
    } else if (mutex_calm) {
      calm_step(ctl, c, HKM_ACE_KNOB_BUNDLE, &k->bundle, k->bundle_default, &k->bundle_calm,
                hkm_ace_bundle_candidates, HKM_ACE_N_BUNDLE, out);
    } else {
      k->bundle_calm = 0;
    }
  }

  /* Baselines move only while calm, so a rising signal cannot drag its
   * own reference up and hide itself. */
  if (llc_calm && llc > 0) {
    ctl->llc_base = ctl->llc_base_set ? 0.9 * ctl->llc_base + 0.1 * llc : llc;
    ctl->llc_base_set = 1;
  }
  ctl->ops_ref = ctl->ops_ref > 0 ? 0.75 * ctl->ops_ref + 0.25 * s->ops_per_sec : s->ops_per_sec;
}

/* Every tick: the fragmentation window the slow loop judges, and page
 * release turned on as soon as fragmentation shows.  The knob costs
 * nothing while threads churn (they release only in runs of frees,
 * release.h), and waiting for the slow loop - 30 s by default - let a
 * program's free phase come and go first; the slow loop still picks the
 * run length (its bandit) and scavenges. */
static void frag_tick(struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                      struct hkm_ace_decision *out) {
  const struct hkm_ace_policy *p = &ctl->policy;
  if (s->reserved_bytes < p->frag_min_reserved) return;
  double r = s->fragmentation_ratio;
  if (!ctl->frag_seen || r < ctl->frag_min) ctl->frag_min = r;
  ctl->frag_seen = 1;
  if (r < p->frag_lo && ctl->release == 0) {
    set_knob(out, HKM_ACE_KNOB_RELEASE, -1, 0, hkm_ace_release_candidates[0],
             HKM_ACE_BECAUSE_FRAG, r);
    ctl->release = hkm_ace_release_candidates[0];
    ctl->release_calm = 0;
  }
}

static void slow_loop(struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                      struct hkm_ace_decision *out) {
  const struct hkm_ace_policy *p = &ctl->policy;
  /* Judged on the most fragmented tick since the last slow tick: the ratio
   * swings with a program's phases, and a slow tick landing on a good
   * moment must not miss - nor call calm - a fragmented spell. */
  int frag_up = ctl->frag_seen && ctl->frag_min < p->frag_lo;
  int frag_calm = !ctl->frag_seen || ctl->frag_min >= p->frag_calm;
  double frag_signal = ctl->frag_seen ? ctl->frag_min : s->fragmentation_ratio;
  int rss_up = ctl->rss_base_set &&
               (double)s->rss_bytes > (double)ctl->rss_base * (1.0 + p->rss_up_ratio) &&
               s->rss_bytes - ctl->rss_base >= p->rss_up_min_bytes;
  uint64_t budget = 0, max_pages = 0;
  enum hkm_ace_reason why = HKM_ACE_BECAUSE_RSS;
  double signal = (double)s->rss_bytes;
  uint32_t pages = 0;
  if (frag_up) {
    int arm = hkm_ace_ucb1_select(&ctl->release_bandit);
    pages = hkm_ace_release_candidates[arm];
    budget = p->scavenge_budget_ns * pages / hkm_ace_release_candidates[HKM_ACE_N_RELEASE - 1];
    max_pages = (uint64_t)pages * p->release_unit_pages;
    ctl->release_arm = arm;
    why = HKM_ACE_BECAUSE_FRAG;
    signal = frag_signal;
    ctl->release_calm = 0;
  } else if (frag_calm) {
    /* Page release off again once fragmentation has stayed low. */
    if (ctl->release != ctl->release_default && ++ctl->release_calm >= p->restore_after) {
      set_knob(out, HKM_ACE_KNOB_RELEASE, -1, ctl->release, ctl->release_default,
               HKM_ACE_BECAUSE_CALM, frag_signal);
      out->actions[out->n - 1].calm_ticks = ctl->release_calm;
      ctl->release = ctl->release_default;
      ctl->release_calm = 0;
    }
  } else {
    ctl->release_calm = 0;
  }
  if (rss_up) {
    budget = p->scavenge_budget_ns;
    max_pages = 0;
    why = HKM_ACE_BECAUSE_RSS;
    signal = (double)s->rss_bytes;
  }
  if (budget) {
    struct hkm_ace_action *a = add(out);
    if (a) {
      a->kind = HKM_ACE_SCAVENGE;
      a->cls = -1;
      a->reason = why;
      a->signal = signal;
      a->budget_ns = budget;
      a->release_pages = pages;
      a->max_pages = max_pages;
      a->baseline = (double)ctl->rss_base;
    }
  }
  ctl->frag_seen = 0; /* a new window */
  /* The reference is the lowest RSS since the last scavenge, so slow,
   * steady growth is seen once it adds up. */
  if (rss_up || !ctl->rss_base_set || s->rss_bytes < ctl->rss_base) ctl->rss_base = s->rss_bytes;
  ctl->rss_base_set = 1;
}

void hkm_ace_controller_tick(struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                             int slow, struct hkm_ace_decision *out) {
  out->n = 0;
  out->tripped = HKM_ACE_GUARD_NONE;
  out->guard_value = out->guard_limit = 0;
  if (ctl->stopped) return;
  ctl->ticks++;
  if (check_guards(ctl, s, out)) return;
  credit(ctl, s);
  fast_loop(ctl, s, out);
  frag_tick(ctl, s, out);
  if (slow) slow_loop(ctl, s, out);
}
