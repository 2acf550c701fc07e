// Which implementation runs an op that has staged-lm's own CUDA kernels (native/kernels/):
// libtorch's ("aten") or ours ("fused"). Each such op takes a per-call choice ("default", "fused"
// or "aten") and has a process-wide default that "default" follows where the fused kernels can
// take the inputs: set from JS (setLossKernel, setNormKernel), initialised from an environment
// variable, "aten" unless it says "fused" — not by default until measured on a GPU.
#pragma once
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tensor.h"

#ifndef STAGED_LM_CUDA_KERNELS
#define STAGED_LM_CUDA_KERNELS 0
#endif

namespace slm {

class KernelChoice {
 public:
  explicit KernelChoice(const char* envVariable) : fused_(isFused(std::getenv(envVariable))) {}

  // The per-call choice in argument i ("default" when absent): whether the fused kernels are
  // wanted, and whether the caller named them (then inputs they cannot take are refused).
  struct Wanted {
    bool fused;
    bool named;
  };
  Wanted wanted(const Napi::CallbackInfo& info, size_t i) const {
    std::string kernel = isMissing(info, i) ? "default" : stringArg(info, i, "kernel");
    if (kernel != "default" && kernel != "fused" && kernel != "aten") {
      throw Napi::TypeError::New(
          info.Env(), "kernel must be 'default', 'fused' or 'aten', got '" + kernel + "'");
    }
    return {kernel == "fused" || (kernel == "default" && fused_), kernel == "fused"};
  }

  // set("fused" | "aten"): the process-wide default.
  Napi::Value set(const Napi::CallbackInfo& info) {
    std::string kernel = stringArg(info, 0, "kernel");
    if (kernel != "fused" && kernel != "aten") {
      throw Napi::TypeError::New(info.Env(),
                                 "kernel must be 'fused' or 'aten', got '" + kernel + "'");
    }
    fused_ = kernel == "fused";
    return info.Env().Undefined();
  }

  // → {default, available (this build has staged-lm's CUDA kernels)}
  Napi::Value info(const Napi::CallbackInfo& info) const {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("default", fused_ ? "fused" : "aten");
    o.Set("available", Napi::Boolean::New(info.Env(), STAGED_LM_CUDA_KERNELS == 1));
    return o;
  }

 private:
  static bool isFused(const char* v) { return v != nullptr && std::strcmp(v, "fused") == 0; }
  std::atomic<bool> fused_;
};

}  // namespace slm
