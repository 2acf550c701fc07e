// Runs native/kernels/cross_entropy.cu's kernels on the CPU (simt.h) for one problem read from
// stdin, for test/nn/fused-cross-entropy.test.ts:
//   in:  dtype(float32|float16|bfloat16) rows cols ignoreIndex g path(vector|scalar)
//        rows targets, then rows×cols logits
//   out: three lines, "x …" (the logits as rounded to dtype), "stats …" (lse, loss, counted per
//        row), "grad …" (the gradient for an upstream g, count = Σ counted as loss.cc passes it)
#define SLM_KERNEL_EMULATION 1
#include "simt.h"
// clang-format off: the kernels see simt.h's built-ins
#include "../../native/kernels/cross_entropy.cu"
// clang-format on

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

using slm::kernels::kThreads;

template <typename T>
T* alignedArray(size_t n) {
  return static_cast<T*>(std::aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64));
}

template <typename T>
int run(int64_t rows, int64_t cols, int64_t ignoreIndex, float g, bool vector) {
  std::vector<int64_t> targets(rows);
  for (auto& t : targets) std::cin >> t;
  T* x = alignedArray<T>(rows * cols);
  T* grad = alignedArray<T>(rows * cols);
  std::vector<float> stats(3 * rows, -12345.0f);
  for (int64_t i = 0; i < rows * cols; i++) {
    std::string v;  // strtof reads "inf", "-inf" and "nan", which operator>> refuses
    std::cin >> v;
    x[i] = slm::kernels::fromFloat<T>(std::strtof(v.c_str(), nullptr));
  }
  if (!std::cin) {
    std::cerr << "input ended early\n";
    return 2;
  }
  constexpr int kVec = 16 / sizeof(T);
  // what the launcher checks before taking the vector path (a GPU faults on a misaligned 16-byte
  // load where a CPU does not, so the emulation must not rely on it)
  if (vector && (cols % kVec != 0 || reinterpret_cast<uintptr_t>(x) % 16 != 0 ||
                 reinterpret_cast<uintptr_t>(grad) % 16 != 0)) {
    std::cerr << "the vector path needs cols % " << kVec << " == 0 and 16-byte aligned rows\n";
    return 2;
  }
  simt::launch(static_cast<unsigned>(rows), kThreads, [&] {
    if (vector)
      slm::kernels::crossEntropyForwardKernel<T, kVec>(x, targets.data(), rows, cols, ignoreIndex,
                                                       stats.data());
    else
      slm::kernels::crossEntropyForwardKernel<T, 1>(x, targets.data(), rows, cols, ignoreIndex,
                                                    stats.data());
  });
  float count = 0;
  for (int64_t r = 0; r < rows; r++) count += stats[2 * rows + r];
  simt::launch(static_cast<unsigned>(rows), kThreads, [&] {
    if (vector)
      slm::kernels::crossEntropyBackwardKernel<T, kVec>(x, targets.data(), stats.data(), &g, &count,
                                                        cols, ignoreIndex, grad);
    else
      slm::kernels::crossEntropyBackwardKernel<T, 1>(x, targets.data(), stats.data(), &g, &count,
                                                     cols, ignoreIndex, grad);
  });
  auto line = [](const char* name, int64_t n, auto at) {
    std::printf("%s", name);
    for (int64_t i = 0; i < n; i++) std::printf(" %.9g", at(i));
    std::printf("\n");
  };
  line("x", rows * cols, [&](int64_t i) { return slm::kernels::toFloat(x[i]); });
  line("stats", 3 * rows, [&](int64_t i) { return stats[i]; });
  line("grad", rows * cols, [&](int64_t i) { return slm::kernels::toFloat(grad[i]); });
  std::free(x);
  std::free(grad);
  return 0;
}

}  // namespace

int main() {
  std::string dtype, path;
  int64_t rows, cols, ignoreIndex;
  float g;
  if (!(std::cin >> dtype >> rows >> cols >> ignoreIndex >> g >> path) || rows < 1 || cols < 1) {
    std::cerr << "expected: dtype rows cols ignoreIndex g vector|scalar, then targets and logits\n";
    return 2;
  }
  bool vector = path == "vector";
  if (dtype == "float32") return run<float>(rows, cols, ignoreIndex, g, vector);
  if (dtype == "float16") return run<__half>(rows, cols, ignoreIndex, g, vector);
  if (dtype == "bfloat16") return run<__nv_bfloat16>(rows, cols, ignoreIndex, g, vector);
  std::cerr << "unknown dtype " << dtype << "\n";
  return 2;
}
