// Helpers shared by hakmem's GoogleTest tests; see test_support.h.

#include "test_support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sstream>

#include "hakmem.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAKMEM_TEST_HAS_VALGRIND 1
#endif

namespace hakmem_test {

HiddenFromMemcheck::HiddenFromMemcheck() {
#ifdef HAKMEM_TEST_HAS_VALGRIND
  VALGRIND_DISABLE_ERROR_REPORTING;
#endif
}

HiddenFromMemcheck::~HiddenFromMemcheck() {
#ifdef HAKMEM_TEST_HAS_VALGRIND
  VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

bool UnderValgrind() {
#ifdef HAKMEM_TEST_HAS_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

int ChildDeadlineSeconds() { return UnderValgrind() ? 300 : 30; }

void SkipLeakCheckAfterFork() {
#ifdef HAKMEM_TEST_HAS_VALGRIND
  VALGRIND_CLO_CHANGE("--leak-check=no");
#endif
}

namespace {

class CleanHeapAtExit : public ::testing::Environment {
 public:
  void TearDown() override {
    EXPECT_EQ(hak_integrity_events(), 0u);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  }
};

}  // namespace

::testing::Environment* AddCleanHeapAtExit() {
  return ::testing::AddGlobalTestEnvironment(new CleanHeapAtExit);
}

bool Child::ExitedWith(int code) const {
  return ran && !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == code;
}

bool Child::KilledBy(int sig) const {
  return ran && !timed_out && WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

std::string Child::Describe() const {
  std::ostringstream s;
  if (!ran) s << "child did not run";
  else if (timed_out) s << "child hung, killed after " << ChildDeadlineSeconds() << " s";
  else if (WIFEXITED(status)) s << "child exited with " << WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    s << "child killed by signal " << WTERMSIG(status) << " ("
      << strsignal(WTERMSIG(status)) << ")";
  s << "\n--- child stderr ---\n" << err << "--- child stdout ---\n" << out;
  return s.str();
}

std::vector<std::string> BaseEnvironment() {
  static const char* const kKept[] = {"PATH", "HOME", "TMPDIR", "TEST_TMPDIR",
                                      "LD_LIBRARY_PATH", "LD_PRELOAD"};
  std::vector<std::string> env;
  for (const char* name : kKept) {
    if (const char* v = getenv(name)) env.push_back(std::string(name) + "=" + v);
  }
  return env;
}

Child RunProbe(const Probe& probe, const std::string& action,
               const std::vector<std::string>& settings, int ignored_signal) {
  Child c;
  std::vector<std::string> env = BaseEnvironment();
  env.push_back(std::string(probe.variable) + "=" + action);
  env.insert(env.end(), settings.begin(), settings.end());
  // The path, not /proc/self/exe itself: under valgrind (--trace-children)
  // that names valgrind's tool, whereas readlink of it names the program.
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    ADD_FAILURE() << "readlink(/proc/self/exe): " << strerror(errno);
    return c;
  }
  self[len] = '\0';
  const std::vector<std::string> args = {
      self, std::string("--gtest_filter=") + probe.test,
      "--gtest_also_run_disabled_tests", "--gtest_color=no"};
  // Everything the child needs is built before fork: between fork and exec
  // only async-signal-safe calls are allowed.
  std::vector<char*> argv, envp;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  static const char kExecFailed[] = "execve of the test binary failed\n";
  const struct rlimit no_core = {0, 0};
  struct sigaction dfl, ign;
  memset(&dfl, 0, sizeof dfl);
  memset(&ign, 0, sizeof ign);
  dfl.sa_handler = SIG_DFL;
  ign.sa_handler = SIG_IGN;

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
    setrlimit(RLIMIT_CORE, &no_core);  // children that crash leave no core
    // Start from the default signal state whatever the test runner gave us
    // (an ignored SIGABRT, say, would survive exec and change what the
    // child does), then the one disposition the case asks for.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT}) sigaction(sig, &dfl, nullptr);
    if (ignored_signal != 0) sigaction(ignored_signal, &ign, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
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
    if (now.tv_sec - start.tv_sec >= ChildDeadlineSeconds()) {
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

}  // namespace hakmem_test
