// The fused cross-entropy kernels (cross_entropy.cu): plain CUDA, no libtorch headers, so nvcc
// compiles them quickly and independently of the libtorch release; native/loss.cc calls them with
// raw pointers on libtorch's current stream.
//
// Forward reads each row of logits once (an online max and sum of exponentials) and writes three
// float32 values per row: log Σ exp (the row's log-partition), the row's loss (that minus the
// target's logit; 0 for an ignored target, NaN for a target outside [0, cols) — and NaN for its
// row's gradient too), and whether the row counts (1 or 0). Backward reads each row once more and
// writes (exp(x − lse) − onehot(t)) · g / n straight into the logits' dtype — the whole loss in
// about two passes over the logits where log-softmax + NLL in float32 take five or more.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace slm {
namespace kernels {

enum class LogitsType { Float32, Float16, BFloat16 };

// logits: rows × cols, row-major and contiguous. stats: 3 × rows float32 (row 0: lse, 1: loss,
// 2: counted).
cudaError_t crossEntropyForward(const void* logits, LogitsType type, const int64_t* targets,
                                int64_t rows, int64_t cols, int64_t ignoreIndex, float* stats,
                                cudaStream_t stream);

// gradLogits (same shape and type as logits) ← (softmax(x) − onehot(t)) · (*gradLoss / *count)
// for counted rows, 0 for ignored ones. lse: the forward's row 0; gradLoss, count: device scalars.
cudaError_t crossEntropyBackward(const void* logits, LogitsType type, const int64_t* targets,
                                 const float* lse, const float* gradLoss, const float* count,
                                 int64_t rows, int64_t cols, int64_t ignoreIndex, void* gradLogits,
                                 cudaStream_t stream);

}  // namespace kernels
}  // namespace slm
