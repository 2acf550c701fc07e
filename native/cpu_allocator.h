// The CPU allocator for large tensor blocks (cpu_allocator.cc): what the rest of native/ reads of
// it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace slm {

struct CpuBlockStats {
  bool enabled;      // installed as libtorch's CPU allocator (not with STAGED_LM_DEFAULT_MALLOC)
  size_t allocated;  // bytes of large blocks held by tensors
  size_t peakAllocated;   // their peak since the start or resetCpuBlockPeak()
  size_t reserved;        // bytes mapped: allocated + cached for reuse
  uint64_t hits, misses;  // large allocations served from the cache / by a new mapping
};

// Installs the allocator as libtorch's CPU allocator, once per process (every later call only
// reports). Returns whether it is installed.
bool installCpuBlockAllocator();
CpuBlockStats cpuBlockStats();
void resetCpuBlockPeak();
// Unmaps every cached block (emptyCache()).
void emptyCpuBlockCache();

}  // namespace slm
