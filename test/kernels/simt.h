// A CPU stand-in for the CUDA built-ins our kernels use, so that their source (compiled with
// SLM_KERNEL_EMULATION) runs on a machine without a GPU: each block's threads are real threads,
// __syncthreads is a barrier over the block, __shfl_xor_sync exchanges through memory behind a
// barrier over the warp, __shared__ variables are statics (one block runs at a time), and the
// half types convert with round-to-nearest-even like the device's __float2*_rn. It checks the
// kernels' logic (indexing, reductions, vector loads, NaN and ±∞ handling), not their speed or
// the GPU's memory model.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __launch_bounds__(n)
#define __shared__ static

struct SimtIndex {
  unsigned x = 0;
};
inline thread_local SimtIndex threadIdx;
inline thread_local SimtIndex blockIdx;
inline thread_local SimtIndex blockDim;
inline thread_local SimtIndex gridDim;

namespace simt {
inline std::unique_ptr<std::barrier<>> block;
inline std::vector<std::unique_ptr<std::barrier<>>> warps;
inline std::vector<float> exchange;

// Runs body(blockIdx, threadIdx) for every thread of `grid` blocks of `threads`, block by block.
template <typename Body>
void launch(unsigned grid, unsigned threads, Body body) {
  block = std::make_unique<std::barrier<>>(threads);
  warps.clear();
  for (unsigned w = 0; w < (threads + 31) / 32; w++)
    warps.push_back(std::make_unique<std::barrier<>>(32));
  exchange.assign(threads, 0.0f);
  for (unsigned b = 0; b < grid; b++) {
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; t++)
      pool.emplace_back([=] {
        blockIdx.x = b;
        threadIdx.x = t;
        blockDim.x = threads;
        gridDim.x = grid;
        body();
      });
    for (auto& th : pool) th.join();
  }
}
}  // namespace simt

// 1/√x (the device's is within 2 ulp of this)
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}

inline void __syncthreads() {
  simt::block->arrive_and_wait();
}

// Every lane of the calling warp must call it (as on the device with a full mask).
inline float __shfl_xor_sync(unsigned /*mask*/, float v, int laneMask) {
  unsigned t = threadIdx.x, warp = t / 32;
  simt::exchange[t] = v;
  simt::warps[warp]->arrive_and_wait();
  float other = simt::exchange[warp * 32 + ((t % 32) ^ static_cast<unsigned>(laneMask))];
  simt::warps[warp]->arrive_and_wait();
  return other;
}

struct __nv_bfloat16 {
  uint16_t bits;
};
inline float __bfloat162float(__nv_bfloat16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return {0x7fc0};
  u += 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<uint16_t>(u >> 16)};
}

struct __half {
  _Float16 v;
};
inline float __half2float(__half h) {
  return static_cast<float>(h.v);
}
inline __half __float2half_rn(float f) {
  return {static_cast<_Float16>(f)};
}
