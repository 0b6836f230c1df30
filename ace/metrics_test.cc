// ACE's observations (metrics.h) in this process: operation counts from
// hak_stats deltas, the remote backlog per class, the fragmentation ratio,
// RSS, the latency probe, the collecting thread's CPU share, and the LLC
// rate with its one-time notice where the kernel has no counters.

#include "metrics.h"

#include <string.h>
#include <time.h>

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "log.h"
#include "allocator/test_support.h"

namespace {

constexpr hakmem_test::Probe kProbe = {"ACE_METRICS_TEST_PROBE",
                                       "AceMetricsProbe.DISABLED_Child"};

// Metrics live in static storage, as in ACE (the struct is large).
hkm_ace_metrics g_metrics;
hkm_ace_sample g_sample;

TEST(AceMetrics, CountsTheIntervalsOperations) {
  hkm_ace_metrics_init(&g_metrics);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);  // runs the probe once
  const size_t size = 112;
  const int cls = hak_size_class(size);
  const int n = 20000;
  std::vector<void*> v(n);
  for (void*& p : v) p = malloc(size);
  for (void* p : v) free(p);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  // The probe's own mallocs and frees are not counted as the program's.
  EXPECT_GE(g_sample.class_ops[cls], 2u * n);
  EXPECT_LT(g_sample.class_ops[cls], 2u * n + 1000);
  EXPECT_GT(g_sample.interval_s, 0.0);
  EXPECT_GE(g_sample.ops_per_sec, 2.0 * n / g_sample.interval_s * 0.999);
  hkm_ace_metrics_destroy(&g_metrics);
}

// Memory returned to the OS in the interval, whoever returned it: here a
// thread with page release on, freeing 9 blocks in 10.
TEST(AceMetrics, CountsMemoryReleasedInTheInterval) {
  hkm_ace_metrics_init(&g_metrics);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  std::thread t([] {
    hkm_set_release_pages(1);
    std::vector<void*> v(20000);
    for (void*& p : v) p = memset(malloc(2000), 1, 2000);
    for (size_t i = 0; i < v.size(); i++)
      if (i % 10) free(v[i]);
    for (size_t i = 0; i < v.size(); i += 10) free(v[i]);
  });
  t.join();
  hkm_set_release_pages(0);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_GE(g_sample.released_bytes, 4u << 20);  // of ~40 MB, most of it
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_EQ(g_sample.released_bytes, 0u);  // a delta, not a total
  hkm_ace_metrics_destroy(&g_metrics);
}

TEST(AceMetrics, QuietIntervalCountsNothing) {
  hkm_ace_metrics_init(&g_metrics);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  uint64_t total = 0;
  for (uint64_t x : g_sample.class_ops) total += x;
  EXPECT_LT(total, 100u) << "only the probe ran, and it is subtracted";
  hkm_ace_metrics_destroy(&g_metrics);
}

TEST(AceMetrics, RemoteBacklogPerClass) {
  const size_t size = 704;  // a class nothing else here uses
  const int cls = hak_size_class(size);
  const uint32_t threshold = hkm_tiny_get_drain_threshold(cls);
  const int n = static_cast<int>(threshold) / 2;  // stays below: nobody drains
  std::vector<void*> v(n);
  for (void*& p : v) p = malloc(size);
  hkm_ace_metrics_init(&g_metrics);
  std::thread([&] {
    for (void* p : v) free(p);  // remote frees: this thread owns no slab of them
  }).join();
  // Snapshot after snapshot with no remote free between, the backlog is
  // still there: only a walk that found none lets later snapshots skip
  // theirs (stats.c).  (Before the collect: its probe allocates from the
  // busiest classes, cls among them, and that refill drains.)
  for (int i = 0; i < 2; i++) {
    hak_stats st;
    hak_stats_get(&st);
    EXPECT_GE(st.cls[cls].remote_backlog, static_cast<uint64_t>(n)) << "snapshot " << i;
  }
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_GE(g_sample.remote_backlog[cls], static_cast<uint64_t>(n));
  EXPECT_EQ(g_sample.remote_backlog[cls + 1], 0u);
  hkm_ace_metrics_destroy(&g_metrics);
}

TEST(AceMetrics, FragmentationRatioAndRss) {
  hkm_ace_metrics_init(&g_metrics);
  std::vector<void*> v(50000);
  for (void*& p : v) p = malloc(256);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_GE(g_sample.live_bytes, 50000u * 256);
  EXPECT_LE(g_sample.live_bytes, g_sample.reserved_bytes);
  EXPECT_GT(g_sample.fragmentation_ratio, 0.0);
  EXPECT_LE(g_sample.fragmentation_ratio, 1.0);
  EXPECT_DOUBLE_EQ(g_sample.fragmentation_ratio,
                   static_cast<double>(g_sample.live_bytes) / g_sample.reserved_bytes);
  EXPECT_GT(g_sample.rss_bytes, 50000u * 256);
  const double full = g_sample.fragmentation_ratio;
  // Free every other block: live halves, reserved stays.
  for (size_t i = 0; i < v.size(); i += 2) free(v[i]);
  hakmem_test::Escape(v.data());
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_LT(g_sample.fragmentation_ratio, full);
  for (size_t i = 1; i < v.size(); i += 2) free(v[i]);
  hkm_ace_metrics_destroy(&g_metrics);
}

TEST(AceMetrics, ProbeP99AndNoMutexSource) {
  hkm_ace_metrics_init(&g_metrics);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_GT(g_sample.p99_alloc_ns, 0u);
  EXPECT_LT(g_sample.p99_alloc_ns, 1000000000u);
  EXPECT_GE(g_sample.mutex_wait_ns_per_sec, 0.0);  // nothing contends here
  if (g_metrics.llc.miss_fd < 0) {
    EXPECT_EQ(g_sample.llc_miss_rate, 0.0);
  }
  EXPECT_GE(g_sample.llc_miss_rate, 0.0);
  EXPECT_LE(g_sample.llc_miss_rate, 1.0);
  hkm_ace_metrics_destroy(&g_metrics);
}

uint64_t ThreadCpuNs() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000u + static_cast<uint64_t>(t.tv_nsec);
}

TEST(AceMetrics, CpuShareOfTheCollectingThread) {
  hkm_ace_metrics_init(&g_metrics);
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_EQ(g_sample.ace_cpu_percent, 0.0);  // first reading
  const uint64_t start = ThreadCpuNs();
  volatile uint64_t spin = 0;
  while (ThreadCpuNs() - start < 30000000) spin = spin + 1;  // 30 ms of CPU
  // Reported once the window is full: a share of a few intervals is mostly
  // start-up (first probe allocations, page faults).
  for (int i = 1; i < HKM_ACE_CPU_WINDOW; ++i) {
    hkm_ace_metrics_collect(&g_metrics, &g_sample);
    EXPECT_EQ(g_sample.ace_cpu_percent, 0.0) << "interval " << i;
  }
  hkm_ace_metrics_collect(&g_metrics, &g_sample);
  EXPECT_GT(g_sample.ace_cpu_percent, 1.0);
  EXPECT_LE(g_sample.ace_cpu_percent, 101.0);
  hkm_ace_metrics_destroy(&g_metrics);
}

TEST(AceMetrics, Quantile) {
  std::vector<uint64_t> v;
  for (uint64_t i = 100; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(hkm_ace_quantile(v.data(), 100, 0.99), 99u);
  EXPECT_EQ(hkm_ace_quantile(v.data(), 100, 0.5), 50u);
  std::vector<uint64_t> w(128, 10);
  w[7] = 1000000;  // one preempted sample
  EXPECT_EQ(hkm_ace_quantile(w.data(), 128, 0.99), 10u);
  w[9] = 2000000;  // two: the second-largest is the p99 of 128
  EXPECT_EQ(hkm_ace_quantile(w.data(), 128, 0.99), 1000000u);
  EXPECT_EQ(hkm_ace_quantile(w.data(), 0, 0.99), 0u);
}

// Where the kernel has no hardware counters the LLC rate is 0.0 and one
// info line - per process, however often the metrics start - says so.
TEST(AceMetrics, LlcUnavailableIsSaidOnce) {
  hakmem_test::Child c = hakmem_test::RunProbe(kProbe, "llc", {});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  int lines = 0;
  for (size_t at = c.err.find("LLC miss rate unavailable"); at != std::string::npos;
       at = c.err.find("LLC miss rate unavailable", at + 1))
    ++lines;
  if (c.out.find("llc=available") != std::string::npos) {
    EXPECT_EQ(lines, 0) << c.Describe();
  } else {
    EXPECT_EQ(lines, 1) << c.Describe();
    EXPECT_NE(c.err.find("[ACE] LLC miss rate unavailable (perf_event_open: "),
              std::string::npos)
        << c.Describe();
    EXPECT_NE(c.out.find("rate=0"), std::string::npos) << c.Describe();
  }
}

TEST(AceMetricsProbe, DISABLED_Child) {
  const char* probe = getenv(kProbe.variable);
  if (probe == nullptr) GTEST_SKIP() << "runs only as test_ace_metrics's child";
  hkm_ace_log_set(HKM_ACE_LOG_INFO, 2);
  for (int i = 0; i < 3; ++i) {
    hkm_ace_metrics_init(&g_metrics);
    hkm_ace_metrics_collect(&g_metrics, &g_sample);
    printf("llc=%s rate=%g\n", g_metrics.llc.miss_fd >= 0 ? "available" : "unavailable",
           g_sample.llc_miss_rate);
    hkm_ace_metrics_destroy(&g_metrics);
  }
}

}  // namespace
