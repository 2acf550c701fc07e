// AdamW over explicit state: the moments are ordinary tensors owned by the TypeScript optimizer
// (so growth operators can read and replace them); one native call updates a whole parameter
// group. CUDA on libtorch >= 2.1 and CPU on >= 2.4 use the fused multi-tensor kernel; elsewhere
// the foreach (multi-tensor) ops. Also gradient clipping by global norm (applied at once, or
// deferred into the update, where the fused kernel divides the gradients as it reads them), the
// unscaling and overflow check of dynamic loss scaling (folded into the same norm and update), the
// loss scale's update, and zeroing gradients.
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_addcdiv.h>
#include <ATen/ops/_foreach_addcmul.h>
#include <ATen/ops/_foreach_div.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_foreach_sqrt.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>

#include "compat.h"
#include "cuda_graph.h"
#include "tensor.h"

#if STAGED_LM_TORCH_AT_LEAST(2, 1)
#include <ATen/ops/_amp_update_scale.h>
#include <ATen/ops/_fused_adamw.h>
#define STAGED_LM_HAS_FUSED_ADAMW 1
#else
#define STAGED_LM_HAS_FUSED_ADAMW 0
#endif
// The fused kernel's CPU implementation came in 2.4; on CPU the foreach ops fall back to one op
// per tensor and scalar (five casts of a scalar per parameter and step), 1.5x slower for the
// micro benchmark's whole step.
#if STAGED_LM_TORCH_AT_LEAST(2, 4)
#define STAGED_LM_HAS_FUSED_ADAMW_CPU 1
#else
#define STAGED_LM_HAS_FUSED_ADAMW_CPU 0
#endif

namespace slm {
namespace {

struct AdamWHyper {
  double lr, beta1, beta2, eps, weightDecay;
  int64_t step;  // already counts this update (1 on the first)
  bool biasCorrection;
};

// The foreach path: PyTorch's AdamW written with multi-tensor ops.
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − lr/bc1 · m / (√v/√bc2 + ε)      (bc = 1 without bias correction)
void adamwForeachSameDtype(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads,
                           std::vector<at::Tensor>& m, std::vector<at::Tensor>& v,
                           const AdamWHyper& h) {
  double bc1 = h.biasCorrection ? 1.0 - std::pow(h.beta1, static_cast<double>(h.step)) : 1.0;
  double bc2 = h.biasCorrection ? 1.0 - std::pow(h.beta2, static_cast<double>(h.step)) : 1.0;
  if (h.weightDecay != 0.0) at::_foreach_mul_(params, 1.0 - h.lr * h.weightDecay);
  at::_foreach_mul_(m, h.beta1);
  at::_foreach_add_(m, grads, 1.0 - h.beta1);
  at::_foreach_mul_(v, h.beta2);
  at::_foreach_addcmul_(v, grads, grads, 1.0 - h.beta2);
  std::vector<at::Tensor> denom = at::_foreach_sqrt(v);
  if (bc2 != 1.0) at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, h.eps);
  at::_foreach_addcdiv_(params, m, denom, -h.lr / bc1);
}

// Half-precision parameters keep fp32 moments (momentDtype in adamw.ts): their update runs on fp32
// copies of parameter and gradient and is rounded into the parameter once (libtorch 1.13's
// in-place CPU kernels cannot mix dtypes at all).
void adamwForeach(std::vector<at::Tensor>& params, std::vector<at::Tensor>& rawGrads,
                  std::vector<at::Tensor>& m, std::vector<at::Tensor>& v, const AdamWHyper& h) {
  std::vector<at::Tensor> work = params, grads = rawGrads;
  std::vector<size_t> widened;
  for (size_t i = 0; i < params.size(); i++) {
    if (params[i].scalar_type() == m[i].scalar_type()) continue;
    work[i] = params[i].to(m[i].scalar_type());
    grads[i] = rawGrads[i].to(m[i].scalar_type());
    widened.push_back(i);
  }
  adamwForeachSameDtype(work, grads, m, v, h);
  for (size_t i : widened) params[i].copy_(work[i]);
}

#if STAGED_LM_HAS_FUSED_ADAMW
// The fused kernel always applies bias correction from the step it reads; without correction we
// rescale lr, ε and weight decay so that it computes the uncorrected update exactly:
//   lr' = lr·bc1/√bc2,  ε' = ε/√bc2,  wd' = wd·lr/lr'.
void adamwFused(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads,
                std::vector<at::Tensor>& m, std::vector<at::Tensor>& v, const at::Tensor& stepT,
                const c10::optional<at::Tensor>& gradScale,
                const c10::optional<at::Tensor>& foundInf, const AdamWHyper& h) {
  double lr = h.lr, eps = h.eps, wd = h.weightDecay;
  if (!h.biasCorrection) {
    double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
    double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
    lr = h.lr * bc1 / std::sqrt(bc2);
    eps = h.eps / std::sqrt(bc2);
    wd = lr == 0.0 ? 0.0 : h.weightDecay * h.lr / lr;
  }
  std::vector<at::Tensor> steps(params.size(), stepT);
  at::_fused_adamw_(params, grads, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, h.beta1, h.beta2, wd,
                    eps, /*amsgrad=*/false, /*maximize=*/false, gradScale, foundInf);
}
#endif

// Multiplies every gradient by the scalar tensor coef: one multi-tensor kernel where libtorch has
// the tensor overload (2.1+) and the gradients share dtype and device, else one op each.
void scaleGrads(std::vector<at::Tensor>& grads, const at::Tensor& coef) {
  if (grads.empty()) return;
#if STAGED_LM_TORCH_AT_LEAST(2, 1)
  bool sameDtype = std::all_of(grads.begin(), grads.end(), [&](const at::Tensor& g) {
    return g.scalar_type() == grads[0].scalar_type() && g.device() == grads[0].device();
  });
  if (sameDtype) {
    at::_foreach_mul_(grads, coef.to(grads[0].scalar_type()));
    return;
  }
#endif
  for (auto& g : grads) g.mul_(coef.to(g.device(), g.scalar_type()));
}

// The fused kernel reads the step (and a device learning rate) as float32 scalars on the
// parameters' device: anything else would be misread, or read back to the host (a sync that
// breaks a graph capture).
void checkDeviceScalar(const Napi::CallbackInfo& info, const at::Tensor& t, at::Device device,
                       const char* what, bool allowDouble = false, const char* op = "adamwStep") {
  bool dtypeOk = t.scalar_type() == at::kFloat || (allowDouble && t.scalar_type() == at::kDouble);
  if (!dtypeOk || t.numel() != 1 || t.device() != device)
    throw Napi::Error::New(info.Env(), std::string(op) + ": the " + what + " tensor must be a " +
                                           (allowDouble ? "float32 or float64" : "float32") +
                                           " scalar on " + device.str() + ", got " +
                                           dtypeName(t.scalar_type()) + " " +
                                           shapeString(t.sizes()) + " on " + t.device().str());
}

// adamwStep(params, expAvgs, expAvgSqs, stepTensor|null, {lr, beta1, beta2, eps, weightDecay,
//           step, biasCorrection, fused}, lrTensor?, gradScale?, foundInf?)
//   → number of parameters with a gradient (updated, unless foundInf skipped the update)
// Parameters without a gradient are skipped (like torch.optim). stepTensor: a float32 scalar
// on the parameters' device holding `step`, needed by the fused kernel. lrTensor: a float32
// scalar there holding lr, read by the kernel when it runs (a CUDA graph replays the update with
// the rate of the step, not of the capture); it needs the fused kernel and bias correction.
// gradScale: a float32 scalar on the parameters' device that the gradients are divided by before
// the update (clipGradNorm's deferred divisor); the fused kernel divides as it reads them and
// writes the divided gradients back, as an immediate clipping would have left them. A float64
// one (the divisor for float64 gradients) divides them first, at that precision. foundInf: a
// float32 scalar there (clipGradNorm's, under loss scaling) holding 0 or 1; where it holds 1
// nothing is updated (the fused kernels read it on the device; the foreach path reads it back, a
// host sync). hyper.stepOnDevice: the step is stepTensor's value, not hyper.step (the count of
// updates made lives on the device once one was skipped); the foreach path reads it back.
Napi::Value AdamWStep(const Napi::CallbackInfo& info) {
  std::vector<at::Tensor> params = tensorListArg(info, 0, "params");
  std::vector<at::Tensor> expAvgs = tensorListArg(info, 1, "expAvgs");
  std::vector<at::Tensor> expAvgSqs = tensorListArg(info, 2, "expAvgSqs");
  auto stepT = optionalTensorArg(info, 3, "stepTensor");
  if (info.Length() < 5 || !info[4].IsObject()) {
    throw Napi::TypeError::New(info.Env(), "expected an object for argument 'hyper'");
  }
  Napi::Object o = info[4].As<Napi::Object>();
  auto num = [&](const char* key) {
    Napi::Value x = o.Get(key);
    if (!x.IsNumber())
      throw Napi::TypeError::New(info.Env(), std::string("expected a number for hyper.") + key);
    return x.As<Napi::Number>().DoubleValue();
  };
  AdamWHyper h{num("lr"),
               num("beta1"),
               num("beta2"),
               num("eps"),
               num("weightDecay"),
               static_cast<int64_t>(num("step")),
               o.Get("biasCorrection").ToBoolean().Value()};
  bool wantFused = o.Get("fused").ToBoolean().Value();
  if (expAvgs.size() != params.size() || expAvgSqs.size() != params.size()) {
    throw Napi::Error::New(info.Env(), "adamwStep: params, expAvgs and expAvgSqs differ in length");
  }
  std::vector<at::Tensor> p, g, m, v;
  for (size_t i = 0; i < params.size(); i++) {
    const at::Tensor& grad = params[i].grad();
    if (!grad.defined()) continue;
    // a gradient that is not its parameter's shape (one accumulated before the parameter was
    // replaced, say) would be read past its end by the fused CPU kernel, and broadcast by foreach
    if (grad.sizes() != params[i].sizes() || grad.device() != params[i].device()) {
      throw Napi::Error::New(info.Env(),
                             "adamwStep: the gradient of parameter " + std::to_string(i) + " is " +
                                 shapeString(grad.sizes()) + " on " + grad.device().str() +
                                 " but the parameter " + shapeString(params[i].sizes()) + " on " +
                                 params[i].device().str());
    }
    if (expAvgs[i].sizes() != params[i].sizes() || expAvgSqs[i].sizes() != params[i].sizes()) {
      throw Napi::Error::New(info.Env(), "adamwStep: state of parameter " + std::to_string(i) +
                                             " has shape " + shapeString(expAvgs[i].sizes()) +
                                             " / " + shapeString(expAvgSqs[i].sizes()) +
                                             " but the parameter " +
                                             shapeString(params[i].sizes()));
    }
    p.push_back(params[i]);
    g.push_back(grad);
    m.push_back(expAvgs[i]);
    v.push_back(expAvgSqs[i]);
  }
  auto lrT = optionalTensorArg(info, 5, "lrTensor");
  auto gradScale = optionalTensorArg(info, 6, "gradScale");
  auto foundInf = optionalTensorArg(info, 7, "foundInf");
  if (p.empty()) return Napi::Number::New(info.Env(), 0);
  at::NoGradGuard noGrad;
  if (gradScale)
    checkDeviceScalar(info, *gradScale, p[0].device(), "gradScale", /*allowDouble=*/true);
  if (foundInf) checkDeviceScalar(info, *foundInf, p[0].device(), "foundInf");
  if (gradScale && gradScale->scalar_type() == at::kDouble) {
    // a float64 divisor (clipGradNorm of float64 gradients): the fused kernels read a float32
    // grad_scale, so the gradients are divided here, at full precision, instead
    scaleGrads(g, gradScale->reciprocal());
    gradScale = c10::nullopt;
  }
  // What the fused kernel can take: the CPU one walks raw memory and reads every tensor as the
  // parameter's dtype, CUDA's refuses other layouts. Half-precision parameters (fp32 moments) and
  // strided ones take the foreach path.
  bool fusable = true;
  for (size_t i = 0; i < p.size(); i++)
    for (const at::Tensor* t : {&p[i], &g[i], &m[i], &v[i]})
      fusable = fusable && t->is_contiguous() && t->scalar_type() == p[i].scalar_type();
  if (lrT) {
    if (!stepT || !h.biasCorrection || !p[0].is_cuda() || !fusable)
      throw Napi::Error::New(info.Env(),
                             "adamwStep: a device learning rate needs the fused kernel: CUDA "
                             "parameters, a step tensor, bias correction, and dense tensors with "
                             "moments in the parameters' dtype");
    checkDeviceScalar(info, *stepT, p[0].device(), "step");
    checkDeviceScalar(info, *lrT, p[0].device(), "learning-rate");
    if (!adamwFusedDeviceLr(p, g, m, v, *stepT, *lrT, gradScale, foundInf, h.beta1, h.beta2,
                            h.weightDecay, h.eps))
      throw Napi::Error::New(info.Env(),
                             "adamwStep: this build has no fused AdamW with a device learning "
                             "rate (CUDA libtorch >= 2.4 needed)");
    return Napi::Number::New(info.Env(), static_cast<double>(p.size()));
  }
#if STAGED_LM_HAS_FUSED_ADAMW
  if (wantFused && stepT && fusable &&
      (p[0].is_cuda() || (STAGED_LM_HAS_FUSED_ADAMW_CPU && p[0].is_cpu()))) {
    checkDeviceScalar(info, *stepT, p[0].device(), "step");
    adamwFused(p, g, m, v, *stepT, gradScale, foundInf, h);
    return Napi::Number::New(info.Env(), static_cast<double>(p.size()));
  }
#endif
  (void)wantFused;
  if (foundInf && foundInf->item<float>() != 0.0f)
    return Napi::Number::New(info.Env(), static_cast<double>(p.size()));
  if (stepT && o.Get("stepOnDevice").ToBoolean().Value())
    h.step = static_cast<int64_t>(std::llround(stepT->item<double>()));
  if (gradScale) scaleGrads(g, gradScale->reciprocal());
  adamwForeach(p, g, m, v, h);
  return Napi::Number::New(info.Env(), static_cast<double>(p.size()));
}

// clipGradNorm(params, maxNorm, deferred?) → the total L2 norm of all gradients before clipping,
// as a float32 tensor, float64 when a gradient is float64 (no host sync). Gradients are scaled by
// min(1, maxNorm / (norm + 1e-6)). deferred: they are left as they are and the result is [norm,
// divisor|null], divisor = max(1, (norm + 1e-6) / maxNorm) for adamwStep's gradScale (null when
// nothing is clipped). Multi-tensor kernels as torch.nn.utils.clip_grad_norm_ does: one per-tensor
// launch each for the norm and the scaling was ~2 kernels per parameter, which on a GPU costs more
// than the math.
// lossScale (dynamic loss scaling: the gradients are those of the loss times this float32 scalar
// on their device): the result is [norm, divisor, foundInf] — the norm of the unscaled gradients,
// divisor = lossScale times the clipping divisor (never null: adamwStep's gradScale unscales and
// clips in one), and foundInf = 1 where a gradient holds an inf or NaN (their norm is not
// finite), else 0 (adamwStep's foundInf, the loss scale's update). Always deferred. The norm is
// the check torch.amp.GradScaler makes element by element: the two differ only where the sum of
// squares itself overflows (a scaled norm above 1.8e19), which is skipped here too. The gradients
// must be float32 or float64 (master weights): a float16 norm overflows at 65504, and unscaling in
// half precision would lose the small values the scale kept (torch.amp refuses them too).
Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
  std::vector<at::Tensor> params = tensorListArg(info, 0, "params");
  double maxNorm = numberArg(info, 1, "maxNorm");
  auto lossScale = optionalTensorArg(info, 3, "lossScale");
  bool deferred = lossScale || (!isMissing(info, 2) && boolArg(info, 2, "deferred"));
  bool clips = std::isfinite(maxNorm) && maxNorm > 0;
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> grads;
  for (auto& p : params) {
    const at::Tensor& g = p.grad();
    if (g.defined()) grads.push_back(g);
  }
  auto device = params.empty() ? at::Device(at::kCPU) : params[0].device();
  if (lossScale) {
    checkDeviceScalar(info, *lossScale, device, "lossScale", false, "clipGradNorm");
    for (const auto& g : grads)
      if (g.scalar_type() != at::kFloat && g.scalar_type() != at::kDouble)
        throw Napi::Error::New(info.Env(),
                               std::string("clipGradNorm: loss scaling needs float32 or float64 "
                                           "gradients (float32 master weights, as autocast "
                                           "keeps them), got ") +
                                   dtypeName(g.scalar_type()));
  }
  auto result = [&](const at::Tensor& total, const c10::optional<at::Tensor>& divisor) {
    if (!deferred) return wrap(info.Env(), total);
    Napi::Array out = Napi::Array::New(info.Env(), lossScale ? 3 : 2);
    out.Set(0u, wrap(info.Env(), total));
    out.Set(1u, divisor ? wrap(info.Env(), *divisor) : info.Env().Null());
    if (lossScale) out.Set(2u, wrap(info.Env(), total.isfinite().logical_not().to(at::kFloat)));
    return out.As<Napi::Value>();
  };
  if (grads.empty()) {
    at::Tensor zero = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
    if (lossScale) return result(zero, lossScale->clone());
    return result(zero, c10::nullopt);
  }
  std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2);
  // summed in float32 (bf16/fp16 norms widened), or in float64 when a gradient is float64, so that
  // a float64 run clips at float64 precision as torch.nn.utils.clip_grad_norm_ does
  at::ScalarType acc = at::kFloat;
  for (const auto& n : norms)
    if (n.scalar_type() == at::kDouble) acc = at::kDouble;
  for (auto& n : norms)
    if (n.scalar_type() != acc) n = n.to(acc);
  at::Tensor total = at::stack(norms).norm(2);
  if (lossScale) {
    // (a power-of-two scale divides exactly: the norm of the unscaled gradients, to the bit)
    total = total / *lossScale;
    if (!clips) return result(total, lossScale->to(acc));
    return result(total, ((total + 1e-6) / maxNorm).clamp_min(1.0) * *lossScale);
  }
  if (clips && deferred) return result(total, ((total + 1e-6) / maxNorm).clamp_min(1.0));
  if (clips) {
    scaleGrads(grads, (maxNorm / (total + 1e-6)).clamp_max(1.0));
  }
  return result(total, c10::nullopt);
}

// ampUpdateScale(scale, growthTracker, foundInf, growthFactor, backoffFactor, growthInterval):
// dynamic loss scaling's update, in place and on the device (no host sync), as torch.amp's
// GradScaler.update: an overflow (foundInf 1) multiplies the float32 scale by backoffFactor and
// restarts the int32 count of good steps; growthInterval good steps in a row multiply it by
// growthFactor (kept only if finite) and restart the count. libtorch's kernel on CUDA; elsewhere
// the same arithmetic in tensor ops (products in double rounded to float, as the kernel does).
Napi::Value AmpUpdateScale(const Napi::CallbackInfo& info) {
  at::Tensor scale = tensorArg(info, 0, "scale");
  at::Tensor tracker = tensorArg(info, 1, "growthTracker");
  at::Tensor found = tensorArg(info, 2, "foundInf");
  double growth = numberArg(info, 3, "growthFactor");
  double backoff = numberArg(info, 4, "backoffFactor");
  double intervalArg = numberArg(info, 5, "growthInterval");
  if (!(intervalArg >= 1) || intervalArg != std::floor(intervalArg) || intervalArg > INT32_MAX)
    throw Napi::RangeError::New(info.Env(),
                                "ampUpdateScale: growthInterval must be a positive integer");
  auto interval = static_cast<int64_t>(intervalArg);
  checkDeviceScalar(info, scale, scale.device(), "scale", false, "ampUpdateScale");
  checkDeviceScalar(info, found, scale.device(), "foundInf", false, "ampUpdateScale");
  if (tracker.scalar_type() != at::kInt || tracker.numel() != 1 ||
      tracker.device() != scale.device())
    throw Napi::Error::New(
        info.Env(),
        "ampUpdateScale: the growth tracker must be an int32 scalar on " + scale.device().str());
  at::NoGradGuard noGrad;
#if STAGED_LM_TORCH_AT_LEAST(2, 1)
  if (scale.is_cuda()) {
    at::_amp_update_scale_(scale, tracker, found, growth, backoff, interval);
    return info.Env().Undefined();
  }
#endif
  at::Tensor overflow = found.ne(0);
  at::Tensor good = tracker + 1;
  at::Tensor grows = good.eq(interval).logical_and(overflow.logical_not());
  at::Tensor wide = scale.to(at::kDouble);
  at::Tensor grown = (wide * growth).to(at::kFloat);
  at::Tensor backedOff = (wide * backoff).to(at::kFloat);
  at::Tensor next =
      at::where(overflow, backedOff, at::where(grows.logical_and(grown.isfinite()), grown, scale));
  at::Tensor count = at::where(overflow.logical_or(grows), at::zeros_like(good), good);
  scale.copy_(next);
  tracker.copy_(count);
  return info.Env().Undefined();
}

// zeroGrad(params): drops every gradient (set to none: no memory, no kernel).
Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
  for (auto& p : tensorListArg(info, 0, "params")) p.mutable_grad() = at::Tensor();
  return info.Env().Undefined();
}

}  // namespace

void initOptim(Napi::Env env, Napi::Object exports) {
  define(env, exports, "adamwStep", AdamWStep);
  define(env, exports, "clipGradNorm", ClipGradNorm);
  define(env, exports, "zeroGrad", ZeroGrad);
  define(env, exports, "ampUpdateScale", AmpUpdateScale);
  exports.Set("hasFusedAdamW", Napi::Boolean::New(env, STAGED_LM_HAS_FUSED_ADAMW == 1));
  exports.Set("hasFusedAdamWCpu", Napi::Boolean::New(env, STAGED_LM_HAS_FUSED_ADAMW_CPU == 1));
}

}  // namespace slm
