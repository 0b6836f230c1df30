// 100 forks from a parent whose other threads never stop allocating and
// freeing (and passing blocks to each other), so most forks land while some
// thread is inside malloc or free.  Every child allocates, frees and exits
// 0; none may hang.  fork_test.cc covers the kinds of fork (secondary
// thread, grandchild, inherited blocks) a few times each; this is the
// volume run.
//
// Two watchdogs: each child arms alarm() first thing (a child deadlocked on
// an inherited lock dies of SIGALRM instead of hanging), and the parent
// polls each child with a deadline and kills it when it passes.

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"
#include "test_support.h"

namespace {

constexpr int kForks = 100;
constexpr int kBusyThreads = 4;
constexpr unsigned kChildAlarmSeconds = 20;
constexpr int kParentDeadlineSeconds = 30;

const size_t kSizes[] = {16, 24, 48, 100, 256, 1000, 3000, 9000, 40000, 70000, 300000};
constexpr size_t kNumSizes = sizeof(kSizes) / sizeof(kSizes[0]);

::testing::Environment* const kCleanHeapEnv = ::hakmem_test::AddCleanHeapAtExit();

// The child: only hakmem, a thread and _exit (no gtest, no stdio).  Exit
// status 0 ok, 10 malloc failed, 11 contents wrong, 12 thread failed,
// 13 list verification failed.
int ChildChurn(uint32_t seed) {
  void* live[16] = {};
  size_t live_n[16] = {};
  uint32_t x = seed | 1;
  for (int i = 0; i < 1500; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    int slot = x % 16;
    if (live[slot] != nullptr) {
      auto* b = static_cast<uint8_t*>(live[slot]);
      if (b[0] != uint8_t(slot + seed) || b[live_n[slot] - 1] != uint8_t(slot + seed)) return 11;
      free(b);
    }
    size_t n = kSizes[(x >> 8) % kNumSizes];
    live[slot] = malloc(n);
    if (live[slot] == nullptr) return 10;
    memset(live[slot], slot + seed, n);
    live_n[slot] = n;
  }
  for (void* p : live) free(p);
  return hak_tls_sll_verify() == 0 ? 0 : 13;
}

void* ChildThread(void* arg) {
  return reinterpret_cast<void*>(
      static_cast<uintptr_t>(ChildChurn(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg)))));
}

[[noreturn]] void Child(uint32_t seed) {
  signal(SIGALRM, SIG_DFL);
  alarm(kChildAlarmSeconds);
  int status = ChildChurn(seed);
  if (status == 0) {
    pthread_t t;
    void* result = nullptr;
    if (pthread_create(&t, nullptr, ChildThread, reinterpret_cast<void*>(uintptr_t{seed} + 1)) != 0 ||
        pthread_join(t, &result) != 0) {
      status = 12;
    } else {
      status = static_cast<int>(reinterpret_cast<uintptr_t>(result));
    }
  }
  _exit(status);
}

// Waits for pid with a deadline; describes a failure, "" on success.
std::string WaitChild(pid_t pid) {
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFSIGNALED(status)) {
        return WTERMSIG(status) == SIGALRM
                   ? std::string("hung: its own alarm fired (deadlock after fork?)")
                   : std::string("killed by ") + strsignal(WTERMSIG(status));
      }
      if (WEXITSTATUS(status) != 0) return "exited " + std::to_string(WEXITSTATUS(status));
      return "";
    }
    if (r < 0 && errno != EINTR) return std::string("waitpid: ") + strerror(errno);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > kParentDeadlineSeconds) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return "hung: killed after the parent's deadline";
    }
    usleep(1000);
  }
}

TEST(ForkStorm, HundredForksWhileThreadsAllocate) {
  const uint64_t events = hak_integrity_events();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<void*> swap[8];
  for (auto& s : swap) s.store(nullptr);
  std::vector<std::thread> busy;
  for (int id = 0; id < kBusyThreads; ++id) {
    busy.emplace_back([&, id] {
      std::mt19937 rng(77 + id);
      std::vector<std::pair<uint8_t*, size_t>> live(32, {nullptr, 0});
      while (!stop.load(std::memory_order_relaxed)) {
        auto& [p, n] = live[rng() % live.size()];
        if (p != nullptr) {
          if (p[0] != 0xC3 || p[n - 1] != 0xC3) ++failures;
          free(rng() % 4 ? p : swap[rng() % 8].exchange(p));  // some go to other threads
        }
        n = kSizes[rng() % kNumSizes];
        p = static_cast<uint8_t*>(malloc(n));
        if (p == nullptr) {
          ++failures;
          continue;
        }
        memset(p, 0xC3, n);
      }
      for (auto& [p, n] : live) free(p);
    });
  }

  int ok = 0;
  for (int i = 0; i < kForks; ++i) {
    void* warm = malloc(kSizes[i % kNumSizes]);  // the forking thread is busy too
    ::hakmem_test::Escape(warm);
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork: " << strerror(errno);
    if (pid == 0) Child(static_cast<uint32_t>(i * 2654435761u));
    free(warm);
    std::string why = WaitChild(pid);
    if (why.empty()) {
      ++ok;
    } else {
      ADD_FAILURE() << "child " << i << ": " << why;
    }
  }
  stop.store(true);
  for (auto& t : busy) t.join();
  for (auto& s : swap) free(s.exchange(nullptr));

  EXPECT_EQ(ok, kForks);
  EXPECT_EQ(failures.load(), 0) << "busy threads saw NULL or overwritten blocks";
  EXPECT_EQ(hak_integrity_events(), events);
}

}  // namespace
