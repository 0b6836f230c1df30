// Redzones (redzone.h) in the debug variant, from inside one process in
// report mode: each overwrite is counted once, the damaged block is left
// alone (never put back on a list), and everything a correct program sees
// - sizes, contents across realloc, zeroing, alignment - is as without
// redzones.  The release variant has none, except the keyed canary in a
// large block's header, tested here in both.  //security runs the same
// mistakes in abort mode, one process each.

#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hakmem.h"
#include "test_support.h"

// C23's free_sized: glibc declares it from 2.39 on; hakmem always has it.
#if !defined(__GLIBC__) || !__GLIBC_PREREQ(2, 39)
extern "C" void free_sized(void* p, size_t n);
#endif

namespace {

using ::hakmem_test::Launder;

const size_t kSizes[] = {0, 1, 24, 100, 1000, 4096, 20000, 65530, 200000};

bool IsDebug() { return std::string(hak_variant()) == "debug"; }

class ReportMode : public ::testing::Test {
 protected:
  void SetUp() override { hak_set_fault_action(HAK_FAULT_REPORT); }
  void TearDown() override { hak_set_fault_action(HAK_FAULT_ABORT); }
};

// Flips every bit of `len` bytes at p + from (a constant could happen to
// equal the canary bytes there), frees p, returns the events it caused.
uint64_t OverwriteAndFree(size_t n, ptrdiff_t from, size_t len) {
  auto* p = static_cast<char*>(malloc(n));
  EXPECT_NE(p, nullptr);
  memset(p, 0x11, n);
  const uint64_t before = hak_integrity_events();
  char* q = Launder(p) + from;
  for (size_t i = 0; i < len; i++) q[i] = static_cast<char>(~q[i]);
  free(p);
  return hak_integrity_events() - before;
}

TEST_F(ReportMode, DebugCatchesEveryOverflowAndUnderflowAtFree) {
  if (!IsDebug()) GTEST_SKIP() << "redzones are a debug-variant feature";
  for (size_t n : kSizes) {
    SCOPED_TRACE(n);
    EXPECT_EQ(OverwriteAndFree(n, static_cast<ptrdiff_t>(n), 1), 1u) << "1-byte overflow";
    EXPECT_EQ(OverwriteAndFree(n, static_cast<ptrdiff_t>(n), 16), 1u) << "16-byte overflow";
    EXPECT_EQ(OverwriteAndFree(n, -1, 1), 1u) << "1-byte underflow";
    EXPECT_EQ(OverwriteAndFree(n, -16, 16), 1u) << "16-byte underflow";
  }
}

TEST_F(ReportMode, ReleaseCatchesLargeUnderflowThroughTheHeaderCanary) {
  for (size_t n : {size_t{100000}, size_t{3} << 20}) {
    SCOPED_TRACE(n);
    EXPECT_EQ(OverwriteAndFree(n, -1, 1), 1u);
    EXPECT_EQ(OverwriteAndFree(n, -32, 32), 1u);
  }
}

TEST_F(ReportMode, CorrectUseCausesNoEvent) {
  const uint64_t before = hak_integrity_events();
  std::vector<char*> live;
  for (size_t n : kSizes) {
    auto* p = static_cast<char*>(malloc(n));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    EXPECT_GE(malloc_usable_size(p), n);
    if (IsDebug()) EXPECT_EQ(malloc_usable_size(p), n) << "debug knows the request";
    memset(p, 0x5A, malloc_usable_size(p));  // every usable byte is the program's
    live.push_back(p);
  }
  for (char* p : live) free(p);
  // Contents survive growing and shrinking across tiers.
  size_t cur = 10;
  auto* r = static_cast<unsigned char*>(malloc(cur));
  ASSERT_NE(r, nullptr);
  for (size_t n : {size_t{40}, size_t{3000}, size_t{100000}, size_t{500}, size_t{7}, size_t{64}}) {
    for (size_t i = 0; i < cur; ++i) r[i] = static_cast<unsigned char>(i * 7 + n);
    const size_t keep = cur < n ? cur : n;
    const unsigned char salt = static_cast<unsigned char>(n);
    r = static_cast<unsigned char*>(realloc(r, n));
    ASSERT_NE(r, nullptr);
    for (size_t i = 0; i < keep; ++i) {
      ASSERT_EQ(r[i], static_cast<unsigned char>(i * 7 + salt)) << cur << " -> " << n;
    }
    cur = n;
  }
  free(r);
  // calloc zeroes exactly, a shrunk block frees with its new size.
  for (size_t n : kSizes) {
    auto* z = static_cast<unsigned char*>(calloc(1, n));
    ASSERT_NE(z, nullptr);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(z[i], 0) << n;
    z = static_cast<unsigned char*>(realloc(z, n / 2 + 1));
    ASSERT_NE(z, nullptr);
    free_sized(z, n / 2 + 1);
  }
  EXPECT_EQ(hak_integrity_events(), before);
}

TEST_F(ReportMode, DebugChecksSizedFreesExactly) {
  if (!IsDebug()) GTEST_SKIP() << "release compares classes only";
  for (size_t n : {size_t{24}, size_t{4096}, size_t{200000}}) {
    SCOPED_TRACE(n);
    const uint64_t before = hak_integrity_events();
    free_sized(malloc(n), n - 1);
    EXPECT_EQ(hak_integrity_events(), before + 1);
    free_sized(malloc(n), n);
    EXPECT_EQ(hak_integrity_events(), before + 1);
  }
}

}  // namespace
