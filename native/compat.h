// Every difference between the libtorch versions we build against (Debian's 1.13 on CPU hosts,
// PyTorch 2.x on GPU hosts) lives here, so the rest of native/ is written once.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/version.h>

#define STAGED_LM_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||            \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#include <ATen/autocast_mode.h>

#if STAGED_LM_TORCH_AT_LEAST(2, 0)
#include <ATen/ops/scaled_dot_product_attention.h>
#else
#include <ATen/ops/_scaled_dot_product_attention.h>
#endif

namespace compat {

// softmax(q·kᵀ/√d + mask)·v with an optional causal mask. 2.x dispatches to the flash /
// memory-efficient kernels; 1.13 has only the private math implementation (same result).
inline at::Tensor scaledDotProductAttention(const at::Tensor& q, const at::Tensor& k,
                                            const at::Tensor& v,
                                            const c10::optional<at::Tensor>& mask, double dropoutP,
                                            bool isCausal) {
#if STAGED_LM_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, mask, dropoutP, isCausal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, mask, dropoutP,
                                                       /*need_attn_weights=*/false, isCausal));
#endif
}

// bf16/fp16 autocast on CUDA (thread-local): the API became per-device-type in 2.4.
inline void setCudaAutocast(bool enabled, at::ScalarType dtype) {
#if STAGED_LM_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
  at::autocast::set_enabled(enabled);
  at::autocast::set_autocast_gpu_dtype(dtype);
#endif
}

inline bool isCudaAutocastEnabled() {
#if STAGED_LM_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

// The dtype autocast casts matmul inputs to on CUDA.
inline at::ScalarType cudaAutocastDtype() {
#if STAGED_LM_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

constexpr bool kHasFlashAttention = STAGED_LM_TORCH_AT_LEAST(2, 0);

}  // namespace compat
