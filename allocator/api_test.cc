// The malloc API contract of hakmem (SPEC.md §1, hakmem.h).
//
// The test binary is linked against a hakmem variant, so every malloc in
// this process -- ours, gtest's, libstdc++'s -- is hakmem's.  Each test
// states a property a correct allocator has and a broken one lacks: sizes,
// alignment, usable size, non-overlap, zeroing, glibc's error behaviour,
// contents surviving realloc, and the hak_* introspection calls.

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"
#include "test_support.h"

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;

using ::hakmem_test::Escape;

// Hides a value from the optimiser, so calls with absurd sizes are neither
// warned about at compile time nor folded away.
template <typename T>
inline T Opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

inline bool IsAligned(const void* p, size_t a) {
  return reinterpret_cast<uintptr_t>(p) % a == 0;
}

// A byte pattern that depends on the block (seed) and on the position, so a
// block overwritten by another one, or contents copied to the wrong offset,
// show up as mismatches.
inline uint8_t PatternByte(uint32_t seed, size_t i) {
  return static_cast<uint8_t>(seed * 167u + i * 31u + (i >> 8) * 7u + 1u);
}

void Fill(void* p, size_t from, size_t to, uint32_t seed) {
  auto* b = static_cast<uint8_t*>(p);
  for (size_t i = from; i < to; ++i) b[i] = PatternByte(seed, i);
  Escape(p);
}

::testing::AssertionResult HasPattern(const void* p, size_t n, uint32_t seed) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != PatternByte(seed, i)) {
      return ::testing::AssertionFailure()
             << "block " << p << " of " << n << " bytes differs at offset " << i
             << ": found " << int(b[i]) << ", wrote "
             << int(PatternByte(seed, i));
    }
  }
  return ::testing::AssertionSuccess();
}

// The properties every successful allocation of n bytes has: non-NULL,
// aligned to `align` and to 16 (hakmem aligns everything to 16), usable
// size covering the request, and every requested byte writable and
// readable back.
::testing::AssertionResult IsGoodBlock(void* p, size_t n, size_t align = 16) {
  if (p == nullptr) return ::testing::AssertionFailure() << "NULL for " << n;
  if (!IsAligned(p, std::max<size_t>(align, 16))) {
    return ::testing::AssertionFailure()
           << p << " (request " << n << ") is not aligned to "
           << std::max<size_t>(align, 16);
  }
  size_t usable = malloc_usable_size(p);
  if (usable < n) {
    return ::testing::AssertionFailure()
           << "malloc_usable_size " << usable << " < request " << n;
  }
  uint32_t seed = static_cast<uint32_t>(n * 2654435761u);
  Fill(p, 0, n, seed);
  return HasPattern(p, n, seed);
}

// Whatever the tests did, a correct allocator saw no fault and the main
// thread's free lists are intact at the end.  Registered from a static
// constructor: this allocation also checks that hakmem works before main.
::testing::Environment* const kCleanHeapEnv = ::hakmem_test::AddCleanHeapAtExit();

// ---------------------------------------------------------------- malloc --

TEST(Malloc, SmallSizesIncludingZero) {
  for (size_t n : {0, 1, 8, 15, 16, 17}) {
    SCOPED_TRACE(n);
    void* p = malloc(n);
    EXPECT_TRUE(IsGoodBlock(p, n));
    free(p);
  }
  // glibc: malloc(0) returns a unique pointer that can be passed to free.
  void* a = malloc(Opaque<size_t>(0));
  void* b = malloc(Opaque<size_t>(0));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  free(a);
  free(b);
}

TEST(Malloc, EverySizeUpTo2048) {
  for (size_t n = 1; n <= 2048; ++n) {
    void* p = malloc(n);
    ASSERT_TRUE(IsGoodBlock(p, n)) << "size " << n;
    free(p);
  }
}

TEST(Malloc, PowersOfTwoAndNeighboursUpTo64MiB) {
  for (size_t k = 0; (size_t{1} << k) <= 64 * kMiB; ++k) {
    size_t pow = size_t{1} << k;
    for (size_t n : {pow - 1, pow, pow + 1}) {
      if (n == 0) continue;
      void* p = malloc(n);
      ASSERT_TRUE(IsGoodBlock(p, n)) << "size " << n;
      free(p);
    }
  }
}

// Many live blocks of mixed tiers at once: each one's usable range is filled
// with its own pattern, and all are verified only after every block has been
// written.  Any two blocks sharing a byte corrupt one of the patterns.  The
// sorted address ranges are checked for overlap as well.
TEST(Malloc, LiveBlocksDoNotOverlap) {
  std::mt19937 rng(12345);
  struct Live {
    uint8_t* p;
    size_t usable;
    uint32_t seed;
  };
  std::vector<Live> live;
  live.reserve(6000);
  for (uint32_t i = 0; i < 6000; ++i) {
    uint32_t r = rng() % 100;
    size_t n = r < 88   ? 1 + rng() % 1024                     // tiny
               : r < 99 ? 1025 + rng() % (64 * kKiB - 1024)    // mid
                        : 64 * kKiB + 1 + rng() % (960 * kKiB);  // large
    auto* p = static_cast<uint8_t*>(malloc(n));
    ASSERT_NE(p, nullptr) << n;
    size_t usable = malloc_usable_size(p);
    ASSERT_GE(usable, n);
    Fill(p, 0, usable, i);
    live.push_back({p, usable, i});
  }
  for (const Live& b : live) ASSERT_TRUE(HasPattern(b.p, b.usable, b.seed));

  std::vector<Live> sorted = live;
  std::sort(sorted.begin(), sorted.end(),
            [](const Live& x, const Live& y) { return x.p < y.p; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    EXPECT_LE(sorted[i - 1].p + sorted[i - 1].usable, sorted[i].p)
        << "block " << static_cast<void*>(sorted[i - 1].p) << " (+"
        << sorted[i - 1].usable << ") overlaps "
        << static_cast<void*>(sorted[i].p);
  }
  for (const Live& b : live) free(b.p);
}

// Requests no allocator can serve fail the glibc way, including sizes whose
// rounding up to a class or to pages would wrap around.
TEST(Malloc, ImpossibleSizesFailWithENOMEM) {
  const size_t sizes[] = {
      SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4096,
      static_cast<size_t>(PTRDIFF_MAX) + 1, SIZE_MAX / 2 + 4096,
  };
  for (size_t n : sizes) {
    SCOPED_TRACE(n);
    errno = 0;
    void* p = malloc(Opaque(n));
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(errno, ENOMEM);
    free(p);
  }
}

TEST(Malloc, FreeNullAndUsableSizeOfNull) {
  uint64_t events = hak_integrity_events();
  free(Opaque<void*>(nullptr));
  EXPECT_EQ(hak_integrity_events(), events) << "free(NULL) reported a fault";
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
}

// ---------------------------------------------------------------- calloc --

TEST(Calloc, ReturnsZeroedMemoryOfEveryTier) {
  const std::pair<size_t, size_t> requests[] = {
      {1, 1},    {1, 16},       {3, 7},        {100, 10},   {1, 1024},
      {7, 300},  {1, 4096},     {13, 5000},    {1, 65536},  {1, 65537},
      {3, 100000}, {1, 1 * kMiB}, {256, 16384}, {1, 8 * kMiB},
  };
  for (auto [nmemb, size] : requests) {
    size_t n = nmemb * size;
    SCOPED_TRACE(n);
    auto* p = static_cast<uint8_t*>(calloc(nmemb, size));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(IsAligned(p, 16));
    EXPECT_GE(malloc_usable_size(p), n);
    Escape(p);
    EXPECT_EQ(std::count(p, p + n, 0), static_cast<ptrdiff_t>(n));
    free(p);
  }
}

// Recycled memory: the same blocks are dirtied and freed, then handed out
// again by calloc, which must zero them (a freed block keeps its old bytes
// and, in hakmem, a free-list link).
TEST(Calloc, ZeroesRecycledDirtyMemory) {
  const size_t sizes[] = {16,    32,    100,    1000,   1024,
                          4096,  50000, 65536,  200000, 1 * kMiB};
  for (size_t n : sizes) {
    SCOPED_TRACE(n);
    for (int round = 0; round < 20; ++round) {
      std::vector<void*> blocks;
      for (int i = 0; i < 8; ++i) {
        void* p = malloc(n);
        ASSERT_NE(p, nullptr);
        memset(p, 0xAA, malloc_usable_size(p));
        Escape(p);
        blocks.push_back(p);
      }
      for (void* p : blocks) free(p);
      blocks.clear();
      for (int i = 0; i < 8; ++i) {
        auto* p = static_cast<uint8_t*>(calloc(1, n));
        ASSERT_NE(p, nullptr);
        Escape(p);
        ASSERT_EQ(std::count(p, p + n, 0), static_cast<ptrdiff_t>(n))
            << "round " << round << " block " << i;
        memset(p, 0xAA, n);  // dirty again for the next round
        Escape(p);
        blocks.push_back(p);
      }
      for (void* p : blocks) free(p);
    }
  }
}

TEST(Calloc, SizeOverflowFailsWithENOMEM) {
  const std::pair<size_t, size_t> requests[] = {
      {SIZE_MAX / 2 + 1, 3}, {3, SIZE_MAX / 2 + 1}, {SIZE_MAX, SIZE_MAX},
      {size_t{1} << 32, size_t{1} << 32}, {SIZE_MAX, 2},
  };
  for (auto [nmemb, size] : requests) {
    SCOPED_TRACE(::testing::Message() << nmemb << " x " << size);
    errno = 0;
    void* p = calloc(Opaque(nmemb), Opaque(size));
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(errno, ENOMEM);
    free(p);
  }
}

// ---------------------------------------------------------- reallocarray --

TEST(Reallocarray, WorksAndRejectsOverflow) {
  auto* p = static_cast<uint64_t*>(reallocarray(nullptr, 10, sizeof(uint64_t)));
  ASSERT_TRUE(IsGoodBlock(p, 10 * sizeof(uint64_t)));
  for (uint64_t i = 0; i < 10; ++i) p[i] = i * 3;

  errno = 0;
  void* q = reallocarray(Opaque(p), Opaque(SIZE_MAX / 2 + 1), Opaque<size_t>(3));
  EXPECT_EQ(q, nullptr);
  EXPECT_EQ(errno, ENOMEM);
  // On failure the old block is untouched and still owned by the caller.
  for (uint64_t i = 0; i < 10; ++i) ASSERT_EQ(p[i], i * 3);

  errno = 0;
  EXPECT_EQ(reallocarray(nullptr, Opaque(SIZE_MAX / 2 + 1), Opaque<size_t>(3)),
            nullptr);
  EXPECT_EQ(errno, ENOMEM);

  auto* r = static_cast<uint64_t*>(reallocarray(p, 5000, sizeof(uint64_t)));
  ASSERT_TRUE(r != nullptr);
  for (uint64_t i = 0; i < 10; ++i) ASSERT_EQ(r[i], i * 3);
  free(r);
}

// --------------------------------------------------------------- realloc --

TEST(Realloc, NullPointerActsLikeMalloc) {
  for (size_t n : {1, 16, 100, 5000, 100000}) {
    void* p = realloc(nullptr, n);
    EXPECT_TRUE(IsGoodBlock(p, n)) << n;
    free(p);
  }
}

// One block walks through the tiers, up and back down; the common prefix
// must survive every move.
TEST(Realloc, KeepsContentsWhileGrowingAndShrinkingAcrossTiers) {
  const size_t steps[] = {
      24,       100,      700,        1024,       1025,   3000,  40000,
      65536,    65537,    200000,     4 * kMiB,   5 * kMiB, 100000, 5000,
      700,      20,       1,          300,        64 * kKiB + 100,
      2 * kMiB, 16,
  };
  const uint32_t seed = 77;
  size_t n = steps[0];
  auto* p = static_cast<uint8_t*>(malloc(n));
  ASSERT_NE(p, nullptr);
  Fill(p, 0, n, seed);
  for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); ++i) {
    size_t m = steps[i];
    SCOPED_TRACE(::testing::Message() << n << " -> " << m);
    auto* q = static_cast<uint8_t*>(realloc(p, m));
    ASSERT_TRUE(q != nullptr);
    EXPECT_TRUE(IsAligned(q, 16));
    EXPECT_GE(malloc_usable_size(q), m);
    ASSERT_TRUE(HasPattern(q, std::min(n, m), seed));
    if (m > n) Fill(q, n, m, seed);
    p = q;
    n = m;
  }
  free(p);
}

// Shrinking and growing many blocks in place or not must never hand one
// block's bytes to another: interleave reallocs of neighbours.
TEST(Realloc, NeighboursStayIntactWhileResizing) {
  std::mt19937 rng(99);
  std::vector<std::pair<uint8_t*, size_t>> blocks(200);
  for (uint32_t i = 0; i < blocks.size(); ++i) {
    size_t n = 1 + rng() % 2000;
    blocks[i] = {static_cast<uint8_t*>(malloc(n)), n};
    ASSERT_NE(blocks[i].first, nullptr);
    Fill(blocks[i].first, 0, n, i);
  }
  for (int round = 0; round < 2000; ++round) {
    uint32_t i = rng() % blocks.size();
    auto& [p, n] = blocks[i];
    size_t m = 1 + (rng() % 4 == 0 ? rng() % 150000 : rng() % 3000);
    auto* q = static_cast<uint8_t*>(realloc(p, m));
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(HasPattern(q, std::min(n, m), i));
    if (m > n) Fill(q, n, m, i);
    p = q;
    n = m;
  }
  for (uint32_t i = 0; i < blocks.size(); ++i) {
    EXPECT_TRUE(HasPattern(blocks[i].first, blocks[i].second, i));
    free(blocks[i].first);
  }
}

// glibc: realloc(p, 0) frees p and returns NULL.  The class statistics show
// the free (nothing else runs between the two snapshots).
TEST(Realloc, ZeroSizeFreesAndReturnsNull) {
  for (size_t n : {40, 3000}) {
    SCOPED_TRACE(n);
    int cls = hak_size_class(n);
    ASSERT_GE(cls, 0);
    void* p = malloc(n);
    ASSERT_NE(p, nullptr);
    struct hak_stats before, after;
    ASSERT_EQ(hak_stats_get(&before), 0);
    void* q = realloc(p, Opaque<size_t>(0));
    ASSERT_EQ(hak_stats_get(&after), 0);
    EXPECT_EQ(q, nullptr);
    free(q);
    EXPECT_GE(after.cls[cls].frees, before.cls[cls].frees + 1)
        << "realloc(p, 0) did not free p";
  }
}

// A realloc that cannot be served fails with ENOMEM and leaves the old
// block as it was, in every tier (sizes near SIZE_MAX also catch a size
// computation that wraps around to a small one).
TEST(Realloc, FailureLeavesTheBlockIntact) {
  for (size_t old_n : {size_t{500}, size_t{20000}, 1 * kMiB}) {
    auto* p = static_cast<uint8_t*>(malloc(old_n));
    ASSERT_NE(p, nullptr);
    Fill(p, 0, old_n, 5);
    for (size_t n : {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096,
                     static_cast<size_t>(PTRDIFF_MAX) + 1}) {
      SCOPED_TRACE(::testing::Message() << old_n << " -> " << n);
      errno = 0;
      void* q = realloc(Opaque(p), Opaque(n));
      if (q != nullptr) {  // claimed success: p is gone, q is the block now
        ADD_FAILURE() << "realloc succeeded; usable size "
                      << malloc_usable_size(q);
        p = static_cast<uint8_t*>(q);
        break;
      }
      EXPECT_EQ(errno, ENOMEM);
      ASSERT_GE(malloc_usable_size(p), old_n);
      ASSERT_TRUE(HasPattern(p, old_n, 5));
    }
    free(p);
  }
}

// ------------------------------------------------------ aligned families --

std::vector<size_t> Alignments() {
  std::vector<size_t> a;
  for (size_t x = 1; x <= 64 * kKiB; x *= 2) a.push_back(x);
  a.push_back(1 * kMiB);
  a.push_back(2 * kMiB);
  return a;
}

std::vector<size_t> SizesFor(size_t align) {
  std::vector<size_t> s = {1, align, 3 * align + 5, 100 * kKiB};
  if (align > 1) s.push_back(align - 1);
  return s;
}

TEST(Aligned, PosixMemalignEveryPowerOfTwo) {
  for (size_t a : Alignments()) {
    if (a < sizeof(void*)) continue;  // EINVAL by definition
    for (size_t n : SizesFor(a)) {
      SCOPED_TRACE(::testing::Message() << "align " << a << " size " << n);
      void* p = nullptr;
      ASSERT_EQ(posix_memalign(&p, a, n), 0);
      EXPECT_TRUE(IsGoodBlock(p, n, a));
      free(p);
    }
  }
}

// A 0-byte request with an alignment only the large tier serves: the block
// must lie inside its span (it once sat one past the end, which
// malloc_usable_size then did not recognise).
TEST(Aligned, ZeroBytesAtALargeAlignmentIsARealBlock) {
  for (size_t a : {size_t{128} << 10, size_t{256} << 10, size_t{1} << 20}) {
    SCOPED_TRACE(a);
    void* p = nullptr;
    ASSERT_EQ(posix_memalign(&p, a, 0), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % a, 0u);
    EXPECT_GE(malloc_usable_size(p), 1u);
    static_cast<char*>(p)[0] = 1;
    free(p);
  }
}

TEST(Aligned, AlignedAllocEveryPowerOfTwo) {
  for (size_t a : Alignments()) {
    for (size_t n : SizesFor(a)) {
      SCOPED_TRACE(::testing::Message() << "align " << a << " size " << n);
      void* p = aligned_alloc(a, n);
      EXPECT_TRUE(IsGoodBlock(p, n, a));
      free(p);
    }
  }
}

TEST(Aligned, MemalignEveryPowerOfTwo) {
  for (size_t a : Alignments()) {
    for (size_t n : SizesFor(a)) {
      SCOPED_TRACE(::testing::Message() << "align " << a << " size " << n);
      void* p = memalign(a, n);
      EXPECT_TRUE(IsGoodBlock(p, n, a));
      free(p);
    }
  }
}

// Aligned blocks kept alive together must not overlap either (an aligned
// block carved out of a bigger one is the classic place to get this wrong).
TEST(Aligned, LiveAlignedBlocksDoNotOverlap) {
  std::vector<std::pair<void*, size_t>> live;
  uint32_t seed = 0;
  for (int rep = 0; rep < 3; ++rep) {
    for (size_t a : Alignments()) {
      if (a > 64 * kKiB) continue;
      for (size_t n : {size_t{8}, a / 2 + 1, a + 3}) {
        void* p = nullptr;
        ASSERT_EQ(posix_memalign(&p, std::max(a, sizeof(void*)), n), 0);
        size_t usable = malloc_usable_size(p);
        Fill(p, 0, usable, ++seed);
        live.push_back({p, usable});
      }
    }
  }
  seed = 0;
  for (auto [p, usable] : live) EXPECT_TRUE(HasPattern(p, usable, ++seed));
  for (auto [p, usable] : live) free(p);
}

TEST(Aligned, PosixMemalignRejectsBadAlignmentAndLeavesOutUntouched) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x1234560});
  const size_t bad[] = {0, 1, 2, 3, 4, sizeof(void*) + 1, 3 * sizeof(void*),
                        24, 48, 1000, 4097, (size_t{1} << 20) + 8,
                        size_t{1} << 63 | 8};
  for (size_t a : bad) {
    if (a >= sizeof(void*) && (a & (a - 1)) == 0) continue;  // valid
    SCOPED_TRACE(a);
    void* p = sentinel;
    EXPECT_EQ(posix_memalign(&p, Opaque(a), 64), EINVAL);
    EXPECT_EQ(p, sentinel);
  }
}

TEST(Aligned, ImpossibleSizesFailWithENOMEM) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x1234560});
  for (size_t a : {size_t{16}, size_t{4096}, 2 * kMiB}) {
    SCOPED_TRACE(a);
    void* p = sentinel;
    EXPECT_EQ(posix_memalign(&p, a, Opaque(SIZE_MAX - 10)), ENOMEM);
    EXPECT_EQ(p, sentinel);
    errno = 0;
    EXPECT_EQ(aligned_alloc(a, Opaque(SIZE_MAX - a)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(memalign(a, Opaque(static_cast<size_t>(PTRDIFF_MAX))), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
}

// Alignments no address space can honour fail cleanly (glibc: ENOMEM for a
// valid power of two it cannot serve).
TEST(Aligned, HugeAlignmentsFailWithENOMEM) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0x1234560});
  for (int shift : {47, 50, 62, 63}) {
    const size_t a = size_t{1} << shift;
    SCOPED_TRACE(::testing::Message() << "align 2^" << shift);
    void* p = sentinel;
    EXPECT_EQ(posix_memalign(&p, Opaque(a), 1), ENOMEM);
    EXPECT_EQ(p, sentinel);
    errno = 0;
    EXPECT_EQ(aligned_alloc(Opaque(a), 1), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
}

TEST(Aligned, VallocIsPageAligned) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t n : {size_t{1}, size_t{100}, page - 1, page, page + 1,
                   size_t{100000}, 3 * kMiB}) {
    void* p = valloc(n);
    EXPECT_TRUE(IsGoodBlock(p, n, page)) << n;
    free(p);
  }
}

TEST(Aligned, PvallocIsPageAlignedAndRoundsUpToPages) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t n : {size_t{1}, size_t{100}, page - 1, page, page + 1,
                   size_t{100000}, 3 * kMiB + 1}) {
    SCOPED_TRACE(n);
    size_t rounded = (n + page - 1) / page * page;
    void* p = pvalloc(n);
    EXPECT_TRUE(IsGoodBlock(p, rounded, page));  // all rounded bytes usable
    free(p);
  }
}

// ---------------------------------------------------------- size classes --

// The layout hakmem.h documents: class 0 is 16 bytes, 16-byte spacing up to
// 128, then four classes per power of two; tiny ends at HAK_TINY_MAX and the
// last class is HAK_MID_MAX.
TEST(SizeClasses, MatchTheDocumentedLayout) {
  for (int c = 0; c < 8; ++c) EXPECT_EQ(hak_class_size(c), 16u * (c + 1)) << c;
  for (int c = 8; c < HAK_NUM_CLASSES; ++c) {
    size_t group_base = hak_class_size(c - (c - 8) % 4 - 1);  // power of two
    EXPECT_EQ(hak_class_size(c), group_base + group_base / 4 * ((c - 8) % 4 + 1))
        << c;
  }
  EXPECT_EQ(hak_class_size(HAK_NUM_TINY_CLASSES - 1), size_t{HAK_TINY_MAX});
  EXPECT_EQ(hak_class_size(HAK_NUM_CLASSES - 1), size_t{HAK_MID_MAX});
  EXPECT_EQ(hak_class_size(-1), 0u);
  EXPECT_EQ(hak_class_size(HAK_NUM_CLASSES), 0u);
  EXPECT_EQ(hak_class_size(1000), 0u);
}

// For every size a class serves: the class is big enough, the class below is
// too small (so the mapping picks the tightest class), and tiny/mid
// boundaries are where hakmem.h puts them.
TEST(SizeClasses, SizeToClassIsTightAndConsistent) {
  for (size_t n = 1; n <= HAK_MID_MAX; ++n) {
    int c = hak_size_class(n);
    ASSERT_GE(c, 0) << n;
    ASSERT_LT(c, HAK_NUM_CLASSES) << n;
    ASSERT_GE(hak_class_size(c), n) << "class " << c << " too small for " << n;
    if (c > 0) {
      ASSERT_LT(hak_class_size(c - 1), n) << "class " << c - 1 << " fits " << n;
    }
    ASSERT_EQ(c < HAK_NUM_TINY_CLASSES, n <= HAK_TINY_MAX) << n;
  }
  for (size_t n : {size_t{HAK_MID_MAX} + 1, size_t{1} << 20, SIZE_MAX}) {
    EXPECT_EQ(hak_size_class(n), -1) << n;
  }
}

// Blocks of a class really have the class's room.
TEST(SizeClasses, UsableSizeCoversTheClassRequest) {
  for (int c = 0; c < HAK_NUM_CLASSES; ++c) {
    size_t n = hak_class_size(c);
    void* p = malloc(n);
    EXPECT_TRUE(IsGoodBlock(p, n)) << "class " << c;
    free(p);
  }
}

// ------------------------------------------------------------------- C++ --

TEST(Cxx, NewAndDeleteGoThroughHakmem) {
  auto* one = new int(42);
  auto* many = new int[32]();
  // hak_super_lookup finds only hakmem's own memory: these came from hakmem.
  EXPECT_NE(hak_super_lookup(one), nullptr);
  EXPECT_NE(hak_super_lookup(many), nullptr);
  EXPECT_EQ(*one, 42);
  EXPECT_EQ(std::count(many, many + 32, 0), 32);
  delete one;
  delete[] many;
}

TEST(Cxx, OverAlignedNew) {
  struct alignas(256) Wide {
    char bytes[300];
  };
  std::vector<Wide*> objs;
  for (int i = 0; i < 64; ++i) {
    auto* w = new Wide;
    ASSERT_TRUE(IsAligned(w, 256));
    memset(w->bytes, i, sizeof(w->bytes));
    objs.push_back(w);
  }
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(objs[i]->bytes[0], i);
    EXPECT_EQ(objs[i]->bytes[299], i);
    delete objs[i];
  }
}

TEST(Cxx, FailedNewThrowsAndNothrowReturnsNull) {
  size_t huge = Opaque(size_t{1} << 62);
  EXPECT_THROW(
      {
        char* p = new char[huge];
        Escape(p);
        delete[] p;
      },
      std::bad_alloc);
  char* q = new (std::nothrow) char[huge];
  EXPECT_EQ(q, nullptr);
  delete[] q;
}

TEST(Cxx, ContainersGrowAndChurn) {
  std::vector<uint64_t> v;
  for (uint64_t i = 0; i < 1000000; ++i) v.push_back(i * i);
  for (uint64_t i = 0; i < v.size(); i += 997) ASSERT_EQ(v[i], i * i);

  std::string s;
  for (int i = 0; i < 200000; ++i) s.push_back(static_cast<char>('a' + i % 26));
  for (int i = 0; i < 200000; i += 101) ASSERT_EQ(s[i], 'a' + i % 26);

  // A map against a plain presence table: every insert and erase allocates or
  // frees a node (and short strings, long strings inside).
  std::map<uint32_t, std::string> m;
  std::vector<bool> present(4096, false);
  std::mt19937 rng(7);
  for (int op = 0; op < 200000; ++op) {
    uint32_t k = rng() % 4096;
    if (present[k]) {
      auto it = m.find(k);
      ASSERT_NE(it, m.end());
      ASSERT_EQ(it->second, std::string(k % 200, static_cast<char>('A' + k % 26)));
      m.erase(it);
    } else {
      m.emplace(k, std::string(k % 200, static_cast<char>('A' + k % 26)));
    }
    present[k] = !present[k];
  }
  EXPECT_EQ(m.size(),
            static_cast<size_t>(std::count(present.begin(), present.end(), true)));
}

// --------------------------------------------------------- introspection --

TEST(Introspection, VariantIsReleaseOrDebug) {
  const char* v = hak_variant();
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(std::string(v) == "release" || std::string(v) == "debug") << v;
}

char g_global_buffer[256];

TEST(Introspection, SuperLookupFindsOnlySuperSlabMemory) {
  auto* small = static_cast<char*>(malloc(64));
  ASSERT_NE(small, nullptr);
  void* ss = hak_super_lookup(small);
  EXPECT_NE(ss, nullptr);
  // Every byte of the block lies in the same SuperSlab.
  EXPECT_EQ(hak_super_lookup(small + 63), ss);

  int on_stack = 0;
  EXPECT_EQ(hak_super_lookup(Opaque(&on_stack)), nullptr);
  EXPECT_EQ(hak_super_lookup(Opaque(g_global_buffer)), nullptr);
  EXPECT_EQ(hak_super_lookup(nullptr), nullptr);

  void* large = malloc(1 * kMiB);  // large tier: page arena, not a SuperSlab
  ASSERT_NE(large, nullptr);
  EXPECT_EQ(hak_super_lookup(large), nullptr);
  free(large);
  free(small);
}

TEST(Introspection, StatsCountAllocationsOfAClass) {
  const size_t n = 200;
  int cls = hak_size_class(n);
  ASSERT_GE(cls, 0);
  struct hak_stats before, during, after;
  ASSERT_EQ(hak_stats_get(&before), 0);
  std::vector<void*> blocks(100);
  for (void*& p : blocks) {
    p = malloc(n);
    Escape(p);
  }
  ASSERT_EQ(hak_stats_get(&during), 0);
  for (void* p : blocks) free(p);
  ASSERT_EQ(hak_stats_get(&after), 0);
  EXPECT_EQ(during.cls[cls].block_size, hak_class_size(cls));
  EXPECT_GE(during.cls[cls].allocs - before.cls[cls].allocs, 100u);
  EXPECT_GE(during.cls[cls].live_bytes,
            before.cls[cls].live_bytes + 100 * hak_class_size(cls));
  EXPECT_GE(after.cls[cls].frees - during.cls[cls].frees, 100u);
  EXPECT_EQ(after.integrity_events, hak_integrity_events());
}

}  // namespace
