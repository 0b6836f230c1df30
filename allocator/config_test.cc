// hakmem's environment settings (README "Settings", config.c): read once at
// start-up, a bad value reported on stderr and ignored.
//
// Settings are read before main, so each case needs a process of its own:
// the test re-executes this binary under a chosen, minimal environment
// (hakmem_test::RunProbe, test_support.h), running only the probe test at
// the end of this file, and reads what the child prints (its knob values
// through the public getters) and how it ended.

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hakmem.h"
#include "test_support.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using ::hakmem_test::Child;
using ::hakmem_test::Launder;

// The probe test at the end of this file; CONFIG_TEST_PROBE names its
// action (see ConfigProbe below).
constexpr ::hakmem_test::Probe kProbe = {"CONFIG_TEST_PROBE",
                                         "ConfigProbe.DISABLED_Child"};

// Runs the probe in a fresh child with `probe` as the action and `settings`
// ("NAME=value") as its only HAKMEM_* variables.
Child RunProbe(const std::string& probe, const std::vector<std::string>& settings) {
  return ::hakmem_test::RunProbe(kProbe, probe, settings);
}

// ---------------------------------------------------- reading the knobs --

// The knob values a child reported, one entry per class.
struct Knobs {
  std::vector<uint32_t> tls_cap;
  std::vector<uint32_t> drain;
};

// Parses the "knob <class> <tls capacity> <drain threshold>" lines of the
// "knobs" probe; the gtest output around them is skipped.  Fails the test
// unless every class appears once, in order.
Knobs ParseKnobs(const Child& c) {
  Knobs k;
  std::istringstream in(c.out);
  std::string line;
  while (std::getline(in, line)) {
    int cls;
    unsigned cap, drain;
    if (sscanf(line.c_str(), "knob %d %u %u", &cls, &cap, &drain) != 3) continue;
    EXPECT_EQ(cls, static_cast<int>(k.tls_cap.size())) << line;
    k.tls_cap.push_back(cap);
    k.drain.push_back(drain);
  }
  EXPECT_EQ(k.tls_cap.size(), size_t{HAK_NUM_CLASSES}) << c.Describe();
  return k;
}

// Runs the knobs probe under `settings`; the child must exit normally.
Knobs KnobsUnder(const std::vector<std::string>& settings) {
  Child c = RunProbe("knobs", settings);
  EXPECT_TRUE(c.ExitedWith(0)) << c.Describe();
  return ParseKnobs(c);
}

// The values of a child started with no HAKMEM_* variable: what "the
// default" means below.  Computed once; every test that needs it checks it
// is complete.
const Knobs& Defaults() {
  static const Knobs defaults = KnobsUnder({});
  return defaults;
}

std::vector<uint32_t> Same(uint32_t v) { return std::vector<uint32_t>(HAK_NUM_CLASSES, v); }

// The exact line config.c prints for a value it ignores.
std::string Warning(const std::string& name, const std::string& value,
                    const std::string& expected) {
  return "hakmem: ignoring " + name + "=" + value + " (expected " + expected +
         "); using the default\n";
}

// --------------------------------------------------------------- defaults --

TEST(Config, DefaultsWithoutAnySetting) {
  Child c = RunProbe("knobs", {});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  // Nothing to complain about: no hakmem line at all.
  EXPECT_THAT(c.err, Not(HasSubstr("hakmem:")));
  Knobs k = ParseKnobs(c);
  ASSERT_EQ(k.tls_cap.size(), size_t{HAK_NUM_CLASSES});
  EXPECT_EQ(k.drain, Same(64));
  // README: the default TLS capacity is per class, between 4 and 256, and
  // a thread caches more of the smallest blocks than of the largest.
  for (int cls = 0; cls < HAK_NUM_CLASSES; ++cls) {
    EXPECT_GE(k.tls_cap[cls], 4u) << "class " << cls;
    EXPECT_LE(k.tls_cap[cls], 256u) << "class " << cls;
  }
  EXPECT_GT(k.tls_cap[0], k.tls_cap[HAK_NUM_CLASSES - 1]);
}

// ------------------------------------------------------- good settings --

TEST(Config, DrainThresholdSetsEveryClass) {
  ASSERT_EQ(Defaults().tls_cap.size(), size_t{HAK_NUM_CLASSES});
  Child c = RunProbe("knobs", {"HAKMEM_DRAIN_THRESHOLD=128"});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  EXPECT_THAT(c.err, Not(HasSubstr("hakmem:")));
  Knobs k = ParseKnobs(c);
  EXPECT_EQ(k.drain, Same(128));
  EXPECT_EQ(k.tls_cap, Defaults().tls_cap) << "the other setting moved";
}

TEST(Config, TlsCapSetsEveryClass) {
  Child c = RunProbe("knobs", {"HAKMEM_TLS_CAP=32"});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  EXPECT_THAT(c.err, Not(HasSubstr("hakmem:")));
  Knobs k = ParseKnobs(c);
  // 32 differs from the default of at least class 0 (above), so this is
  // the setting taking effect, not the defaults happening to match.
  EXPECT_EQ(k.tls_cap, Same(32));
  EXPECT_EQ(k.drain, Same(64));
}

// The documented ranges (1..4096, 1..65536) include their ends.
TEST(Config, RangeEndsAreAccepted) {
  struct Case {
    std::vector<std::string> settings;
    uint32_t tls_cap, drain;
  };
  const Case cases[] = {
      {{"HAKMEM_TLS_CAP=1", "HAKMEM_DRAIN_THRESHOLD=1"}, 1, 1},
      {{"HAKMEM_TLS_CAP=4096", "HAKMEM_DRAIN_THRESHOLD=65536"}, 4096, 65536},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(::testing::Message() << k.settings[0] << " " << k.settings[1]);
    Child c = RunProbe("knobs", k.settings);
    ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
    EXPECT_THAT(c.err, Not(HasSubstr("hakmem:")));
    Knobs got = ParseKnobs(c);
    EXPECT_EQ(got.tls_cap, Same(k.tls_cap));
    EXPECT_EQ(got.drain, Same(k.drain));
  }
}

// "Read once at start": changing the environment later, even before a new
// thread starts allocating, changes nothing.
TEST(Config, SettingsAreReadOnlyAtStart) {
  Child c = RunProbe("knobs_after_setenv", {"HAKMEM_TLS_CAP=32"});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  Knobs k = ParseKnobs(c);
  EXPECT_EQ(k.tls_cap, Same(32));
  EXPECT_EQ(k.drain, Same(64));
}

// ------------------------------------------------------- bad settings --

// Each bad value: the child still starts and runs, says exactly what it
// ignored, and uses the default.
TEST(Config, BadTlsCapIsReportedAndIgnored) {
  ASSERT_EQ(Defaults().tls_cap.size(), size_t{HAK_NUM_CLASSES});
  const char* const bad[] = {
      "abc", "-5", "0", "99999999999999999999", "", "12x",
      "4097",  // one past the range
      " 32", "+32", "0x20", "32 ", "3.5",
  };
  for (const char* v : bad) {
    SCOPED_TRACE(::testing::Message() << "HAKMEM_TLS_CAP='" << v << "'");
    Child c = RunProbe("knobs", {std::string("HAKMEM_TLS_CAP=") + v});
    ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
    EXPECT_THAT(c.err, HasSubstr(Warning("HAKMEM_TLS_CAP", v, "1..4096")));
    Knobs k = ParseKnobs(c);
    EXPECT_EQ(k.tls_cap, Defaults().tls_cap);
    EXPECT_EQ(k.drain, Same(64));
  }
}

TEST(Config, BadDrainThresholdIsReportedAndIgnored) {
  ASSERT_EQ(Defaults().tls_cap.size(), size_t{HAK_NUM_CLASSES});
  for (const char* v : {"0", "65537", "abc", "", "-1", "18446744073709551616"}) {
    SCOPED_TRACE(::testing::Message() << "HAKMEM_DRAIN_THRESHOLD='" << v << "'");
    Child c = RunProbe("knobs", {std::string("HAKMEM_DRAIN_THRESHOLD=") + v});
    ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
    EXPECT_THAT(c.err, HasSubstr(Warning("HAKMEM_DRAIN_THRESHOLD", v, "1..65536")));
    Knobs k = ParseKnobs(c);
    EXPECT_EQ(k.drain, Same(64));
    EXPECT_EQ(k.tls_cap, Defaults().tls_cap);
  }
}

// One bad setting costs only itself: the good one next to it still applies.
TEST(Config, BadSettingDoesNotDiscardGoodOnes) {
  ASSERT_EQ(Defaults().tls_cap.size(), size_t{HAK_NUM_CLASSES});
  Child c = RunProbe("knobs", {"HAKMEM_TLS_CAP=abc", "HAKMEM_DRAIN_THRESHOLD=128"});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  EXPECT_THAT(c.err, HasSubstr(Warning("HAKMEM_TLS_CAP", "abc", "1..4096")));
  EXPECT_THAT(c.err, Not(HasSubstr("HAKMEM_DRAIN_THRESHOLD")));
  Knobs k = ParseKnobs(c);
  EXPECT_EQ(k.tls_cap, Defaults().tls_cap);
  EXPECT_EQ(k.drain, Same(128));
}

// A value far longer than hakmem's message buffer is still reported (the
// message may be cut short) without harming the process.
TEST(Config, VeryLongBadValueIsReported) {
  const std::string value(5000, '7');  // digits, but far out of range
  Child c = RunProbe("knobs", {"HAKMEM_TLS_CAP=" + value});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  EXPECT_THAT(c.err, HasSubstr("hakmem: ignoring HAKMEM_TLS_CAP=" + value.substr(0, 100)));
  Knobs k = ParseKnobs(c);
  EXPECT_EQ(k.tls_cap, Defaults().tls_cap);
}

// ------------------------------------------------------- fault action --

// report: the double free is reported and counted, and the child carries on
// to a normal exit (the probe checks it can still allocate).
TEST(Config, FaultActionReportCarriesOn) {
  Child c = RunProbe("double_free", {"HAKMEM_FAULT_ACTION=report"});
  ASSERT_TRUE(c.ExitedWith(0)) << c.Describe();
  EXPECT_THAT(c.err, HasSubstr("hakmem: double free"));
  EXPECT_THAT(c.err, HasSubstr("; block dropped, continuing"));
  EXPECT_THAT(c.err, Not(HasSubstr("hakmem: ignoring")));
  EXPECT_THAT(c.out, HasSubstr("integrity events 1\n"));
  EXPECT_THAT(c.out, HasSubstr("still allocating\n"));
}

// abort, set or by default: the same double free kills the child with
// SIGABRT after the report.
TEST(Config, FaultActionAbortKills) {
  for (const std::vector<std::string>& settings :
       {std::vector<std::string>{}, std::vector<std::string>{"HAKMEM_FAULT_ACTION=abort"}}) {
    SCOPED_TRACE(settings.empty() ? "no setting" : settings[0]);
    Child c = RunProbe("double_free", settings);
    EXPECT_TRUE(c.KilledBy(SIGABRT)) << c.Describe();
    EXPECT_THAT(c.err, HasSubstr("hakmem: double free"));
    EXPECT_THAT(c.err, HasSubstr("; aborting"));
    EXPECT_THAT(c.err, Not(HasSubstr("hakmem: ignoring")));
    EXPECT_THAT(c.out, Not(HasSubstr("still allocating")));
  }
}

TEST(Config, BogusFaultActionIsReportedAndAbortStays) {
  for (const char* v : {"bogus", "", "REPORT", "report "}) {
    SCOPED_TRACE(::testing::Message() << "HAKMEM_FAULT_ACTION='" << v << "'");
    Child c = RunProbe("double_free", {std::string("HAKMEM_FAULT_ACTION=") + v});
    EXPECT_THAT(c.err, HasSubstr(Warning("HAKMEM_FAULT_ACTION", v, "abort or report")));
    EXPECT_TRUE(c.KilledBy(SIGABRT)) << c.Describe();
    EXPECT_THAT(c.err, HasSubstr("hakmem: double free"));
    EXPECT_THAT(c.out, Not(HasSubstr("still allocating")));
  }
}

// ------------------------------------------------------------ the child --

// Not a test of its own: the body of the processes RunProbe starts, run
// only when asked for by name (DISABLED_ keeps it out of normal runs).
// CONFIG_TEST_PROBE says what to do:
//   knobs               print every class's knob values
//   knobs_after_setenv  change HAKMEM_TLS_CAP, allocate in a new thread,
//                       then print the knob values
//   double_free         free a block twice, then print the fault count and
//                       show the allocator still works
TEST(ConfigProbe, DISABLED_Child) {
  const char* probe = getenv(kProbe.variable);
  if (probe == nullptr) GTEST_SKIP() << "runs only as config_test's child";
  const std::string what = probe;

  if (what == "knobs_after_setenv") {
    ASSERT_EQ(setenv("HAKMEM_TLS_CAP", "7", 1), 0);
    ASSERT_EQ(setenv("HAKMEM_DRAIN_THRESHOLD", "9", 1), 0);
    std::thread([] {
      void* p = malloc(48);
      ASSERT_NE(p, nullptr);
      free(p);
    }).join();
  }
  if (what == "knobs" || what == "knobs_after_setenv") {
    for (int cls = 0; cls < HAK_NUM_CLASSES; ++cls) {
      printf("knob %d %u %u\n", cls, hkm_tiny_get_tls_capacity(cls),
             hkm_tiny_get_drain_threshold(cls));
    }
    fflush(stdout);
    return;
  }
  if (what == "double_free") {
    void* p = malloc(32);
    ASSERT_NE(p, nullptr);
    void* again = Launder(p);
    free(p);
    {
      hakmem_test::HiddenFromMemcheck mistake;
      free(again);  // aborts here unless HAKMEM_FAULT_ACTION=report
    }
    printf("integrity events %llu\n",
           static_cast<unsigned long long>(hak_integrity_events()));
    for (size_t n : {32, 32, 4000, 200000}) {
      void* q = malloc(n);
      ASSERT_NE(q, nullptr);
      memset(q, 0x5A, n);
      free(q);
    }
    printf("still allocating\n");
    fflush(stdout);
    return;
  }
  FAIL() << "unknown probe '" << what << "'";
}

}  // namespace

// hakmem starts before libc has set up the environment when a program's
// first malloc comes from its .preinit_array, as ASan's runtime's does
// (config.c).  This binary does the same, so every case above also checks
// that settings read that early are not lost.
static void MallocBeforeEnviron() { free(hakmem_test::Launder(malloc(16))); }
__attribute__((section(".preinit_array"), used)) static void (*const kPreinit)() =
    MallocBeforeEnviron;
