// Google Benchmark microbenchmarks of an allocator's fast paths (SPEC §3):
//
//   BM_MallocFree/<size>        malloc+free of one block, per hakmem size
//                               class (and two large sizes)
//   BM_BatchAllocFree/<size>    allocate 1000 blocks, then free them all
//   BM_CrossThreadFree/<size>   this thread allocates, a consumer thread
//                               frees (single-producer/single-consumer ring)
//   BM_ReallocGrowth            realloc from 16 bytes, doubling to 1 MiB
//
// Built twice from this file: //benchmarks:microbench with hakmem linked in
// (it replaces malloc; MICROBENCH_HAKMEM is defined and the size list is
// checked against hak_class_size at start), and //benchmarks:microbench_system
// with the system allocator - which another allocator can be preloaded under
// (LD_PRELOAD=.../libmimalloc.so.2); the "allocator" context field names it.
//
// Output is Google Benchmark's own: console by default, and JSON through the
// library's flags, e.g.
//
//   bazel-bin/benchmarks/microbench --benchmark_out=hakmem.json
//       --benchmark_out_format=json --benchmark_repetitions=5   (one line)
//
// and compare two runs with compare.py (Debian's libbenchmark-tools:
// /usr/share/benchmark/compare.py benchmarks system.json hakmem.json).
#include <dlfcn.h>
#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "benchmark/benchmark.h"

#ifdef MICROBENCH_HAKMEM
#include "hakmem.h"
#endif

namespace {

// hakmem's 44 size classes (allocator/size_class.c, hak_class_bytes),
// copied so that the system build does not link hakmem; the hakmem build
// checks the copy against hak_class_size() before running anything.
constexpr size_t kClassSizes[] = {
    16,    32,    48,    64,    80,    96,    112,   128,   160,   192,   224,
    256,   320,   384,   448,   512,   640,   768,   896,   1024,  1280,  1536,
    1792,  2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,  10240,
    12288, 14336, 16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536,
};
constexpr int kNumClasses = sizeof kClassSizes / sizeof kClassSizes[0];

// Large requests (hakmem's page arena above 64 KiB).
constexpr size_t kLargeSizes[] = {128 << 10, 1 << 20};

// A few sizes for the batch and cross-thread benchmarks: tiny, mid, large.
constexpr size_t kSomeSizes[] = {16, 64, 256, 1024, 4096, 32768, 262144};

constexpr int kBatch = 1000;

void *Allocate(size_t n) {
  void *p = malloc(n);
  if (p == nullptr) {
    std::fprintf(stderr, "microbench: malloc(%zu) failed\n", n);
    std::abort();
  }
  return p;
}

void BM_MallocFree(benchmark::State &state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void *p = Allocate(n);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_BatchAllocFree(benchmark::State &state) {
  const size_t n = static_cast<size_t>(state.range(0));
  void *blocks[kBatch];
  for (auto _ : state) {
    for (int i = 0; i < kBatch; i++) blocks[i] = Allocate(n);
    benchmark::ClobberMemory();
    for (int i = 0; i < kBatch; i++) free(blocks[i]);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Single-producer/single-consumer ring of block pointers.  head is written
// by the producer only, tail by the consumer only.
class Ring {
 public:
  static constexpr size_t kSlots = 1024;  // a power of two

  // Producer: spins (then yields) while the ring is full.
  void Push(void *p) {
    const size_t h = head_.load(std::memory_order_relaxed);
    for (int spins = 0; h - tail_.load(std::memory_order_acquire) == kSlots; spins++)
      Wait(spins);
    slot_[h & (kSlots - 1)] = p;
    head_.store(h + 1, std::memory_order_release);
  }

  // Consumer: the next block, or nullptr if the ring is empty.
  void *Pop() {
    const size_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_.load(std::memory_order_acquire)) return nullptr;
    void *p = slot_[t & (kSlots - 1)];
    tail_.store(t + 1, std::memory_order_release);
    return p;
  }

  static void Wait(int spins) {
    if (spins < 64)
      __builtin_ia32_pause();
    else
      sched_yield();  // the other side may share this CPU
  }

 private:
  alignas(64) std::atomic<size_t> head_{0};
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) void *slot_[kSlots];
};

void BM_CrossThreadFree(benchmark::State &state) {
  const size_t n = static_cast<size_t>(state.range(0));
  static Ring ring;  // empty between runs: the consumer drains it
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    for (int spins = 0;;) {
      if (void *p = ring.Pop()) {
        free(p);
        spins = 0;
      } else if (done.load(std::memory_order_acquire)) {
        if (void *q = ring.Pop()) {  // pushed before done was set
          free(q);
          continue;
        }
        return;
      } else {
        Ring::Wait(spins++);
      }
    }
  });
  for (auto _ : state) {
    void *p = Allocate(n);
    static_cast<char *>(p)[0] = 1;
    ring.Push(p);
  }
  done.store(true, std::memory_order_release);
  consumer.join();
  state.SetItemsProcessed(state.iterations());
}

void BM_ReallocGrowth(benchmark::State &state) {
  constexpr size_t kFirst = 16, kLast = 1 << 20;
  int64_t reallocs = 0;
  for (auto _ : state) {
    char *p = static_cast<char *>(Allocate(kFirst));
    p[0] = 1;
    for (size_t n = kFirst * 2; n <= kLast; n *= 2) {
      char *q = static_cast<char *>(realloc(p, n));
      if (q == nullptr) {
        std::fprintf(stderr, "microbench: realloc(%zu) failed\n", n);
        std::abort();
      }
      q[n - 1] = 1;  // the new tail is really used
      p = q;
      reallocs++;
    }
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(reallocs);
}

void ClassSizes(benchmark::internal::Benchmark *b) {
  for (size_t n : kClassSizes) b->Arg(static_cast<int64_t>(n));
  for (size_t n : kLargeSizes) b->Arg(static_cast<int64_t>(n));
}

void SomeSizes(benchmark::internal::Benchmark *b) {
  for (size_t n : kSomeSizes) b->Arg(static_cast<int64_t>(n));
}

BENCHMARK(BM_MallocFree)->Apply(ClassSizes);
BENCHMARK(BM_BatchAllocFree)->Apply(SomeSizes);
// Real time: the consumer's work is on another thread.
BENCHMARK(BM_CrossThreadFree)->Apply(SomeSizes)->UseRealTime();
BENCHMARK(BM_ReallocGrowth);

// The allocator serving malloc, by the symbols it exports.
std::string AllocatorName() {
#ifdef MICROBENCH_HAKMEM
  return std::string("hakmem-") + hak_variant();
#else
  static const struct {
    const char *symbol, *name;
  } kPeers[] = {{"hak_variant", "hakmem"},
                {"mi_malloc", "mimalloc"},
                {"mallctl", "jemalloc"},
                {"tc_malloc", "tcmalloc"}};
  for (const auto &peer : kPeers)
    if (dlsym(RTLD_DEFAULT, peer.symbol) != nullptr) return peer.name;
  return "glibc";
#endif
}

}  // namespace

int main(int argc, char **argv) {
#ifdef MICROBENCH_HAKMEM
  for (int c = 0; c < kNumClasses; c++) {
    if (hak_class_size(c) != kClassSizes[c]) {
      std::fprintf(stderr, "microbench: class %d is %zu bytes in hakmem, %zu here: "
                   "update kClassSizes\n", c, hak_class_size(c), kClassSizes[c]);
      return 1;
    }
  }
  if (hak_class_size(kNumClasses) != 0) {
    std::fprintf(stderr, "microbench: hakmem has more than %d classes: update kClassSizes\n",
                 kNumClasses);
    return 1;
  }
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("allocator", AllocatorName());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
