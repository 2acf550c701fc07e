// libtorch's CPU allocator, replaced: tensor blocks of 1 MiB and more are mapped here and kept for
// reuse, apart from everything else; smaller ones come from libtorch's default (malloc).
//
// Why. A training step frees its activations, logits and gradients and then allocates the same
// sizes again. Through malloc, glibc serves such blocks with fresh mmap()s and unmaps them on free,
// so every step page-faults them in anew (the tiny preset at 8 × 128 tokens: 4.4× the step time on
// a 2-core CPU). Keeping them in glibc's heap instead (no mmap, no trimming: what the addon did
// before) mixes them with the small objects libtorch allocates for tensors and graphs; one that
// outlives its step (a loss kept to read later, even a one-element tensor) lands inside a freed
// block, which then no longer fits the next step's block, and the heap grows: 100 kept losses over
// 8 MiB logits held 136 MB more, where PyTorch holds nothing. Here the large blocks never share
// pages with small objects, and a freed block waits, by size, for the next allocation of (nearly)
// its size.
//
// Bound. Blocks mapped (in use + cached) never exceed twice the most that was ever in use at
// once: a request the cache cannot serve first unmaps cached blocks, largest first, until the new
// one fits under that. A repeating step settles well inside it (1.2× its peak for the tiny
// preset) and then maps nothing; emptyCache() returns the cached blocks at once.
//
// The malloc heap, left the blocks under 1 MiB, keeps them all (glibc's mmap threshold at 1 MiB)
// and is not trimmed: a step's mid-size tensors are reused without page faults, and a hole that a
// kept small object pins is under 1 MiB. STAGED_LM_DEFAULT_MALLOC=1 (set before the addon loads)
// keeps libtorch's default allocator and glibc's default settings instead.
#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace slm {
namespace {

// Below this, malloc: its heap suits small blocks, and mapping each would cost a system call and
// a memory map entry (the kernel allows ~65k per process) for little saved.
constexpr size_t kLargeBytes = size_t(1) << 20;
// A cached block up to this fraction larger than asked for serves the request.
constexpr size_t kSlackDivisor = 8;
// Mapped bytes stay within this many times the most ever in use at once. One time is too few: a
// step's blocks of one size are in use while a later request needs that size, so what a repeating
// step reuses is more than its peak (the tiny preset at 8 × 128 tokens: 995 MiB of blocks for an
// 835 MiB peak); held to the peak, it unmapped blocks the next step mapped and faulted in again
// (2× the step time).
constexpr size_t kBoundFactor = 2;

using Block = std::pair<void*, size_t>;  // address, mapped bytes

struct Cache {
  std::mutex mu;
  std::unordered_map<void*, size_t> inUse;
  std::multimap<size_t, void*> cached;  // by size
  size_t allocated = 0;                 // bytes in use
  size_t cachedBytes = 0;
  size_t highWater = 0;  // the most ever in use at once, for the bound (never reset)
  size_t peak = 0;       // the same, reset by resetPeakMemory()
  uint64_t hits = 0, misses = 0;
  bool installed = false;
};

// Never destroyed: tensors are still freed while static destructors run at exit.
Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

size_t pageRounded(size_t n) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

void unmap(const std::vector<Block>& blocks) {
  for (const Block& b : blocks) munmap(b.first, b.second);
}

// Under the lock.
// Under the lock: counts `size` more bytes in use (a block taken from the cache, or one about to
// be mapped: counted before the lock is released, so that threads missing at once each see the
// others' blocks when they evict).
void countInUse(Cache& c, size_t size) {
  c.allocated += size;
  c.highWater = std::max(c.highWater, c.allocated);
  c.peak = std::max(c.peak, c.allocated);
}

// Under the lock: takes cached blocks out, largest first, until `needed` more bytes keep what is
// mapped within `limit`; the caller unmaps them after unlocking.
void evictFor(Cache& c, size_t needed, size_t limit, std::vector<Block>& out) {
  while (!c.cached.empty() && c.allocated + c.cachedBytes + needed > limit) {
    auto last = std::prev(c.cached.end());
    out.emplace_back(last->second, last->first);
    c.cachedBytes -= last->first;
    c.cached.erase(last);
  }
}

std::vector<Block> takeAllCached(Cache& c) {
  std::vector<Block> out;
  for (const auto& [size, p] : c.cached) out.emplace_back(p, size);
  c.cached.clear();
  c.cachedBytes = 0;
  return out;
}

// The deleter of every DataPtr this allocator hands out, and its raw_deleter.
void freeBlock(void* p) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.inUse.find(p);
    if (it != c.inUse.end()) {
      size_t size = it->second;
      c.inUse.erase(it);
      c.allocated -= size;
      c.cached.emplace(size, p);
      c.cachedBytes += size;
      return;
    }
  }
  // a small block that raw_allocate() took from the default allocator
  c10::GetDefaultCPUAllocator()->raw_deleter()(p);
}

// A new block of `size` bytes, already counted in use; nullptr (and uncounted) when the system
// has no memory for it.
void* mapBlock(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    emptyCpuBlockCache();  // what the cache holds may be what is missing
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (p == MAP_FAILED) {
    c.allocated -= size;
    return nullptr;
  }
  c.inUse.emplace(p, size);
  return p;
}

c10::DataPtr allocateBlock(size_t n) {
  if (n < kLargeBytes) return c10::GetDefaultCPUAllocator()->allocate(n);
  size_t size = pageRounded(n);
  Cache& c = cache();
  void* p = nullptr;
  std::vector<Block> evicted;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.cached.lower_bound(size);
    if (it != c.cached.end() && it->first - size <= size / kSlackDivisor) {
      p = it->second;
      size = it->first;
      c.cached.erase(it);
      c.cachedBytes -= size;
      c.hits++;
      c.inUse.emplace(p, size);
      countInUse(c, size);
    } else {
      c.misses++;
      // the mark this block may raise included
      evictFor(c, size, kBoundFactor * std::max(c.highWater, c.allocated + size), evicted);
      countInUse(c, size);  // mapped below, outside the lock
    }
  }
  unmap(evicted);
  if (p == nullptr) p = mapBlock(size);
  // out of memory: the default allocator fails with libtorch's own message
  if (p == nullptr) return c10::GetDefaultCPUAllocator()->allocate(n);
  return {p, p, &freeBlock, c10::Device(c10::DeviceType::CPU)};
}

// No `override` marks: libtorch 1.13 declares allocate() const, 2.3 and later non-const and add a
// pure copy_data(). Both allocate() signatures are defined, so whichever the headers declare is
// overridden and the other is a plain overload; copy_data is a plain member before 2.3.
struct BlockAllocator final : public c10::Allocator {
  c10::DataPtr allocate(size_t n) const { return allocateBlock(n); }
  c10::DataPtr allocate(size_t n) { return allocateBlock(n); }
  c10::DeleterFnPtr raw_deleter() const { return &freeBlock; }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    std::memcpy(dest, src, count);
  }
};

// glibc's heap for what stays in it (see the top), grown 256 MiB at a time (address space: pages
// count only once touched). Setting these also ends glibc's adaptive mmap threshold, which would
// otherwise move up to 32 MiB as blocks are freed.
void tuneMallocHeap() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kLargeBytes));
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);
#endif
}

}  // namespace

bool installCpuBlockAllocator() {
  static const bool installed = [] {
    const char* off = std::getenv("STAGED_LM_DEFAULT_MALLOC");
    if (off != nullptr && *off != '\0' && std::strcmp(off, "0") != 0) return false;
    // Only over libtorch's own: another allocator already installed (a second copy of this addon,
    // another library's) keeps its place, since blocks it handed out raw are freed through
    // whichever allocator is current.
    if (c10::GetCPUAllocator() != c10::GetDefaultCPUAllocator()) return false;
    // never destroyed: every CPU storage keeps a pointer to its allocator
    auto* allocator = new BlockAllocator();
    c10::SetCPUAllocator(allocator, /*priority=*/0);  // replaces the default (also priority 0)
    bool ok = c10::GetCPUAllocator() == allocator;
    if (ok) tuneMallocHeap();
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.installed = ok;
    return ok;
  }();
  return installed;
}

CpuBlockStats cpuBlockStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.installed, c.allocated, c.peak, c.allocated + c.cachedBytes, c.hits, c.misses};
}

void resetCpuBlockPeak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.peak = c.allocated;
}

void emptyCpuBlockCache() {
  Cache& c = cache();
  std::vector<Block> blocks;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    blocks = takeAllCached(c);
  }
  unmap(blocks);
#if defined(__GLIBC__)
  malloc_trim(0);  // and the free pages of the heap, which is otherwise never trimmed
#endif
}

}  // namespace slm
