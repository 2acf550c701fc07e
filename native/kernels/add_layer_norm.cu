// Fused residual add + LayerNorm, forward and backward (see add_layer_norm.h).
//
// A row of `cols` values is spread over one block: thread t owns the 4-value packs at columns
// (k·T + t)·4 for k < K, so a row of up to 4·T·K values lives in registers — each value is read
// from memory once per pass, and the mean and then the variance (two passes over the registers:
// no cancellation from E[x²] − E[x]²) are block sums. Forward: one block per row. Backward: a
// fixed number of blocks each takes every G-th row, so each thread keeps its columns' running
// Σ dz·x̂ and Σ dz in registers across its rows; the blocks' sums go to a scratch buffer that a
// second kernel adds up, in a fixed order (the result does not depend on scheduling).
//
// The arithmetic is PyTorch's, in float32: a is rounded to h's type before it is normalised (it is
// what autograd would save), var is the biased variance, rstd = 1/√(var + eps), and
// ∂L/∂a = dA + rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dz·w, x̂ = (a − mean)·rstd.
//
// SLM_KERNEL_EMULATION: compiled by a host compiler with test/kernels/simt.h, the kernels alone
// (see cross_entropy.cu).
#ifndef SLM_KERNEL_EMULATION
#include <climits>
#include <cstdint>

#include "add_layer_norm.h"
#endif
#include "convert.cuh"

namespace slm {
namespace kernels {
namespace {

constexpr int kPack = 4;               // values per load: 16 bytes of float32, 8 of halves
constexpr int kMaxThreads = 1024;      // per block
constexpr int kBackwardBlocks = 1024;  // at most; fewer for fewer rows
constexpr int kMaxPacksPerThread = 4;  // K ≤ 4: rows up to 4·1024·4 = 16384 values

// The sum of v over the block, in every thread. Two barriers: the partial sums' slots are written
// again only after every thread has read the previous result (callers may loop).
template <int n>
__device__ __forceinline__ void blockSum(float (&v)[n]) {
  __shared__ float partial[n][32];
  __shared__ float result[n];
#pragma unroll
  for (int i = 0; i < n; i++)
    for (int offset = 16; offset > 0; offset >>= 1)
      v[i] += __shfl_xor_sync(0xffffffffu, v[i], offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < n; i++) partial[i][warp] = v[i];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int i = 0; i < n; i++) {
      float s = lane < warps ? partial[i][lane] : 0.0f;
      for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
      if (lane == 0) result[i] = s;
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < n; i++) v[i] = result[i];
}

// The first column of this thread's k-th pack of a row.
__device__ __forceinline__ int64_t packColumn(int k) {
  return (static_cast<int64_t>(k) * blockDim.x + threadIdx.x) * kPack;
}

template <typename T>
__device__ __forceinline__ void load(const T* p, float (&out)[kPack]) {
  Pack<T, kPack> q = *reinterpret_cast<const Pack<T, kPack>*>(p);
#pragma unroll
  for (int j = 0; j < kPack; j++) out[j] = toFloat(q.v[j]);
}

template <typename T>
__device__ __forceinline__ void store(T* p, const float (&in)[kPack]) {
  Pack<T, kPack> q;
#pragma unroll
  for (int j = 0; j < kPack; j++) q.v[j] = fromFloat<T>(in[j]);
  *reinterpret_cast<Pack<T, kPack>*>(p) = q;
}

// Th: h, a, w, b; Ty: y; Tz: z. K: packs per thread. blockDim.x: a multiple of 32, ≥ cols/(4K).
template <typename Th, typename Ty, typename Tz, int K>
__global__ void __launch_bounds__(kMaxThreads)
    addLayerNormForwardKernel(const Th* __restrict__ h, const Ty* __restrict__ y,
                              const Th* __restrict__ w, const Th* __restrict__ b, int64_t cols,
                              float eps, Th* __restrict__ a, Tz* __restrict__ z,
                              float* __restrict__ mean, float* __restrict__ rstd) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * cols;
  float v[K][kPack];
  float sum[1] = {0.0f};
#pragma unroll
  for (int k = 0; k < K; k++) {
    const int64_t c = packColumn(k);
    if (c < cols) {
      float hv[kPack], yv[kPack];
      load(h + row + c, hv);
      load(y + row + c, yv);
#pragma unroll
      for (int j = 0; j < kPack; j++) {
        // rounded to h's type first: what is stored is what gets normalised
        v[k][j] = toFloat(fromFloat<Th>(hv[j] + yv[j]));
        sum[0] += v[k][j];
      }
      store(a + row + c, v[k]);
    }
  }
  blockSum(sum);
  const float mu = sum[0] / static_cast<float>(cols);
  float sq[1] = {0.0f};
#pragma unroll
  for (int k = 0; k < K; k++) {
    const int64_t c = packColumn(k);
    if (c < cols) {
#pragma unroll
      for (int j = 0; j < kPack; j++) sq[0] += (v[k][j] - mu) * (v[k][j] - mu);
    }
  }
  blockSum(sq);
  const float rs = rsqrtf(sq[0] / static_cast<float>(cols) + eps);
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = mu;
    rstd[blockIdx.x] = rs;
  }
#pragma unroll
  for (int k = 0; k < K; k++) {
    const int64_t c = packColumn(k);
    if (c < cols) {
      float wv[kPack], bv[kPack] = {0.0f, 0.0f, 0.0f, 0.0f}, out[kPack];
      load(w + c, wv);
      if (b != nullptr) load(b + c, bv);
#pragma unroll
      for (int j = 0; j < kPack; j++) out[j] = (v[k][j] - mu) * rs * wv[j] + bv[j];
      store(z + row + c, out);
    }
  }
}

// Rows blockIdx.x, blockIdx.x + gridDim.x, …; partial[blockIdx.x] ← this block's Σ dz·x̂ (first
// cols values) and Σ dz (next cols) for every column.
template <typename Th, typename Ty, typename Tz, int K>
__global__ void __launch_bounds__(kMaxThreads)
    addLayerNormBackwardKernel(const Tz* __restrict__ dz, const Th* __restrict__ a,
                               const Th* __restrict__ dA, const float* __restrict__ mean,
                               const float* __restrict__ rstd, const Th* __restrict__ w,
                               int64_t rows, int64_t cols, Th* __restrict__ dh, Ty* __restrict__ dy,
                               float* __restrict__ partial) {
  float wv[K][kPack], accW[K][kPack], accB[K][kPack];
#pragma unroll
  for (int k = 0; k < K; k++) {
    const int64_t c = packColumn(k);
    if (c < cols) load(w + c, wv[k]);
#pragma unroll
    for (int j = 0; j < kPack; j++) accW[k][j] = accB[k][j] = 0.0f;
  }
  const float invCols = 1.0f / static_cast<float>(cols);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t row = r * cols;
    const float mu = mean[r], rs = rstd[r];
    float xhat[K][kPack], g[K][kPack];
    float sums[2] = {0.0f, 0.0f};  // Σ g, Σ g·x̂
#pragma unroll
    for (int k = 0; k < K; k++) {
      const int64_t c = packColumn(k);
      if (c < cols) {
        float av[kPack], dzv[kPack];
        load(a + row + c, av);
        load(dz + row + c, dzv);
#pragma unroll
        for (int j = 0; j < kPack; j++) {
          xhat[k][j] = (av[j] - mu) * rs;
          g[k][j] = dzv[j] * wv[k][j];
          sums[0] += g[k][j];
          sums[1] += g[k][j] * xhat[k][j];
          accW[k][j] += dzv[j] * xhat[k][j];
          accB[k][j] += dzv[j];
        }
      }
    }
    blockSum(sums);
    const float meanG = sums[0] * invCols, meanGX = sums[1] * invCols;
#pragma unroll
    for (int k = 0; k < K; k++) {
      const int64_t c = packColumn(k);
      if (c < cols) {
        float out[kPack], above[kPack] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (dA != nullptr) load(dA + row + c, above);
#pragma unroll
        for (int j = 0; j < kPack; j++)
          out[j] = above[j] + rs * (g[k][j] - meanG - xhat[k][j] * meanGX);
        store(dh + row + c, out);
        if (dy != nullptr) store(dy + row + c, out);
      }
    }
  }
  float* mine = partial + static_cast<int64_t>(blockIdx.x) * 2 * cols;
#pragma unroll
  for (int k = 0; k < K; k++) {
    const int64_t c = packColumn(k);
    if (c < cols) {
#pragma unroll
      for (int j = 0; j < kPack; j++) {
        mine[c + j] = accW[k][j];
        mine[cols + c + j] = accB[k][j];
      }
    }
  }
}

// out[i] ← Σ over `blocks` rows of partial[·][i] for i < 2·cols (dw then db; db may be null).
// 1024 threads as 32 columns × 32 row groups; the row groups' sums are added in a fixed order.
template <typename Tw>
__global__ void __launch_bounds__(1024)
    addLayerNormColumnSumKernel(const float* __restrict__ partial, int64_t blocks, int64_t cols,
                                Tw* __restrict__ dw, Tw* __restrict__ db) {
  __shared__ float sums[32][33];
  const int lane = threadIdx.x % 32, group = threadIdx.x / 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * 32 + lane;
  float s = 0.0f;
  if (i < 2 * cols)
    for (int64_t r = group; r < blocks; r += 32) s += partial[r * 2 * cols + i];
  sums[group][lane] = s;
  __syncthreads();
  if (group == 0 && i < 2 * cols) {
    float total = 0.0f;
    for (int g = 0; g < 32; g++) total += sums[g][lane];
    if (i < cols)
      dw[i] = fromFloat<Tw>(total);
    else if (db != nullptr)
      db[i - cols] = fromFloat<Tw>(total);
  }
}

// K packs per thread and T threads (a multiple of 32) for a row of `cols` values: one pack each
// while a block of 1024 threads covers the row, more beyond. (Beyond 8192 columns K = 4 needs
// more registers than 1024 threads have: it spills, slower but right.)
struct Shape {
  int packsPerThread;
  int threads;
};

inline Shape shapeFor(int64_t cols) {
  int64_t packs = cols / kPack;
  int k = 1;
  while (k < kMaxPacksPerThread && packs > static_cast<int64_t>(k) * kMaxThreads) k *= 2;
  int64_t threads = (packs + k - 1) / k;
  threads = ((threads + 31) / 32) * 32;
  return {k, static_cast<int>(threads)};
}

#ifndef SLM_KERNEL_EMULATION

template <typename Th, typename Ty, typename Tz>
cudaError_t forward(const void* h, const void* y, const void* w, const void* b, int64_t rows,
                    int64_t cols, float eps, void* a, void* z, float* mean, float* rstd,
                    cudaStream_t stream) {
  Shape s = shapeFor(cols);
  auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(rows), s.threads, 0, stream>>>(
        static_cast<const Th*>(h), static_cast<const Ty*>(y), static_cast<const Th*>(w),
        static_cast<const Th*>(b), cols, eps, static_cast<Th*>(a), static_cast<Tz*>(z), mean, rstd);
  };
  switch (s.packsPerThread) {
    case 1: launch(addLayerNormForwardKernel<Th, Ty, Tz, 1>); break;
    case 2: launch(addLayerNormForwardKernel<Th, Ty, Tz, 2>); break;
    default: launch(addLayerNormForwardKernel<Th, Ty, Tz, 4>); break;
  }
  return cudaGetLastError();
}

template <typename Th, typename Ty, typename Tz>
cudaError_t backward(const void* dz, const void* a, const void* dA, const float* mean,
                     const float* rstd, const void* w, int64_t rows, int64_t cols, void* dh,
                     void* dy, void* dw, void* db, float* partial, cudaStream_t stream) {
  Shape s = shapeFor(cols);
  const int64_t blocks = addLayerNormBackwardBlocks(rows);
  auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(blocks), s.threads, 0, stream>>>(
        static_cast<const Tz*>(dz), static_cast<const Th*>(a), static_cast<const Th*>(dA), mean,
        rstd, static_cast<const Th*>(w), rows, cols, static_cast<Th*>(dh), static_cast<Ty*>(dy),
        partial);
  };
  switch (s.packsPerThread) {
    case 1: launch(addLayerNormBackwardKernel<Th, Ty, Tz, 1>); break;
    case 2: launch(addLayerNormBackwardKernel<Th, Ty, Tz, 2>); break;
    default: launch(addLayerNormBackwardKernel<Th, Ty, Tz, 4>); break;
  }
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return error;
  addLayerNormColumnSumKernel<Th><<<static_cast<unsigned>((2 * cols + 31) / 32), 1024, 0, stream>>>(
      partial, blocks, cols, static_cast<Th*>(dw), static_cast<Th*>(db));
  return cudaGetLastError();
}

// Calls fn<Th, Ty, Tz>() for a supported combination of types.
template <typename Fn>
cudaError_t dispatch(NormTypes t, Fn fn) {
  using F = float;
  using H = __half;
  using B = __nv_bfloat16;
  if (t.h == NormType::Float32) {
    if (t.y == NormType::Float32 && t.z == NormType::Float32) return fn(F{}, F{}, F{});
    if (t.y == NormType::BFloat16 && t.z == NormType::BFloat16) return fn(F{}, B{}, B{});
    if (t.y == NormType::Float16 && t.z == NormType::Float16) return fn(F{}, H{}, H{});
  } else if (t.y == t.h && t.z == t.h) {
    if (t.h == NormType::BFloat16) return fn(B{}, B{}, B{});
    return fn(H{}, H{}, H{});
  }
  return cudaErrorInvalidValue;
}
#endif  // SLM_KERNEL_EMULATION

}  // namespace

#ifndef SLM_KERNEL_EMULATION
bool addLayerNormSupported(NormTypes t) {
  return dispatch(t, [](auto, auto, auto) { return cudaSuccess; }) == cudaSuccess;
}

int64_t addLayerNormMaxCols() {
  return static_cast<int64_t>(kPack) * kMaxThreads * kMaxPacksPerThread;
}

int64_t addLayerNormBackwardBlocks(int64_t rows) {
  return rows < kBackwardBlocks ? rows : kBackwardBlocks;
}

cudaError_t addLayerNormForward(NormTypes types, const void* h, const void* y, const void* w,
                                const void* b, int64_t rows, int64_t cols, float eps, void* a,
                                void* z, float* mean, float* rstd, cudaStream_t stream) {
  if (rows <= 0 || rows > INT_MAX || cols <= 0 || cols % kPack != 0 || cols > addLayerNormMaxCols())
    return cudaErrorInvalidValue;
  return dispatch(types, [&](auto th, auto ty, auto tz) {
    return forward<decltype(th), decltype(ty), decltype(tz)>(h, y, w, b, rows, cols, eps, a, z,
                                                             mean, rstd, stream);
  });
}

cudaError_t addLayerNormBackward(NormTypes types, const void* dz, const void* a, const void* dA,
                                 const float* mean, const float* rstd, const void* w, int64_t rows,
                                 int64_t cols, void* dh, void* dy, void* dw, void* db,
                                 float* partial, cudaStream_t stream) {
  if (rows <= 0 || rows > INT_MAX || cols <= 0 || cols % kPack != 0 || cols > addLayerNormMaxCols())
    return cudaErrorInvalidValue;
  return dispatch(types, [&](auto th, auto ty, auto tz) {
    return backward<decltype(th), decltype(ty), decltype(tz)>(dz, a, dA, mean, rstd, w, rows, cols,
                                                              dh, dy, dw, db, partial, stream);
  });
}
#endif  // SLM_KERNEL_EMULATION

}  // namespace kernels
}  // namespace slm
