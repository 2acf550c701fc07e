// Autograd: leaves that require grad, backward, gradients, grad mode.
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/variable.h>

#include "tensor.h"

namespace slm {
namespace {

// setRequiresGrad(t, flag): in place on a leaf, like requires_grad_()
Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor").requires_grad_(boolArg(info, 1, "requiresGrad"));
  return info.Env().Undefined();
}

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorArg(info, 0, "tensor").requires_grad());
}

Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorArg(info, 0, "tensor").is_leaf());
}

// grad(t): the accumulated gradient (a new handle on it) or null
Napi::Value Grad(const Napi::CallbackInfo& info) {
  const at::Tensor& g = tensorArg(info, 0, "tensor").grad();
  if (!g.defined()) return info.Env().Null();
  return wrap(info.Env(), g);
}

// setGrad(t, g|null): replace or drop the gradient (null frees it, like zero_grad(set_to_none))
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  if (isMissing(info, 1)) {
    t.mutable_grad() = at::Tensor();
  } else {
    const at::Tensor& g = tensorArg(info, 1, "grad");
    // what PyTorch's `.grad =` setter refuses: an optimizer reads a gradient as its parameter's
    // shape, dtype and device (the fused CPU kernel walks its raw memory)
    const char* differs = g.sizes() != t.sizes()               ? "shape"
                          : g.scalar_type() != t.scalar_type() ? "dtype"
                          : g.device() != t.device()           ? "device"
                                                               : nullptr;
    if (differs != nullptr) {
      throw Napi::TypeError::New(
          info.Env(), std::string("the gradient's ") + differs + " differs from the tensor's: " +
                          dtypeName(g.scalar_type()) + " " + shapeString(g.sizes()) + " on " +
                          g.device().str() + " for " + dtypeName(t.scalar_type()) + " " +
                          shapeString(t.sizes()) + " on " + t.device().str());
    }
    // PyTorch: "can't assign Variable as its own grad". A gradient over the tensor's own memory
    // (the tensor, or a view of it) would be overwritten by the update that reads it, and a view
    // keeps its base alive: the tensor would hold itself and never be freed
    if (memoryOverlaps(g, t)) {
      throw Napi::Error::New(
          info.Env(),
          "the gradient overlaps the tensor's own memory (the tensor itself, or a "
          "view of it): give a tensor of its own (clone() it)");
    }
    // a gradient is data: one with a graph (p.mul(p)) would keep that graph, and through it the
    // tensor itself, alive as long as the tensor holds it — a cycle nothing frees
    t.mutable_grad() = g.requires_grad() ? g.detach() : g;
  }
  return info.Env().Undefined();
}

// backward(t, gradient?, retainGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  auto gradient = optionalTensorArg(info, 1, "gradient");
  bool retain = !isMissing(info, 2) && boolArg(info, 2, "retainGraph");
  if (!t.requires_grad()) {
    throw Napi::Error::New(
        info.Env(),
        "backward: the tensor does not require grad and has no grad_fn "
        "(was it computed inside noGrad(), or from tensors without requiresGrad?)");
  }
  if (!gradient && t.numel() != 1) {
    throw Napi::Error::New(info.Env(),
                           "backward: a gradient is needed for a non-scalar tensor of shape " +
                               shapeString(t.sizes()));
  }
  t.backward(gradient.value_or(at::Tensor()), retain, false);
  return info.Env().Undefined();
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").detach());
}

Napi::Value RetainGrad(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor").retain_grad();
  return info.Env().Undefined();
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  c10::GradMode::set_enabled(boolArg(info, 0, "enabled"));
  return info.Env().Undefined();
}

// setData(t, src): t now shows src's data (shape may change) while keeping its identity, like
// `param.data = src` in PyTorch: every reference to t stays valid (growth in place).
Napi::Value SetData(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  at::Tensor& src = tensorArg(info, 1, "source");
  bool resized = t.sizes() != src.sizes();
  t.set_data(src);
  t.mutable_grad() = at::Tensor();
  // libtorch keeps the leaf's gradient accumulator (which records the old shape) while any older
  // graph still refers to it; a later backward would then check gradients against the old shape.
  if (resized) {
    if (auto* meta = torch::autograd::impl::get_autograd_meta(t)) {
      std::lock_guard<std::mutex> lock(meta->mutex_);
      meta->grad_accumulator_.reset();
    }
  }
  TensorHandle::FromValue(info.Env(), info[0])->refreshBytes(info.Env());
  return info.Env().Undefined();
}

}  // namespace

void initAutograd(Napi::Env env, Napi::Object exports) {
  define(env, exports, "setRequiresGrad", SetRequiresGrad);
  define(env, exports, "requiresGrad", RequiresGrad);
  define(env, exports, "isLeaf", IsLeaf);
  define(env, exports, "grad", Grad);
  define(env, exports, "setGrad", SetGrad);
  define(env, exports, "backward", Backward);
  define(env, exports, "detach", Detach);
  define(env, exports, "retainGrad", RetainGrad);
  define(env, exports, "isGradEnabled", IsGradEnabled);
  define(env, exports, "setGradEnabled", SetGradEnabled);
  define(env, exports, "setData", SetData);
}

}  // namespace slm
