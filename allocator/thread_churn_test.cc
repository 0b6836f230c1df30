// Threads at volume: blocks relayed through a ring of threads (each block
// allocated by one thread, passed on through several queues and freed by a
// thread that is neither its allocator nor its first receiver), and 2,000
// short-lived threads whose heaps must be recycled so that the resident
// set stops growing once the process is warm.  threads_test.cc covers the
// same paths with fewer threads and exact counter checks.

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"
#include "test_support.h"

namespace {

constexpr size_t kMiB = 1024 * 1024;

::testing::Environment* const kCleanHeapEnv = ::hakmem_test::AddCleanHeapAtExit();

// A block in transit: where it was made, by whom, and how far it has gone.
struct Parcel {
  uint8_t* p;
  size_t n;
  int origin;
  int hops;
};

// Filled by the allocating thread from the address, size and origin, so
// any other thread can tell whether it holds the memory that was written.
uint8_t CookieByte(const Parcel& x, size_t i) {
  uint64_t c = (reinterpret_cast<uintptr_t>(x.p) * 0x9E3779B97F4A7C15ull) ^ (x.n << 7) ^
               static_cast<uint64_t>(x.origin);
  return static_cast<uint8_t>(c >> ((i % 8) * 8)) ^ static_cast<uint8_t>(i);
}

void WriteCookie(const Parcel& x) {
  for (size_t i = 0; i < x.n; ++i) x.p[i] = CookieByte(x, i);
}

bool CookieIntact(const Parcel& x) {
  for (size_t i = 0; i < x.n; ++i) {
    if (x.p[i] != CookieByte(x, i)) return false;
  }
  return true;
}

// An unbounded queue; its own allocations (deque chunks) are hakmem's too.
class Mailbox {
 public:
  void Put(const Parcel& x) {
    std::lock_guard<std::mutex> lock(mu_);
    q_.push_back(x);
    cv_.notify_one();
  }
  bool Take(Parcel* x) {  // false once closed and empty
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    *x = q_.front();
    q_.pop_front();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Parcel> q_;
  bool closed_ = false;
};

// Eight threads in a ring.  Each makes parcels (tiny, mid and large) and
// sends them to its neighbour; a parcel is checked at every hop and freed
// after kHops hops, by a thread two or more places from its origin.
TEST(ThreadChurn, ParcelsRelayedThroughARingAreIntactAtEveryHop) {
  constexpr int kThreads = 8, kPerThread = 2500, kHops = 3;
  const size_t sizes[] = {16, 24, 40, 96, 200, 512, 1000, 2000, 6000, 20000, 50000, 100000};
  const uint64_t events = hak_integrity_events();
  std::vector<Mailbox> boxes(kThreads);
  std::atomic<int> in_flight{kThreads * kPerThread};
  std::atomic<int> bad{0}, null_allocs{0}, freed_at_origin{0};
  std::vector<size_t> verify(kThreads, ~size_t{0});

  std::vector<std::thread> ring;
  for (int t = 0; t < kThreads; ++t) {
    ring.emplace_back([&, t] {
      Mailbox& next = boxes[(t + 1) % kThreads];
      // Make this thread's parcels first (they sit in the next mailbox),
      // then relay until every parcel of the run is freed.
      for (int i = 0; i < kPerThread; ++i) {
        Parcel x{nullptr, sizes[(i * 5 + t) % 12], t, 0};
        x.p = static_cast<uint8_t*>(malloc(x.n));
        if (x.p == nullptr) {
          ++null_allocs;
          if (--in_flight == 0) {
            for (auto& b : boxes) b.Close();
          }
          continue;
        }
        WriteCookie(x);
        next.Put(x);
      }
      Parcel x;
      while (boxes[t].Take(&x)) {
        if (!CookieIntact(x)) ++bad;
        if (++x.hops < kHops) {
          next.Put(x);
          continue;
        }
        if (x.origin == t) ++freed_at_origin;
        free(x.p);
        if (--in_flight == 0) {
          for (auto& b : boxes) b.Close();
        }
      }
      verify[t] = hak_tls_sll_verify();
    });
  }
  for (auto& th : ring) th.join();

  EXPECT_EQ(null_allocs.load(), 0);
  EXPECT_EQ(bad.load(), 0) << "a parcel's contents changed in transit";
  EXPECT_EQ(freed_at_origin.load(), 0) << "kHops < kThreads: never back home";
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(verify[t], 0u) << "thread " << t;
  EXPECT_EQ(hak_integrity_events(), events);
}

// Resident set of the process, from /proc/self/statm.
size_t RssBytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int got = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return got == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// Valgrind and the sanitizers keep their own per-thread state and shadow
// memory, so the resident set says nothing about hakmem under them.
bool RssIsMeaningful() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return false;
#endif
#endif
  const char* preload = getenv("LD_PRELOAD");
  return preload == nullptr || strstr(preload, "valgrind") == nullptr;
}

// 2,000 threads, 8 at a time, each allocating in every tier, leaving a
// block for the main thread to free after it exits and freeing the rest.
// Exited threads' heaps and spans are recycled: after warm-up (200 threads)
// the resident set may grow by at most 8 MiB over the next 1,800.
TEST(ThreadChurn, TwoThousandShortLivedThreadsKeepRssBounded) {
  constexpr int kThreads = 2000, kWarmUp = 200, kBatch = 8;
  const size_t sizes[] = {24, 64, 300, 1000, 4000, 20000, 60000, 200000};
  const uint64_t events = hak_integrity_events();
  std::atomic<int> failures{0};
  std::vector<void*> left_behind;
  std::mutex left_mu;
  size_t rss_warm = 0;

  for (int first = 0; first < kThreads; first += kBatch) {
    std::vector<std::thread> batch;
    for (int t = first; t < first + kBatch; ++t) {
      batch.emplace_back([&, t] {
        std::vector<void*> mine;
        for (int i = 0; i < 40; ++i) {
          size_t n = sizes[(i + t) % 8];
          auto* p = static_cast<uint8_t*>(malloc(n));
          if (p == nullptr) {
            ++failures;
            continue;
          }
          memset(p, t & 0xFF, n);
          mine.push_back(p);
        }
        for (size_t i = 1; i < mine.size(); ++i) {
          if (static_cast<uint8_t*>(mine[i])[0] != (t & 0xFF)) ++failures;
          free(mine[i]);
        }
        if (!mine.empty()) {
          std::lock_guard<std::mutex> lock(left_mu);
          left_behind.push_back(mine[0]);
        }
      });
    }
    for (auto& th : batch) th.join();
    // The main thread frees what exited threads left, as it goes.
    std::vector<void*> orphans;
    {
      std::lock_guard<std::mutex> lock(left_mu);
      orphans.swap(left_behind);
    }
    for (void* p : orphans) free(p);
    if (first + kBatch == kWarmUp) rss_warm = RssBytes();
  }
  const size_t rss_end = RssBytes();
  hak_stats s;
  ASSERT_EQ(hak_stats_get(&s), 0);

  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(s.threads_live, 2u) << "exited threads still hold heaps";
  EXPECT_EQ(hak_integrity_events(), events);
  if (!RssIsMeaningful()) GTEST_SKIP() << "RSS bound not checked under a sanitizer/Valgrind";
  ASSERT_GT(rss_warm, 0u);
  EXPECT_LE(rss_end, rss_warm + 8 * kMiB)
      << "RSS after " << kWarmUp << " threads: " << rss_warm / 1024 << " KiB, after "
      << kThreads << ": " << rss_end / 1024 << " KiB";
  printf("RSS after %d threads: %zu KiB, after %d: %zu KiB\n", kWarmUp, rss_warm / 1024,
         kThreads, rss_end / 1024);
}

}  // namespace
