// What a CUDA-graph-captured training step needs from the native layer beyond ordinary ops:
// the fused AdamW with its learning rate read from a device tensor (a graph replays kernels with
// the arguments they were captured with, so a changing rate must live in memory).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace slm {

// True when this build can capture and replay CUDA graphs (a CUDA libtorch >= 2.4 whose graph
// headers compiled at configure time).
bool cudaGraphsAvailable();

// The fused AdamW (bias-corrected) with lr taken from the float32 scalar `lr` on the parameters'
// device, and the gradients divided by gradScale first when given (see adamwStep); nothing is
// updated where foundInf (a float32 scalar) holds 1. Returns false where this build has no such
// kernel (then nothing was done).
bool adamwFusedDeviceLr(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads,
                        std::vector<at::Tensor>& m, std::vector<at::Tensor>& v,
                        const at::Tensor& step, const at::Tensor& lr,
                        const c10::optional<at::Tensor>& gradScale,
                        const c10::optional<at::Tensor>& foundInf, double beta1, double beta2,
                        double weightDecay, double eps);

}  // namespace slm
