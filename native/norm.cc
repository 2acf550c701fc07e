// The residual add and the LayerNorm after it, as one op: a = h + y; z = LayerNorm(a) — what a
// pre-LN transformer does after each branch (attention, MLP) and before the next one or the head.
//
// Why one op: under bf16 autocast libtorch runs it as the add, a float32 LayerNorm and the cast of
// its output for the next matmul (and about four kernels back), each a pass over the residual
// stream; staged-lm's fused CUDA kernels (native/kernels/add_layer_norm.cu) read h and y once and
// write a and z (already in the matmul's dtype), and in backward read dz, a and a's gradient from
// above once and write the gradients of h and y. With libtorch's kernels ('aten', the default,
// and everywhere the fused ones cannot run) it is those three ops, z cast as autocast would cast
// it for the next matmul — the same values as the model's former h.add(y) then layerNorm.
#include <ATen/ops/add.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/zeros.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <string>

#include "compat.h"
#include "kernel_choice.h"
#include "tensor.h"

#if STAGED_LM_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <climits>

#include "kernels/add_layer_norm.h"
#include "kernels/errors.h"
#endif

namespace slm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Asked for per call or process-wide (setNormKernel, STAGED_LM_NORM_KERNEL=fused).
KernelChoice normKernel("STAGED_LM_NORM_KERNEL");

// z's dtype: what autocast casts a matmul's input to, where it is on for a's device; else a's.
// (float64 is never cast, as autocast leaves it alone.)
at::ScalarType outputType(const at::Tensor& a) {
  bool cast = a.is_cuda() && a.scalar_type() != at::kDouble && compat::isCudaAutocastEnabled();
  return cast ? compat::cudaAutocastDtype() : a.scalar_type();
}

#if STAGED_LM_CUDA_KERNELS
bool normType(at::ScalarType t, kernels::NormType* out) {
  switch (t) {
    case at::kFloat: *out = kernels::NormType::Float32; return true;
    case at::kHalf: *out = kernels::NormType::Float16; return true;
    case at::kBFloat16: *out = kernels::NormType::BFloat16; return true;
    default: return false;
  }
}

kernels::NormTypes normTypes(at::ScalarType h, at::ScalarType y, at::ScalarType z) {
  kernels::NormTypes t{};
  normType(h, &t.h);
  normType(y, &t.y);
  normType(z, &t.z);
  return t;
}

// Contiguous and 16-byte aligned, as the kernels' vector loads need (a copy only for a view that
// starts off a boundary; fresh allocations are aligned).
at::Tensor aligned(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0 ? c : c.clone();
}

void checkLaunch(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, "addLayerNorm: the fused ", what,
              " kernel failed: ", kernels::errorString(error));
}
#endif

// Why the fused kernels cannot take these inputs ("" when they can). Shapes are checked before.
std::string fusedUnavailableReason(const at::Tensor& h, const at::Tensor& y,
                                   const at::Tensor& weight,
                                   const c10::optional<at::Tensor>& bias) {
#if STAGED_LM_CUDA_KERNELS
  if (!h.is_cuda()) return "the input is on " + h.device().str() + ", not CUDA";
  if (at::promote_types(h.scalar_type(), y.scalar_type()) != h.scalar_type())
    return std::string("the branch (") + dtypeName(y.scalar_type()) +
           ") is wider than the input (" + dtypeName(h.scalar_type()) + ")";
  int64_t cols = weight.size(0);
  if (cols < 1 || cols % 4 != 0 || cols > kernels::addLayerNormMaxCols())
    return "the normalised size " + std::to_string(cols) + " is not a multiple of 4 up to " +
           std::to_string(kernels::addLayerNormMaxCols());
  int64_t rows = h.numel() / cols;
  if (rows < 1 || rows > INT_MAX) return "rows must be in [1, 2^31)";
  kernels::NormType unused{};
  at::ScalarType z = outputType(h);
  bool paramsLikeH = weight.scalar_type() == h.scalar_type() &&
                     (!bias.has_value() || bias->scalar_type() == h.scalar_type());
  if (!paramsLikeH || !normType(h.scalar_type(), &unused) || !normType(y.scalar_type(), &unused) ||
      !normType(z, &unused) ||
      !kernels::addLayerNormSupported(normTypes(h.scalar_type(), y.scalar_type(), z)))
    return std::string("the dtypes (input ") + dtypeName(h.scalar_type()) + ", branch " +
           dtypeName(y.scalar_type()) + ", weight " + dtypeName(weight.scalar_type()) +
           ", output " + dtypeName(z) +
           ") are not one of: all the same, or a float32 input, weight and bias with a float16 "
           "or bfloat16 branch and output";
  return "";
#else
  (void)h;
  (void)y;
  (void)weight;
  (void)bias;
  return "this build has no staged-lm CUDA kernels (a CUDA libtorch and nvcc at build time)";
#endif
}

#if STAGED_LM_CUDA_KERNELS
struct FusedAddLayerNorm : public torch::autograd::Function<FusedAddLayerNorm> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& y,
                               const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                               double eps) {
    const c10::cuda::CUDAGuard guard(h.device());
    at::Tensor hc = aligned(h), yc = aligned(y), w = aligned(weight);
    at::Tensor b = bias.has_value() ? aligned(*bias) : at::Tensor();
    int64_t cols = w.size(0), rows = hc.numel() / cols;
    at::ScalarType zType = outputType(h);
    at::Tensor a = at::empty(h.sizes(), hc.options());
    at::Tensor z = at::empty(h.sizes(), hc.options().dtype(zType));
    at::Tensor stats = at::empty({2, rows}, hc.options().dtype(at::kFloat));  // mean, rstd
    checkLaunch(
        kernels::addLayerNormForward(
            normTypes(h.scalar_type(), y.scalar_type(), zType), hc.data_ptr(), yc.data_ptr(),
            w.data_ptr(), b.defined() ? b.data_ptr() : nullptr, rows, cols, static_cast<float>(eps),
            a.data_ptr(), z.data_ptr(), stats.select(0, 0).data_ptr<float>(),
            stats.select(0, 1).data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream()),
        "forward");
    ctx->save_for_backward({a, stats, w});
    ctx->saved_data["yType"] = static_cast<int64_t>(y.scalar_type());
    ctx->saved_data["zType"] = static_cast<int64_t>(zType);
    ctx->saved_data["hasBias"] = b.defined();
    // a gradient that never reached a (or z) stays undefined: no zero tensor to read
    ctx->set_materialize_grads(false);
    return {a, z};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!c10::GradMode::is_enabled(),
                "addLayerNorm has no second derivative (backward with create_graph)");
    variable_list saved = ctx->get_saved_variables();
    const at::Tensor &a = saved[0], &stats = saved[1], &w = saved[2];
    const c10::cuda::CUDAGuard guard(a.device());
    auto yType = static_cast<at::ScalarType>(ctx->saved_data["yType"].toInt());
    bool hasBias = ctx->saved_data["hasBias"].toBool();
    auto zType = static_cast<at::ScalarType>(ctx->saved_data["zType"].toInt());
    // z unused: its gradient is 0 (the launch still writes dh = dA and zero dw, db)
    at::Tensor dz = grads[1].defined() ? aligned(grads[1].to(zType))
                                       : at::zeros(a.sizes(), a.options().dtype(zType));
    at::Tensor dA = grads[0].defined() ? aligned(grads[0].to(a.scalar_type())) : at::Tensor();
    int64_t cols = w.size(0), rows = a.numel() / cols;
    at::Tensor dh = at::empty(a.sizes(), a.options());
    at::Tensor dy =
        yType == a.scalar_type() ? at::Tensor() : at::empty(a.sizes(), a.options().dtype(yType));
    at::Tensor dw = at::empty(w.sizes(), w.options());
    at::Tensor db = hasBias ? at::empty(w.sizes(), w.options()) : at::Tensor();
    at::Tensor partial = at::empty({kernels::addLayerNormBackwardBlocks(rows), 2, cols},
                                   a.options().dtype(at::kFloat));
    checkLaunch(kernels::addLayerNormBackward(
                    normTypes(a.scalar_type(), yType, dz.scalar_type()), dz.data_ptr(),
                    a.data_ptr(), dA.defined() ? dA.data_ptr() : nullptr,
                    stats.select(0, 0).data_ptr<float>(), stats.select(0, 1).data_ptr<float>(),
                    w.data_ptr(), rows, cols, dh.data_ptr(), dy.defined() ? dy.data_ptr() : nullptr,
                    dw.data_ptr(), db.defined() ? db.data_ptr() : nullptr,
                    partial.data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream()),
                "backward");
    return {dh, dy.defined() ? dy : dh, dw, db, at::Tensor()};
  }
};
#endif

// addLayerNorm(h, y, weight, bias | null, eps, kernel ("default" | "fused" | "aten")) → [a, z]:
// a = h + y (y of h's shape; the dtype as add promotes), z = LayerNorm over
// the last dimension (weight's size) of a, in autocast's dtype where it is on for CUDA (the next
// matmul's input), else a's. "fused" refuses what the fused kernels cannot take; "default" uses
// them where the process-wide setting asks for them and they can.
Napi::Value AddLayerNormOp(const Napi::CallbackInfo& info) {
  at::Tensor& h = tensorArg(info, 0, "h");
  at::Tensor& y = tensorArg(info, 1, "y");
  at::Tensor& weight = tensorArg(info, 2, "weight");
  c10::optional<at::Tensor> bias = optionalTensorArg(info, 3, "bias");
  double eps = numberArg(info, 4, "eps");
  Napi::Env env = info.Env();
  if (!(eps > 0.0)) throw Napi::RangeError::New(env, "eps must be positive");
  if (h.sizes() != y.sizes()) {
    throw Napi::TypeError::New(env, "h and y must have the same shape, got " +
                                        shapeString(h.sizes()) + " and " + shapeString(y.sizes()));
  }
  if (weight.dim() != 1 || h.dim() < 1 || h.size(-1) != weight.size(0)) {
    throw Napi::TypeError::New(env, "weight must be 1-D with h's last size, got " +
                                        shapeString(weight.sizes()) + " for h " +
                                        shapeString(h.sizes()));
  }
  if (bias.has_value() && bias->sizes() != weight.sizes()) {
    throw Napi::TypeError::New(env, "bias must have weight's shape " + shapeString(weight.sizes()) +
                                        ", got " + shapeString(bias->sizes()));
  }
  for (const at::Tensor* t : {&y, &weight, bias.has_value() ? &*bias : &weight}) {
    if (t->device() != h.device()) {
      throw Napi::Error::New(env, "expected every tensor on " + h.device().str() + ", got one on " +
                                      t->device().str());
    }
  }
  if (!at::isFloatingType(h.scalar_type()) || !at::isFloatingType(y.scalar_type())) {
    throw Napi::TypeError::New(env, std::string("h and y must be floating, got ") +
                                        dtypeName(h.scalar_type()) + " and " +
                                        dtypeName(y.scalar_type()));
  }
  KernelChoice::Wanted wanted = normKernel.wanted(info, 5);
  std::string unavailable = wanted.fused ? fusedUnavailableReason(h, y, weight, bias) : "";
  if (wanted.named && !unavailable.empty()) {
    throw Napi::Error::New(env, "the fused kernel cannot be used: " + unavailable);
  }
#if STAGED_LM_CUDA_KERNELS
  if (wanted.fused && unavailable.empty()) {
    return wrapList(env, FusedAddLayerNorm::apply(h, y, weight, bias, eps));
  }
#endif
  at::Tensor a = at::add(h, y);
  at::Tensor z = at::layer_norm(a, {weight.size(0)}, weight, bias, eps);
  at::ScalarType zType = outputType(a);
  return wrapList(env, {a, z.scalar_type() == zType ? z : z.to(zType)});
}

}  // namespace

void initNorm(Napi::Env env, Napi::Object exports) {
  define(env, exports, "addLayerNorm", AddLayerNormOp);
  // setNormKernel("fused" | "aten"): what addLayerNorm's "default" uses where it can;
  // normKernelInfo() → {default, available}
  define(env, exports, "setNormKernel",
         [](const Napi::CallbackInfo& i) { return normKernel.set(i); });
  define(env, exports, "normKernelInfo",
         [](const Napi::CallbackInfo& i) { return normKernel.info(i); });
}

}  // namespace slm
