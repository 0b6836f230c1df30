// hakmem under threads: cross-thread (remote) frees, what a thread hands
// back when it exits, heavy mixed use with the integrity walk at the end,
// the knob setters ACE uses, and scavenging.
//
// Statistics are compared as deltas between snapshots taken while the test's
// threads are quiet (hakmem.h: then they are exact).  gtest and libstdc++
// may allocate in between, so "at least" is asserted where they could add
// to a count, and exact values only where nothing else can contribute.

#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"
#include "hakmem_testing.h"
#include "test_support.h"

namespace {

constexpr size_t kKiB = 1024;

using ::hakmem_test::Escape;

hak_stats Snapshot() {
  hak_stats s;
  memset(&s, 0, sizeof(s));
  EXPECT_EQ(hak_stats_get(&s), 0);
  return s;
}

// A correct allocator sees no fault in this whole binary, and the main
// thread's lists are intact at the end.
::testing::Environment* const kCleanHeapEnv = ::hakmem_test::AddCleanHeapAtExit();

// Blocks travel with their size; the block itself carries a cookie derived
// from its address and size at both ends, so a consumer sees whether the
// memory it got is the memory the producer wrote.
struct Item {
  void* p;
  size_t n;
};

inline uint64_t Cookie(const void* p, size_t n) {
  return (reinterpret_cast<uintptr_t>(p) * 0x9E3779B97F4A7C15ull) ^ (n << 17) ^
         0xC0FFEEull;
}

void WriteCookie(void* p, size_t n) {  // n >= 16
  uint64_t c = Cookie(p, n);
  memcpy(p, &c, 8);
  memcpy(static_cast<char*>(p) + n - 8, &c, 8);
  Escape(p);
}

bool CookieIntact(const void* p, size_t n) {
  uint64_t c = Cookie(p, n), head, tail;
  memcpy(&head, p, 8);
  memcpy(&tail, static_cast<const char*>(p) + n - 8, 8);
  return head == c && tail == c;
}

// A bounded FIFO with a fixed ring: it never allocates after construction,
// so the queue itself adds nothing to the class statistics.
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : ring_(capacity) {}

  void Push(Item item) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return count_ < ring_.size(); });
    ring_[(head_ + count_) % ring_.size()] = item;
    ++count_;
    not_empty_.notify_one();
  }

  // False once the queue is closed and empty.
  bool Pop(Item* out) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return count_ > 0 || closed_; });
    if (count_ == 0) return false;
    *out = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --count_;
    not_full_.notify_one();
    return true;
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::vector<Item> ring_;
  size_t head_ = 0, count_ = 0;
  bool closed_ = false;
};

// A one-shot gate threads wait at until it is opened.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// ---------------------------------------------------------- remote frees --

// Producers allocate blocks of tiny and mid classes and hand them to
// consumers, which check the cookie and free them.  Producers stay alive
// until every block is freed, so each consumer free lands in a slab owned by
// a live thread: a remote free.
TEST(Threads, CrossThreadFreeKeepsContentsAndCounts) {
  constexpr int kProducers = 4, kConsumers = 4, kPerProducer = 3000;
  const size_t sizes[] = {16,   24,   48,   100,  200,   448,
                          1000, 1500, 3000, 8000, 20000, 60000};
  constexpr size_t kNumSizes = sizeof(sizes) / sizeof(sizes[0]);

  BoundedQueue queue(512);
  Gate all_freed;
  std::atomic<int> producers_left{kProducers};
  std::vector<std::vector<uint64_t>> freed(
      kConsumers, std::vector<uint64_t>(HAK_NUM_CLASSES, 0));
  std::atomic<uint64_t> bad_cookies{0}, null_allocs{0};
  std::vector<size_t> tls_verify(kProducers + kConsumers, 0);

  const hak_stats before = Snapshot();
  std::vector<std::thread> producers, consumers;
  for (int t = 0; t < kConsumers; ++t) {
    consumers.emplace_back([&, t] {
      Item item;
      while (queue.Pop(&item)) {
        if (!CookieIntact(item.p, item.n)) ++bad_cookies;
        free(item.p);
        ++freed[t][hak_size_class(item.n)];
      }
      tls_verify[kProducers + t] = hak_tls_sll_verify();
    });
  }
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerProducer; ++i) {
        size_t n = sizes[(i + t) % kNumSizes];
        void* p = malloc(n);
        if (p == nullptr) {
          ++null_allocs;
          continue;
        }
        WriteCookie(p, n);
        queue.Push({p, n});
      }
      if (--producers_left == 0) queue.Close();
      tls_verify[t] = hak_tls_sll_verify();
      all_freed.Wait();  // keep owning the slabs until the consumers are done
    });
  }
  for (auto& t : consumers) t.join();
  const hak_stats quiet = Snapshot();  // producers alive, blocked at the gate
  all_freed.Open();
  for (auto& t : producers) t.join();

  EXPECT_EQ(null_allocs.load(), 0u);
  EXPECT_EQ(bad_cookies.load(), 0u) << "a consumer got a block whose cookie "
                                       "was overwritten";
  for (size_t v : tls_verify) EXPECT_EQ(v, 0u);

  for (size_t n : sizes) {
    int c = hak_size_class(n);
    ASSERT_GE(c, 0);
    uint64_t count = 0;
    for (const auto& per_consumer : freed) count += per_consumer[c];
    ASSERT_GT(count, 0u);
    SCOPED_TRACE(::testing::Message() << "class " << c << " (" << n
                                      << " bytes), blocks " << count);
    const hak_class_stats& b = before.cls[c];
    const hak_class_stats& q = quiet.cls[c];
    EXPECT_GE(q.allocs - b.allocs, count);
    EXPECT_GE(q.frees - b.frees, count);
    // Every block of the test was freed: allocations and frees balance up to
    // the few blocks the C and C++ runtimes keep per thread.
    int64_t unbalanced = static_cast<int64_t>(q.allocs - b.allocs) -
                         static_cast<int64_t>(q.frees - b.frees);
    EXPECT_LE(std::abs(unbalanced), 32) << "allocs and frees do not balance";
    EXPECT_GT(q.remote_frees, b.remote_frees)
        << "frees by consumer threads were not counted as remote";
  }
}

// The remote queue counts its blocks in its head word (remote.h): the
// backlog statistic is exactly the blocks other threads freed.  The owner's
// collection joins the queue to the span's local list, walking whichever
// is shorter; afterwards every list must hold exactly the blocks its span's
// counters say (hak_testing_verify_heap checks), so a block lost or counted
// twice in the join is caught.  One block stays live so the spans stay in
// use and their lists are still there to check.
class RemoteCollect : public ::testing::TestWithParam<int> {};

TEST_P(RemoteCollect, BacklogIsCountedAndEveryBlockComesHome) {
  constexpr size_t kSize = 3000;
  constexpr int kBlocks = 100;
  const int remote_percent = GetParam();
  const int cls = hak_size_class(kSize);
  ASSERT_GE(cls, 0);
  // Above the backlog, the threshold announces nothing: the queue waits
  // for the collection the test asks for.
  const uint32_t threshold = hkm_tiny_get_drain_threshold(cls);
  ASSERT_EQ(hkm_tiny_set_drain_threshold(cls, 2 * kBlocks), 0);
  // Spread over the blocks, so that every span gets its share of each.
  auto freed_remotely = [&](int i) { return i > 0 && (i * 37) % 100 < remote_percent; };
  int remote = 0;
  for (int i = 0; i < kBlocks; ++i) remote += freed_remotely(i);

  const hak_stats before = Snapshot();
  std::vector<void*> blocks(kBlocks);
  Gate allocated, remote_done;
  size_t bad_lists = 0;
  hak_stats collected;
  std::thread owner([&] {
    for (void*& p : blocks) {
      p = malloc(kSize);
      Escape(p);
    }
    allocated.Open();
    remote_done.Wait();
    for (int i = 1; i < kBlocks; ++i)
      if (!freed_remotely(i)) free(blocks[i]);
    hak_testing_tls_flush();  // the local frees onto their spans' lists
    hak_testing_collect_remote(cls);
    collected = Snapshot();
    bad_lists = hak_testing_verify_heap(cls);
    free(blocks[0]);
  });
  allocated.Wait();
  for (int i = 0; i < kBlocks; ++i)
    if (freed_remotely(i)) free(blocks[i]);
  const hak_stats queued = Snapshot();
  remote_done.Open();
  owner.join();
  const hak_stats after = Snapshot();
  hkm_tiny_set_drain_threshold(cls, threshold);

  EXPECT_EQ(queued.cls[cls].remote_backlog - before.cls[cls].remote_backlog,
            static_cast<uint64_t>(remote));
  EXPECT_EQ(collected.cls[cls].remote_backlog, before.cls[cls].remote_backlog)
      << "remote blocks left after the owner collected";
  EXPECT_EQ(bad_lists, 0u) << remote << " remote and " << kBlocks - 1 - remote
                           << " local frees did not join into exact lists";
  EXPECT_EQ(after.integrity_events, before.integrity_events);
}

// 10%: the queue is the shorter list; 90%: the local list is; 100%: there
// is no local list to join.
INSTANTIATE_TEST_SUITE_P(Threads, RemoteCollect, ::testing::Values(10, 90, 100));

// -------------------------------------------------------- thread exit --

// A thread that exits hands its TLS free lists back: they stop counting as
// cached, and the heap counts as retired.
TEST(Threads, ExitHandsTlsCacheBack) {
  const size_t n = 400;
  const int cls = hak_size_class(n);
  ASSERT_GE(cls, 0);
  constexpr uint64_t kSlack = 2;

  const hak_stats before = Snapshot();
  uint32_t length_inside = 0;
  hak_stats inside;
  std::thread t([&] {
    std::vector<void*> blocks(256);
    for (void*& p : blocks) {
      p = malloc(n);
      Escape(p);
    }
    for (void* p : blocks) free(p);
    length_inside = hak_testing_tls_sll_length(cls);
    inside = Snapshot();
  });
  t.join();
  const hak_stats after = Snapshot();

  EXPECT_GT(length_inside, 0u) << "freed blocks did not stay in the TLS list";
  EXPECT_GT(inside.cls[cls].tls_cached, before.cls[cls].tls_cached);
  EXPECT_GT(inside.threads_live, before.threads_live);
  EXPECT_LE(after.cls[cls].tls_cached, before.cls[cls].tls_cached + kSlack)
      << "the exited thread's cached blocks are still counted (inside it: "
      << inside.cls[cls].tls_cached << ")";
  EXPECT_EQ(after.threads_retired, before.threads_retired + 1);
  EXPECT_EQ(after.threads_live, before.threads_live);
}

// Statistics are totals since start: what a thread allocated and freed
// still counts after it has exited, for tiny/mid classes and for the large
// tier alike.
TEST(Threads, CountersOfExitedThreadsAreKept) {
  const size_t small = 200, large = 1 << 20;
  const int cls = hak_size_class(small);
  ASSERT_GE(cls, 0);
  ASSERT_EQ(hak_size_class(large), -1);
  constexpr int kBlocks = 10;

  const hak_stats before = Snapshot();
  std::thread t([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < kBlocks; ++i) {
      blocks.push_back(malloc(small));
      blocks.push_back(malloc(large));
    }
    for (void* p : blocks) {
      Escape(p);
      free(p);
    }
  });
  t.join();
  const hak_stats after = Snapshot();

  EXPECT_GE(after.cls[cls].allocs, before.cls[cls].allocs + kBlocks);
  EXPECT_GE(after.cls[cls].frees, before.cls[cls].frees + kBlocks);
  EXPECT_GE(after.large_allocs, before.large_allocs + kBlocks);
  EXPECT_GE(after.large_frees, before.large_frees + kBlocks);
}

// Thread-exit code of other libraries may allocate after hakmem has handed
// the thread's heap back: a pthread key destructor registered after hakmem
// initialised runs after hakmem's own.  Such allocations must work and must
// not leave a heap behind that counts as live forever.
pthread_key_t g_late_key;
std::atomic<int> g_late_destructor_ok{0};

void LateDestructor(void* value) {
  // Free the block the thread left, allocate and free a few more.
  free(value);
  void* blocks[16];
  for (int i = 0; i < 16; ++i) {
    blocks[i] = malloc(16 + 64 * i);
    if (blocks[i] == nullptr) return;
    memset(blocks[i], i, 16 + 64 * i);
  }
  for (void* p : blocks) free(p);
  ++g_late_destructor_ok;
}

TEST(Threads, AllocationInALateThreadDestructor) {
  free(malloc(1));  // hakmem is initialised before the key is created
  ASSERT_EQ(pthread_key_create(&g_late_key, LateDestructor), 0);
  g_late_destructor_ok = 0;
  const uint64_t events = hak_integrity_events();
  const hak_stats before = Snapshot();
  constexpr int kThreads = 8;
  for (int i = 0; i < kThreads; ++i) {
    std::thread t([] {
      void* p = malloc(100);
      ASSERT_NE(p, nullptr);
      ASSERT_EQ(pthread_setspecific(g_late_key, p), 0);
    });
    t.join();
  }
  const hak_stats after = Snapshot();
  pthread_key_delete(g_late_key);
  EXPECT_EQ(g_late_destructor_ok.load(), kThreads);
  EXPECT_EQ(after.threads_live, before.threads_live)
      << "heaps re-created during thread exit are never retired";
  EXPECT_GE(after.threads_retired, before.threads_retired + kThreads);
  EXPECT_EQ(hak_integrity_events(), events);
}

// Many short-lived threads: each allocates in every tier and leaves a few
// blocks behind for the main thread to free after it has gone (frees into
// the slabs of a retired heap).
TEST(Threads, ShortLivedThreadsAreRetired) {
  constexpr int kThreads = 200, kBatch = 8, kLeftBehind = 4;
  const size_t sizes[] = {24, 300, 700, 5000, 40000, 70000};

  const hak_stats before = Snapshot();
  std::vector<Item> left(kThreads * kLeftBehind);
  std::atomic<int> failures{0};
  for (int first = 0; first < kThreads; first += kBatch) {
    std::vector<std::thread> batch;
    for (int t = first; t < first + kBatch && t < kThreads; ++t) {
      batch.emplace_back([&, t] {
        std::vector<Item> mine;
        for (int i = 0; i < 60; ++i) {
          size_t n = sizes[(i + t) % 6];
          void* p = malloc(n);
          if (p == nullptr) {
            ++failures;
            continue;
          }
          WriteCookie(p, n);
          mine.push_back({p, n});
        }
        for (size_t i = 0; i < mine.size(); ++i) {
          if (!CookieIntact(mine[i].p, mine[i].n)) ++failures;
          if (i < kLeftBehind) {
            left[t * kLeftBehind + i] = mine[i];
          } else {
            free(mine[i].p);
          }
        }
        if (hak_tls_sll_verify() != 0) ++failures;
      });
    }
    for (auto& th : batch) th.join();
  }
  for (const Item& it : left) {
    ASSERT_NE(it.p, nullptr);
    EXPECT_TRUE(CookieIntact(it.p, it.n));
    free(it.p);
  }
  const hak_stats after = Snapshot();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(after.threads_live, before.threads_live);
  EXPECT_EQ(after.threads_retired, before.threads_retired + kThreads);
  EXPECT_EQ(hak_tls_sll_verify(), 0u);
}

// ---------------------------------------------------- heavy mixed use --

// Every API call, random sizes 0..100 KiB across all tiers, random frees,
// blocks passed between threads; contents checked on every touch.  At the
// end each thread's lists must verify clean and no fault may have been seen.
struct Block {
  uint8_t* p = nullptr;
  size_t n = 0;
  uint8_t tag = 0;
};

bool TagIntact(const Block& b) {
  for (size_t i = 0; i < b.n; ++i) {
    if (b.p[i] != b.tag) return false;
  }
  return true;
}

class SharedBlocks {  // fixed capacity, never allocates after construction
 public:
  SharedBlocks() { pool_.reserve(kCapacity); }
  bool Put(const Block& b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pool_.size() == kCapacity) return false;
    pool_.push_back(b);
    return true;
  }
  bool Take(Block* b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pool_.empty()) return false;
    *b = pool_.back();
    pool_.pop_back();
    return true;
  }

 private:
  static constexpr size_t kCapacity = 1024;
  std::mutex mu_;
  std::vector<Block> pool_;
};

void MixedWorker(int id, SharedBlocks* shared, std::atomic<int>* failures,
                 size_t* verify_result) {
  std::mt19937_64 rng(0x5EED + id * 7919);
  std::vector<Block> slots(256);
  auto fail = [&] { ++*failures; };
  auto random_size = [&]() -> size_t {
    uint64_t r = rng() % 100;
    if (r < 75) return rng() % (1 * kKiB + 1);
    if (r < 97) return 1 * kKiB + 1 + rng() % (64 * kKiB - 1 * kKiB);
    return 64 * kKiB + 1 + rng() % (100 * kKiB - 64 * kKiB);
  };

  for (int op = 0; op < 20000; ++op) {
    Block& b = slots[rng() % slots.size()];
    if (b.p != nullptr) {
      if (!TagIntact(b)) fail();
      uint64_t action = rng() % 10;
      if (action < 5) {
        free(b.p);
        b = Block();
      } else if (action < 8) {  // realloc, keeps the common prefix
        size_t m = 1 + random_size();
        auto* q = static_cast<uint8_t*>(realloc(b.p, m));
        if (q == nullptr) {
          fail();
          continue;
        }
        b.p = q;
        if (!TagIntact({q, std::min(b.n, m), b.tag})) fail();
        if (m > b.n) memset(q + b.n, b.tag, m - b.n);
        b.n = m;
      } else if (!shared->Put(b)) {  // give it to another thread
        free(b.p);
        b = Block();
      } else {
        b = Block();
      }
      continue;
    }
    // Empty slot: adopt a block another thread allocated, or allocate.
    if (rng() % 5 == 0 && shared->Take(&b)) {
      if (!TagIntact(b)) fail();
      continue;
    }
    size_t n = random_size();
    size_t align = 16;
    void* p = nullptr;
    switch (rng() % 6) {
      case 0:
        p = malloc(n);
        break;
      case 1:
        p = calloc(1, n);
        if (p != nullptr && n > 0 &&
            !TagIntact({static_cast<uint8_t*>(p), n, 0})) {
          fail();
        }
        break;
      case 2:
        p = realloc(nullptr, n);
        break;
      case 3:
        align = size_t{16} << (rng() % 9);  // 16 .. 4096
        p = memalign(align, n);
        break;
      case 4:
        align = size_t{8} << (rng() % 10);  // 8 .. 4096
        if (posix_memalign(&p, align, n) != 0) p = nullptr;
        break;
      case 5:
        align = size_t{64} << (rng() % 6);  // 64 .. 2048
        p = aligned_alloc(align, n);
        break;
    }
    if (p == nullptr || reinterpret_cast<uintptr_t>(p) % std::max<size_t>(align, 16) != 0) {
      fail();
      free(p);
      continue;
    }
    b.p = static_cast<uint8_t*>(p);
    b.n = n;
    b.tag = static_cast<uint8_t>(rng() | 1);
    memset(b.p, b.tag, n);
  }
  for (Block& b : slots) {
    if (b.p == nullptr) continue;
    if (!TagIntact(b)) fail();
    free(b.p);
  }
  *verify_result = hak_tls_sll_verify();
}

TEST(Threads, HeavyMixedUseLeavesListsClean) {
  constexpr int kThreads = 4;
  const uint64_t events_before = hak_integrity_events();
  SharedBlocks shared;
  std::atomic<int> failures{0};
  std::vector<size_t> verify(kThreads, ~size_t{0});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(MixedWorker, t, &shared, &failures, &verify[t]);
  }
  for (auto& t : threads) t.join();
  Block b;
  while (shared.Take(&b)) {
    EXPECT_TRUE(TagIntact(b));
    free(b.p);
  }

  EXPECT_EQ(failures.load(), 0) << "NULL, misaligned or overwritten blocks";
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(verify[t], 0u) << "hak_tls_sll_verify() in thread " << t;
  }
  EXPECT_EQ(hak_tls_sll_verify(), 0u);
  EXPECT_EQ(hak_integrity_events(), events_before);
}

// ---------------------------------------------------------------- knobs --

// Restores a class's TLS capacity whatever happens in the test.
class TlsCapacityRestorer {
 public:
  explicit TlsCapacityRestorer(int cls)
      : cls_(cls), old_(hkm_tiny_get_tls_capacity(cls)) {}
  ~TlsCapacityRestorer() { hkm_tiny_set_tls_capacity(cls_, old_); }

 private:
  int cls_;
  uint32_t old_;
};

// A thread builds up a cache under the default capacity, then the knob is
// lowered.  hakmem.h: threads pick the value up at their next refill or
// flush; allocating more blocks than the old capacity lets the list hold
// forces a refill, and from then on the thread keeps at most 8 blocks.
TEST(Knobs, TlsCapacityBoundsTheList) {
  const size_t n = 96;
  const int cls = hak_size_class(n);
  ASSERT_GE(cls, 0);
  TlsCapacityRestorer restore(cls);
  const uint32_t old_cap = hkm_tiny_get_tls_capacity(cls);
  uint32_t length_after = ~0u;
  std::thread t([&] {
    std::vector<void*> blocks(100);
    for (void*& p : blocks) p = malloc(n);
    for (void* p : blocks) free(p);
    ASSERT_EQ(hkm_tiny_set_tls_capacity(cls, 8), 0);
    blocks.resize(old_cap + 100);
    for (int round = 0; round < 2; ++round) {
      for (void*& p : blocks) {
        p = malloc(n);
        Escape(p);
      }
      for (void* p : blocks) free(p);
    }
    length_after = hak_testing_tls_sll_length(cls);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  });
  t.join();
  EXPECT_EQ(hkm_tiny_get_tls_capacity(cls), 8u);
  EXPECT_LE(length_after, 8u);
}

TEST(Knobs, TlsCapacityRejectsBadArguments) {
  const int cls = 2;
  TlsCapacityRestorer restore(cls);
  const uint32_t old = hkm_tiny_get_tls_capacity(cls);
  EXPECT_GE(old, 1u);
  EXPECT_LE(old, 4096u);
  EXPECT_EQ(hkm_tiny_set_tls_capacity(-1, 8), -1);
  EXPECT_EQ(hkm_tiny_set_tls_capacity(HAK_NUM_CLASSES, 8), -1);
  EXPECT_EQ(hkm_tiny_set_tls_capacity(cls, 0), -1);
  EXPECT_EQ(hkm_tiny_set_tls_capacity(cls, 4097), -1);
  EXPECT_EQ(hkm_tiny_get_tls_capacity(cls), old) << "a rejected value stuck";
  EXPECT_EQ(hkm_tiny_set_tls_capacity(cls, 1), 0);
  EXPECT_EQ(hkm_tiny_get_tls_capacity(cls), 1u);
  EXPECT_EQ(hkm_tiny_set_tls_capacity(cls, 4096), 0);
  EXPECT_EQ(hkm_tiny_get_tls_capacity(cls), 4096u);
}

TEST(Knobs, DrainThresholdSetterValidatesAndGetterReadsBack) {
  const int cls = 3;
  const uint32_t old = hkm_tiny_get_drain_threshold(cls);
  EXPECT_GE(old, 1u);
  EXPECT_LE(old, 65536u);
  EXPECT_EQ(hkm_tiny_set_drain_threshold(-1, 64), -1);
  EXPECT_EQ(hkm_tiny_set_drain_threshold(HAK_NUM_CLASSES, 64), -1);
  EXPECT_EQ(hkm_tiny_set_drain_threshold(cls, 0), -1);
  EXPECT_EQ(hkm_tiny_set_drain_threshold(cls, 65537), -1);
  EXPECT_EQ(hkm_tiny_get_drain_threshold(cls), old) << "a rejected value stuck";
  for (uint32_t v : {1u, 77u, 65536u}) {
    EXPECT_EQ(hkm_tiny_set_drain_threshold(cls, v), 0) << v;
    EXPECT_EQ(hkm_tiny_get_drain_threshold(cls), v);
  }
  EXPECT_EQ(hkm_tiny_set_drain_threshold(cls, old), 0);
  EXPECT_EQ(hkm_tiny_get_drain_threshold(cls), old);
}

// With a drain threshold of 1 every remote free is drained promptly; the
// blocks still come back intact and the lists stay clean.  (Checks the knob
// does not break the remote path at its extreme.)
TEST(Knobs, ExtremeDrainThresholdKeepsRemoteFreesCorrect) {
  const size_t n = 64;
  const int cls = hak_size_class(n);
  const uint32_t old = hkm_tiny_get_drain_threshold(cls);
  ASSERT_EQ(hkm_tiny_set_drain_threshold(cls, 1), 0);
  BoundedQueue queue(64);
  std::atomic<int> failures{0};
  Gate done;
  std::thread owner([&] {
    for (int i = 0; i < 5000; ++i) {
      void* p = malloc(n);
      if (p == nullptr) {
        ++failures;
        continue;
      }
      WriteCookie(p, n);
      queue.Push({p, n});
    }
    queue.Close();
    done.Wait();
    // Allocating again makes the owner drain what the other thread freed.
    std::vector<void*> again(2000);
    for (void*& p : again) {
      p = malloc(n);
      if (p == nullptr) ++failures;
      else WriteCookie(p, n);
    }
    for (void* p : again) {
      if (p != nullptr && !CookieIntact(p, n)) ++failures;
      free(p);
    }
    if (hak_tls_sll_verify() != 0) ++failures;
  });
  std::thread remote([&] {
    Item item;
    while (queue.Pop(&item)) {
      if (!CookieIntact(item.p, item.n)) ++failures;
      free(item.p);
    }
    done.Open();
  });
  remote.join();
  owner.join();
  EXPECT_EQ(hkm_tiny_set_drain_threshold(cls, old), 0);
  EXPECT_EQ(failures.load(), 0);
}

// ------------------------------------------------------------ scavenge --

// 64 MiB of mid blocks, touched and freed by a thread that then exits,
// leave empty slabs behind; a scavenge returns them to the OS, and a second
// scavenge right after has less (or nothing) left to return.
TEST(Scavenge, ReturnsFreedMemoryOnce) {
  const size_t n = 48 * kKiB;  // mid tier
  ASSERT_GE(hak_size_class(n), HAK_NUM_TINY_CLASSES);
  const size_t count = 64 * kKiB * kKiB / n;
  std::thread t([&] {
    std::vector<void*> blocks(count);
    for (void*& p : blocks) {
      p = malloc(n);
      ASSERT_NE(p, nullptr);
      memset(p, 0x5C, n);  // make the pages resident
    }
    for (void* p : blocks) free(p);
  });
  t.join();
  const size_t first = hak_scavenge(0);
  const size_t second = hak_scavenge(0);
  EXPECT_GT(first, 0u);
  EXPECT_LT(second, first);

  // The scavenged memory is usable again.
  std::vector<void*> blocks(256);
  for (void*& p : blocks) {
    p = malloc(n);
    ASSERT_NE(p, nullptr);
    memset(p, 0x3D, n);
  }
  for (void* p : blocks) {
    EXPECT_EQ(static_cast<uint8_t*>(p)[n - 1], 0x3D);
    free(p);
  }
}

}  // namespace
