// ACE's settings (env.h) and its log (log.h).  Settings are parsed through
// a lookup function, so each case gives its own environment here; the real
// process environment at start-up is covered by test_ace_e2e.

#include "env.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "log.h"

namespace {

std::map<std::string, std::string>* g_env;

const char* Lookup(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

// Everything written to a pipe by f(fd).
template <typename F>
std::string Capture(F f) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return "pipe failed";
  f(p[1]);
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  return out;
}

struct Parsed {
  hkm_ace_config cfg;
  int bad;
  std::string warnings;
};

Parsed Parse(std::map<std::string, std::string> env) {
  Parsed r{};
  g_env = &env;
  r.warnings = Capture([&](int fd) { r.bad = hkm_ace_env_load(&r.cfg, Lookup, fd); });
  g_env = nullptr;
  return r;
}

std::string Warning(const std::string& name, const std::string& value,
                    const std::string& expected) {
  return "hakmem: ignoring " + name + "=" + value + " (expected " + expected +
         "); using the default\n";
}

void ExpectDefaults(const hkm_ace_config& c, bool enabled) {
  EXPECT_EQ(c.enabled, enabled ? 1u : 0u);
  EXPECT_EQ(c.fast_interval_ms, 500u);
  EXPECT_EQ(c.slow_interval_ms, 30000u);
  EXPECT_EQ(c.max_p99_lat_ns, 10000000u);
  EXPECT_EQ(c.max_rss_mb, 16384u);
  EXPECT_EQ(c.max_cpu_percent, 5u);
  EXPECT_EQ(c.log_level, 0u);
}

TEST(AceEnv, OffByDefault) {
  Parsed p = Parse({});
  ExpectDefaults(p.cfg, false);
  EXPECT_EQ(p.bad, 0);
  EXPECT_EQ(p.warnings, "");
}

TEST(AceEnv, OtherSettingsAreNotReadWhileOff) {
  Parsed p = Parse({{"HAKMEM_ACE_FAST_INTERVAL_MS", "nonsense"}, {"HAKMEM_ACE_ENABLED", "0"}});
  ExpectDefaults(p.cfg, false);
  EXPECT_EQ(p.warnings, "");
}

TEST(AceEnv, ValidValues) {
  Parsed p = Parse({{"HAKMEM_ACE_ENABLED", "1"},
                    {"HAKMEM_ACE_FAST_INTERVAL_MS", "20"},
                    {"HAKMEM_ACE_SLOW_INTERVAL_MS", "1000"},
                    {"HAKMEM_ACE_MAX_P99_LAT_NS", "5000000"},
                    {"HAKMEM_ACE_MAX_RSS_MB", "2048"},
                    {"HAKMEM_ACE_MAX_CPU_PERCENT", "10"},
                    {"HAKMEM_ACE_LOG_LEVEL", "2"}});
  EXPECT_EQ(p.warnings, "");
  EXPECT_EQ(p.bad, 0);
  EXPECT_EQ(p.cfg.enabled, 1u);
  EXPECT_EQ(p.cfg.fast_interval_ms, 20u);
  EXPECT_EQ(p.cfg.slow_interval_ms, 1000u);
  EXPECT_EQ(p.cfg.max_p99_lat_ns, 5000000u);
  EXPECT_EQ(p.cfg.max_rss_mb, 2048u);
  EXPECT_EQ(p.cfg.max_cpu_percent, 10u);
  EXPECT_EQ(p.cfg.log_level, 2u);
}

TEST(AceEnv, SlowIntervalInSeconds) {
  Parsed p = Parse({{"HAKMEM_ACE_ENABLED", "1"}, {"HAKMEM_ACE_SLOW_INTERVAL_S", "7"}});
  EXPECT_EQ(p.cfg.slow_interval_ms, 7000u);
  // Both given: the millisecond setting wins.
  p = Parse({{"HAKMEM_ACE_ENABLED", "1"},
             {"HAKMEM_ACE_SLOW_INTERVAL_S", "7"},
             {"HAKMEM_ACE_SLOW_INTERVAL_MS", "1500"}});
  EXPECT_EQ(p.cfg.slow_interval_ms, 1500u);
  // A bad millisecond value leaves the seconds in force.
  p = Parse({{"HAKMEM_ACE_ENABLED", "1"},
             {"HAKMEM_ACE_SLOW_INTERVAL_S", "7"},
             {"HAKMEM_ACE_SLOW_INTERVAL_MS", "x"}});
  EXPECT_EQ(p.cfg.slow_interval_ms, 7000u);
  EXPECT_EQ(p.bad, 1);
}

struct BadCase {
  const char* name;
  const char* value;
  const char* expected;
};

class AceEnvBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(AceEnvBad, OneWarningLineAndTheDefault) {
  const BadCase& b = GetParam();
  Parsed p = Parse({{"HAKMEM_ACE_ENABLED", "1"}, {b.name, b.value}});
  EXPECT_EQ(p.bad, 1);
  EXPECT_EQ(p.warnings, Warning(b.name, b.value, b.expected));
  ExpectDefaults(p.cfg, true);
}

INSTANTIATE_TEST_SUITE_P(
    Values, AceEnvBad,
    ::testing::Values(
        BadCase{"HAKMEM_ACE_FAST_INTERVAL_MS", "", "1..3600000"},
        BadCase{"HAKMEM_ACE_FAST_INTERVAL_MS", "abc", "1..3600000"},
        BadCase{"HAKMEM_ACE_FAST_INTERVAL_MS", "0", "1..3600000"},
        BadCase{"HAKMEM_ACE_FAST_INTERVAL_MS", "-5", "1..3600000"},
        BadCase{"HAKMEM_ACE_FAST_INTERVAL_MS", "3600001", "1..3600000"},
        BadCase{"HAKMEM_ACE_FAST_INTERVAL_MS", " 500", "1..3600000"},
        BadCase{"HAKMEM_ACE_FAST_INTERVAL_MS", "500ms", "1..3600000"},
        BadCase{"HAKMEM_ACE_SLOW_INTERVAL_MS", "1.5", "1..86400000"},
        BadCase{"HAKMEM_ACE_SLOW_INTERVAL_S", "0", "1..86400"},
        BadCase{"HAKMEM_ACE_MAX_P99_LAT_NS", "99999999999999999999999", "1..3600000000000"},
        BadCase{"HAKMEM_ACE_MAX_RSS_MB", "0", "1..1073741824"},
        BadCase{"HAKMEM_ACE_MAX_CPU_PERCENT", "101", "1..100"},
        BadCase{"HAKMEM_ACE_MAX_CPU_PERCENT", "0x5", "1..100"},
        BadCase{"HAKMEM_ACE_LOG_LEVEL", "3", "0, 1 or 2"},
        BadCase{"HAKMEM_ACE_LOG_LEVEL", "debug", "0, 1 or 2"}));

TEST(AceEnv, BadEnabledWarnsAndStaysOff) {
  Parsed p = Parse({{"HAKMEM_ACE_ENABLED", "yes"}, {"HAKMEM_ACE_LOG_LEVEL", "9"}});
  EXPECT_EQ(p.warnings, Warning("HAKMEM_ACE_ENABLED", "yes", "0 or 1"));
  ExpectDefaults(p.cfg, false);
}

TEST(AceEnv, SeveralBadValuesOneLineEach) {
  Parsed p = Parse({{"HAKMEM_ACE_ENABLED", "1"},
                    {"HAKMEM_ACE_FAST_INTERVAL_MS", "x"},
                    {"HAKMEM_ACE_MAX_RSS_MB", "y"},
                    {"HAKMEM_ACE_LOG_LEVEL", "1"}});
  EXPECT_EQ(p.bad, 2);
  EXPECT_EQ(p.warnings, Warning("HAKMEM_ACE_FAST_INTERVAL_MS", "x", "1..3600000") +
                            Warning("HAKMEM_ACE_MAX_RSS_MB", "y", "1..1073741824"));
  EXPECT_EQ(p.cfg.log_level, 1u);
}

TEST(AceEnv, HugeValueIsCutNotACrash) {
  std::string huge(100000, '7');
  Parsed p = Parse({{"HAKMEM_ACE_ENABLED", "1"}, {"HAKMEM_ACE_FAST_INTERVAL_MS", huge}});
  EXPECT_EQ(p.bad, 1);
  EXPECT_EQ(p.cfg.fast_interval_ms, 500u);
  EXPECT_LT(p.warnings.size(), 400u);
  EXPECT_EQ(p.warnings.back(), '\n');
}

// ------------------------------------------------------------------- log --

std::string LogAt(int level) {
  std::string out = Capture([&](int fd) {
    hkm_ace_log_set(level, fd);
    hkm_ace_log(HKM_ACE_LOG_INFO, "info %d", 1);
    hkm_ace_log(HKM_ACE_LOG_DEBUG, "debug %s", "two");
  });
  hkm_ace_log_set(HKM_ACE_LOG_OFF, 2);
  return out;
}

TEST(AceLog, LevelsFilter) {
  EXPECT_EQ(LogAt(0), "");
  EXPECT_EQ(LogAt(1), "[ACE] info 1\n");
  EXPECT_EQ(LogAt(2), "[ACE] info 1\n[ACE] debug two\n");
}

TEST(AceLog, LongLinesAreCutAndStillEndTheLine) {
  std::string long_text(2000, 'x');
  std::string out = Capture([&](int fd) {
    hkm_ace_log_set(HKM_ACE_LOG_INFO, fd);
    hkm_ace_log(HKM_ACE_LOG_INFO, "%s", long_text.c_str());
  });
  hkm_ace_log_set(HKM_ACE_LOG_OFF, 2);
  EXPECT_EQ(out.rfind("[ACE] xxx", 0), 0u);
  EXPECT_LE(out.size(), 512u);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1);
}

}  // namespace
