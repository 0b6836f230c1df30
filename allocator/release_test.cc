// Page release inside spans in use (hkm_set_release_pages, release.h) and
// the budgeted scavenger (hak_scavenge_pages).
//
// The property: after a program frees most of its blocks, scattered, the
// resident set falls when page release is on and hardly at all when it is
// off (nearly every span still holds a live block, so no span empties).
// Every assertion is about memory or contents, never about time.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"

namespace {

uint64_t RssBytes() {
  hak_stats st;
  hak_stats_get(&st);
  return st.rss_bytes;
}

uint8_t Pattern(size_t i, size_t size) { return (uint8_t)(i * 131 + size); }

// Blocks of a few sizes: one that shares pages with its neighbours (1000),
// one that spans pages unevenly (3000), one a page long (4096).
struct Heap {
  std::vector<uint8_t*> blocks;
  std::vector<size_t> sizes;

  void Fill(size_t bytes) {
    static const size_t kSizes[] = {1000, 3000, 4096};
    for (size_t i = 0, total = 0; total < bytes; i++) {
      size_t size = kSizes[i % 3];
      uint8_t* p = static_cast<uint8_t*>(malloc(size));
      ASSERT_NE(p, nullptr);
      memset(p, Pattern(blocks.size(), size), size);
      blocks.push_back(p);
      sizes.push_back(size);
      total += size;
    }
  }
  // Frees all but every keep-th block; returns the bytes freed.  With
  // churn, allocates a small block after every free (the thread keeps
  // allocating while it frees).
  size_t FreeMost(size_t keep, std::vector<void*>* churn = nullptr) {
    size_t freed = 0;
    for (size_t i = 0; i < blocks.size(); i++) {
      if (i % keep == 0 || !blocks[i]) continue;
      free(blocks[i]);
      blocks[i] = nullptr;
      freed += sizes[i];
      if (churn) churn->push_back(malloc(16));
    }
    return freed;
  }
  // Every live block still holds its pattern (first, middle, last byte).
  size_t Damaged() const {
    size_t bad = 0;
    for (size_t i = 0; i < blocks.size(); i++) {
      if (!blocks[i]) continue;
      uint8_t want = Pattern(i, sizes[i]);
      const uint8_t* p = blocks[i];
      bad += p[0] != want || p[sizes[i] / 2] != want || p[sizes[i] - 1] != want;
    }
    return bad;
  }
  void FreeAll() {
    for (uint8_t* p : blocks) free(p);
    blocks.clear();
    sizes.clear();
  }
};

constexpr size_t kBytes = 64u << 20;

// Runs fill -> free 9 in 10 on a thread of its own (a heap of its own) and
// returns how far the resident set fell over the free phase, as a share of
// the bytes freed.
double DropShare(uint32_t release_pages, size_t* damaged, bool churn = false) {
  double share = 0;
  std::thread t([&] {
    EXPECT_EQ(hkm_set_release_pages(release_pages), 0);
    Heap h;
    h.Fill(kBytes);
    std::vector<void*> small;
    small.reserve(h.blocks.size());
    uint64_t before = RssBytes();
    size_t freed = h.FreeMost(10, churn ? &small : nullptr);
    uint64_t after = RssBytes();
    for (void* p : small) free(p);
    share = before > after ? (double)(before - after) / (double)freed : 0.0;
    *damaged = h.Damaged();
    h.FreeAll();
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
  });
  t.join();
  hkm_set_release_pages(0);
  return share;
}

TEST(PageRelease, LowersRssAfterAFreePhaseOnlyWhenOn) {
  size_t damaged = 0;
  double off = DropShare(0, &damaged);
  EXPECT_EQ(damaged, 0u);
  double on = DropShare(1, &damaged);
  EXPECT_EQ(damaged, 0u);
  // Off: spans keep a live block each, so little goes back.  On: most of
  // the freed memory (the pages next to a kept block stay) goes back.
  EXPECT_LT(off, 0.25) << "release off already returned memory: the test measures nothing";
  EXPECT_GT(on, 0.5) << "page release returned too little";
  EXPECT_GT(on, off + 0.3);
  EXPECT_EQ(hak_integrity_events(), 0u);
}

// A thread that allocates as it frees would fault released pages straight
// back in: it releases nothing (release.h, HAK_RELEASE_QUIET_FLUSHES).
TEST(PageRelease, ThreadsStillAllocatingKeepTheirPages) {
  size_t damaged = 0;
  double churning = DropShare(1, &damaged, /*churn=*/true);
  EXPECT_EQ(damaged, 0u);
  EXPECT_LT(churning, 0.25);
  EXPECT_GT(DropShare(1, &damaged), 0.5);  // the same frees without churn do release
}

TEST(PageRelease, ReleasedBlocksAreReusedIntact) {
  std::thread t([] {
    ASSERT_EQ(hkm_set_release_pages(1), 0);
    uint64_t before = hak_released_pages();
    Heap h;
    h.Fill(16u << 20);
    h.FreeMost(10);
    EXPECT_GT(hak_released_pages(), before);
    // Allocate into the holes again: parked blocks come back, writable, and
    // no live block is handed out twice (the patterns would clash).
    Heap again;
    again.Fill(16u << 20);
    EXPECT_EQ(again.Damaged(), 0u);
    EXPECT_EQ(h.Damaged(), 0u);
    EXPECT_EQ(hak_tls_sll_verify(), 0u);
    again.FreeAll();
    h.FreeAll();
  });
  t.join();
  hkm_set_release_pages(0);
  EXPECT_EQ(hak_integrity_events(), 0u);
}

// A thread's released runs wait in its batch (release.h) until the batch
// fills or the thread refills: the refill that follows a free phase hands
// out parked blocks, so a run still waiting then would be zeroed under
// them by the batch's later madvise - here at the thread's exit, after
// the refilled blocks were written.
TEST(PageRelease, RefillReturnsTheWaitingBatchBeforeReusingItsPages) {
  Heap h, again;
  std::thread t([&] {
    ASSERT_EQ(hkm_set_release_pages(1), 0);
    h.Fill(8u << 20);
    h.FreeMost(10);       // leaves some runs waiting in the batch
    again.Fill(8u << 20); // the refills reuse the parked blocks
  });
  t.join();  // exit returns whatever still waits
  hkm_set_release_pages(0);
  EXPECT_EQ(h.Damaged(), 0u);
  EXPECT_EQ(again.Damaged(), 0u);
  again.FreeAll();
  h.FreeAll();
  EXPECT_EQ(hak_integrity_events(), 0u);
}

TEST(PageRelease, SetterRange) {
  EXPECT_EQ(hkm_set_release_pages(HAK_RELEASE_PAGES_MAX + 1), -1);
  EXPECT_EQ(hkm_set_release_pages(8), 0);
  EXPECT_EQ(hkm_get_release_pages(), 8u);
  EXPECT_EQ(hkm_set_release_pages(0), 0);
  EXPECT_EQ(hkm_get_release_pages(), 0u);
}

TEST(BundleWidth, SetterAndDefault) {
  int cls = hak_size_class(64);
  uint32_t cap = hkm_tiny_get_tls_capacity(cls);
  EXPECT_EQ(hkm_tiny_get_bundle_width(cls), cap / 2);  // the default
  EXPECT_EQ(hkm_tiny_set_bundle_width(cls, 3), 0);
  EXPECT_EQ(hkm_tiny_get_bundle_width(cls), 3u);
  EXPECT_EQ(hkm_tiny_set_bundle_width(cls, 4096), 0);
  EXPECT_EQ(hkm_tiny_get_bundle_width(cls), cap);  // never more than the list holds
  EXPECT_EQ(hkm_tiny_set_bundle_width(cls, 4097), -1);
  EXPECT_EQ(hkm_tiny_set_bundle_width(-1, 8), -1);
  // Allocations still work with a narrow bundle.
  EXPECT_EQ(hkm_tiny_set_bundle_width(cls, 1), 0);
  std::vector<void*> v;
  for (int i = 0; i < 1000; i++) v.push_back(malloc(64));
  for (void* p : v) {
    ASSERT_NE(p, nullptr);
    free(p);
  }
  EXPECT_EQ(hkm_tiny_set_bundle_width(cls, 0), 0);
  EXPECT_EQ(hkm_tiny_get_bundle_width(cls), cap / 2);
}

// The scavenger returns the shared pool's empty spans: a thread that
// allocates and exits leaves its emptied spans there.
TEST(Scavenge, ReturnsEmptySpansInPageSteps) {
  std::thread t([] {
    Heap h;
    h.Fill(48u << 20);
    h.FreeAll();
  });
  t.join();
  uint64_t before = hak_released_pages();
  // A page limit stops it early (one span of overshoot at most).
  size_t some = hak_scavenge_pages(16, 0);
  EXPECT_GE(some, 16u);
  EXPECT_LE(some, 16u + 128u);
  size_t rest = hak_scavenge_pages(0, 0);
  EXPECT_EQ(hak_released_pages(), before + some + rest);
  EXPECT_EQ(hak_scavenge_pages(0, 0), 0u);  // nothing left to give
}

// Spans of an exited thread that still hold live blocks go to the pool as
// they are; the scavenger, holding one alone while it has it popped,
// returns its free pages - and counts each page once.
TEST(Scavenge, ReturnsFreePagesOfSpansOfExitedThreads) {
  hkm_set_release_pages(0);  // the thread itself releases nothing
  Heap h;
  std::thread t([&h] {
    h.Fill(16u << 20);
    h.FreeMost(10);
  });
  t.join();  // its spans, a live block in most, are abandoned
  uint64_t before = hak_released_pages();
  size_t pages = hak_scavenge_pages(0, 0);
  EXPECT_GT(pages, (8u << 20) / 4096) << "most of the 14 MiB freed is in whole free pages";
  EXPECT_EQ(hak_released_pages(), before + pages);
  EXPECT_EQ(h.Damaged(), 0u);
  h.FreeAll();  // remote frees into the abandoned spans
  EXPECT_EQ(hak_integrity_events(), 0u);
}

}  // namespace
