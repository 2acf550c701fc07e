// What our kernels share: float conversions of the element types (float32 arithmetic, one rounding
// on the way out, as PyTorch's half-precision kernels do) and the packs that vector loads read.
// Compiled by nvcc, or under SLM_KERNEL_EMULATION by a host compiler with test/kernels/simt.h.
#pragma once
#ifndef SLM_KERNEL_EMULATION
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace slm {
namespace kernels {

template <typename T>
__device__ __forceinline__ float toFloat(T v);
template <>
__device__ __forceinline__ float toFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float toFloat<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float toFloat<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ float fromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half fromFloat<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// n values of T read or written as one load (n · sizeof(T) bytes: at most 16, aligned to that).
template <typename T, int n>
struct alignas(sizeof(T) * n) Pack {
  T v[n];
};

}  // namespace kernels
}  // namespace slm
