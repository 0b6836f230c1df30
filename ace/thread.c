/* The ACE thread and its life cycle (ace.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ace.h"
#include "apply.h"
#include "controller.h"
#include "hakmem.h"
#include "log.h"
#include "metrics.h"

#define STOP_WAIT_NS 2000000000ull /* how long exit waits for the thread */

/* Everything ACE holds, in static storage: starting ACE allocates nothing
 * of its own. */
static struct {
  pthread_mutex_t mu;  /* guards stop; the thread waits on cv under it */
  pthread_cond_t cv;   /* CLOCK_MONOTONIC */
  int stop;
  int running;         /* the thread exists in this process */
  int started;         /* hkm_ace_start ran in this process */
  pid_t pid;           /* process that started the thread */
  pthread_t thread;
  struct hkm_ace_config cfg;
  uint32_t tls_default[HAK_NUM_CLASSES], drain_default[HAK_NUM_CLASSES];
  uint32_t bundle_default[HAK_NUM_CLASSES], release_default;
  uint64_t cpu_ns, wall_ns; /* the thread's CPU and wall time, at its end */
  struct hkm_ace_metrics metrics;
  struct hkm_ace_controller ctl;
  struct hkm_ace_decision decision;
  struct hkm_ace_sample sample;
} ace = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void to_timespec(uint64_t ns, struct timespec *t) {
  t->tv_sec = (time_t)(ns / 1000000000u);
  t->tv_nsec = (long)(ns % 1000000000u);
}

static void log_sample(const struct hkm_ace_sample *s, uint64_t tick, int slow) {
  if (hkm_ace_log_level() < HKM_ACE_LOG_DEBUG) return;
  int worst = 0;
  for (int c = 1; c < HAK_NUM_CLASSES; c++)
    if (s->remote_backlog[c] > s->remote_backlog[worst]) worst = c;
  hkm_ace_log(HKM_ACE_LOG_DEBUG,
              "tick %llu%s: %.0f ops/s, LLC miss rate %.3f, max remote backlog %llu "
              "(class %d), live/reserved %.2f, RSS %.1f MiB, probe p99 %llu ns, ACE CPU %.2f%%",
              (unsigned long long)tick, slow ? " (slow)" : "", s->ops_per_sec, s->llc_miss_rate,
              (unsigned long long)s->remote_backlog[worst], worst, s->fragmentation_ratio,
              (double)s->rss_bytes / 1048576.0, (unsigned long long)s->p99_alloc_ns,
              s->ace_cpu_percent);
}

static uint64_t thread_cpu_ns(void) {
  struct timespec t;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return 0;
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *ace_main(void *arg) {
  (void)arg;
  const uint64_t started = hkm_ace_now_ns();
  const uint64_t fast = ace.cfg.fast_interval_ms * 1000000ull;
  const uint64_t slow = ace.cfg.slow_interval_ms * 1000000ull;
  uint64_t now = hkm_ace_now_ns();
  uint64_t next_fast = now + fast, next_slow = now + slow;

  pthread_mutex_lock(&ace.mu);
  while (!ace.stop) {
    struct timespec until;
    to_timespec(next_fast, &until);
    if (ace.ctl.stopped) pthread_cond_wait(&ace.cv, &ace.mu);
    else if (pthread_cond_timedwait(&ace.cv, &ace.mu, &until) != ETIMEDOUT) continue;
    if (ace.stop || ace.ctl.stopped) continue;
    pthread_mutex_unlock(&ace.mu);

    /* observe -> decide -> apply, outside the lock */
    hkm_ace_metrics_collect(&ace.metrics, &ace.sample);
    now = hkm_ace_now_ns();
    int is_slow = now >= next_slow;
    if (is_slow) next_slow = now + slow;
    hkm_ace_controller_tick(&ace.ctl, &ace.sample, is_slow, &ace.decision);
    log_sample(&ace.sample, ace.ctl.ticks, is_slow);
    hkm_ace_apply(&ace.decision);
    if (ace.ctl.stopped) hkm_ace_metrics_destroy(&ace.metrics);

    next_fast += fast;
    now = hkm_ace_now_ns();
    if (next_fast <= now) next_fast = now + fast; /* a slow tick: skip, don't catch up */
    pthread_mutex_lock(&ace.mu);
  }
  /* Read by hkm_ace_stop after the join: the thread's whole CPU cost, which
   * its own clock can tell only from inside. */
  ace.cpu_ns = thread_cpu_ns();
  ace.wall_ns = hkm_ace_now_ns() - started;
  pthread_mutex_unlock(&ace.mu);
  return NULL;
}

/* ---- fork: the child runs without ACE (ace.h) ---------------------------- */

static void fork_prepare(void) { pthread_mutex_lock(&ace.mu); }
static void fork_parent(void) { pthread_mutex_unlock(&ace.mu); }
static void fork_child(void) {
  /* This thread took mu in fork_prepare, so it may release it. */
  pthread_mutex_unlock(&ace.mu);
  if (!ace.running) return;
  ace.running = 0;
  /* The setters are atomic stores: safe in a child of a threaded parent. */
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    if (hkm_tiny_get_tls_capacity(c) != ace.tls_default[c])
      hkm_tiny_set_tls_capacity(c, ace.tls_default[c]);
    if (hkm_tiny_get_drain_threshold(c) != ace.drain_default[c])
      hkm_tiny_set_drain_threshold(c, ace.drain_default[c]);
    if (hkm_tiny_get_bundle_width(c) != ace.bundle_default[c])
      hkm_tiny_set_bundle_width(c, ace.bundle_default[c]);
  }
  if (hkm_get_release_pages() != ace.release_default) hkm_set_release_pages(ace.release_default);
}

static void at_exit(void) { hkm_ace_stop(); }

/* ---- start / stop --------------------------------------------------------- */

int hkm_ace_running(void) { return ace.running && ace.pid == getpid(); }

int hkm_ace_start(const struct hkm_ace_config *cfg) {
  if (ace.started) return 0;
  ace.started = 1;
  ace.cfg = *cfg;
  hkm_ace_log_set((int)cfg->log_level, 2);

  struct hkm_ace_policy policy;
  hkm_ace_policy_default(&policy);
  policy.max_p99_ns = cfg->max_p99_lat_ns;
  policy.max_rss_bytes = cfg->max_rss_mb << 20;
  policy.max_cpu_percent = (double)cfg->max_cpu_percent;
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    ace.tls_default[c] = hkm_tiny_get_tls_capacity(c);
    ace.drain_default[c] = hkm_tiny_get_drain_threshold(c);
  }
  for (int c = 0; c < HAK_NUM_CLASSES; c++) ace.bundle_default[c] = hkm_tiny_get_bundle_width(c);
  ace.release_default = hkm_get_release_pages();
  hkm_ace_controller_init(&ace.ctl, &policy, ace.tls_default, ace.drain_default);
  hkm_ace_controller_set_defaults(&ace.ctl, ace.bundle_default, ace.release_default);
  hkm_ace_metrics_init(&ace.metrics);

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ace.cv, &ca);
  pthread_condattr_destroy(&ca);

  /* The thread inherits this mask: every signal blocked, so none meant for
   * the application is delivered to ACE. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&ace.thread, NULL, ace_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    hkm_ace_log(HKM_ACE_LOG_INFO, "not started: pthread_create: %s", strerror(rc));
    hkm_ace_metrics_destroy(&ace.metrics);
    return -1;
  }
  pthread_setname_np(ace.thread, "hakmem-ace");
  ace.pid = getpid();
  ace.running = 1;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  atexit(at_exit);
  hkm_ace_log(HKM_ACE_LOG_INFO,
              "Started: fast loop %llu ms, slow loop %llu ms; guards: p99 %llu ns, RSS %llu MiB, "
              "CPU %llu%%",
              (unsigned long long)cfg->fast_interval_ms, (unsigned long long)cfg->slow_interval_ms,
              (unsigned long long)cfg->max_p99_lat_ns, (unsigned long long)cfg->max_rss_mb,
              (unsigned long long)cfg->max_cpu_percent);
  return 0;
}

/* At info level, one line per knob left away from its default, e.g.
 * "Final drain threshold[3]: 32 (default 64)", then a count; ab_ace reads
 * these lines. */
static void log_final_knobs(void) {
  if (hkm_ace_log_level() < HKM_ACE_LOG_INFO) return;
  unsigned moved = 0;
  for (int c = 0; c < HAK_NUM_CLASSES; c++) {
    uint32_t tls = hkm_tiny_get_tls_capacity(c), drain = hkm_tiny_get_drain_threshold(c);
    if (tls != ace.tls_default[c]) {
      hkm_ace_log(HKM_ACE_LOG_INFO, "Final TLS cap[%d]: %u (default %u)", c, tls,
                  ace.tls_default[c]);
      moved++;
    }
    if (drain != ace.drain_default[c]) {
      hkm_ace_log(HKM_ACE_LOG_INFO, "Final drain threshold[%d]: %u (default %u)", c, drain,
                  ace.drain_default[c]);
      moved++;
    }
    uint32_t bundle = hkm_tiny_get_bundle_width(c);
    if (bundle != ace.bundle_default[c]) {
      hkm_ace_log(HKM_ACE_LOG_INFO, "Final bundle width[%d]: %u (default %u)", c, bundle,
                  ace.bundle_default[c]);
      moved++;
    }
  }
  uint32_t release = hkm_get_release_pages();
  if (release != ace.release_default) {
    hkm_ace_log(HKM_ACE_LOG_INFO, "Final page release: %u (default %u)", release,
                ace.release_default);
    moved++;
  }
  hkm_ace_log(HKM_ACE_LOG_INFO, "Final knobs: %u away from their defaults", moved);
}

void hkm_ace_stop(void) {
  if (!hkm_ace_running()) return;
  pthread_mutex_lock(&ace.mu);
  ace.stop = 1;
  pthread_cond_signal(&ace.cv);
  pthread_mutex_unlock(&ace.mu);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline); /* pthread_timedjoin_np's clock */
  uint64_t ns = (uint64_t)deadline.tv_sec * 1000000000u + (uint64_t)deadline.tv_nsec + STOP_WAIT_NS;
  to_timespec(ns, &deadline);
  int rc = pthread_timedjoin_np(ace.thread, NULL, &deadline);
  ace.running = 0;
  if (rc != 0) {
    hkm_ace_log(HKM_ACE_LOG_INFO, "thread did not stop within 2 s; leaving it");
    pthread_detach(ace.thread);
    return;
  }
  if (!ace.ctl.stopped) hkm_ace_metrics_destroy(&ace.metrics);
  hkm_ace_log(HKM_ACE_LOG_INFO, "Stopped after %llu ticks", (unsigned long long)ace.ctl.ticks);
  hkm_ace_log(HKM_ACE_LOG_INFO, "Thread CPU: %.3f ms in %.3f s (%.3f%% of a core)",
              (double)ace.cpu_ns / 1e6, (double)ace.wall_ns / 1e9,
              ace.wall_ns ? 100.0 * (double)ace.cpu_ns / (double)ace.wall_ns : 0.0);
  log_final_knobs();
}

/* ---- start at process start, when enabled ---------------------------------- */

static const char *env_get(const char *name) { return getenv(name); }

__attribute__((constructor)) static void hkm_ace_constructor(void) {
  struct hkm_ace_config cfg;
  hkm_ace_env_load(&cfg, env_get, 2);
  if (cfg.enabled) hkm_ace_start(&cfg);
}
