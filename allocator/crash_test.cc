// hakmem's crash handler (crash.c, README "Settings"): on SIGSEGV, SIGBUS
// or SIGABRT it prints one "hakmem: fatal signal ..." line on stderr, then
// lets the default action happen, so the process still dies of the signal
// it got.  It is installed at start-up only over the default action,
// HAKMEM_CRASH_HANDLER=0 leaves it out, and a handler the program installs
// replaces it.
//
// Default-settings cases are death tests (the child is this binary re-run
// by gtest, so it starts with hakmem's handler installed).  Cases that need
// another environment or an inherited signal disposition re-execute this
// binary themselves (hakmem_test::RunProbe, test_support.h), running only
// the probe test at the end of this file.

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hakmem.h"
#include "test_support.h"

namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::KilledBySignal;
using ::testing::Not;

using ::hakmem_test::Child;
using ::hakmem_test::Launder;

constexpr int kOwnHandlerExitCode = 42;

// The dying children are expected to die: no core files from them.
void NoCoreDump() {
  const struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
}

// Writes s to stderr with one write(2): usable in a signal handler, and
// never interleaved with hakmem's own (also single-write) lines.
void Say(const char* s) {
  if (write(STDERR_FILENO, s, strlen(s)) < 0) _exit(3);
}

// ------------------------------------------------------- the crashes --

// A real invalid memory access: a store to address 0.  UBSan's null check
// is off here (--config=ubsan), or it would stop the program before the
// fault the test is about (noinline: inlined, the caller's check returns).
__attribute__((no_sanitize("null"), noinline)) void WriteThroughNull() {
  volatile int* p = Launder<volatile int>(nullptr);
  *p = 1;
}

// A real bus error: a shared mapping of a file that has since shrunk to
// nothing; touching the page beyond the end of the file raises SIGBUS.
// Says the address it touches ("touching 0x..."), as hakmem would print it.
void TouchBeyondEndOfFile() {
  int fd = memfd_create("crash_test", 0);
  if (fd < 0 || ftruncate(fd, 4096) != 0) _exit(4);
  auto* p = static_cast<volatile char*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (p == MAP_FAILED || ftruncate(fd, 0) != 0) _exit(5);
  char line[64];
  snprintf(line, sizeof line, "touching 0x%llx\n",
           static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
  Say(line);
  p[0] = 1;
}

// Does `what` ("raise_segv", "null_write", "raise_bus", "real_bus",
// "abort"), saying so first; says "survived" if it returns.
void Crash(const std::string& what) {
  NoCoreDump();
  Say(("about to " + what + "\n").c_str());
  if (what == "raise_segv") raise(SIGSEGV);
  else if (what == "null_write") WriteThroughNull();
  else if (what == "raise_bus") raise(SIGBUS);
  else if (what == "real_bus") TouchBeyondEndOfFile();
  else if (what == "abort") abort();
  else Say("unknown crash\n");
  Say("survived\n");
}

// ------------------------------------------------------- stderr checks --

// The crash report's tail: the variant under test, and no faults seen.
std::string ReportTail() {
  return std::string("; hakmem ") + hak_variant() + ", integrity events: 0\n";
}

// Some line of arg begins with prefix (hakmem's report is a line of its
// own, not text embedded in another message).
MATCHER_P(HasLineStartingWith, prefix,
          std::string(negation ? "has no" : "has a") + " line starting with \"" +
              std::string(prefix) + "\"") {
  const std::string text = arg;
  const std::string p = prefix;
  for (size_t pos = 0; pos < text.size();) {
    if (text.compare(pos, p.size(), p) == 0) return true;
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return false;
}

// The SIGBUS report names the address the child said it touched.
MATCHER(ReportsTheTouchedAddress, "reports the address it touched") {
  const std::string text = arg;
  size_t t = text.find("touching ");
  if (t == std::string::npos) return false;
  size_t end = text.find('\n', t);
  const std::string address = text.substr(t + 9, end - (t + 9));
  return text.find("hakmem: fatal signal SIGBUS at address " + address + ";") !=
         std::string::npos;
}

// --------------------------------------------------- default settings --

class CrashHandlerDeathTest : public ::testing::Test {
 protected:
  CrashHandlerDeathTest() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  void SetUp() override {
    // Death-test children inherit this process's environment.
    if (getenv("HAKMEM_CRASH_HANDLER") != nullptr) {
      GTEST_SKIP() << "needs the default settings; HAKMEM_CRASH_HANDLER is set";
    }
  }
};

// A sent signal has no faulting address (crash.c prints si_addr anyway,
// which for raise() holds the sender's pid), so only the start and the tail
// of the line are checked.
TEST_F(CrashHandlerDeathTest, RaisedSigsegvIsReportedAndStillKills) {
  EXPECT_EXIT(Crash("raise_segv"), KilledBySignal(SIGSEGV),
              AllOf(HasLineStartingWith("hakmem: fatal signal SIGSEGV"),
                    HasSubstr(ReportTail()), Not(HasSubstr("survived"))));
}

// A real fault: the handler returns, the store runs again under the default
// action, and the process dies of SIGSEGV (not, say, of a re-raise loop or
// an exit).  The report names the faulting address.
TEST_F(CrashHandlerDeathTest, NullPointerWriteIsReportedAndStillKills) {
  EXPECT_EXIT(Crash("null_write"), KilledBySignal(SIGSEGV),
              AllOf(HasLineStartingWith("hakmem: fatal signal SIGSEGV at address 0x0" +
                                        ReportTail()),
                    Not(HasSubstr("survived"))));
}

TEST_F(CrashHandlerDeathTest, RaisedSigbusIsReportedAndStillKills) {
  EXPECT_EXIT(Crash("raise_bus"), KilledBySignal(SIGBUS),
              AllOf(HasLineStartingWith("hakmem: fatal signal SIGBUS"),
                    HasSubstr(ReportTail()), Not(HasSubstr("survived"))));
}

TEST_F(CrashHandlerDeathTest, RealBusErrorIsReportedAndStillKills) {
  EXPECT_EXIT(Crash("real_bus"), KilledBySignal(SIGBUS),
              AllOf(ReportsTheTouchedAddress(), HasSubstr(ReportTail()),
                    Not(HasSubstr("survived"))));
}

// SIGABRT carries no address.
TEST_F(CrashHandlerDeathTest, AbortIsReportedAndStillKills) {
  EXPECT_EXIT(Crash("abort"), KilledBySignal(SIGABRT),
              AllOf(HasLineStartingWith("hakmem: fatal signal SIGABRT" + ReportTail()),
                    Not(HasSubstr("survived"))));
}

// ------------------------------------------ the program's own handler --

void OwnHandler(int sig) {
  char line[] = "own handler: signal 00\n";
  line[20] = static_cast<char>('0' + sig / 10);
  line[21] = static_cast<char>('0' + sig % 10);
  Say(line);
  _exit(kOwnHandlerExitCode);
}

void InstallOwnHandler(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = OwnHandler;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, nullptr) != 0) _exit(6);
}

std::string OwnHandlerLine(int sig) {
  char line[32];
  snprintf(line, sizeof line, "own handler: signal %02d\n", sig);
  return line;
}

// A handler installed after start-up runs instead of hakmem's: its exit
// code ends the child, and hakmem prints nothing at all.
TEST_F(CrashHandlerDeathTest, ProgramsOwnHandlerReplacesHakmems) {
  const struct {
    int sig;
    const char* crash;
  } cases[] = {
      {SIGSEGV, "raise_segv"}, {SIGSEGV, "null_write"}, {SIGBUS, "raise_bus"},
      {SIGBUS, "real_bus"},    {SIGABRT, "abort"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.crash);
    EXPECT_EXIT(
        {
          InstallOwnHandler(c.sig);
          Crash(c.crash);
        },
        ::testing::ExitedWithCode(kOwnHandlerExitCode),
        AllOf(HasSubstr(OwnHandlerLine(c.sig)), Not(HasSubstr("hakmem:"))));
  }
}

// ---------------------------------------------- running a fresh child --

// The probe test at the end of this file; CRASH_TEST_PROBE names its crash.
constexpr ::hakmem_test::Probe kProbe = {"CRASH_TEST_PROBE",
                                         "CrashProbe.DISABLED_Child"};

// Runs the probe in a fresh child: `crash` is what it does, `settings`
// ("NAME=value") are its only HAKMEM_* variables, and `ignored_signal`, if
// not 0, is ignored from the start (a disposition exec keeps).
Child RunProbe(const std::string& crash, const std::vector<std::string>& settings,
               int ignored_signal = 0) {
  return ::hakmem_test::RunProbe(kProbe, crash, settings, ignored_signal);
}

const struct {
  const char* crash;
  int sig;
  const char* sig_name;  // as hakmem's report names it
} kCrashes[] = {
    {"raise_segv", SIGSEGV, "SIGSEGV"}, {"null_write", SIGSEGV, "SIGSEGV"},
    {"raise_bus", SIGBUS, "SIGBUS"},    {"real_bus", SIGBUS, "SIGBUS"},
    {"abort", SIGABRT, "SIGABRT"},
};

// HAKMEM_CRASH_HANDLER=0: the same crashes kill the child by the same
// signal, and hakmem says nothing.  "about to" shows the child got as far
// as the crash, so the silence is not a child that never ran.
TEST(CrashHandlerSetting, ZeroDisablesTheReport) {
  for (const auto& k : kCrashes) {
    SCOPED_TRACE(k.crash);
    Child c = RunProbe(k.crash, {"HAKMEM_CRASH_HANDLER=0"});
    EXPECT_TRUE(c.KilledBy(k.sig)) << c.Describe();
    EXPECT_THAT(c.err, HasSubstr(std::string("about to ") + k.crash));
    EXPECT_THAT(c.err, Not(HasSubstr("hakmem:")));
  }
}

// The control for the case above, through the same harness: with the
// setting at 1 (its default) every crash is reported.
TEST(CrashHandlerSetting, OneKeepsTheReport) {
  for (const auto& k : kCrashes) {
    SCOPED_TRACE(k.crash);
    Child c = RunProbe(k.crash, {"HAKMEM_CRASH_HANDLER=1"});
    EXPECT_TRUE(c.KilledBy(k.sig)) << c.Describe();
    EXPECT_THAT(c.err, HasLineStartingWith(std::string("hakmem: fatal signal ") + k.sig_name));
  }
}

// A bad value is reported and the default (handler on) stays.
TEST(CrashHandlerSetting, BadValueIsReportedAndTheHandlerStays) {
  for (const char* v : {"2", "yes", "", "-1"}) {
    SCOPED_TRACE(::testing::Message() << "HAKMEM_CRASH_HANDLER='" << v << "'");
    Child c = RunProbe("raise_segv", {std::string("HAKMEM_CRASH_HANDLER=") + v});
    EXPECT_TRUE(c.KilledBy(SIGSEGV)) << c.Describe();
    EXPECT_THAT(c.err, HasSubstr(std::string("hakmem: ignoring HAKMEM_CRASH_HANDLER=") + v +
                                 " (expected 0 or 1); using the default\n"));
    EXPECT_THAT(c.err, HasLineStartingWith("hakmem: fatal signal SIGSEGV"));
  }
}

// A signal the process was started with ignored stays ignored: hakmem
// installs its handler only over the default action.
TEST(CrashHandlerSetting, InheritedIgnoredSignalStaysIgnored) {
  Child c = RunProbe("raise_bus", {}, SIGBUS);
  EXPECT_TRUE(c.ExitedWith(0)) << c.Describe();
  EXPECT_THAT(c.err, HasSubstr("survived"));
  EXPECT_THAT(c.err, Not(HasSubstr("hakmem:")));
}

// ------------------------------------------------------------ the child --

// Not a test of its own: the body of the processes RunProbe starts, run
// only when asked for by name (DISABLED_ keeps it out of normal runs).
// CRASH_TEST_PROBE names the crash (see Crash()).
TEST(CrashProbe, DISABLED_Child) {
  const char* crash = getenv(kProbe.variable);
  if (crash == nullptr) GTEST_SKIP() << "runs only as crash_test's child";
  Crash(crash);
}

}  // namespace
