// Fused cross-entropy over rows of logits, forward and backward (see cross_entropy.h).
//
// One block per row. Forward: each thread folds its share of the row into a running (max, Σ exp(x −
// max)) pair, one 16-byte load at a time where the row allows (the load's maximum first: one exp
// per value, at most one rescale per load) — one read of the row — and the block merges
// the pairs; thread 0 writes lse = max + log Σ, the row's loss and whether it counts. Backward:
// each thread writes (exp(x − lse) − [j = t]) · g / n for its share, computed in float32 and
// rounded once into the logits' type. The arithmetic is log-softmax's (PyTorch computes
// half-precision logits in float32 too); only the order of the float32 sums differs.
//
// SLM_KERNEL_EMULATION: compiled by a host compiler with test/kernels/simt.h supplying the CUDA
// built-ins (threads, barriers, shuffles, half types), the kernels alone, without the launchers —
// how the test suite runs this very source without a GPU.
#ifndef SLM_KERNEL_EMULATION
#include <climits>
#include <cstdint>

#include "cross_entropy.h"
#include "errors.h"
#endif
#include "convert.cuh"

namespace slm {
namespace kernels {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

// Σ exp(x − m) over the values seen, with m their maximum; m = −∞ for none. NaN propagates: a NaN
// value makes m or s NaN and the row's lse NaN, as log-softmax would.
struct MaxSum {
  float m;
  float s;
};

// Folds n values (one 16-byte load's worth) into a: their maximum first, so that the running sum
// is rescaled at most once per load and each value costs one exp — no branch per value.
template <int n>
__device__ __forceinline__ void fold(MaxSum& a, const float (&v)[n]) {
  float pm = v[0];
#pragma unroll
  for (int k = 1; k < n; k++) pm = (v[k] > pm || v[k] != v[k]) ? v[k] : pm;  // NaN wins
  if (pm != pm) {
    a = {NAN, NAN};
    return;
  }
  if (pm == -INFINITY) return;  // only −∞ (probability 0): nothing to add
  if (pm > a.m) {               // a.m = −∞ (nothing yet): s = 0·0; a.m NaN: stays NaN
    a.s *= expf(a.m - pm);
    a.m = pm;
  }
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < n; k++) sum += expf(v[k] - a.m);  // −∞ → 0; a.m NaN → NaN
  a.s += sum;
}

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  if (a.m != a.m || b.m != b.m) return {NAN, NAN};
  float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, a.s + b.s};  // 0, or NaN from a NaN value seen before any other
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

// The block's merged pair, in every thread.
__device__ MaxSum blockMerge(MaxSum v) {
  __shared__ float ms[kWarps], ss[kWarps];
  __shared__ MaxSum result;
  for (int offset = 16; offset > 0; offset >>= 1) {
    MaxSum o{__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset)};
    v = merge(v, o);
  }
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    ms[warp] = v.m;
    ss[warp] = v.s;
  }
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? MaxSum{ms[lane], ss[lane]} : MaxSum{-INFINITY, 0.0f};
    for (int offset = 16; offset > 0; offset >>= 1) {
      MaxSum o{__shfl_xor_sync(0xffffffffu, v.m, offset),
               __shfl_xor_sync(0xffffffffu, v.s, offset)};
      v = merge(v, o);
    }
    if (lane == 0) result = v;
  }
  __syncthreads();
  return result;
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads)
    crossEntropyForwardKernel(const T* __restrict__ logits, const int64_t* __restrict__ targets,
                              int64_t rows, int64_t cols, int64_t ignoreIndex,
                              float* __restrict__ stats) {
  const int64_t r = blockIdx.x;
  const T* row = logits + r * cols;
  MaxSum acc{-INFINITY, 0.0f};
  const auto* packs = reinterpret_cast<const Pack<T, kVec>*>(row);
  for (int64_t i = threadIdx.x; i < cols / kVec; i += kThreads) {
    Pack<T, kVec> p = packs[i];
    float v[kVec];
#pragma unroll
    for (int k = 0; k < kVec; k++) v[k] = toFloat(p.v[k]);
    fold(acc, v);
  }
  MaxSum all = blockMerge(acc);
  if (threadIdx.x == 0) {
    float lse = all.m + logf(all.s);  // all −∞: −∞ + log 0 = −∞
    int64_t t = targets[r];
    bool counted = t != ignoreIndex;
    float loss = !counted ? 0.0f : (t < 0 || t >= cols) ? NAN : lse - toFloat(row[t]);
    stats[r] = lse;
    stats[rows + r] = loss;
    stats[2 * rows + r] = counted ? 1.0f : 0.0f;
  }
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads)
    crossEntropyBackwardKernel(const T* __restrict__ logits, const int64_t* __restrict__ targets,
                               const float* __restrict__ lse, const float* __restrict__ gradLoss,
                               const float* __restrict__ count, int64_t cols, int64_t ignoreIndex,
                               T* __restrict__ grad) {
  const int64_t r = blockIdx.x;
  const int64_t t = targets[r];
  auto* out = reinterpret_cast<Pack<T, kVec>*>(grad + r * cols);
  if (t == ignoreIndex) {  // an ignored row's gradient is exactly 0, whatever its logits
    Pack<T, kVec> zero;
#pragma unroll
    for (int k = 0; k < kVec; k++) zero.v[k] = fromFloat<T>(0.0f);
    for (int64_t i = threadIdx.x; i < cols / kVec; i += kThreads) out[i] = zero;
    return;
  }
  // a target outside [0, cols) made the loss NaN; its row's gradient is NaN too, so that nothing
  // is learnt from it silently
  const float scale = t < 0 || t >= cols ? NAN : *gradLoss / *count;
  const float l = lse[r];
  const auto* in = reinterpret_cast<const Pack<T, kVec>*>(logits + r * cols);
  for (int64_t i = threadIdx.x; i < cols / kVec; i += kThreads) {
    Pack<T, kVec> p = in[i], q;
#pragma unroll
    for (int k = 0; k < kVec; k++) {
      float g = expf(toFloat(p.v[k]) - l) - (i * kVec + k == t ? 1.0f : 0.0f);
      q.v[k] = fromFloat<T>(g * scale);
    }
    out[i] = q;
  }
}

#ifndef SLM_KERNEL_EMULATION
template <typename T>
int vecFor(int64_t cols, const void* a, const void* b) {
  constexpr int kVec = 16 / sizeof(T);
  bool aligned = reinterpret_cast<uintptr_t>(a) % 16 == 0 &&
                 (b == nullptr || reinterpret_cast<uintptr_t>(b) % 16 == 0);
  return aligned && cols % kVec == 0 ? kVec : 1;
}

template <typename T>
cudaError_t forward(const void* logits, const int64_t* targets, int64_t rows, int64_t cols,
                    int64_t ignoreIndex, float* stats, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const T* x = static_cast<const T*>(logits);
  if (vecFor<T>(cols, logits, nullptr) == kVec) {
    crossEntropyForwardKernel<T, kVec><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, targets, rows, cols, ignoreIndex, stats);
  } else {
    crossEntropyForwardKernel<T, 1><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, targets, rows, cols, ignoreIndex, stats);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward(const void* logits, const int64_t* targets, const float* lse,
                     const float* gradLoss, const float* count, int64_t rows, int64_t cols,
                     int64_t ignoreIndex, void* gradLogits, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const T* x = static_cast<const T*>(logits);
  T* g = static_cast<T*>(gradLogits);
  if (vecFor<T>(cols, logits, gradLogits) == kVec) {
    crossEntropyBackwardKernel<T, kVec><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, targets, lse, gradLoss, count, cols, ignoreIndex, g);
  } else {
    crossEntropyBackwardKernel<T, 1><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, targets, lse, gradLoss, count, cols, ignoreIndex, g);
  }
  return cudaGetLastError();
}

#endif  // SLM_KERNEL_EMULATION
}  // namespace

#ifndef SLM_KERNEL_EMULATION
cudaError_t crossEntropyForward(const void* logits, LogitsType type, const int64_t* targets,
                                int64_t rows, int64_t cols, int64_t ignoreIndex, float* stats,
                                cudaStream_t stream) {
  if (rows <= 0 || rows > INT_MAX || cols <= 0) return cudaErrorInvalidValue;
  switch (type) {
    case LogitsType::Float32:
      return forward<float>(logits, targets, rows, cols, ignoreIndex, stats, stream);
    case LogitsType::Float16:
      return forward<__half>(logits, targets, rows, cols, ignoreIndex, stats, stream);
    case LogitsType::BFloat16:
      return forward<__nv_bfloat16>(logits, targets, rows, cols, ignoreIndex, stats, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t crossEntropyBackward(const void* logits, LogitsType type, const int64_t* targets,
                                 const float* lse, const float* gradLoss, const float* count,
                                 int64_t rows, int64_t cols, int64_t ignoreIndex, void* gradLogits,
                                 cudaStream_t stream) {
  if (rows <= 0 || rows > INT_MAX || cols <= 0) return cudaErrorInvalidValue;
  switch (type) {
    case LogitsType::Float32:
      return backward<float>(logits, targets, lse, gradLoss, count, rows, cols, ignoreIndex,
                             gradLogits, stream);
    case LogitsType::Float16:
      return backward<__half>(logits, targets, lse, gradLoss, count, rows, cols, ignoreIndex,
                              gradLogits, stream);
    case LogitsType::BFloat16:
      return backward<__nv_bfloat16>(logits, targets, lse, gradLoss, count, rows, cols, ignoreIndex,
                                     gradLogits, stream);
  }
  return cudaErrorInvalidValue;
}

const char* errorString(cudaError_t error) {
  return cudaGetErrorString(error);
}
#endif  // SLM_KERNEL_EMULATION

}  // namespace kernels
}  // namespace slm
