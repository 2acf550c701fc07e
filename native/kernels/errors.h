// The CUDA runtime's message for an error one of our kernel launchers returned (defined in
// cross_entropy.cu), so that the glue in native/ needs no CUDA runtime header of its own.
#pragma once
#include <cuda_runtime_api.h>

namespace slm {
namespace kernels {

const char* errorString(cudaError_t error);

}  // namespace kernels
}  // namespace slm
