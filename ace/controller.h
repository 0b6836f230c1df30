/* ACE's decisions (SPEC §2 "Controller", "Learning", "Safety guards").
 *
 * The controller is a pure state machine: hkm_ace_controller_tick() takes
 * one sample (metrics.h) and returns the knob changes and the scavenge to
 * make as a struct hkm_ace_decision; applying them is the caller's job
 * (apply.h).  No clock, no allocator call, no randomness: the same samples
 * give the same decisions, which is what the tests feed it.
 *
 * Rules decide when and which way a knob moves; a UCB1 bandit per knob and
 * class (ucb1.h) decides how far, among the knob's candidates in that
 * direction, and is rewarded on the next tick with what the move earned:
 *
 *   reward = 0.5 * min(2, ops/s / reference ops/s)          (throughput)
 *            - w_llc * LLC miss rate - w_lock * mutex wait share
 *            - w_backlog * min(1, class backlog / (4 * backlog_hi))
 *            - w_frag * (1 - live/reserved),   clamped to [0, 1]
 *
 * (the reference is an average of recent ops/s, so 0.5 means "as before").
 * A partial release is rewarded with half the throughput ratio (capped at
 * 1) plus half the share of idle memory it gave back.
 *
 * Everything is per class except the LLC baseline, the throughput
 * reference, the RSS reference and the partial-release bandit, which are
 * process-wide because what they measure is.
 *
 * Fast loop, every tick, per class:
 *   remote backlog >= backlog_hi and not falling -> drain threshold down to
 *       a lower candidate (drain bandit; nearest untried first)
 *   LLC miss rate up (above its calm baseline by llc_up_ratio) -> TLS
 *       capacity of classes caching >= diet_min_cached_bytes times a diet
 *       factor < 1 (diet bandit; the table's 1.0 is the undieted state,
 *       not an arm the rule pulls), never below the smallest candidate (4)
 *   mutex wait up (time waiting, in many waits) -> wider bundle (bundle
 *       bandit): refills move more blocks per trip to the shared
 *       structures behind the locks.  Many waits, because a few long ones
 *       are a lock holder descheduled on a busy machine, not contention a
 *       wider bundle could ease: fragmentation shows 5-13 waits of ~4 ms
 *       a run, ACE on or off, and widened then restored bundles all run
 *       long (190 knob moves in 7 runs) for nothing.
 *   calm (backlog <= backlog_lo, LLC within llc_calm_ratio of baseline,
 *       mutex wait low) for restore_after ticks -> the knob moves one
 *       candidate back towards its default; the count then starts again,
 *       so a full restore takes several calm spells (hysteresis: the "up"
 *       and "calm" thresholds differ, and calm must last).
 * Every tick, fragmentation (live/reserved < frag_lo with >=
 *   frag_min_reserved reserved) turns page release on with runs of 1 page
 *   (hkm_set_release_pages: threads return the free pages of their
 *   emptying spans themselves, the memory only they can reach) if it is
 *   off.  Threads act on it only in runs of frees, so it costs nothing
 *   while they churn, and a program's free phase need not wait for the
 *   slow loop.  Runs of 1 page: every free page costs the same to return
 *   (the runs go out in batches, release.h), and a longer minimum, which
 *   the slow loop's bandit used to explore here, left whatever arm it was
 *   trying when the free phase came (fragmentation's RSS after its free
 *   phase: 218 MB with runs of 1 page, 291 MB with 4, 400 MB with 8).  The tick's ratio also joins the
 *   window the slow loop judges.
 * Slow loop (slow = 1), on the lowest live/reserved since the last slow
 * tick (a tick landing on a good moment of a phased program misses nothing):
 *   fragmentation up (below frag_lo) -> partial release: hak_scavenge_pages
 *       of at most k * release_unit_pages pages within k/8 of the scavenge
 *       budget (what no thread owns), k from the partial-release bandit
 *       over {1, 2, 4, 8}
 *   calm fragmentation (live/reserved >= frag_calm, or too little
 *       reserved) for restore_after slow ticks -> page release back to its
 *       default (off)
 *   RSS up (by rss_up_ratio and rss_up_min_bytes over its lowest point
 *       since the last RSS scavenge) -> hak_scavenge with the full budget
 *       (5 ms)
 * Safety guards, checked first on every tick: probe p99 > max_p99_ns, RSS >
 *   max_rss_bytes, ACE CPU > max_cpu_percent -> every knob ACE moved goes
 *   back to its default and the controller stops for good. */
#ifndef HAKMEM_ACE_CONTROLLER_H
#define HAKMEM_ACE_CONTROLLER_H

#include <stdint.h>

#include "hakmem.h"
#include "metrics.h"
#include "ucb1.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Candidate tables (SPEC §2), ascending. */
#define HKM_ACE_N_TLS_CAP 8
#define HKM_ACE_N_DRAIN 6
#define HKM_ACE_N_RELEASE 4
#define HKM_ACE_N_DIET 5
#define HKM_ACE_N_BUNDLE 4
extern const uint32_t hkm_ace_tls_cap_candidates[HKM_ACE_N_TLS_CAP];  /* 4 .. 512 */
extern const uint32_t hkm_ace_drain_candidates[HKM_ACE_N_DRAIN];      /* 32 .. 1024 */
extern const uint32_t hkm_ace_release_candidates[HKM_ACE_N_RELEASE];  /* 1 2 4 8 */
extern const double hkm_ace_diet_candidates[HKM_ACE_N_DIET];          /* 0.5 .. 1.0 */
extern const uint32_t hkm_ace_bundle_candidates[HKM_ACE_N_BUNDLE];    /* 16 .. 128 */

struct hkm_ace_policy {
  /* fast loop */
  uint64_t backlog_hi;          /* blocks: "backlog up" at or above (1024) */
  uint64_t backlog_lo;          /* blocks: calm at or below (256) */
  double llc_up_ratio;          /* "LLC up": rate > baseline * (1 + this) (0.20) */
  double llc_calm_ratio;        /* calm: rate <= baseline * (1 + this) (0.05) */
  double llc_floor;             /* rates below this are calm (0.01) */
  double mutex_up_ns_per_sec;   /* "mutex wait up" at or above (1e6: 0.1%) */
  double mutex_up_waits_per_sec; /* ... in at least this many waits a second (100) */
  uint64_t diet_min_cached_bytes; /* classes caching less are not dieted (64 KiB) */
  unsigned restore_after;       /* calm ticks before a restoring step (4) */
  uint32_t bundle_default;      /* the allocator's bundle width (32) */
  /* slow loop */
  double frag_lo;               /* live/reserved below this: fragmented (0.5) */
  double frag_calm;             /* ... at or above this: calm (0.7) */
  uint32_t release_unit_pages;  /* pages a partial-release unit scavenges (256) */
  uint64_t frag_min_reserved;   /* ... with at least this reserved (16 MiB) */
  double rss_up_ratio;          /* RSS growth over its reference (0.25) */
  uint64_t rss_up_min_bytes;    /* ... of at least this much (32 MiB) */
  uint64_t scavenge_budget_ns;  /* longest scavenge (5 ms) */
  /* safety guards */
  uint64_t max_p99_ns;          /* HAKMEM_ACE_MAX_P99_LAT_NS */
  uint64_t max_rss_bytes;       /* HAKMEM_ACE_MAX_RSS_MB */
  double max_cpu_percent;       /* HAKMEM_ACE_MAX_CPU_PERCENT */
  /* learning */
  double ucb_c;                 /* UCB1 bonus (sqrt 2) */
  double w_llc, w_lock, w_backlog, w_frag; /* reward penalties (0.2 0.1 0.2 0.1) */
};

/* The defaults in the comments above; guards at the SPEC's defaults. */
void hkm_ace_policy_default(struct hkm_ace_policy *p);

/* RELEASE is process-wide (cls -1): hkm_set_release_pages, 0 = off. */
enum hkm_ace_knob {
  HKM_ACE_KNOB_TLS_CAP,
  HKM_ACE_KNOB_DRAIN,
  HKM_ACE_KNOB_BUNDLE,
  HKM_ACE_KNOB_RELEASE,
};

enum hkm_ace_reason {
  HKM_ACE_BECAUSE_BACKLOG,   /* remote backlog up */
  HKM_ACE_BECAUSE_LLC,       /* LLC misses up (diet) */
  HKM_ACE_BECAUSE_MUTEX,     /* mutex wait up */
  HKM_ACE_BECAUSE_CALM,      /* stable: restoring */
  HKM_ACE_BECAUSE_GUARD,     /* safety guard: back to default */
  HKM_ACE_BECAUSE_FRAG,      /* fragmentation up: partial release */
  HKM_ACE_BECAUSE_RSS,       /* RSS up: scavenge */
};

enum hkm_ace_guard {
  HKM_ACE_GUARD_NONE,
  HKM_ACE_GUARD_P99,
  HKM_ACE_GUARD_RSS,
  HKM_ACE_GUARD_CPU,
};

enum hkm_ace_action_kind { HKM_ACE_SET_KNOB, HKM_ACE_SCAVENGE };

struct hkm_ace_action {
  enum hkm_ace_action_kind kind;
  enum hkm_ace_knob knob; /* SET_KNOB */
  int cls;                /* SET_KNOB */
  uint32_t from, to;      /* SET_KNOB */
  enum hkm_ace_reason reason;
  double signal;          /* what fired: backlog blocks, LLC rate, mutex ns/s,
                             live/reserved, RSS bytes */
  double baseline;        /* what signal was compared with: the LLC
                             baseline, the RSS reference */
  double factor;          /* diet factor (LLC) */
  unsigned calm_ticks;    /* CALM */
  uint64_t budget_ns;     /* SCAVENGE */
  uint32_t release_pages; /* SCAVENGE for FRAG: the arm's page units */
  uint64_t max_pages;     /* SCAVENGE: page limit, 0 = none */
};

#define HKM_ACE_MAX_ACTIONS (3 * HAK_NUM_CLASSES + 2)

struct hkm_ace_decision {
  unsigned n;
  struct hkm_ace_action actions[HKM_ACE_MAX_ACTIONS];
  enum hkm_ace_guard tripped; /* the guard that stopped ACE on this tick */
  double guard_value, guard_limit;
};

/* One class's knobs as ACE last set them, with their defaults (the values
 * found when ACE started), the rules' memory and the class's bandits. */
struct hkm_ace_class {
  uint32_t tls_default, tls_cap;
  uint32_t drain_default, drain;
  uint32_t bundle_default, bundle;
  uint64_t prev_backlog;
  unsigned drain_calm, tls_calm, bundle_calm; /* consecutive calm ticks */
  int drain_arm, diet_arm, bundle_arm;        /* pulled last tick, or -1 */
  struct hkm_ace_ucb1_bandit drain_bandit, diet_bandit, bundle_bandit;
};

struct hkm_ace_controller {
  struct hkm_ace_policy policy;
  struct hkm_ace_class cls[HAK_NUM_CLASSES];
  struct hkm_ace_ucb1_bandit release_bandit; /* process-wide: scavenge is */
  int release_arm;
  uint32_t release_default, release; /* page-release knob (0 = off) */
  unsigned release_calm;             /* consecutive calm slow ticks */
  double frag_min;   /* lowest live/reserved of the ticks since the last
                        slow tick (those with frag_min_reserved reserved) */
  int frag_seen;     /* ... and whether there was one */
  double ops_ref;          /* moving average of ops/s (reward reference) */
  double llc_base;         /* moving average of calm LLC rates */
  int llc_base_set;
  uint64_t rss_base;       /* lowest slow-tick RSS since the last RSS
                              scavenge: what "RSS up" is measured from */
  int rss_base_set;
  uint64_t ticks;
  int stopped;             /* a guard tripped: no more decisions */
  enum hkm_ace_guard stopped_by;
};

/* Defaults per class (the knob values when ACE starts). */
void hkm_ace_controller_init(struct hkm_ace_controller *ctl, const struct hkm_ace_policy *p,
                             const uint32_t tls_default[HAK_NUM_CLASSES],
                             const uint32_t drain_default[HAK_NUM_CLASSES]);
/* One tick (slow = 1 also runs the slow loop): fills *out. */
void hkm_ace_controller_tick(struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                             int slow, struct hkm_ace_decision *out);
void hkm_ace_controller_destroy(struct hkm_ace_controller *ctl);
/* The allocator's own values of the knobs the controller does not take
 * from init: bundle widths per class and the page-release setting.  Call
 * after init, before the first tick. */
void hkm_ace_controller_set_defaults(struct hkm_ace_controller *ctl,
                                     const uint32_t bundle_default[HAK_NUM_CLASSES],
                                     uint32_t release_default);

/* The reward of class cls's last move, given the sample that followed it. */
double hkm_ace_reward(const struct hkm_ace_controller *ctl, const struct hkm_ace_sample *s,
                      int cls);

/* The next value from `from` towards `target` along an ascending table:
 * the nearest candidate strictly between, else target itself. */
uint32_t hkm_ace_step_toward(uint32_t from, uint32_t target, const uint32_t *table, unsigned n);

#ifdef __cplusplus
}
#endif

#endif
