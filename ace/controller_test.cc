// The controller's decisions (controller.h) on synthetic metric sequences:
// the controller is a pure function of its samples, so each rule, the
// hysteresis of restoring, the bandits' part and every safety guard can be
// driven tick by tick.  Also the log text of decisions (apply.h).

#include "controller.h"

#include <string>
#include <vector>

#include "apply.h"
#include "gtest/gtest.h"

namespace {

constexpr int kClass = 5;

struct Fixture {
  hkm_ace_policy policy;
  uint32_t tls[HAK_NUM_CLASSES];
  uint32_t drain[HAK_NUM_CLASSES];
  hkm_ace_controller ctl;
  hkm_ace_decision d;

  explicit Fixture(uint32_t drain_default = 64, uint32_t tls_default = 32) {
    hkm_ace_policy_default(&policy);
    for (int c = 0; c < HAK_NUM_CLASSES; ++c) {
      tls[c] = tls_default;
      drain[c] = drain_default;
    }
    Init();
  }
  void Init() { hkm_ace_controller_init(&ctl, &policy, tls, drain); }
  const hkm_ace_decision& Tick(const hkm_ace_sample& s, bool slow = false) {
    hkm_ace_controller_tick(&ctl, &s, slow ? 1 : 0, &d);
    return d;
  }
};

// A quiet, healthy process.
hkm_ace_sample Calm() {
  hkm_ace_sample s{};
  s.interval_s = 0.5;
  s.ops_per_sec = 1e6;
  s.class_ops[kClass] = 500000;
  s.fragmentation_ratio = 0.9;
  s.live_bytes = 90 << 20;
  s.reserved_bytes = 100 << 20;
  s.rss_bytes = 200ull << 20;
  s.p99_alloc_ns = 1000;
  s.ace_cpu_percent = 0.5;
  return s;
}

hkm_ace_sample WithBacklog(uint64_t blocks, int cls = kClass) {
  hkm_ace_sample s = Calm();
  s.remote_backlog[cls] = blocks;
  return s;
}

hkm_ace_sample WithLlc(double rate) {
  hkm_ace_sample s = Calm();
  s.llc_miss_rate = rate;
  for (int c = 0; c < HAK_NUM_CLASSES; ++c) s.tls_cached_bytes[c] = 1 << 20;
  return s;
}

// The knob actions of a decision, as "knob cls from->to".
std::vector<std::string> Moves(const hkm_ace_decision& d) {
  std::vector<std::string> v;
  for (unsigned i = 0; i < d.n; ++i) {
    const hkm_ace_action& a = d.actions[i];
    if (a.kind != HKM_ACE_SET_KNOB) continue;
    const char* k = a.knob == HKM_ACE_KNOB_TLS_CAP   ? "tls"
                    : a.knob == HKM_ACE_KNOB_DRAIN   ? "drain"
                    : a.knob == HKM_ACE_KNOB_BUNDLE  ? "bundle"
                                                     : "release";
    v.push_back(std::string(k) + " " + std::to_string(a.cls) + " " + std::to_string(a.from) +
                "->" + std::to_string(a.to));
  }
  return v;
}

using Strings = std::vector<std::string>;

// ------------------------------------------------------------ fast loop --

TEST(Controller, CalmProcessIsLeftAlone) {
  Fixture f;
  for (int t = 0; t < 20; ++t) {
    EXPECT_EQ(f.Tick(Calm()).n, 0u) << "tick " << t;
  }
  EXPECT_EQ(f.ctl.ticks, 20u);
  EXPECT_FALSE(f.ctl.stopped);
}

TEST(Controller, BacklogUpLowersTheDrainThreshold) {
  Fixture f(/*drain_default=*/1024);
  // Rising backlog: each tick steps down to the nearest untried lower
  // candidate (the drain bandit tries arms nearest first).
  EXPECT_EQ(Moves(f.Tick(WithBacklog(2000))), Strings{"drain 5 1024->512"});
  EXPECT_EQ(f.d.actions[0].reason, HKM_ACE_BECAUSE_BACKLOG);
  EXPECT_DOUBLE_EQ(f.d.actions[0].signal, 2000);
  EXPECT_EQ(Moves(f.Tick(WithBacklog(3000))), Strings{"drain 5 512->256"});
  EXPECT_EQ(Moves(f.Tick(WithBacklog(3000))), Strings{"drain 5 256->128"});
  EXPECT_EQ(f.ctl.cls[kClass].drain, 128u);
  // Other classes untouched.
  EXPECT_EQ(f.ctl.cls[kClass + 1].drain, 1024u);
}

TEST(Controller, BacklogBelowHighWaterOrFallingDoesNotLower) {
  Fixture f(1024);
  EXPECT_EQ(f.Tick(WithBacklog(1023)).n, 0u);  // below backlog_hi
  EXPECT_EQ(Moves(f.Tick(WithBacklog(5000))), Strings{"drain 5 1024->512"});
  EXPECT_EQ(f.Tick(WithBacklog(4000)).n, 0u);  // high but falling: drains are working
}

TEST(Controller, NoLowerCandidateNoMove) {
  Fixture f(/*drain_default=*/32);
  EXPECT_EQ(f.Tick(WithBacklog(5000)).n, 0u);
  EXPECT_EQ(f.ctl.cls[kClass].drain, 32u);
}

TEST(Controller, StableRestoresWithHysteresis) {
  Fixture f(1024);
  f.Tick(WithBacklog(5000));  // 1024 -> 512
  f.Tick(WithBacklog(6000));  // 512 -> 256
  ASSERT_EQ(f.ctl.cls[kClass].drain, 256u);
  const unsigned n = f.policy.restore_after;  // 4
  // Calm must last restore_after ticks before one step back.
  for (unsigned t = 1; t < n; ++t) EXPECT_EQ(f.Tick(WithBacklog(0)).n, 0u) << "calm tick " << t;
  EXPECT_EQ(Moves(f.Tick(WithBacklog(0))), Strings{"drain 5 256->512"});
  EXPECT_EQ(f.d.actions[0].reason, HKM_ACE_BECAUSE_CALM);
  EXPECT_EQ(f.d.actions[0].calm_ticks, n);
  // A backlog between the low and the high mark is neither: the count
  // starts again.
  for (unsigned t = 1; t < n; ++t) EXPECT_EQ(f.Tick(WithBacklog(0)).n, 0u);
  EXPECT_EQ(f.Tick(WithBacklog(f.policy.backlog_lo + 1)).n, 0u);
  for (unsigned t = 1; t < n; ++t) EXPECT_EQ(f.Tick(WithBacklog(0)).n, 0u);
  EXPECT_EQ(Moves(f.Tick(WithBacklog(0))), Strings{"drain 5 512->1024"});
  // At the default: nothing more to restore.
  for (unsigned t = 0; t < 3 * n; ++t) EXPECT_EQ(f.Tick(WithBacklog(0)).n, 0u);
}

TEST(Controller, LlcUpShrinksTlsCapacityByTheDietFactor) {
  Fixture f(64, /*tls_default=*/32);
  EXPECT_EQ(f.Tick(WithLlc(0.05)).n, 0u);  // first reading: the baseline
  const hkm_ace_decision& d = f.Tick(WithLlc(0.10));
  ASSERT_GT(d.n, 0u);
  // Every class caching >= 64 KiB is dieted, gentlest factor first.
  EXPECT_EQ(d.actions[0].knob, HKM_ACE_KNOB_TLS_CAP);
  EXPECT_EQ(d.actions[0].reason, HKM_ACE_BECAUSE_LLC);
  EXPECT_DOUBLE_EQ(d.actions[0].factor, 0.9);
  EXPECT_EQ(d.actions[0].from, 32u);
  EXPECT_EQ(d.actions[0].to, 28u);  // floor(32 * 0.9)
  EXPECT_EQ(d.n, unsigned{HAK_NUM_CLASSES});
  // Still up: the next untried factor.
  const hkm_ace_decision& d2 = f.Tick(WithLlc(0.12));
  ASSERT_GT(d2.n, 0u);
  EXPECT_DOUBLE_EQ(d2.actions[0].factor, 0.75);
  EXPECT_EQ(d2.actions[0].to, 21u);  // floor(28 * 0.75)
}

TEST(Controller, DietSparesClassesThatCacheLittle) {
  Fixture f;
  hkm_ace_sample base = WithLlc(0.05), up = WithLlc(0.2);
  for (int c = 0; c < HAK_NUM_CLASSES; ++c) up.tls_cached_bytes[c] = c == 3 ? 1 << 20 : 1024;
  f.Tick(base);
  EXPECT_EQ(Moves(f.Tick(up)), Strings{"tls 3 32->28"});
}

TEST(Controller, DietNeverGoesBelowTheSmallestCandidate) {
  Fixture f(64, /*tls_default=*/5);
  f.Tick(WithLlc(0.05));
  double rate = 0.1;
  for (int t = 0; t < 10; ++t, rate *= 1.5) f.Tick(WithLlc(rate > 1 ? 1 : rate));
  EXPECT_EQ(f.ctl.cls[0].tls_cap, 4u);
}

TEST(Controller, LlcCalmRestoresTlsCapacity) {
  Fixture f(64, 256);
  f.Tick(WithLlc(0.05));
  f.Tick(WithLlc(0.10));  // 256 -> 230
  ASSERT_EQ(f.ctl.cls[0].tls_cap, 230u);
  for (unsigned t = 1; t < f.policy.restore_after; ++t) EXPECT_EQ(f.Tick(WithLlc(0.05)).n, 0u);
  const hkm_ace_decision& d = f.Tick(WithLlc(0.05));
  ASSERT_EQ(d.n, unsigned{HAK_NUM_CLASSES});
  EXPECT_EQ(d.actions[0].reason, HKM_ACE_BECAUSE_CALM);
  EXPECT_EQ(d.actions[0].to, 256u);
}

TEST(Controller, NoLlcCountersNoDiet) {
  Fixture f;
  for (int t = 0; t < 10; ++t) EXPECT_EQ(f.Tick(WithLlc(0.0)).n, 0u);
}

TEST(Controller, MutexWaitWidensBundles) {
  Fixture f;
  hkm_ace_sample s = Calm();
  s.mutex_wait_ns_per_sec = 5e6;
  s.mutex_waits_per_sec = 1000;
  EXPECT_EQ(Moves(f.Tick(s)), Strings{"bundle 5 32->64"});  // only the class in use
  EXPECT_EQ(f.d.actions[0].reason, HKM_ACE_BECAUSE_MUTEX);
  char text[256];
  EXPECT_EQ(hkm_ace_describe(&f.d.actions[0], text, sizeof text), HKM_ACE_LOG_INFO);
  EXPECT_EQ(std::string(text), "Adjusting bundle width[5]: 32 → 64 (mutex wait=5000000 ns/s)");
}

// A few long waits - a lock holder descheduled - are not contention: the
// bundles stay, and bundles already wide count the spell as calm.
TEST(Controller, FewLongWaitsLeaveBundlesAlone) {
  Fixture f;
  hkm_ace_sample s = Calm();
  s.mutex_wait_ns_per_sec = 40e6;  // 10 waits of 4 ms in a second
  s.mutex_waits_per_sec = 10;
  for (int t = 0; t < 5; ++t) EXPECT_EQ(Moves(f.Tick(s)), Strings{});
  hkm_ace_sample busy = s;
  busy.mutex_waits_per_sec = 1000;
  EXPECT_EQ(Moves(f.Tick(busy)), Strings{"bundle 5 32->64"});
  Strings moves;
  for (unsigned t = 0; t < f.policy.restore_after; ++t)
    for (const std::string& m : Moves(f.Tick(s))) moves.push_back(m);
  EXPECT_EQ(moves, Strings{"bundle 5 64->32"});
}

TEST(Controller, BundleDefaultsComeFromTheAllocator) {
  Fixture f;
  uint32_t bundle[HAK_NUM_CLASSES];
  for (int c = 0; c < HAK_NUM_CLASSES; ++c) bundle[c] = 8;
  hkm_ace_controller_set_defaults(&f.ctl, bundle, 0);
  hkm_ace_sample s = Calm();
  s.mutex_wait_ns_per_sec = 5e6;
  s.mutex_waits_per_sec = 1000;
  EXPECT_EQ(Moves(f.Tick(s)), Strings{"bundle 5 8->16"});  // first candidate above 8
  // Calm again: back to the allocator's 8, not the policy's 32.
  Strings moves;
  for (int t = 0; t < 10; ++t)
    for (const std::string& m : Moves(f.Tick(Calm()))) moves.push_back(m);
  EXPECT_EQ(moves, Strings{"bundle 5 16->8"});
}

// ------------------------------------------------------------ slow loop --

TEST(Controller, FragmentationUpReleasesPartially) {
  Fixture f;
  hkm_ace_sample s = Calm();
  s.fragmentation_ratio = 0.3;
  s.live_bytes = 30 << 20;
  s.reserved_bytes = 100 << 20;
  // The first tick that sees it turns page release on (runs of one page),
  // without waiting for the slow loop; only the slow loop scavenges.
  const hkm_ace_decision& fast = f.Tick(s, /*slow=*/false);
  EXPECT_EQ(Moves(fast), Strings{"release -1 0->1"});
  ASSERT_EQ(fast.n, 1u);
  char text[256];
  hkm_ace_describe(&fast.actions[0], text, sizeof text);
  EXPECT_EQ(std::string(text), "Adjusting page release: 0 → 1 (live/reserved=0.30)");
  const hkm_ace_decision& d = f.Tick(s, /*slow=*/true);
  ASSERT_EQ(d.n, 1u);  // the bandit's first arm is 1 page: the knob stays
  EXPECT_EQ(d.actions[0].kind, HKM_ACE_SCAVENGE);
  EXPECT_EQ(d.actions[0].reason, HKM_ACE_BECAUSE_FRAG);
  // First untried arm: 1 page unit = 1/8 of the 5 ms budget, one unit of
  // pages.
  EXPECT_EQ(d.actions[0].release_pages, 1u);
  EXPECT_EQ(d.actions[0].budget_ns, f.policy.scavenge_budget_ns / 8);
  EXPECT_EQ(d.actions[0].max_pages, f.policy.release_unit_pages);
  // The next slow tick tries the next arm; the previous one was rewarded.
  f.Tick(s, false);
  EXPECT_EQ(f.ctl.release_bandit.arms[0].pulls, 1u);
  const hkm_ace_decision& d2 = f.Tick(s, true);
  EXPECT_EQ(d2.actions[0].release_pages, 2u);
  EXPECT_EQ(d2.actions[0].max_pages, 2 * f.policy.release_unit_pages);
  // The arm sizes the scavenge only: threads keep returning every free page.
  EXPECT_EQ(Moves(d2), Strings{});
  EXPECT_EQ(f.ctl.release, 1u);
}

// A phased program's ratio swings from tick to tick: the slow loop judges
// the most fragmented tick since the last slow tick, not the one it lands
// on.
TEST(Controller, SlowLoopJudgesTheWorstTickSinceTheLastOne) {
  Fixture f;
  hkm_ace_sample low = Calm();
  low.fragmentation_ratio = 0.3;
  hkm_ace_sample high = Calm();
  high.fragmentation_ratio = 0.8;  // calm by itself
  f.Tick(low, false);
  const hkm_ace_decision& d = f.Tick(high, /*slow=*/true);
  ASSERT_EQ(d.n, 1u);
  EXPECT_EQ(d.actions[0].kind, HKM_ACE_SCAVENGE);
  EXPECT_EQ(d.actions[0].reason, HKM_ACE_BECAUSE_FRAG);
  EXPECT_DOUBLE_EQ(d.actions[0].signal, 0.3);
  // The window starts again after each slow tick: a calm one scavenges
  // nothing.
  f.Tick(high, false);
  EXPECT_EQ(f.Tick(high, true).n, 0u);
}

TEST(Controller, PageReleaseGoesOffAfterCalmSlowTicks) {
  Fixture f;
  hkm_ace_sample frag = Calm();
  frag.fragmentation_ratio = 0.3;
  EXPECT_EQ(Moves(f.Tick(frag, true)), Strings{"release -1 0->1"});
  // A calm slow tick right after a fragmented fast tick judges the window
  // fragmented: a partial release, and release stays on.
  f.Tick(frag, false);
  const hkm_ace_decision& d = f.Tick(Calm(), true);
  ASSERT_EQ(d.n, 1u);
  EXPECT_EQ(d.actions[0].reason, HKM_ACE_BECAUSE_FRAG);
  EXPECT_EQ(f.ctl.release_calm, 0u);
  // Between frag_lo and frag_calm: neither up nor calm, nothing moves.
  hkm_ace_sample between = Calm();
  between.fragmentation_ratio = 0.6;
  for (int t = 0; t < 6; ++t) EXPECT_EQ(Moves(f.Tick(between, true)), Strings{});
  // Calm for restore_after slow ticks (fast ticks do not count).
  for (unsigned t = 0; t + 1 < f.policy.restore_after; ++t) {
    EXPECT_EQ(Moves(f.Tick(Calm(), false)), Strings{});
    EXPECT_EQ(Moves(f.Tick(Calm(), true)), Strings{});
  }
  EXPECT_EQ(Moves(f.Tick(Calm(), true)), Strings{"release -1 1->0"});
  EXPECT_EQ(f.d.actions[0].reason, HKM_ACE_BECAUSE_CALM);
}

TEST(Controller, GuardTurnsPageReleaseOff) {
  Fixture f;
  hkm_ace_sample frag = Calm();
  frag.fragmentation_ratio = 0.3;
  f.Tick(frag, true);
  hkm_ace_sample hot = Calm();
  hot.ace_cpu_percent = 50;
  EXPECT_EQ(Moves(f.Tick(hot)), Strings{"release -1 1->0"});
  EXPECT_EQ(f.d.tripped, HKM_ACE_GUARD_CPU);
}

// A heap too small to matter: no scavenge, and release stays off, on fast
// ticks as on slow ones.
TEST(Controller, SmallHeapsAreNotScavengedForFragmentation) {
  Fixture f;
  hkm_ace_sample s = Calm();
  s.fragmentation_ratio = 0.1;
  s.live_bytes = 1 << 20;
  s.reserved_bytes = 10 << 20;  // below frag_min_reserved (16 MiB)
  for (int t = 0; t < 4; ++t) EXPECT_EQ(f.Tick(s, t % 2 == 1).n, 0u) << "tick " << t;
}

TEST(Controller, RssUpScavengesWithTheFullBudget) {
  Fixture f;
  hkm_ace_sample s = Calm();
  EXPECT_EQ(f.Tick(s, true).n, 0u);  // first slow tick: the baseline
  s.rss_bytes = 300ull << 20;        // +100 MiB, +50%
  const hkm_ace_decision& d = f.Tick(s, true);
  ASSERT_EQ(d.n, 1u);
  EXPECT_EQ(d.actions[0].kind, HKM_ACE_SCAVENGE);
  EXPECT_EQ(d.actions[0].reason, HKM_ACE_BECAUSE_RSS);
  EXPECT_EQ(d.actions[0].budget_ns, 5000000u);
  EXPECT_LE(d.actions[0].budget_ns, 5000000u);
  // Growth that is small in bytes or in ratio is not "up"...
  s.rss_bytes += 16ull << 20;
  EXPECT_EQ(f.Tick(s, true).n, 0u);
  // ... until it adds up: the reference is the lowest RSS since the last
  // scavenge, not the previous tick's.
  for (int t = 0; t < 4; ++t) {
    s.rss_bytes += 16ull << 20;  // 332, 348, 364, 380 MiB: past 300 * 1.25 at 380
    EXPECT_EQ(f.Tick(s, true).n, t == 3 ? 1u : 0u) << "RSS " << (s.rss_bytes >> 20) << " MiB";
  }
  // A fall lowers the reference.
  s.rss_bytes = 100ull << 20;
  EXPECT_EQ(f.Tick(s, true).n, 0u);
  s.rss_bytes = 140ull << 20;  // +40%, +40 MiB over 100
  EXPECT_EQ(f.Tick(s, true).n, 1u);
}

// --------------------------------------------------------- safety guards --

struct GuardCase {
  const char* name;
  void (*breach)(hkm_ace_sample*);
  hkm_ace_guard guard;
};

// By name: without it gtest prints the case's raw bytes, padding included,
// which memcheck rightly reports as uninitialised.
void PrintTo(const GuardCase& c, std::ostream* os) { *os << c.name; }

class Guard : public ::testing::TestWithParam<GuardCase> {};

TEST_P(Guard, TripsRestoresDefaultsAndStops) {
  Fixture f(1024, 32);
  f.Tick(WithLlc(0.05));
  hkm_ace_sample moved = WithLlc(0.10);
  moved.remote_backlog[kClass] = 5000;
  f.Tick(moved);  // drain 1024 -> 512 for kClass, TLS diet everywhere
  ASSERT_EQ(f.ctl.cls[kClass].drain, 512u);
  ASSERT_EQ(f.ctl.cls[kClass].tls_cap, 28u);

  hkm_ace_sample s = WithLlc(0.10);  // would diet again...
  s.remote_backlog[kClass] = 9000;   // ... and lower the threshold again
  GetParam().breach(&s);
  const hkm_ace_decision d = f.Tick(s);  // a copy: later ticks reuse f.d
  EXPECT_EQ(d.tripped, GetParam().guard);
  EXPECT_GT(d.guard_value, d.guard_limit);
  EXPECT_TRUE(f.ctl.stopped);
  EXPECT_EQ(f.ctl.stopped_by, GetParam().guard);
  // Every moved knob goes back to its default, nothing else moves.
  ASSERT_EQ(d.n, unsigned{HAK_NUM_CLASSES} + 1);
  for (unsigned i = 0; i < d.n; ++i) {
    const hkm_ace_action& a = d.actions[i];
    EXPECT_EQ(a.reason, HKM_ACE_BECAUSE_GUARD);
    EXPECT_EQ(a.to, a.knob == HKM_ACE_KNOB_DRAIN ? 1024u : 32u);
  }
  for (int c = 0; c < HAK_NUM_CLASSES; ++c) {
    EXPECT_EQ(f.ctl.cls[c].drain, f.ctl.cls[c].drain_default);
    EXPECT_EQ(f.ctl.cls[c].tls_cap, f.ctl.cls[c].tls_default);
  }
  // Stopped for good: no decision, whatever comes.
  for (int t = 0; t < 5; ++t) {
    EXPECT_EQ(f.Tick(s, true).n, 0u);
    EXPECT_EQ(f.d.tripped, HKM_ACE_GUARD_NONE);
  }
  char text[256];
  hkm_ace_describe_guard(&d, text, sizeof text);
  EXPECT_NE(std::string(text).find("restoring defaults and stopping"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    EachGuard, Guard,
    ::testing::Values(
        GuardCase{"p99", [](hkm_ace_sample* s) { s->p99_alloc_ns = 10000001; }, HKM_ACE_GUARD_P99},
        GuardCase{"rss", [](hkm_ace_sample* s) { s->rss_bytes = (16384ull << 20) + 1; },
                  HKM_ACE_GUARD_RSS},
        GuardCase{"cpu", [](hkm_ace_sample* s) { s->ace_cpu_percent = 5.01; },
                  HKM_ACE_GUARD_CPU}),
    [](const ::testing::TestParamInfo<GuardCase>& i) { return std::string(i.param.name); });

TEST(Controller, GuardLimitsComeFromThePolicy) {
  Fixture f;
  f.policy.max_rss_bytes = 100ull << 20;
  f.Init();
  hkm_ace_sample s = Calm();  // 200 MiB
  EXPECT_EQ(f.Tick(s).tripped, HKM_ACE_GUARD_RSS);
  EXPECT_EQ(f.d.n, 0u);  // nothing had moved
  Fixture g;
  s.p99_alloc_ns = 10000000;  // at the limit is not past it
  s.ace_cpu_percent = 5.0;
  EXPECT_EQ(g.Tick(s).tripped, HKM_ACE_GUARD_NONE);
}

// -------------------------------------------------------------- learning --

TEST(Controller, RewardIsThroughputMinusPenalties) {
  Fixture f;
  hkm_ace_sample s = Calm();
  s.fragmentation_ratio = 1.0;
  f.Tick(s);  // ops reference = 1e6
  EXPECT_NEAR(hkm_ace_reward(&f.ctl, &s, kClass), 0.5, 1e-12);
  s.ops_per_sec = 1.5e6;
  EXPECT_NEAR(hkm_ace_reward(&f.ctl, &s, kClass), 0.75, 1e-12);
  s.llc_miss_rate = 0.5;  // - 0.2 * 0.5
  EXPECT_NEAR(hkm_ace_reward(&f.ctl, &s, kClass), 0.65, 1e-12);
  s.remote_backlog[kClass] = 2 * f.policy.backlog_hi;  // - 0.2 * 0.5
  EXPECT_NEAR(hkm_ace_reward(&f.ctl, &s, kClass), 0.55, 1e-12);
  s.fragmentation_ratio = 0.5;  // - 0.1 * 0.5
  EXPECT_NEAR(hkm_ace_reward(&f.ctl, &s, kClass), 0.50, 1e-12);
  s.mutex_wait_ns_per_sec = 1e9;  // - 0.1
  EXPECT_NEAR(hkm_ace_reward(&f.ctl, &s, kClass), 0.40, 1e-12);
  s.ops_per_sec = 0;
  EXPECT_EQ(hkm_ace_reward(&f.ctl, &s, kClass), 0.0);  // clamped
}

TEST(Controller, TheMoveIsRewardedOnTheNextTick) {
  Fixture f(1024);
  f.Tick(WithBacklog(5000));  // pulls the 512 arm
  const hkm_ace_ucb1_bandit& b = f.ctl.cls[kClass].drain_bandit;
  EXPECT_EQ(b.total_pulls, 0u);
  f.Tick(WithBacklog(100));
  EXPECT_EQ(b.arms[4].pulls, 1u);  // 512 is candidate 4
  EXPECT_GT(b.arms[4].mean, 0.0);
  EXPECT_EQ(b.total_pulls, 1u);
}

TEST(Controller, SameSamplesSameDecisions) {
  Fixture a(1024), b(1024);
  for (int t = 0; t < 200; ++t) {
    hkm_ace_sample s = WithLlc(0.02 + 0.01 * (t % 7));
    s.remote_backlog[kClass] = (t * 611) % 3000;
    s.ops_per_sec = 1e6 + 1e4 * (t % 5);
    a.Tick(s, t % 10 == 0);
    b.Tick(s, t % 10 == 0);
    ASSERT_EQ(Moves(a.d), Moves(b.d)) << "tick " << t;
  }
}

TEST(Controller, StepTowardFollowsTheCandidateLadder) {
  EXPECT_EQ(hkm_ace_step_toward(21, 256, hkm_ace_tls_cap_candidates, HKM_ACE_N_TLS_CAP), 32u);
  EXPECT_EQ(hkm_ace_step_toward(128, 256, hkm_ace_tls_cap_candidates, HKM_ACE_N_TLS_CAP), 256u);
  EXPECT_EQ(hkm_ace_step_toward(128, 200, hkm_ace_tls_cap_candidates, HKM_ACE_N_TLS_CAP), 200u);
  EXPECT_EQ(hkm_ace_step_toward(512, 64, hkm_ace_drain_candidates, HKM_ACE_N_DRAIN), 256u);
  EXPECT_EQ(hkm_ace_step_toward(64, 64, hkm_ace_drain_candidates, HKM_ACE_N_DRAIN), 64u);
}

// ---------------------------------------------------------- log wording --

TEST(Describe, KnobMovesReadAsInTheSpec) {
  hkm_ace_action a{};
  a.kind = HKM_ACE_SET_KNOB;
  a.knob = HKM_ACE_KNOB_TLS_CAP;
  a.cls = 2;
  a.from = 32;
  a.to = 24;
  a.reason = HKM_ACE_BECAUSE_LLC;
  a.factor = 0.75;
  char text[256];
  EXPECT_EQ(hkm_ace_describe(&a, text, sizeof text), HKM_ACE_LOG_INFO);
  EXPECT_STREQ(text, "Adjusting TLS cap[2]: 32 → 24 (diet factor=0.75)");

  a.knob = HKM_ACE_KNOB_DRAIN;
  a.from = 64;
  a.to = 32;
  a.reason = HKM_ACE_BECAUSE_BACKLOG;
  a.signal = 4096;
  hkm_ace_describe(&a, text, sizeof text);
  EXPECT_STREQ(text, "Adjusting drain threshold[2]: 64 → 32 (remote backlog=4096 blocks)");

  a.from = 32;
  a.to = 64;
  a.reason = HKM_ACE_BECAUSE_CALM;
  a.calm_ticks = 4;
  hkm_ace_describe(&a, text, sizeof text);
  EXPECT_STREQ(text, "Restoring drain threshold[2]: 32 → 64 (calm for 4 ticks)");

  hkm_ace_action s{};
  s.kind = HKM_ACE_SCAVENGE;
  s.reason = HKM_ACE_BECAUSE_RSS;
  s.budget_ns = 5000000;
  s.signal = 300.0 * 1048576;
  s.baseline = 200.0 * 1048576;
  hkm_ace_describe(&s, text, sizeof text);
  EXPECT_STREQ(text, "Scavenging up to 5.00 ms (RSS 300 MiB, up from 200 MiB)");
}

}  // namespace
