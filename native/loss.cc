// The training loss of half-precision logits: mean cross-entropy computed in float32, with a
// backward that writes the gradient straight into the logits' dtype.
//
// Why: a GPT's logits are (tokens × vocabulary), the largest activation of the step (124M at
// 16×1024 tokens: 824M elements). The usual `cross_entropy(logits.float(), t)` leaves autograd
// four passes over that size in backward: NLL's dense gradient (zero-filled, float32), the
// log-softmax backward reading it and the saved log-probabilities and writing a float32 gradient,
// then the cast back to the logits' dtype. Here backward is exp(log p) and one multiply that writes
// the half-precision result: 11.6 GB of memory traffic instead of 18.2 GB at 124M (the forward is
// the same two passes either way: the cast, and log-softmax in float32), and 1.65 GB less held at
// the start of backward, where the step's memory peaks.
// The arithmetic is PyTorch's: ∂loss/∂x = (softmax(x) − onehot(t)) · g / n in float32 for every
// row whose target is not ignored (n of them), 0 for the others, rounded once to the logits' dtype.
#include <ATen/core/Reduction.h>
#include <ATen/ops/_log_softmax.h>
#include <ATen/ops/div.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/nll_loss_forward.h>
#include <ATen/ops/where.h>
#include <torch/csrc/autograd/custom_function.h>

#include "tensor.h"

namespace slm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Float32CrossEntropy : public torch::autograd::Function<Float32CrossEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits,
                            const at::Tensor& targets, int64_t ignoreIndex) {
    at::Tensor logp = at::_log_softmax(logits.to(at::kFloat), 1, /*half_to_float=*/false);
    // total: how many targets count (float32, on the device: no host sync)
    auto [loss, total] =
        at::nll_loss_forward(logp, targets, c10::nullopt, at::Reduction::Mean, ignoreIndex);
    ctx->save_for_backward({logp, targets, total});
    ctx->saved_data["ignoreIndex"] = ignoreIndex;
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits.scalar_type());
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list gradOutputs) {
    variable_list saved = ctx->get_saved_variables();
    const at::Tensor &logp = saved[0], &targets = saved[1], &total = saved[2];
    int64_t ignoreIndex = ctx->saved_data["ignoreIndex"].toInt();
    auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    at::Tensor counted = targets.ne(ignoreIndex);
    // each row's factor g/n, 0 for ignored rows (and no 0·∞ when every target is ignored)
    at::Tensor rowScale = at::where(counted, at::div(gradOutputs[0].to(at::kFloat), total), 0.0);
    at::Tensor grad = logp.exp();  // softmax, float32
    // − onehot(t): ignored rows point at column 0, their factor is 0
    grad.scatter_add_(1, at::where(counted, targets, 0).unsqueeze(1),
                      at::full({targets.size(0), 1}, -1.0, grad.options()));
    at::Tensor out = at::empty(grad.sizes(), grad.options().dtype(dtype));
    at::mul_out(out, grad, rowScale.unsqueeze(1));  // one rounding, into the logits' dtype
    return {out, at::Tensor(), at::Tensor()};
  }
};

// float32CrossEntropy(logits (N, C) of any floating dtype, targets (N) int64, ignoreIndex) →
// the mean over counted targets as a float32 scalar; its gradient has the logits' dtype.
Napi::Value Float32CrossEntropyOp(const Napi::CallbackInfo& info) {
  at::Tensor& logits = tensorArg(info, 0, "logits");
  at::Tensor& targets = tensorArg(info, 1, "targets");
  int64_t ignoreIndex = intArg(info, 2, "ignoreIndex");
  if (logits.dim() != 2 || !at::isFloatingType(logits.scalar_type())) {
    throw Napi::TypeError::New(info.Env(), "expected floating-point logits of shape (N, C), got " +
                                               std::string(dtypeName(logits.scalar_type())) + " " +
                                               shapeString(logits.sizes()));
  }
  if (targets.dim() != 1 || targets.size(0) != logits.size(0) ||
      targets.scalar_type() != at::kLong) {
    throw Napi::TypeError::New(info.Env(), "expected int64 targets of shape (" +
                                               std::to_string(logits.size(0)) + "), got " +
                                               std::string(dtypeName(targets.scalar_type())) + " " +
                                               shapeString(targets.sizes()));
  }
  return wrap(info.Env(), Float32CrossEntropy::apply(logits, targets, ignoreIndex));
}

}  // namespace

void initLoss(Napi::Env env, Napi::Object exports) {
  define(env, exports, "float32CrossEntropy", Float32CrossEntropyOp);
}

}  // namespace slm
