// The neural-network ops a GPT needs, each one libtorch's fused kernel where it has one.
#include <ATen/core/Reduction.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/dropout.h>
#include <ATen/ops/embedding.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/softmax.h>

#include "compat.h"
#include "tensor.h"

namespace slm {
namespace {

// conv1d(x, weight[in, out], bias|null): Hugging Face's Conv1D, x (..., in) → (..., out) as one
// GEMM with the bias fused; one call instead of reshape + addmm + view from JS (host overhead).
Napi::Value Conv1d(const Napi::CallbackInfo& info) {
  at::Tensor& x = tensorArg(info, 0, "input");
  at::Tensor& w = tensorArg(info, 1, "weight");
  auto b = optionalTensorArg(info, 2, "bias");
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(0)) {
    throw Napi::Error::New(info.Env(), "the input's last dimension must equal the weight's rows (" +
                                           shapeString(x.sizes()) + " · " + shapeString(w.sizes()) +
                                           ")");
  }
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = w.size(1);
  at::Tensor x2 = x.reshape({-1, w.size(0)});
  at::Tensor y = b ? at::addmm(*b, x2, w) : at::mm(x2, w);
  return wrap(info.Env(), y.view(sizes));
}

// splitHeads(qkv (B, T, 3·H·D), H) → [q, k, v], each (B, H, T, D): views, no copy
Napi::Value SplitHeads(const Napi::CallbackInfo& info) {
  at::Tensor& qkv = tensorArg(info, 0, "qkv");
  int64_t h = intArg(info, 1, "heads");
  // (a last dimension of 0 would split into one empty piece, not three)
  if (qkv.dim() != 3 || h < 1 || qkv.size(2) == 0 || qkv.size(2) % (3 * h) != 0) {
    throw Napi::Error::New(info.Env(), "expected qkv of shape (B, T, 3·heads·headSize), got " +
                                           shapeString(qkv.sizes()) + " with " + std::to_string(h) +
                                           " heads");
  }
  int64_t bsz = qkv.size(0), t = qkv.size(1), a = qkv.size(2) / 3;
  std::vector<at::Tensor> out;
  for (auto& part : qkv.split(a, 2)) out.push_back(part.view({bsz, t, h, a / h}).transpose(1, 2));
  return wrapList(info.Env(), out);
}

// mergeHeads(y (B, H, T, D)) → (B, T, H·D), contiguous
Napi::Value MergeHeads(const Napi::CallbackInfo& info) {
  at::Tensor& y = tensorArg(info, 0, "input");
  if (y.dim() != 4) {
    throw Napi::Error::New(info.Env(),
                           "expected (B, heads, T, headSize), got " + shapeString(y.sizes()));
  }
  return wrap(info.Env(),
              y.transpose(1, 2).contiguous().view({y.size(0), y.size(2), y.size(1) * y.size(3)}));
}

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
// The mask is bool (true = attend) or floating (added to the scores). Any other dtype is refused,
// as PyTorch does: libtorch 1.13 added an int64 or uint8 0/1 mask to the scores without a word.
Napi::Value ScaledDotProductAttention(const Napi::CallbackInfo& info) {
  auto mask = optionalTensorArg(info, 3, "mask");
  if (mask && mask->scalar_type() != at::kBool && !at::isFloatingType(mask->scalar_type())) {
    throw Napi::TypeError::New(info.Env(),
                               std::string("expected a bool (true = attend) or floating (additive) "
                                           "tensor for argument 'mask' but received ") +
                                   dtypeName(mask->scalar_type()) +
                                   ": convert a 0/1 mask with .eq(1) (or .to('bool'))");
  }
  return wrap(info.Env(), compat::scaledDotProductAttention(
                              tensorArg(info, 0, "query"), tensorArg(info, 1, "key"),
                              tensorArg(info, 2, "value"), mask, numberArg(info, 4, "dropoutP"),
                              boolArg(info, 5, "isCausal")));
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
  define(env, exports, "conv1d", Conv1d);
  define(env, exports, "splitHeads", SplitHeads);
  define(env, exports, "mergeHeads", MergeHeads);
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
