// The fused residual-add + LayerNorm kernels (add_layer_norm.cu): plain CUDA, no libtorch headers,
// launched by native/norm.cc with raw pointers on libtorch's current stream.
//
// A pre-LN transformer adds each branch's output to the residual stream and normalises the sum at
// once: a = h + y; z = LayerNorm(a)·w + b. Under bf16 autocast libtorch runs that as three kernels
// (the add, a float32 LayerNorm, the cast of its output to bf16 for the next matmul) and backward
// as about four (the cast back, LayerNorm's input gradient, its weight and bias gradients, the
// gradients' sum and the cast for y). Forward here reads h and y once and writes a and z (already
// in z's type); backward reads dz, a and the gradient reaching a from above once and writes the
// gradients of h and y — about half the memory traffic, at 124M ~12 GB of a step's ~90.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace slm {
namespace kernels {

enum class NormType { Float32, Float16, BFloat16 };

// The types of h (and a, w, b), y and z. Supported: all one type, or h float32 with y and z both
// float16 or both bfloat16 (autocast's residual stream and matmul outputs).
struct NormTypes {
  NormType h, y, z;
};

bool addLayerNormSupported(NormTypes types);

// The widest row these kernels take for a row of `cols` values (a multiple of 4); 0 if none.
int64_t addLayerNormMaxCols();

// rows × cols, row-major, contiguous, every pointer 16-byte aligned, cols a multiple of 4.
// a ← h + y (rounded to h's type); z ← (a − mean)·rstd·w + b (b may be null); mean, rstd: rows
// float32 (rstd = 1/√(var + eps), var the biased variance).
cudaError_t addLayerNormForward(NormTypes types, const void* h, const void* y, const void* w,
                                const void* b, int64_t rows, int64_t cols, float eps, void* a,
                                void* z, float* mean, float* rstd, cudaStream_t stream);

// The number of row blocks backward uses: `partial` holds 2 × cols float32 values per block.
int64_t addLayerNormBackwardBlocks(int64_t rows);

// dh ← dA + ∂z/∂a·dz (in h's type; dA may be null: no gradient reached a from elsewhere);
// dy ← the same rounded to y's type, where dy is not null (null: y has h's type, dh serves both);
// dw ← Σ dz·(a − mean)·rstd, db ← Σ dz over the rows (db may be null), in w's type. partial:
// addLayerNormBackwardBlocks(rows) × 2 × cols float32 scratch.
cudaError_t addLayerNormBackward(NormTypes types, const void* dz, const void* a, const void* dA,
                                 const float* mean, const float* rstd, const void* w, int64_t rows,
                                 int64_t cols, void* dh, void* dy, void* dw, void* db,
                                 float* partial, cudaStream_t stream);

}  // namespace kernels
}  // namespace slm
