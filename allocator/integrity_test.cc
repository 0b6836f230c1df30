// hakmem's fault detection (SPEC.md §1, "TLS SLL header integrity"): each
// fault is injected on purpose and must be caught.
//
//  * Report mode (hak_set_fault_action(HAK_FAULT_REPORT)): the fault is
//    counted as an integrity event, the bad block is left alone, and the
//    allocator keeps working.
//  * Abort mode (the default): a death test shows the process dies with a
//    one-line "hakmem: <fault>" report.
//
// Injected TLS SLL nodes corrupt the calling thread's lists by design, so
// report-mode tests inject them in a fresh std::thread and leave the main
// thread's lists clean; death tests do it in the dying child.

#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"
#include "hakmem_testing.h"
#include "test_support.h"

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;

using ::hakmem_test::Escape;
using ::hakmem_test::Launder;

// No AddCleanHeapAtExit() here: report-mode tests cause integrity events on
// purpose, so the run as a whole is not fault-free.

// free(p) twice; the copy is taken before the first free, so the compiler
// does not see (and warn about) the use after free that the test intends.
void FreeTwice(void* p) {
  void* again = Launder(p);
  free(p);
  free(again);
}

void RunInFreshThread(const std::function<void()>& body) {
  std::thread t(body);
  t.join();
}

alignas(64) char g_global_buffer[256];

// The class-1 (32 B) and class-3 (64 B) sizes the node-injection tests use;
// checked against hakmem.h's layout once here.
const size_t kClass1Size = hak_class_size(1);
const size_t kClass3Size = hak_class_size(3);

TEST(Layout, ClassesUsedByTheseTests) {
  EXPECT_EQ(kClass1Size, 32u);
  EXPECT_EQ(kClass3Size, 64u);
  EXPECT_EQ(hak_size_class(32), 1);
  EXPECT_EQ(hak_size_class(64), 3);
}

// After a reported fault the allocator must still serve the class: a fresh
// thread allocates, writes, checks and frees blocks of size n, its lists
// verify clean, and no new fault is seen.
void ExpectAllocatorHealthy(size_t n) {
  SCOPED_TRACE(::testing::Message() << "allocator health, size " << n);
  const uint64_t events = hak_integrity_events();
  RunInFreshThread([n] {
    std::vector<uint8_t*> blocks;
    for (int i = 0; i < 500; ++i) {
      auto* p = static_cast<uint8_t*>(malloc(n));
      ASSERT_NE(p, nullptr);
      memset(p, i & 0xFF, n);
      blocks.push_back(p);
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      EXPECT_EQ(blocks[i][0], i & 0xFF);
      EXPECT_EQ(blocks[i][n - 1], i & 0xFF);
      free(blocks[i]);
    }
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  });
  EXPECT_EQ(hak_integrity_events(), events);
  EXPECT_EQ(hak_tls_sll_verify(), 0u) << "main thread's lists";
}

// Puts ten genuine free nodes on this thread's class-1 list, for a test to
// push a bad node on top of: the bad node then sits above good ones.
void FreeGenuineClass1Nodes() {
  std::vector<void*> genuine;
  for (int i = 0; i < 10; ++i) genuine.push_back(malloc(kClass1Size));
  for (void* p : genuine) free(p);
}

// Pushes a node 16 bytes past the start of a live class-1 block (the kind
// of pointer SPEC.md describes from sh8bench) onto this thread's class-1
// list and returns it; returns nullptr, pushing nothing, if malloc fails.
char* PushOffBoundaryNode() {
  auto* b = static_cast<char*>(malloc(kClass1Size));
  if (b == nullptr) return nullptr;
  hak_testing_tls_sll_push_raw(1, b + 16);
  return b + 16;
}

// ----------------------------------------------------------- report mode --

class ReportMode : public ::testing::Test {
 protected:
  void SetUp() override { hak_set_fault_action(HAK_FAULT_REPORT); }
  void TearDown() override { hak_set_fault_action(HAK_FAULT_ABORT); }
};

TEST_F(ReportMode, DoubleFreeIsCountedAndTheBlockNotListedTwice) {
  for (size_t n : {size_t{32}, 4 * kKiB, 1 * kMiB}) {
    RunInFreshThread([n] {
      SCOPED_TRACE(n);
      void* p = malloc(n);
      ASSERT_NE(p, nullptr);
      void* again = Launder(p);
      free(p);
      const uint64_t events = hak_integrity_events();
      free(again);
      EXPECT_EQ(hak_integrity_events(), events + 1);
      // Had the second free gone through, p would be on the free list
      // twice and come back from two live allocations.
      void* a = malloc(n);
      void* b = malloc(n);
      ASSERT_NE(a, nullptr);
      ASSERT_NE(b, nullptr);
      EXPECT_NE(a, b);
      free(a);
      free(b);
      EXPECT_EQ(hak_tls_sll_verify(), 0u);
      EXPECT_EQ(hak_integrity_events(), events + 1);
    });
    ExpectAllocatorHealthy(n);
  }
}

// A double free by a thread that does not own the block goes the remote
// path.  It must be caught there too, and the owner must never get the block
// twice: after draining, a batch of live allocations holds no duplicate.
TEST_F(ReportMode, CrossThreadDoubleFreeIsCaught) {
  const size_t n = 64;
  RunInFreshThread([n] {
    void* p = malloc(n);
    ASSERT_NE(p, nullptr);
    void* again = Launder(p);
    const uint64_t events = hak_integrity_events();
    RunInFreshThread([p] { free(p); });  // remote free: fine
    EXPECT_EQ(hak_integrity_events(), events);
    RunInFreshThread([again] { free(again); });  // remote double free
    EXPECT_EQ(hak_integrity_events(), events + 1);
    free(Launder(again));  // and the owner frees it once more
    EXPECT_EQ(hak_integrity_events(), events + 2);

    std::vector<void*> live;
    for (int i = 0; i < 5000; ++i) live.push_back(malloc(n));
    std::vector<void*> sorted = live;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end())
        << "one block handed out twice";
    EXPECT_EQ(std::count(live.begin(), live.end(), nullptr), 0);
    for (void* q : live) free(q);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  });
  ExpectAllocatorHealthy(n);
}

// Pointers hakmem never returned: the free is counted and the memory is not
// touched (a free that linked it into a list would write into it).
TEST_F(ReportMode, ForeignPointersAreCountedAndLeftUntouched) {
  alignas(64) char stack_buffer[256];
  const size_t map_len = 64 * kKiB;
  void* mapped = mmap(nullptr, map_len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  struct Foreign {
    const char* what;
    char* p;
    size_t len;
  };
  const Foreign foreign[] = {
      {"stack", stack_buffer, sizeof(stack_buffer)},
      {"global", g_global_buffer, sizeof(g_global_buffer)},
      {"mmap", static_cast<char*>(mapped), map_len},
      {"mmap+4096", static_cast<char*>(mapped) + 4096, map_len - 4096},
  };
  for (const Foreign& f : foreign) {
    SCOPED_TRACE(f.what);
    memset(f.p, 0x5A, f.len);
    const uint64_t events = hak_integrity_events();
    free(Launder(f.p));
    EXPECT_EQ(hak_integrity_events(), events + 1);
    Escape(f.p);
    EXPECT_EQ(std::count(f.p, f.p + f.len, 0x5A), static_cast<ptrdiff_t>(f.len))
        << "the allocator wrote into memory it does not own";
  }
  munmap(mapped, map_len);
  ExpectAllocatorHealthy(64);
}

// Interior pointers of tiny, mid and large blocks are invalid frees; the
// block they point into stays intact.  (The blocks are leaked afterwards:
// report mode promises to carry on, not what becomes of such a block.)
TEST_F(ReportMode, InteriorPointersAreCountedAndTheBlockLeftIntact) {
  struct Interior {
    size_t size;
    size_t offset;
  };
  const Interior cases[] = {
      {64, 16}, {64, 8}, {64, 48}, {32, 16}, {4 * kKiB, 16},
      {16 * kKiB, 4096}, {1 * kMiB, 4096}, {1 * kMiB, 16},
  };
  for (const Interior& c : cases) {
    RunInFreshThread([c] {
      SCOPED_TRACE(::testing::Message()
                   << "block of " << c.size << " + " << c.offset);
      auto* p = static_cast<uint8_t*>(malloc(c.size));
      ASSERT_NE(p, nullptr);
      memset(p, 0x6B, c.size);
      const uint64_t events = hak_integrity_events();
      free(Launder(p + c.offset));
      EXPECT_EQ(hak_integrity_events(), events + 1);
      Escape(p);
      EXPECT_EQ(std::count(p, p + c.size, 0x6B), static_cast<ptrdiff_t>(c.size))
          << "the rejected free wrote into the block";
      EXPECT_EQ(hak_tls_sll_verify(), 0u);
    });
  }
  ExpectAllocatorHealthy(64);
  ExpectAllocatorHealthy(16 * kKiB);
}

// A live 64-byte (class 3) block pushed onto the class-1 list: the next
// class-1 allocation pops it, must see the fault and must not return it.
TEST_F(ReportMode, WrongClassNodeIsCaughtByPop) {
  RunInFreshThread([] {
    FreeGenuineClass1Nodes();
    void* wrong = malloc(kClass3Size);
    ASSERT_NE(wrong, nullptr);
    hak_testing_tls_sll_push_raw(1, wrong);
    const uint64_t events = hak_integrity_events();
    void* got = malloc(kClass1Size);
    EXPECT_EQ(hak_integrity_events(), events + 1);
    EXPECT_NE(got, wrong) << "a block of another class was handed out";
    ASSERT_NE(got, nullptr) << "the allocation failed instead of recovering";
    memset(got, 0x11, kClass1Size);
    free(got);
    EXPECT_EQ(hak_tls_sll_verify(), 0u) << "the corrupt list was kept";
    EXPECT_EQ(hak_integrity_events(), events + 1);
  });
  ExpectAllocatorHealthy(kClass1Size);
  ExpectAllocatorHealthy(kClass3Size);
}

// A properly freed block of another class carries a valid free tag -- for
// its own class.  Listed under class 1 it must still be caught: the tag (or
// the full check) binds the block to its class, not just to "free".
// The block stays on its own class-5 list as well; to keep that list intact
// it is the list's only node and the class-1 list is empty, so the raw push
// rewrites its link with the NULL that was there.
TEST_F(ReportMode, FreedBlockOfAnotherClassIsCaughtByPop) {
  RunInFreshThread([] {
    const int other = 5;
    void* block = malloc(hak_class_size(other));
    ASSERT_NE(block, nullptr);
    void* freed = Launder(block);
    hak_testing_tls_flush();  // empty every list of this thread
    free(block);              // the class-5 list is now just this block
    ASSERT_EQ(hak_testing_tls_sll_length(other), 1u);
    ASSERT_EQ(hak_testing_tls_sll_length(1), 0u);
    hak_testing_tls_sll_push_raw(1, freed);
    const uint64_t events = hak_integrity_events();
    void* got = malloc(kClass1Size);
    EXPECT_EQ(hak_integrity_events(), events + 1);
    EXPECT_NE(got, freed) << "a free block of class 5 was handed out as class 1";
    ASSERT_NE(got, nullptr);
    free(got);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
    EXPECT_EQ(hak_integrity_events(), events + 1);
  });
  ExpectAllocatorHealthy(kClass1Size);
  ExpectAllocatorHealthy(hak_class_size(5));
}

// A node 16 bytes past the start of a class-1 block -- the kind of pointer
// SPEC.md describes from sh8bench.  The walk reports it (each bad node is
// one event), and a pop afterwards does not hand it out.
TEST_F(ReportMode, OffBoundaryNodeIsFoundByVerify) {
  RunInFreshThread([] {
    FreeGenuineClass1Nodes();
    char* const node = PushOffBoundaryNode();
    ASSERT_NE(node, nullptr);
    const uint64_t events = hak_integrity_events();
    const size_t bad = hak_tls_sll_verify();
    EXPECT_GE(bad, 1u);
    EXPECT_EQ(hak_integrity_events(), events + bad)
        << "each bad node is one integrity event";
    void* got = malloc(kClass1Size);
    EXPECT_NE(got, node);
    ASSERT_NE(got, nullptr);
    free(got);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  });
  ExpectAllocatorHealthy(kClass1Size);
}

TEST_F(ReportMode, OffBoundaryNodeIsCaughtByPop) {
  RunInFreshThread([] {
    FreeGenuineClass1Nodes();
    char* const node = PushOffBoundaryNode();
    ASSERT_NE(node, nullptr);
    const uint64_t events = hak_integrity_events();
    void* got = malloc(kClass1Size);
    EXPECT_EQ(hak_integrity_events(), events + 1);
    EXPECT_NE(got, node) << "a pointer into a live block was handed out";
    ASSERT_NE(got, nullptr);
    free(got);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  });
  ExpectAllocatorHealthy(kClass1Size);
}

// A node in no SuperSlab at all (a stack buffer): verify reports it, a pop
// drops it, and the buffer is never handed out.
TEST_F(ReportMode, NodeOutsideEverySuperSlabIsFound) {
  RunInFreshThread([] {
    alignas(64) char stack_node[64];
    memset(stack_node, 0x22, sizeof(stack_node));
    const int cls = 2;
    const size_t n = hak_class_size(cls);
    hak_testing_tls_sll_push_raw(cls, Launder(stack_node));
    const uint64_t events = hak_integrity_events();
    const size_t bad = hak_tls_sll_verify();
    EXPECT_GE(bad, 1u);
    EXPECT_EQ(hak_integrity_events(), events + bad);
    void* got = malloc(n);
    EXPECT_NE(got, static_cast<void*>(stack_node));
    ASSERT_NE(got, nullptr);
    free(got);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
    Escape(stack_node);
  });
  ExpectAllocatorHealthy(hak_class_size(2));
}

// Nothing is reported for correct use, however heavy: the counter moves only
// on faults.
// A stray write to the link word of a freed block: the release pop checks
// the link it is about to follow (it is sealed into the free tag), so a
// link pointing at unmapped memory, at the block itself or at another free
// block is reported before it is followed, never dereferenced or handed out.
TEST_F(ReportMode, OverwrittenLinkIsCaughtBeforeItIsFollowed) {
  const uintptr_t wild = uintptr_t{1} << 45;  // user space, never mapped here
  for (int how = 0; how < 3; ++how) {
    RunInFreshThread([how, wild] {
      SCOPED_TRACE(how);
      hak_testing_tls_flush();
      auto* a = static_cast<uintptr_t*>(malloc(kClass1Size));
      auto* b = static_cast<uintptr_t*>(malloc(kClass1Size));
      auto* c = static_cast<uintptr_t*>(malloc(kClass1Size));
      ASSERT_TRUE(a && b && c);
      uintptr_t* freed_b = Launder(b);
      free(a);
      free(c);
      free(b);  // the list: b, c, a
      const uintptr_t to[] = {wild, reinterpret_cast<uintptr_t>(freed_b),
                              reinterpret_cast<uintptr_t>(a)};
      freed_b[0] = to[how];  // the stray write
      const uint64_t events = hak_integrity_events();
      void* got = malloc(kClass1Size);
      EXPECT_EQ(hak_integrity_events(), events + 1);
      ASSERT_NE(got, nullptr);
      EXPECT_NE(got, static_cast<void*>(freed_b));
      free(got);
      EXPECT_EQ(hak_tls_sll_verify(), 0u);
    });
  }
  ExpectAllocatorHealthy(kClass1Size);
}

// A write running off the front of a large block hits its header: free
// and malloc_usable_size report it and drop the block instead of trusting
// the span length and base they would otherwise release.
TEST_F(ReportMode, OverwrittenLargeHeaderIsCaughtByFree) {
  for (int word = 1; word <= 3; ++word) {
    for (bool usable : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "word -" << word << (usable ? " usable" : " free"));
      auto* p = static_cast<uintptr_t*>(malloc(1 * kMiB));
      ASSERT_NE(p, nullptr);
      p[-word] ^= 0x10000;
      const uint64_t events = hak_integrity_events();
      if (usable) EXPECT_EQ(malloc_usable_size(p), 0u);
      else free(p);
      EXPECT_EQ(hak_integrity_events(), events + 1);
      free(Launder(p));  // dropped: now an invalid free, reported, ignored
      EXPECT_EQ(hak_integrity_events(), events + 2);
    }
  }
  ExpectAllocatorHealthy(1 * kMiB);
}

TEST_F(ReportMode, NoEventsWithoutFaults) {
  const uint64_t events = hak_integrity_events();
  RunInFreshThread([] {
    std::vector<void*> v;
    for (int i = 0; i < 20000; ++i) {
      v.push_back(malloc(1 + (i * 37) % 3000));
      if (i % 3 == 0) {
        free(v.front());
        v.erase(v.begin());
      }
    }
    for (void* p : v) free(p);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  });
  EXPECT_EQ(hak_integrity_events(), events);
}

// ------------------------------------------------------------ abort mode --

class AbortModeDeathTest : public ::testing::Test {
 protected:
  AbortModeDeathTest() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Each statement switches to abort mode itself, so the default or an
// environment setting cannot make it pass or fail.

TEST_F(AbortModeDeathTest, DoubleFreeTiny) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        void* p = malloc(32);
        FreeTwice(p);
      },
      "hakmem: double free");
}

TEST_F(AbortModeDeathTest, DoubleFreeMid) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        void* p = malloc(4 * kKiB);
        FreeTwice(p);
      },
      "hakmem: double free");
}

TEST_F(AbortModeDeathTest, DoubleFreeLarge) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        void* p = malloc(1 * kMiB);
        FreeTwice(p);
      },
      "hakmem: double free");
}

TEST_F(AbortModeDeathTest, FreeOfStackAddress) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        alignas(16) char buffer[64];
        Escape(buffer);
        free(Launder(buffer));
      },
      "hakmem: invalid free");
}

TEST_F(AbortModeDeathTest, FreeOfGlobal) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        free(Launder(g_global_buffer));
      },
      "hakmem: invalid free");
}

TEST_F(AbortModeDeathTest, FreeOfMmapMemory) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        void* m = mmap(nullptr, 64 * kKiB, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) free(Launder(m));
      },
      "hakmem: invalid free");
}

TEST_F(AbortModeDeathTest, InteriorPointerTiny) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        auto* p = static_cast<char*>(malloc(64));
        free(Launder(p + 16));
      },
      "hakmem: invalid free");
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        auto* p = static_cast<char*>(malloc(64));
        free(Launder(p + 8));
      },
      "hakmem: invalid free");
}

TEST_F(AbortModeDeathTest, InteriorPointerMidAndLarge) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        auto* p = static_cast<char*>(malloc(16 * kKiB));
        free(Launder(p + 4096));
      },
      "hakmem: invalid free");
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        auto* p = static_cast<char*>(malloc(1 * kMiB));
        free(Launder(p + 4096));
      },
      "hakmem: invalid free");
}

TEST_F(AbortModeDeathTest, WrongClassNodePopped) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        void* wrong = malloc(kClass3Size);
        hak_testing_tls_sll_push_raw(1, wrong);
        Escape(malloc(kClass1Size));
      },
      "hakmem: TLS SLL corruption");
}

TEST_F(AbortModeDeathTest, OffBoundaryNodeVerified) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        PushOffBoundaryNode();
        hak_tls_sll_verify();
      },
      "hakmem: TLS SLL corruption");
}

TEST_F(AbortModeDeathTest, OffBoundaryNodePopped) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        PushOffBoundaryNode();
        Escape(malloc(kClass1Size));
      },
      "hakmem: TLS SLL corruption");
}

TEST_F(AbortModeDeathTest, NodeOutsideEverySuperSlab) {
  EXPECT_DEATH(
      {
        hak_set_fault_action(HAK_FAULT_ABORT);
        alignas(64) char stack_node[64];
        memset(stack_node, 0x22, sizeof(stack_node));
        hak_testing_tls_sll_push_raw(2, Launder(stack_node));
        Escape(malloc(hak_class_size(2)));
      },
      "hakmem: TLS SLL corruption");
}

// The same faults in report mode do not kill the process: the counterpart
// of the death tests, in the same style, so a report-mode "success" is not
// an artefact of running in the main process.
TEST_F(AbortModeDeathTest, ReportModeSurvivesTheSameFaults) {
  EXPECT_EXIT(
      {
        hak_set_fault_action(HAK_FAULT_REPORT);
        void* p = malloc(32);
        FreeTwice(p);
        auto* q = static_cast<char*>(malloc(64));
        free(Launder(q + 16));
        void* wrong = malloc(kClass3Size);
        hak_testing_tls_sll_push_raw(1, wrong);
        Escape(malloc(kClass1Size));
        _exit(hak_integrity_events() >= 3 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "hakmem: double free");
}

}  // namespace
