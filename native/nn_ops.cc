// The neural-network ops a GPT needs, each one libtorch's fused kernel where it has one.
#include <ATen/core/Reduction.h>
#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/dropout.h>
#include <ATen/ops/embedding.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/softmax.h>

#include "compat.h"
#include "tensor.h"

namespace slm {
namespace {

// gelu(t, approximate): "none" (erf) or "tanh" (GPT-2's)
Napi::Value Gelu(const Napi::CallbackInfo& info) {
  std::string approx = stringArg(info, 1, "approximate");
  if (approx != "none" && approx != "tanh") {
    throw Napi::TypeError::New(
        info.Env(),
        "expected 'none' or 'tanh' for argument 'approximate' but received '" + approx + "'");
  }
  return wrap(info.Env(), at::gelu(tensorArg(info, 0, "tensor"), approx));
}

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::softmax(tensorArg(info, 0, "tensor"), intArg(info, 1, "dim")));
}

Napi::Value LogSoftmax(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::log_softmax(tensorArg(info, 0, "tensor"), intArg(info, 1, "dim")));
}

// layerNorm(x, normalizedShape, weight?, bias?, eps)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(),
              at::layer_norm(tensorArg(info, 0, "input"), intListArg(info, 1, "normalizedShape"),
                             optionalTensorArg(info, 2, "weight"),
                             optionalTensorArg(info, 3, "bias"), numberArg(info, 4, "eps")));
}

// embedding(weight, indices): rows of weight (V×d) gathered by integer indices
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  return wrap(info.Env(),
              at::embedding(tensorArg(info, 0, "weight"), tensorArg(info, 1, "indices")));
}

// dropout(t, p, train): identity when not training or p = 0
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  double p = numberArg(info, 1, "p");
  if (!(p >= 0.0 && p <= 1.0)) {
    throw Napi::TypeError::New(
        info.Env(),
        "expected a probability in [0, 1] for argument 'p' but received " + std::to_string(p));
  }
  return wrap(info.Env(), at::dropout(tensorArg(info, 0, "tensor"), p, boolArg(info, 2, "train")));
}

// scaledDotProductAttention(q, k, v, mask?, dropoutP, isCausal); q, k, v (B, heads, T, dh)
Napi::Value ScaledDotProductAttention(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), compat::scaledDotProductAttention(
                              tensorArg(info, 0, "query"), tensorArg(info, 1, "key"),
                              tensorArg(info, 2, "value"), optionalTensorArg(info, 3, "mask"),
                              numberArg(info, 4, "dropoutP"), boolArg(info, 5, "isCausal")));
}

// crossEntropy(logits (N, C), targets (N), ignoreIndex, reduction, labelSmoothing)
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  std::string red = stringArg(info, 3, "reduction");
  int64_t reduction;
  if (red == "mean")
    reduction = at::Reduction::Mean;
  else if (red == "sum")
    reduction = at::Reduction::Sum;
  else if (red == "none")
    reduction = at::Reduction::None;
  else
    throw Napi::TypeError::New(
        info.Env(),
        "expected 'mean', 'sum' or 'none' for argument 'reduction' but received '" + red + "'");
  return wrap(info.Env(),
              at::cross_entropy_loss(tensorArg(info, 0, "logits"), tensorArg(info, 1, "targets"),
                                     c10::nullopt, reduction, intArg(info, 2, "ignoreIndex"),
                                     numberArg(info, 4, "labelSmoothing")));
}

}  // namespace

void initNnOps(Napi::Env env, Napi::Object exports) {
  define(env, exports, "gelu", Gelu);
  define(env, exports, "softmax", Softmax);
  define(env, exports, "logSoftmax", LogSoftmax);
  define(env, exports, "layerNorm", LayerNorm);
  define(env, exports, "embedding", Embedding);
  define(env, exports, "dropout", Dropout);
  define(env, exports, "scaledDotProductAttention", ScaledDotProductAttention);
  define(env, exports, "crossEntropy", CrossEntropy);
  exports.Set("hasFlashAttention", Napi::Boolean::New(env, compat::kHasFlashAttention));
}

}  // namespace slm
