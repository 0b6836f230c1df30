// The large tier's page arenas as a program sees them: realloc growing and
// shrinking a block in place, freed runs handed back whole, calloc zeroing
// reused pages, scavenging returning free pages.
//
// Each test uses block sizes no other test in this file uses, so the spans
// the per-heap and global caches keep from one test cannot stand in for the
// arena runs the next one expects.

#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"
#include "test_support.h"

namespace {

constexpr size_t kKiB = 1024, kMiB = 1024 * kKiB;

using ::hakmem_test::Escape;

::testing::Environment* const kCleanHeapEnv = hakmem_test::AddCleanHeapAtExit();

void Fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 512) p[i] = static_cast<unsigned char>(seed + i / 512);
}

size_t CountMismatches(const unsigned char* p, size_t n, unsigned seed) {
  size_t bad = 0;
  for (size_t i = 0; i < n; i += 512) bad += p[i] != static_cast<unsigned char>(seed + i / 512);
  return bad;
}

TEST(LargeArena, ReallocGrowsIntoTheFreePagesAfterTheBlock) {
  // The first large block of the process starts a fresh region, so the
  // pages after it are free: growing it moves nothing.
  auto* p = static_cast<unsigned char*>(malloc(3 * kMiB + 123));
  ASSERT_NE(p, nullptr);
  Fill(p, 3 * kMiB + 123, 7);
  auto* q = static_cast<unsigned char*>(realloc(p, 4 * kMiB + 77));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q, p) << "grown in place";
  EXPECT_GE(malloc_usable_size(q), 4 * kMiB + 77);
  EXPECT_EQ(CountMismatches(q, 3 * kMiB + 123, 7), 0u);
  free(q);
}

TEST(LargeArena, ReallocShrinkGivesTheTailBackAndCanGrowAgain) {
  auto* p = static_cast<unsigned char*>(malloc(6 * kMiB + 5));
  ASSERT_NE(p, nullptr);
  Fill(p, 6 * kMiB + 5, 11);
  auto* q = static_cast<unsigned char*>(realloc(p, 1 * kMiB + 333));
  ASSERT_EQ(q, p) << "shrunk in place";
  size_t usable = malloc_usable_size(q);
  EXPECT_GE(usable, 1 * kMiB + 333);
  EXPECT_LT(usable, 2 * kMiB) << "the tail went back to the arena";
  EXPECT_EQ(CountMismatches(q, 1 * kMiB + 333, 11), 0u);
  // The tail is free again, so growing back needs no move either.
  auto* r = static_cast<unsigned char*>(realloc(q, 5 * kMiB + 9));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r, q);
  EXPECT_EQ(CountMismatches(r, 1 * kMiB + 333, 11), 0u);
  free(r);
}

TEST(LargeArena, ReallocMovesWhenTheNextPagesAreTaken) {
  auto* p = static_cast<unsigned char*>(malloc(700 * kKiB));
  auto* blocker = static_cast<unsigned char*>(malloc(700 * kKiB));
  ASSERT_NE(p, nullptr);
  ASSERT_NE(blocker, nullptr);
  Escape(blocker);
  Fill(p, 700 * kKiB, 3);
  Fill(blocker, 700 * kKiB, 4);
  auto* q = static_cast<unsigned char*>(realloc(p, 2 * kMiB + 1));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(CountMismatches(q, 700 * kKiB, 3), 0u);
  EXPECT_EQ(CountMismatches(blocker, 700 * kKiB, 4), 0u) << "the neighbour is untouched";
  EXPECT_GE(malloc_usable_size(q), 2 * kMiB + 1);
  free(q);
  free(blocker);
}

// Freed spans go to the caches first, then back to their arena (dirty, up
// to a budget, then returned to the kernel): calloc must read zeros
// whichever of the three serves it.
TEST(LargeArena, CallocOfReusedPagesIsZero) {
  constexpr size_t kSize = 300 * kKiB, kCount = 300;  // 90 MB: past every cache
  std::vector<unsigned char*> blocks;
  for (size_t i = 0; i < kCount; i++) {
    auto* p = static_cast<unsigned char*>(malloc(kSize));
    ASSERT_NE(p, nullptr);
    memset(p, 0xAB, kSize);
    blocks.push_back(p);
  }
  for (auto* p : blocks) free(p);
  blocks.clear();
  size_t dirty_blocks = 0;
  for (size_t i = 0; i < kCount; i++) {
    auto* p = static_cast<unsigned char*>(calloc(1, kSize));
    ASSERT_NE(p, nullptr);
    for (size_t j = 0; j < kSize; j += 64)
      if (p[j] != 0 || p[j + 63] != 0) {
        dirty_blocks++;
        break;
      }
    blocks.push_back(p);
  }
  EXPECT_EQ(dirty_blocks, 0u);
  for (auto* p : blocks) free(p);
}

TEST(LargeArena, ScavengeReturnsFreedArenaPages) {
  // Every other block stays live, so the freed ones can neither coalesce
  // into a wholly free region (unmapped at once) nor leave the arena.
  constexpr size_t kSize = 900 * kKiB, kCount = 40;
  std::vector<void*> blocks;
  for (size_t i = 0; i < kCount; i++) {
    void* p = malloc(kSize);
    ASSERT_NE(p, nullptr);
    memset(p, 1, kSize);
    blocks.push_back(p);
  }
  for (size_t i = 0; i < kCount; i += 2) free(blocks[i]);
  hak_stats before;
  ASSERT_EQ(hak_stats_get(&before), 0);
  EXPECT_GE(before.large_cached_bytes, kCount / 2 * kSize) << "freed pages kept for reuse";
  size_t released = hak_scavenge(0);
  EXPECT_GE(released, kCount / 2 * kSize);
  hak_stats after;
  ASSERT_EQ(hak_stats_get(&after), 0);
  EXPECT_EQ(after.large_cached_bytes, 0u);
  for (size_t i = 1; i < kCount; i += 2) free(blocks[i]);
}

}  // namespace
