// fork() leaves a working allocator in parent and child (SPEC.md §1), also
// when other threads are in the middle of malloc/free at the moment of the
// fork.  A child that inherits a lock some other thread held, or a free list
// half updated, hangs or crashes; each child is therefore waited for with a
// deadline and must exit with status 0.
//
// Children use only hakmem, pthreads and _exit: no gtest, no stdio.  Their
// exit status says which step failed (see ChildStep).  Two watchdogs: each
// child arms alarm() first thing (a child deadlocked on an inherited lock
// dies of SIGALRM instead of hanging), and the parent waits for each child
// with a deadline and kills it when it passes.

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
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

constexpr size_t kKiB = 1024;
using ::hakmem_test::ChildDeadlineSeconds;
using ::hakmem_test::Escape;

// No fault in the parent, and its main thread's lists intact at the end.
::testing::Environment* const kCleanHeapEnv = ::hakmem_test::AddCleanHeapAtExit();

// Tiny, mid and large sizes.
const size_t kSizes[] = {16, 24, 40, 64, 100, 256, 500, 1000, 1500,
                         4096, 9000, 30000, 65536, 70000, 300000};
constexpr size_t kNumSizes = sizeof(kSizes) / sizeof(kSizes[0]);

// ------------------------------------------------------------- the child --

// Exit statuses of a child; 0 is success.
enum ChildStep {
  kChildOk = 0,
  kChildMallocFailed = 10,
  kChildContentsWrong = 11,
  kChildInheritedBlockWrong = 12,
  kChildThreadCreateFailed = 13,
  kChildThreadFailed = 14,
  kChildVerifyFailed = 15,
  kChildIntegrityEvent = 16,
  kChildForkFailed = 20,
  kChildGrandchildHung = 21,
  kChildGrandchildCrashed = 22,
};

const char* ChildStepName(int status) {
  switch (status) {
    case kChildMallocFailed: return "malloc returned NULL in the child";
    case kChildContentsWrong: return "block contents wrong in the child";
    case kChildInheritedBlockWrong: return "inherited block contents wrong";
    case kChildThreadCreateFailed: return "pthread_create failed in the child";
    case kChildThreadFailed: return "the child's new thread failed";
    case kChildVerifyFailed: return "hak_tls_sll_verify() != 0 in the child";
    case kChildIntegrityEvent: return "integrity event in the child";
    case kChildForkFailed: return "fork failed in the child";
    case kChildGrandchildHung: return "the grandchild hung";
    case kChildGrandchildCrashed: return "the grandchild was killed by a signal";
    default: return "unknown";
  }
}

// Allocates, writes, checks and frees blocks of every tier, keeping a
// window of live blocks so frees and allocations interleave.  Returns
// kChildOk or the failing step.
int ChurnInChild(uint32_t seed, int rounds) {
  constexpr int kWindow = 32;
  void* live[kWindow] = {};
  size_t live_n[kWindow] = {};
  uint32_t x = seed | 1;
  for (int i = 0; i < rounds; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;  // xorshift: no allocation
    int slot = x % kWindow;
    if (live[slot] != nullptr) {
      auto* b = static_cast<uint8_t*>(live[slot]);
      if (b[0] != uint8_t(slot) || b[live_n[slot] - 1] != uint8_t(slot)) {
        return kChildContentsWrong;
      }
      free(live[slot]);
      live[slot] = nullptr;
    }
    size_t n = kSizes[(x >> 8) % kNumSizes];
    void* p = malloc(n);
    if (p == nullptr) return kChildMallocFailed;
    memset(p, slot, n);
    live[slot] = p;
    live_n[slot] = n;
  }
  for (void* p : live) free(p);
  return kChildOk;
}

void* ChildThreadMain(void* arg) {
  int result = ChurnInChild(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg)), 3000);
  if (result == kChildOk && hak_tls_sll_verify() != 0) result = kChildVerifyFailed;
  return reinterpret_cast<void*>(static_cast<uintptr_t>(result));
}

// Blocks allocated in the parent before the fork and freed by the child:
// the child frees memory owned by threads it does not have.
struct Inherited {
  std::vector<void*> blocks;
  std::vector<size_t> sizes;
};

[[noreturn]] void ChildMain(uint32_t seed, const Inherited* inherited) {
  ::hakmem_test::SkipLeakCheckAfterFork();
  signal(SIGALRM, SIG_DFL);
  alarm(ChildDeadlineSeconds() - 10);
  const uint64_t events = hak_integrity_events();
  int status = ChurnInChild(seed, 5000);
  if (status == kChildOk && inherited != nullptr) {
    for (size_t i = 0; i < inherited->blocks.size(); ++i) {
      auto* b = static_cast<uint8_t*>(inherited->blocks[i]);
      size_t n = inherited->sizes[i];
      if (b[0] != uint8_t(i) || b[n - 1] != uint8_t(i)) {
        status = kChildInheritedBlockWrong;
        break;
      }
      free(b);
    }
  }
  if (status == kChildOk) {
    pthread_t t;
    void* result = nullptr;
    if (pthread_create(&t, nullptr, ChildThreadMain,
                       reinterpret_cast<void*>(uintptr_t{seed} * 31 + 7)) != 0) {
      status = kChildThreadCreateFailed;
    } else if (pthread_join(t, &result) != 0 || result != nullptr) {
      status = result == nullptr ? kChildThreadFailed
                                 : static_cast<int>(reinterpret_cast<uintptr_t>(result));
    }
  }
  if (status == kChildOk) status = ChurnInChild(seed + 1, 2000);
  if (status == kChildOk && hak_tls_sll_verify() != 0) status = kChildVerifyFailed;
  if (status == kChildOk && hak_integrity_events() != events) {
    status = kChildIntegrityEvent;
  }
  _exit(status);
}

// Waits for pid until the deadline; on timeout kills it.  Reports through
// gtest.  Returns true if the child exited with status 0.
bool ChildSucceeded(pid_t pid, int index) {
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFSIGNALED(status)) {
        ADD_FAILURE() << "child " << index
                      << (WTERMSIG(status) == SIGALRM
                              ? " hung: its own alarm fired (deadlock after fork?)"
                              : " killed by signal ")
                      << WTERMSIG(status) << " (" << strsignal(WTERMSIG(status)) << ")";
        return false;
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ADD_FAILURE() << "child " << index << " exited with "
                      << WEXITSTATUS(status) << ": "
                      << ChildStepName(WEXITSTATUS(status));
        return false;
      }
      return true;
    }
    if (r < 0 && errno != EINTR) {
      ADD_FAILURE() << "waitpid: " << strerror(errno);
      return false;
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > ChildDeadlineSeconds()) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "child " << index << " still running after "
                    << ChildDeadlineSeconds() << " s: hung (deadlock after fork?)";
      return false;
    }
    usleep(2000);
  }
}

// ------------------------------------------------------------ the parent --

// Threads that allocate and free mixed sizes until told to stop, and swap
// blocks with each other through atomic slots (so remote frees are in
// flight too when the fork happens).
class BusyThreads {
 public:
  explicit BusyThreads(int count) : verify_(count, ~size_t{0}) {
    for (auto& s : swap_) s.store(nullptr);
    for (int i = 0; i < count; ++i) threads_.emplace_back(&BusyThreads::Run, this, i);
  }

  // Stops and joins the threads; returns the number of problems they saw.
  int Stop() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
    for (auto& s : swap_) free(s.exchange(nullptr));
    for (size_t i = 0; i < verify_.size(); ++i) {
      EXPECT_EQ(verify_[i], 0u) << "hak_tls_sll_verify() in busy thread " << i;
    }
    return failures_.load();
  }

  ~BusyThreads() {
    if (!threads_.empty()) Stop();
  }

 private:
  void Run(int id) {
    std::mt19937 rng(1000 + id);
    std::vector<std::pair<uint8_t*, size_t>> live(64, {nullptr, 0});
    while (!stop_.load(std::memory_order_relaxed)) {
      auto& [p, n] = live[rng() % live.size()];
      if (p != nullptr) {
        if (p[0] != 0xB5 || p[n - 1] != 0xB5) ++failures_;
        if (rng() % 4 == 0) {
          // Swap with another thread: whatever comes out is freed here.
          free(swap_[rng() % kSwapSlots].exchange(p));
        } else {
          free(p);
        }
        p = nullptr;
      }
      n = kSizes[rng() % kNumSizes];
      p = static_cast<uint8_t*>(malloc(n));
      if (p == nullptr) {
        ++failures_;
        continue;
      }
      memset(p, 0xB5, n);
    }
    for (auto& [p, n] : live) free(p);
    verify_[id] = hak_tls_sll_verify();
  }

  static constexpr int kSwapSlots = 16;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::atomic<void*> swap_[kSwapSlots];
  std::vector<size_t> verify_;
  std::vector<std::thread> threads_;
};

// Blocks a helper thread allocates and keeps alive across the forks.
Inherited AllocateInOtherThread() {
  Inherited in;
  std::thread t([&] {
    for (size_t i = 0; i < 200; ++i) {
      size_t n = kSizes[i % kNumSizes];
      void* p = malloc(n);
      ASSERT_NE(p, nullptr);
      memset(p, static_cast<int>(i), n);
      in.blocks.push_back(p);
      in.sizes.push_back(n);
    }
  });
  t.join();
  return in;
}

// After the forks the parent must still allocate and free normally.
void ExpectParentStillAllocates() {
  std::vector<std::pair<void*, size_t>> blocks;
  for (int i = 0; i < 3000; ++i) {
    size_t n = kSizes[i % kNumSizes];
    void* p = malloc(n);
    ASSERT_NE(p, nullptr);
    memset(p, i & 0xFF, n);
    blocks.push_back({p, n});
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto* b = static_cast<uint8_t*>(blocks[i].first);
    EXPECT_EQ(b[0], i & 0xFF);
    EXPECT_EQ(b[blocks[i].second - 1], i & 0xFF);
    free(b);
  }
  EXPECT_EQ(hak_tls_sll_verify(), 0u);
}

TEST(Fork, ChildrenOfABusyProcessAllocateAndExitCleanly) {
  const uint64_t events = hak_integrity_events();
  Inherited inherited = AllocateInOtherThread();
  ASSERT_EQ(inherited.blocks.size(), 200u);
  BusyThreads busy(4);

  int succeeded = 0;
  for (int i = 0; i < 20; ++i) {
    // Some allocation right before the fork, so the forking thread's own
    // lists are in use as well.
    void* warm = malloc(kSizes[i % kNumSizes]);
    Escape(warm);
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork: " << strerror(errno);
    if (pid == 0) ChildMain(static_cast<uint32_t>(i + 1), &inherited);
    free(warm);
    if (ChildSucceeded(pid, i)) ++succeeded;
  }
  EXPECT_EQ(succeeded, 20);
  EXPECT_EQ(busy.Stop(), 0) << "busy threads saw NULL or overwritten blocks";

  for (size_t i = 0; i < inherited.blocks.size(); ++i) {
    auto* b = static_cast<uint8_t*>(inherited.blocks[i]);
    EXPECT_EQ(b[0], uint8_t(i)) << "the child's frees touched the parent";
    free(b);
  }
  ExpectParentStillAllocates();
  EXPECT_EQ(hak_integrity_events(), events);
}

// The volume run: 100 forks while four threads never stop allocating,
// freeing and passing blocks to each other, so most forks land while some
// thread is inside malloc or free.  None may hang or fail.
TEST(Fork, HundredForksWhileThreadsAllocate) {
  // Memcheck runs one thread at a time, 20-50x slower: 20 forks still land
  // inside the busy threads' malloc and free; the hundred are the native
  // run's.
  const int kForks = ::hakmem_test::UnderValgrind() ? 20 : 100;
  const uint64_t events = hak_integrity_events();
  BusyThreads busy(4);
  int succeeded = 0;
  for (int i = 0; i < kForks; ++i) {
    void* warm = malloc(kSizes[i % kNumSizes]);  // the forking thread is busy too
    Escape(warm);
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork: " << strerror(errno);
    if (pid == 0) ChildMain(static_cast<uint32_t>(i * 2654435761u), nullptr);
    free(warm);
    if (ChildSucceeded(pid, i)) ++succeeded;
  }
  EXPECT_EQ(succeeded, kForks);
  EXPECT_EQ(busy.Stop(), 0) << "busy threads saw NULL or overwritten blocks";
  ExpectParentStillAllocates();
  EXPECT_EQ(hak_integrity_events(), events);
}

// fork() from a thread other than main: in the child that thread is the only
// one, with its own TLS lists, while main was busy in the parent.
TEST(Fork, ForkFromASecondaryThread) {
  BusyThreads busy(2);
  std::vector<pid_t> children;
  std::thread forker([&] {
    for (int i = 0; i < 5; ++i) {
      void* warm = malloc(kSizes[(i * 7) % kNumSizes]);
      Escape(warm);
      pid_t pid = fork();
      if (pid == 0) ChildMain(static_cast<uint32_t>(100 + i), nullptr);
      free(warm);
      children.push_back(pid);
    }
  });
  // The main thread keeps allocating while the other thread forks.
  std::vector<void*> held;
  for (int i = 0; i < 2000; ++i) {
    held.push_back(malloc(kSizes[i % kNumSizes]));
    if (held.size() > 50) {
      free(held.front());
      held.erase(held.begin());
    }
  }
  forker.join();
  for (void* p : held) free(p);

  ASSERT_EQ(children.size(), 5u);
  for (size_t i = 0; i < children.size(); ++i) {
    ASSERT_GT(children[i], 0) << "fork failed";
    EXPECT_TRUE(ChildSucceeded(children[i], static_cast<int>(i)));
  }
  EXPECT_EQ(busy.Stop(), 0);
  ExpectParentStillAllocates();
}

// A child can fork again (the allocator state reinitialised after the first
// fork must itself survive a fork).
TEST(Fork, GrandchildAllocates) {
  BusyThreads busy(2);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::hakmem_test::SkipLeakCheckAfterFork();
    int status = ChurnInChild(7, 2000);
    if (status != kChildOk) _exit(status);
    pid_t grandchild = fork();
    if (grandchild < 0) _exit(kChildForkFailed);
    if (grandchild == 0) ChildMain(8, nullptr);
    // Poll with a deadline shorter than the parent's, so a hung grandchild
    // is killed rather than left behind.
    int gstatus = 0;
    int waited_ms = 0;
    while (waitpid(grandchild, &gstatus, WNOHANG) != grandchild) {
      if (waited_ms > (ChildDeadlineSeconds() - 5) * 1000) {
        kill(grandchild, SIGKILL);
        waitpid(grandchild, &gstatus, 0);
        _exit(kChildGrandchildHung);
      }
      usleep(2000);
      waited_ms += 2;
    }
    if (!WIFEXITED(gstatus)) _exit(kChildGrandchildCrashed);
    if (WEXITSTATUS(gstatus) != 0) _exit(WEXITSTATUS(gstatus));
    ChildMain(9, nullptr);
  }
  EXPECT_TRUE(ChildSucceeded(pid, 0));
  EXPECT_EQ(busy.Stop(), 0);
}

}  // namespace
