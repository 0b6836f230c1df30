// hakmem's environment settings (README "Settings", config.c): read once at
// start-up, a bad value reported on stderr and ignored.
//
// Settings are read before main, so each case needs a process of its own:
// the test re-executes this binary (/proc/self/exe) under a chosen, minimal
// environment, running only the probe test at the end of this file, and
// reads what the child prints (its knob values through the public getters)
// and how it ended.  The child is the same binary, so it runs the same
// hakmem variant, linked the same way, as the test itself.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hakmem.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Names the probe action for the child (see ConfigProbe below).  Not a
// HAKMEM_* name, so "no HAKMEM_* variable" really means none.
constexpr char kProbeVariable[] = "CONFIG_TEST_PROBE";
constexpr char kProbeFilter[] = "--gtest_filter=ConfigProbe.DISABLED_Child";
constexpr int kChildDeadlineSeconds = 30;

// Hides where a pointer came from, so the compiler neither warns about nor
// reasons from the double free the probe commits on purpose.
template <typename T>
inline T* Launder(T* p) {
  asm volatile("" : "+r"(p));
  return p;
}

// ------------------------------------------------------ running a child --

struct Child {
  bool ran = false;       // fork, exec and wait worked
  bool timed_out = false; // killed after kChildDeadlineSeconds
  int status = 0;         // waitpid() status
  std::string out;        // everything the child wrote to stdout
  std::string err;        // ... and to stderr

  bool ExitedWith(int code) const {
    return ran && !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == code;
  }
  bool KilledBy(int sig) const {
    return ran && !timed_out && WIFSIGNALED(status) && WTERMSIG(status) == sig;
  }
  // For failure messages: how the child ended and what it said.
  std::string Describe() const {
    std::ostringstream s;
    if (!ran) s << "child did not run";
    else if (timed_out) s << "child hung, killed after " << kChildDeadlineSeconds << " s";
    else if (WIFEXITED(status)) s << "child exited with " << WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
      s << "child killed by signal " << WTERMSIG(status) << " ("
        << strsignal(WTERMSIG(status)) << ")";
    s << "\n--- child stderr ---\n" << err << "--- child stdout ---\n" << out;
    return s.str();
  }
};

// The environment of every child: only what finding and running this
// binary needs (the loader's variables decide which allocator it gets, so
// they are kept), never a HAKMEM_* variable, nor Bazel's or gtest's test
// protocol variables (a child must not write the parent's XML report).
std::vector<std::string> BaseEnvironment() {
  static const char* const kKept[] = {"PATH", "HOME", "TMPDIR", "TEST_TMPDIR",
                                      "LD_LIBRARY_PATH", "LD_PRELOAD"};
  std::vector<std::string> env;
  for (const char* name : kKept) {
    if (const char* v = getenv(name)) env.push_back(std::string(name) + "=" + v);
  }
  return env;
}

// Runs this binary's probe test in a new process with `probe` as the action
// and `settings` ("NAME=value") added to the base environment.  Collects
// stdout and stderr through pipes until the child ends or the deadline
// passes.
Child RunProbe(const std::string& probe, const std::vector<std::string>& settings) {
  Child c;
  std::vector<std::string> env = BaseEnvironment();
  env.push_back(std::string(kProbeVariable) + "=" + probe);
  env.insert(env.end(), settings.begin(), settings.end());
  const std::vector<std::string> args = {"/proc/self/exe", kProbeFilter,
                                         "--gtest_also_run_disabled_tests",
                                         "--gtest_color=no"};
  // Everything the child needs is built before fork: between fork and exec
  // only async-signal-safe calls are allowed.
  std::vector<char*> argv, envp;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  static const char kExecFailed[] = "execve(/proc/self/exe) failed\n";
  const struct rlimit no_core = {0, 0};
  struct sigaction default_action;
  memset(&default_action, 0, sizeof default_action);
  default_action.sa_handler = SIG_DFL;

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << strerror(errno);
    return c;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << strerror(errno);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return c;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);  // dup2'ed descriptors lose O_CLOEXEC
    dup2(err_pipe[1], STDERR_FILENO);
    setrlimit(RLIMIT_CORE, &no_core);  // children that abort leave no core
    // Start from the default signal state whatever the test runner gave us:
    // an ignored SIGABRT would survive exec and change what the child does.
    sigaction(SIGABRT, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve("/proc/self/exe", argv.data(), envp.data());
    if (write(STDERR_FILENO, kExecFailed, sizeof kExecFailed - 1) < 0) _exit(126);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << strerror(errno);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return c;
  }

  // Read both pipes as data arrives (a child blocked on a full pipe would
  // never exit), until both reach end of file or the deadline passes.
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&c.out, &c.err};
  int open_fds = 2;
  while (open_fds > 0) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= kChildDeadlineSeconds) {
      c.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    int n = poll(fds, 2, 200);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        sinks[i]->append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open_fds;
      }
    }
  }
  for (const pollfd& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  pid_t w;
  do {
    w = waitpid(pid, &c.status, 0);
  } while (w < 0 && errno == EINTR);
  c.ran = w == pid;
  if (!c.ran) ADD_FAILURE() << "waitpid: " << strerror(errno);
  return c;
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
  const char* probe = getenv(kProbeVariable);
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
    free(again);  // aborts here unless HAKMEM_FAULT_ACTION=report
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
